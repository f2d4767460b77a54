"""Surface-normal metrics (thesis Tables 2.4/2.6): angular error in degrees between the
L2-normalised prediction and the target normal, over valid pixels pooled over the batch.

Keys: ``mean``, ``median`` (degrees; the median of an even count is the average of the two middle
values, as ``numpy.median``), ``within_11.25``, ``within_22.5``, ``within_30`` (fractions in
``[0, 1]`` of pixels with an error ``< t`` degrees). Computed in float64; the cosine is clamped to
``[-1, 1]`` before ``acos``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..checks import ShapeError, WrongTypeError

__all__ = ["NORMAL_THRESHOLDS", "angular_errors", "normal_metrics"]

NORMAL_THRESHOLDS = (11.25, 22.5, 30.0)


def angular_errors(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Angular errors in degrees (float64, 1-D) at the valid pixels, in ``valid``'s order.
    ``pred`` and ``target`` are ``(B, 3, H, W)``; ``valid`` is bool ``(B, H, W)`` or
    ``(B, 1, H, W)``. Both vectors are normalised (the target should already be unit length).

    >>> x = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    >>> y = torch.tensor([1.0, 1.0, 0.0]).view(1, 3, 1, 1)
    >>> [round(e, 9) for e in angular_errors(x, y, torch.ones(1, 1, 1, dtype=torch.bool)).tolist()]
    [45.0]
    """
    for name, t in (("pred", pred), ("target", target)):
        if not isinstance(t, torch.Tensor):
            raise WrongTypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise WrongTypeError(f"{name} must have a floating-point dtype, got {t.dtype}")
        if t.dim() != 4 or t.shape[1] != 3:
            raise ShapeError(f"{name} must be (B, 3, H, W), got shape {tuple(t.shape)}")
    if pred.shape != target.shape:
        raise ShapeError(f"pred and target: shapes differ, {tuple(pred.shape)} vs {tuple(target.shape)}")
    if not isinstance(valid, torch.Tensor) or valid.dtype != torch.bool:
        raise WrongTypeError(f"valid must be a bool tensor, got {getattr(valid, 'dtype', type(valid).__name__)}")
    b, _, h, w = pred.shape
    if valid.dim() == 4 and valid.shape == (b, 1, h, w):
        valid = valid[:, 0]
    if valid.shape != (b, h, w):
        raise ShapeError(f"valid must have shape {(b, h, w)} or {(b, 1, h, w)}, got {tuple(valid.shape)}")
    p = pred.permute(0, 2, 3, 1)[valid].double()
    t = target.permute(0, 2, 3, 1)[valid].double()
    if not bool(torch.isfinite(p).all()) or not bool(torch.isfinite(t).all()):
        raise ValueError("pred and target must be finite on valid pixels")
    cos = (F.normalize(p, dim=1) * F.normalize(t, dim=1)).sum(dim=1).clamp(-1.0, 1.0)
    return torch.rad2deg(torch.acos(cos))


def normal_metrics(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> dict[str, float]:
    """Mean / median angular error (degrees) and the fraction within 11.25, 22.5 and 30 degrees,
    over the valid pixels of the batch (pooled). No valid pixel is an error (not NaN).

    >>> z = torch.tensor([0.0, 0.0, 1.0]).view(1, 3, 1, 1)
    >>> tilted = torch.tensor([0.0, 1.0, 1.0]).view(1, 3, 1, 1)  # 45 degrees from z
    >>> m = normal_metrics(torch.cat([z, tilted], 3), torch.cat([z, z], 3), torch.ones(1, 1, 2, dtype=torch.bool))
    >>> round(m["mean"], 6), m["within_11.25"], m["within_30"]
    (22.5, 0.5, 0.5)
    """
    err = angular_errors(pred, target, valid)
    n = err.numel()
    if n == 0:
        raise ValueError("valid: no valid pixel; the normal metrics are undefined")
    s = err.sort().values
    median = float(s[n // 2]) if n % 2 else float((s[n // 2 - 1] + s[n // 2]) / 2)
    out = {"mean": float(err.mean()), "median": median}
    for t in NORMAL_THRESHOLDS:
        out[f"within_{t:g}"] = float((err < t).double().mean())
    return out
