"""Dense regression losses that ignore invalid pixels."""

from __future__ import annotations

import torch


def masked_mse(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor,
               scale: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error over valid pixels, optionally in units of a per-sample ``scale``.

    ``scale`` (broadcastable to ``pred``, e.g. ``(B,1,1,1)``) makes the loss independent of the
    target's unit (metres, pixels of disparity, pixels of flow). Invalid pixels contribute
    nothing, even when ``target`` holds NaN or inf there. A batch without any valid pixel gives
    a zero loss that still has a graph (so distributed ranks stay in step).
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred and target: shapes differ, {tuple(pred.shape)} vs {tuple(target.shape)}")
    diff = pred - torch.where(valid, target, pred.detach())
    if scale is not None:
        diff = diff / scale
    sq = torch.where(valid, diff, torch.zeros_like(diff)).square()
    count = valid.expand_as(pred).sum().clamp(min=1)
    return sq.sum() / count
