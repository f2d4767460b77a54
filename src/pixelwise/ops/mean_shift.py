"""Gaussian blurring mean shift (GBMS) on the unit hypersphere, as a differentiable op.

Kong & Fowlkes 2018, Eq. 3: with ``X`` the ``D x N`` matrix of unit embeddings (one column per
pixel), one iteration is

    S = X^T X,   K = exp(kappa * (S - 1)),   d = K^T 1,
    X <- X (eta * K diag(1/d) + (1 - eta) I),   then every column re-normalised to length 1.

The kernel is the von Mises-Fisher kernel ``exp(kappa x^T x_i)``. It is evaluated shifted by
``-kappa`` so it never overflows (every entry lies in (0, 1], the diagonal is exactly 1, so
``d >= 1`` and the division is always safe); the shift cancels in ``K diag(1/d)``.

The bandwidth question: the main text writes the kernel as ``exp(delta x^T x_i)``, the
supplement as ``exp(delta^2 x^T x_i)``, both with ``1/delta = (1 - alpha)/3``. ``kappa`` is
the concentration actually used in the exponent, so the main text is ``kappa = delta``
(6 at alpha = 0.5, the default here) and the supplement ``kappa = delta**2`` (36);
:func:`kappa_from_margin` gives either.

Autograd differentiates it; the ``N x N`` kernel of every iteration is kept for the
backward pass, so memory is ``O(T N^2)`` per image -- sample pixels (a few thousand).

:func:`euclidean_mean_shift_step` is the same iteration with the Euclidean Gaussian kernel
``exp(-||x_i - x_j||^2 / (2 h^2))`` and no projection onto the sphere, for embeddings that are
not unit vectors (and the supplement's 1-D toy example).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..checks import check_finite, check_float, check_int, check_tensor

__all__ = ["kappa_from_margin", "mean_shift_step", "recurrent_mean_shift", "euclidean_mean_shift_step"]


def kappa_from_margin(alpha: float = 0.5, *, squared: bool = False) -> float:
    """The vMF concentration the paper ties to the loss margin: ``delta = 3 / (1 - alpha)``.

    ``squared=False`` follows the main text (``kappa = delta``), ``squared=True`` the
    supplement (``kappa = delta**2``). ``alpha = 0.5`` gives 6 or 36.
    """
    alpha = check_float(alpha, "alpha", low=0, high=1, high_open=True)
    delta = 3.0 / (1.0 - alpha)
    return delta * delta if squared else delta


def _check_args(x: torch.Tensor, kappa: float, eta: float) -> None:
    check_tensor(x, "x", 3)
    check_float(kappa, "kappa", low=0, low_open=True)
    check_float(eta, "eta", low=0, high=1, low_open=True)


def mean_shift_step(x: torch.Tensor, kappa: float, eta: float = 1.0) -> torch.Tensor:
    """One GBMS iteration on unit embeddings.

    Args:
        x: ``(B, D, N)`` embeddings, columns of unit length (normalise first).
        kappa: kernel concentration (see the module docstring).
        eta: step size; 1 is GBMS proper, smaller values move part of the way.

    Returns:
        ``(B, D, N)``, columns re-normalised onto the sphere.
    """
    _check_args(x, kappa, eta)
    s = x.transpose(1, 2) @ x  # (B, N, N) cosine similarities
    k = torch.exp(kappa * (s - 1.0))  # in (0, 1], diagonal 1: no overflow, degree >= 1
    degree = k.sum(dim=1, keepdim=True)  # (B, 1, N) column sums = K^T 1
    y = x @ (k / degree)  # X K diag(1/d): each column the kernel-weighted mean
    if eta != 1:
        y = eta * y + (1.0 - eta) * x
    return F.normalize(y, dim=1)


def recurrent_mean_shift(x: torch.Tensor, kappa: float, eta: float = 1.0, iterations: int = 5) -> list[torch.Tensor]:
    """``iterations`` GBMS steps; returns ``[x_0, x_1, ..., x_T]`` (``x_0`` = normalised input).

    Example:
        >>> x = torch.nn.functional.normalize(torch.randn(1, 8, 100), dim=1)
        >>> states = recurrent_mean_shift(x, kappa=6.0, iterations=3)
        >>> len(states), tuple(states[-1].shape)
        (4, (1, 8, 100))
    """
    _check_args(x, kappa, eta)
    check_int(iterations, "iterations", min=0)
    check_finite(x, "x")
    states = [F.normalize(x, dim=1)]
    for _ in range(iterations):
        states.append(mean_shift_step(states[-1], kappa, eta))
    return states


def euclidean_mean_shift_step(x: torch.Tensor, bandwidth: float, eta: float = 1.0) -> torch.Tensor:
    """One Euclidean Gaussian blurring mean shift (GBMS) iteration, without re-normalisation.

    ``X <- X (eta * K diag(1/d) + (1 - eta) I)`` with ``K_ij = exp(-||x_i - x_j||^2 / (2 h^2))``
    and ``d = K^T 1``. Every kernel entry lies in (0, 1] and the diagonal is exactly 1, so
    nothing overflows and ``d >= 1``.

    Args:
        x: ``(B, D, N)`` points, one column per point (any scale; ``D = 1`` for 1-D data).
        bandwidth: the kernel's standard deviation ``h`` > 0, in the units of ``x``.
        eta: step size in (0, 1]; 1 is GBMS proper.

    Returns:
        ``(B, D, N)``: every point moved (part of the way, for ``eta < 1``) to the
        kernel-weighted mean of all points.

    Example:
        >>> x = torch.tensor([[[0.0, 0.1, 5.0, 5.1]]])
        >>> euclidean_mean_shift_step(x, bandwidth=0.5).round(decimals=2)
        tensor([[[0.0500, 0.0500, 5.0500, 5.0500]]])
    """
    check_tensor(x, "x", 3)
    check_float(bandwidth, "bandwidth", low=0, low_open=True)
    check_float(eta, "eta", low=0, high=1, low_open=True)
    check_finite(x, "x")
    # Distances are translation invariant; centring keeps the Gram-matrix expansion below
    # accurate for data far from the origin.
    xc = x - x.mean(dim=2, keepdim=True)
    sq_norm = (xc * xc).sum(dim=1)  # (B, N)
    sq_dist = sq_norm[:, :, None] + sq_norm[:, None, :] - 2.0 * (xc.transpose(1, 2) @ xc)
    # Rounding can leave tiny negatives off the diagonal and non-zeros on it: clamp, and pin
    # the diagonal to exactly 0 so that K_ii = 1 and the degree is >= 1.
    eye = torch.eye(x.shape[2], dtype=torch.bool, device=x.device)
    sq_dist = sq_dist.clamp(min=0.0).masked_fill(eye, 0.0)
    k = torch.exp(sq_dist / (-2.0 * bandwidth * bandwidth))
    y = x @ (k / k.sum(dim=1, keepdim=True))
    if eta != 1:
        y = eta * y + (1.0 - eta) * x
    return y
