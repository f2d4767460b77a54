"""Recurrent mean-shift grouping (Kong & Fowlkes 2018, Sec. 4) as a module."""

from __future__ import annotations

import torch
from torch import nn

from ..checks import check_float, check_int, check_tensor
from ..ops.mean_shift import kappa_from_margin, recurrent_mean_shift

__all__ = ["RecurrentMeanShift"]


class RecurrentMeanShift(nn.Module):
    """``iterations`` unrolled GBMS steps on the unit sphere; see :mod:`pixelwise.ops.mean_shift`.

    The dynamics are fixed (no parameters, as in the paper): gradients flow through the
    iterations to the input embedding only.

    Args:
        kappa: vMF kernel concentration (> 0); 6 is the main text's ``delta`` at margin 0.5.
        eta: step size in (0, 1]; 1 is GBMS proper.
        iterations: number of unrolled iterations ``T`` >= 0 (the paper's figures use 10).

    Shape:
        input ``(B, D, N)`` or ``(B, D, H, W)``; output a list of ``T + 1`` tensors of the same
        shape, ``[x_0, ..., x_T]``, ``x_0`` being the input L2-normalised along ``D``.

    Example:
        >>> m = RecurrentMeanShift.from_margin(0.5, iterations=3)
        >>> states = m(torch.randn(2, 8, 4, 5))
        >>> len(states), tuple(states[-1].shape)
        (4, (2, 8, 4, 5))
    """

    def __init__(self, kappa: float = 6.0, eta: float = 1.0, iterations: int = 5):
        super().__init__()
        self.kappa = check_float(kappa, "kappa", low=0, low_open=True)
        self.eta = check_float(eta, "eta", low=0, high=1, low_open=True)
        self.iterations = check_int(iterations, "iterations", min=0)

    @classmethod
    def from_margin(cls, alpha: float = 0.5, iterations: int = 5, eta: float = 1.0,
                    squared: bool = False) -> RecurrentMeanShift:
        """The module with ``kappa`` tied to the loss margin, ``1/delta = (1 - alpha)/3``.

        Args:
            alpha: the pairwise loss margin in [0, 1).
            iterations: number of unrolled iterations.
            eta: step size in (0, 1].
            squared: ``False`` uses ``kappa = delta`` (main text), ``True`` ``delta**2``
                (supplement); see :func:`pixelwise.ops.kappa_from_margin`.

        Returns:
            A :class:`RecurrentMeanShift`.
        """
        return cls(kappa=kappa_from_margin(alpha, squared=squared), eta=eta, iterations=iterations)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Run the iterations.

        Args:
            x: ``(B, D, N)`` or ``(B, D, H, W)`` finite embeddings (normalised here).

        Returns:
            ``[x_0, x_1, ..., x_T]``, each shaped like ``x``.
        """
        check_tensor(x, "x", (3, 4))
        states = recurrent_mean_shift(x.flatten(2), self.kappa, self.eta, self.iterations)
        return [s.view(x.shape) for s in states]

    def extra_repr(self) -> str:
        return f"kappa={self.kappa:g}, eta={self.eta:g}, iterations={self.iterations}"
