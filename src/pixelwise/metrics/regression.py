"""Dense regression metrics over valid pixels: RMSE and MAE (depth), end-point error (flow).

Every function takes ``(B, C, H, W)`` predictions and targets and a ``(B, 1, H, W)`` boolean
``valid`` mask and returns one value per image (``(B,)`` float64), so callers choose how to
average over a dataset. Invalid pixels never enter a sum, whatever value they hold (NaN and inf
included). An image with no valid pixel is an error, not a NaN.
"""

from __future__ import annotations

import torch


def _checked(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor):
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(f"pred and target: expected equal (B, C, H, W) shapes, got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")
    b, _, h, w = target.shape
    if valid.shape != (b, 1, h, w) or valid.dtype != torch.bool:
        raise ValueError(f"valid: expected a bool tensor of shape {(b, 1, h, w)}, got {valid.dtype} {tuple(valid.shape)}")
    counts = valid.sum(dim=(1, 2, 3))
    if (counts == 0).any():
        empty = [int(i) for i in torch.nonzero(counts == 0).flatten()]
        raise ValueError(f"valid: image(s) {empty} have no valid pixel; the metric is undefined")
    diff = torch.where(valid, pred.double() - target.double(), torch.zeros((), dtype=torch.float64))
    return diff, counts.double()


def rmse(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Root mean squared error per image over valid pixels (all channels pooled)."""
    diff, counts = _checked(pred, target, valid)
    return (diff.square().sum(dim=(1, 2, 3)) / (counts * pred.shape[1])).sqrt()


def mae(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per image over valid pixels (all channels pooled)."""
    diff, counts = _checked(pred, target, valid)
    return diff.abs().sum(dim=(1, 2, 3)) / (counts * pred.shape[1])


def endpoint_error(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Average end-point error per image: mean over valid pixels of the L2 norm of the flow error."""
    if pred.shape[1] != 2:
        raise ValueError(f"pred: flow needs 2 channels (u, v), got {pred.shape[1]}")
    diff, counts = _checked(pred, target, valid)
    return diff.square().sum(dim=1).sqrt().sum(dim=(1, 2)) / counts
