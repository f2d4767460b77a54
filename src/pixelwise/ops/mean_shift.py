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
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._checks import check_finite, check_tensor

__all__ = ["kappa_from_margin", "mean_shift_step", "recurrent_mean_shift"]


def kappa_from_margin(alpha: float = 0.5, *, squared: bool = False) -> float:
    """The vMF concentration the paper ties to the loss margin: ``delta = 3 / (1 - alpha)``.

    ``squared=False`` follows the main text (``kappa = delta``), ``squared=True`` the
    supplement (``kappa = delta**2``). ``alpha = 0.5`` gives 6 or 36.
    """
    if not 0 <= alpha < 1:
        raise ValueError(f"alpha must be in [0, 1), got {alpha}")
    delta = 3.0 / (1.0 - alpha)
    return delta * delta if squared else delta


def _check_args(x: torch.Tensor, kappa: float, eta: float) -> None:
    check_tensor(x, "x", 3)
    if not (isinstance(kappa, (int, float)) and math.isfinite(kappa) and kappa > 0):
        raise ValueError(f"kappa must be a finite number > 0, got {kappa!r}")
    if not 0 < eta <= 1:
        raise ValueError(f"eta must be in (0, 1], got {eta!r}")


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
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 0:
        raise ValueError(f"iterations must be an int >= 0, got {iterations!r}")
    check_finite(x, "x")
    states = [F.normalize(x, dim=1)]
    for _ in range(iterations):
        states.append(mean_shift_step(states[-1], kappa, eta))
    return states
