"""Monocular depth metrics over valid pixels (thesis Tables 2.3/2.5: threshold accuracy; plus the
error measures users expect: abs-rel, sq-rel, RMSE, RMSE-log, log10).

All numbers pool the valid pixels of the whole batch (not a mean of per-image numbers);
:class:`DepthMetricAccumulator` keeps the sums so dataset-level numbers pool every pixel of every
image as well. Computed in float64. Invalid pixels may hold anything (0, NaN, inf); on valid
pixels both ``pred`` and ``target`` must be finite and ``> 0`` (clamp the prediction to the
sensor's range first if needed).

* ``delta1/2/3``: fraction of pixels with ``max(d / d*, d* / d) < 1.25 ** k``;
* ``abs_rel``: mean ``|d - d*| / d*``; ``sq_rel``: mean ``(d - d*)^2 / d*``;
* ``rmse``: ``sqrt(mean (d - d*)^2)``; ``rmse_log``: ``sqrt(mean (ln d - ln d*)^2)``;
* ``log10``: mean ``|log10 d - log10 d*|``.
"""

from __future__ import annotations

import math

import torch

from ..checks import ShapeError, WrongTypeError

__all__ = ["DEPTH_METRICS", "DepthMetricAccumulator", "depth_metrics"]

DEPTH_METRICS = ("delta1", "delta2", "delta3", "abs_rel", "sq_rel", "rmse", "rmse_log", "log10")
_SUMS = ("count", "delta1", "delta2", "delta3", "abs_rel", "sq_rel", "sq", "sq_log", "log10")


def _valid_values(pred, target, valid) -> tuple[torch.Tensor, torch.Tensor]:
    for name, t in (("pred", pred), ("target", target)):
        if not isinstance(t, torch.Tensor):
            raise WrongTypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise WrongTypeError(f"{name} must have a floating-point dtype, got {t.dtype}")
        if t.dim() not in (3, 4):
            raise ShapeError(f"{name} must be (B, 1, H, W) or (B, H, W), got shape {tuple(t.shape)}")
    if pred.shape != target.shape:
        raise ShapeError(f"pred and target: shapes differ, {tuple(pred.shape)} vs {tuple(target.shape)}")
    if not isinstance(valid, torch.Tensor) or valid.dtype != torch.bool:
        raise WrongTypeError(f"valid must be a bool tensor, got {getattr(valid, 'dtype', type(valid).__name__)}")
    if valid.shape != pred.shape:
        raise ShapeError(f"valid must have shape {tuple(pred.shape)}, got {tuple(valid.shape)}")
    d, g = pred[valid].double(), target[valid].double()
    for name, t in (("pred", d), ("target", g)):
        if not bool(torch.isfinite(t).all()) or bool((t <= 0).any()):
            raise ValueError(f"{name} must be finite and > 0 on valid pixels")
    return d, g


def _sums(pred, target, valid) -> dict[str, float]:
    d, g = _valid_values(pred, target, valid)
    ratio = torch.maximum(d / g, g / d)
    diff = d - g
    return {
        "count": float(d.numel()),
        "delta1": float((ratio < 1.25).sum()),
        "delta2": float((ratio < 1.25 ** 2).sum()),
        "delta3": float((ratio < 1.25 ** 3).sum()),
        "abs_rel": float((diff.abs() / g).sum()),
        "sq_rel": float((diff.square() / g).sum()),
        "sq": float(diff.square().sum()),
        "sq_log": float((torch.log(d) - torch.log(g)).square().sum()),
        "log10": float((torch.log10(d) - torch.log10(g)).abs().sum()),
    }


def _finish(s: dict[str, float]) -> dict[str, float]:
    n = s["count"]
    if n == 0:
        raise ValueError("valid: no valid pixel; the depth metrics are undefined")
    return {
        "delta1": s["delta1"] / n, "delta2": s["delta2"] / n, "delta3": s["delta3"] / n,
        "abs_rel": s["abs_rel"] / n, "sq_rel": s["sq_rel"] / n,
        "rmse": math.sqrt(s["sq"] / n), "rmse_log": math.sqrt(s["sq_log"] / n), "log10": s["log10"] / n,
    }


def depth_metrics(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> dict[str, float]:
    """The standard depth metrics (keys :data:`DEPTH_METRICS`) over the valid pixels of the batch,
    pooled; deltas are fractions in ``[0, 1]``. ``pred``, ``target`` and the bool ``valid`` share
    one shape, ``(B, 1, H, W)`` or ``(B, H, W)``. No valid pixel is an error (not NaN).

    >>> pred = torch.tensor([[[1.0, 2.0]]])
    >>> target = torch.tensor([[[1.0, 1.0]]])
    >>> m = depth_metrics(pred, target, torch.ones(1, 1, 2, dtype=torch.bool))
    >>> m["delta1"], m["delta3"], m["abs_rel"], m["rmse"]  # ratios 1 and 2; 2 > 1.25**3 = 1.953
    (0.5, 0.5, 0.5, 0.7071067811865476)
    """
    return _finish(_sums(pred, target, valid))


class DepthMetricAccumulator:
    """Sums of the depth metrics over batches, so the dataset-level numbers pool every valid pixel
    of the dataset (an image with many valid pixels weighs more). :meth:`merge` adds another
    accumulator (e.g. from another worker); :meth:`compute` gives :func:`depth_metrics`' dict.

    >>> acc = DepthMetricAccumulator()
    >>> one = torch.ones(1, 1, 2, dtype=torch.bool)
    >>> acc.update(torch.tensor([[[1.0, 2.0]]]), torch.ones(1, 1, 2), one)
    >>> acc.update(torch.tensor([[[1.0, 1.0]]]), torch.ones(1, 1, 2), one)
    >>> acc.compute()["delta1"]
    0.75
    """

    def __init__(self) -> None:
        self.sums = dict.fromkeys(_SUMS, 0.0)

    def update(self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> None:
        for k, v in _sums(pred, target, valid).items():
            self.sums[k] += v

    def merge(self, other: DepthMetricAccumulator) -> DepthMetricAccumulator:
        if not isinstance(other, DepthMetricAccumulator):
            raise WrongTypeError(f"other must be a DepthMetricAccumulator, got {type(other).__name__}")
        for k in _SUMS:
            self.sums[k] += other.sums[k]
        return self

    @property
    def count(self) -> int:
        return int(self.sums["count"])

    def compute(self) -> dict[str, float]:
        return _finish(self.sums)
