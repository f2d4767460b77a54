"""Losses of the unified dense multi-task framework (Kong's thesis, ch. 2, Eqs. 2.2-2.4).

* :func:`log_depth_loss`: mixed L2 + L1 loss on log depth (Eq. 2.3, ``gamma = 2``);
* :func:`normal_loss`: cosine plus inverse-cosine loss on unit normals (Eq. 2.4, ``lambda = 4``),
  with the cosine clamped to ``[-1 + eps, 1 - eps]`` so the gradient of ``acos`` stays finite;
* :func:`class_balanced_bce` / :func:`side_output_bce`: HED-style class-balanced binary
  cross-entropy for boundaries, summed over side branches and the fusion layer (Eq. 2.2).

Reductions. The thesis writes sums over pixels; here every loss is a *mean* over the valid pixels
(depth, normals: pooled over the batch; boundaries: per image, then averaged over images), so
the loss scale does not depend on the image size. A batch without any valid pixel gives a zero
that keeps the graph (``pred.flatten()[:0].sum()``: like ``0 * pred.sum()``, but not NaN when an
invalid pixel holds NaN/inf), so training (and distributed ranks) go on; its gradient is 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..checks import OutOfRangeError, ShapeError, WrongTypeError, check_float, check_tensor

__all__ = ["class_balanced_bce", "log_depth_loss", "normal_loss", "side_output_bce"]


def _zero_with_graph(x: torch.Tensor) -> torch.Tensor:
    return x.flatten()[:0].sum()


def _check_mask(valid, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    if not isinstance(valid, torch.Tensor):
        raise WrongTypeError(f"{name} must be a torch.Tensor, got {type(valid).__name__}")
    if valid.dtype != torch.bool:
        raise WrongTypeError(f"{name} must be a bool tensor, got {valid.dtype}")
    if tuple(valid.shape) != tuple(shape):
        raise ShapeError(f"{name} must have shape {tuple(shape)}, got {tuple(valid.shape)}")
    return valid


def _check_pair(pred, target, pred_name: str = "pred", target_name: str = "target", ndim=(3, 4)) -> None:
    check_tensor(pred, pred_name, ndim)
    check_tensor(target, target_name, ndim)
    if pred.shape != target.shape:
        raise ShapeError(f"{pred_name} and {target_name}: shapes differ, {tuple(pred.shape)} vs {tuple(target.shape)}")


def log_depth_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor,
                   gamma: float = 2.0) -> torch.Tensor:
    """Mixed L2 + L1 loss on log depth (thesis Eq. 2.3)::

        mean over valid pixels of  (log D - log D*)^2 + gamma * |log D - log D*|

    ``pred`` is a *positive depth* (not a log depth): the caller makes it positive, e.g. with
    ``softplus``/``exp`` at the head's output; a non-positive ``pred`` (or ``target``) on a
    valid pixel is an error (:class:`~pixelwise.checks.OutOfRangeError`-like ``ValueError``).
    Invalid pixels may hold anything (0, NaN, inf) and never enter the loss or its gradient.

    Shapes: ``pred``, ``target`` and ``valid`` are all ``(B, 1, H, W)`` or all ``(B, H, W)``;
    ``valid`` is a bool mask. Reduction: the mean over the valid pixels of the whole batch
    (pixels pooled, not a mean of per-image means). No valid pixel: a zero with a graph (0
    gradient, see the module docstring), so a batch of empty masks does not crash training.

    >>> pred = torch.tensor([[[[1.0, 2.0]]]])
    >>> target = torch.tensor([[[[1.0, 1.0]]]])
    >>> valid = torch.tensor([[[[True, True]]]])
    >>> d = torch.log(torch.tensor(2.0))
    >>> bool(torch.isclose(log_depth_loss(pred, target, valid), (d ** 2 + 2 * d) / 2))
    True
    """
    _check_pair(pred, target)
    valid = _check_mask(valid, "valid", tuple(pred.shape))
    gamma = check_float(gamma, "gamma", low=0)
    if not bool(valid.any()):
        return _zero_with_graph(pred)
    if bool((pred[valid] <= 0).any()):
        raise ValueError(f"pred must be > 0 on valid pixels (a depth, not a log depth); "
                         f"got {int((pred[valid] <= 0).sum())} values <= 0")
    t = target[valid]
    if not bool(torch.isfinite(t).all()) or bool((t <= 0).any()):
        raise ValueError("target must be finite and > 0 on valid pixels; mark missing depth as invalid")
    # keep invalid pixels out of the graph entirely (a NaN there would poison the gradient)
    d = torch.log(pred[valid]) - torch.log(t)
    return (d.square() + gamma * d.abs()).mean()


def normal_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor,
                lam: float = 4.0, eps: float = 1e-6) -> torch.Tensor:
    """Cosine plus inverse-cosine loss on surface normals (thesis Eq. 2.4)::

        mean over valid pixels of  -cos + lam * acos(clamp(cos, -1 + eps, 1 - eps))

    where ``cos = n . n*``, ``n`` is ``pred`` L2-normalised along the channels here
    (``F.normalize``: pass raw network output) and ``n*`` is ``target``, expected to hold unit
    normals on valid pixels. ``pred`` and ``target`` are ``(B, 3, H, W)``; ``valid`` is a bool
    ``(B, H, W)`` or ``(B, 1, H, W)`` mask.

    The clamp is the point: ``d acos(x)/dx = -1/sqrt(1 - x^2)`` is infinite at ``x = 1``, i.e. at
    zero error. With the clamp, a pixel whose cosine is beyond ``1 - eps`` gets the gradient of
    ``-cos`` only (finite), instead of NaN/inf. Reduction: mean over the valid pixels of the
    batch; no valid pixel gives a zero with a graph (see the module docstring). Half-precision
    inputs are computed in float32 (where ``1 - eps`` would round to 1); the loss is float32 then.

    >>> n = torch.zeros(1, 3, 1, 2); n[:, 2] = 1.0
    >>> valid = torch.ones(1, 1, 2, dtype=torch.bool)
    >>> loss = normal_loss(n, n, valid)
    >>> round(loss.item(), 3)  # -1 + 4 * acos(1 - 1e-6) ~ -1 + 4 * 0.0014
    -0.994
    """
    _check_pair(pred, target, ndim=4)
    if pred.shape[1] != 3:
        raise ShapeError(f"pred must have 3 channels (x, y, z), got shape {tuple(pred.shape)}")
    b, _, h, w = pred.shape
    if isinstance(valid, torch.Tensor) and valid.dim() == 4:
        valid = _check_mask(valid, "valid", (b, 1, h, w))[:, 0]
    valid = _check_mask(valid, "valid", (b, h, w))
    lam = check_float(lam, "lam", low=0)
    eps = check_float(eps, "eps", low=0, high=1, low_open=True, high_open=True)
    if not bool(valid.any()):
        return _zero_with_graph(pred)
    p = pred.permute(0, 2, 3, 1)[valid]  # (N, 3)
    t = target.permute(0, 2, 3, 1)[valid]
    if not bool(torch.isfinite(t).all()):
        raise ValueError("target must be finite on valid pixels; mark missing normals as invalid")
    if p.dtype in (torch.float16, torch.bfloat16):  # 1 - eps would round to 1 there: acos' gradient -inf
        p, t = p.float(), t.float()
    if float(torch.tensor(1 - eps, dtype=p.dtype)) >= 1.0:
        raise OutOfRangeError(f"eps must be large enough that 1 - eps < 1 in {p.dtype}, got {eps:g}")
    cos = (F.normalize(p, dim=1) * t).sum(dim=1)
    return (-cos + lam * torch.acos(cos.clamp(-1 + eps, 1 - eps))).mean()


def class_balanced_bce(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Class-balanced binary cross-entropy of HED and the thesis (Eq. 2.2, one branch).

    Per image, over its valid pixels ``Y = Y+ u Y-``: ``beta = |Y-| / |Y|`` weighs the positives
    (boundary pixels, rare) and ``1 - beta`` the negatives::

        l = -(beta * sum_{Y+} log sigmoid(x) + (1 - beta) * sum_{Y-} log(1 - sigmoid(x))) / |Y|

    Reduction: the thesis sums over pixels; here each image's sum is divided by its number of
    valid pixels ``|Y|`` (so the scale does not depend on the image size), then the images are
    averaged (an image without valid pixels counts as 0). All-empty batch: a zero with a graph.

    ``logits`` and ``target`` are ``(B, 1, H, W)`` or ``(B, H, W)``; ``target`` holds 0/1 (float
    or bool) on valid pixels -- anything (an ignore label such as 255, NaN) elsewhere; ``valid``
    (optional, default all pixels) is a bool mask of the same shape.

    >>> logits = torch.zeros(1, 1, 1, 4)  # p = 0.5 everywhere: every term is log 2
    >>> target = torch.tensor([[[[1.0, 0.0, 0.0, 0.0]]]])  # beta = 3/4
    >>> expected = (0.75 * 1 + 0.25 * 3) * torch.log(torch.tensor(2.0)) / 4
    >>> bool(torch.isclose(class_balanced_bce(logits, target), expected))
    True
    """
    check_tensor(logits, "logits", (3, 4))
    if not isinstance(target, torch.Tensor):
        raise WrongTypeError(f"target must be a torch.Tensor, got {type(target).__name__}")
    if target.shape != logits.shape:
        raise ShapeError(f"logits and target: shapes differ, {tuple(logits.shape)} vs {tuple(target.shape)}")
    target = target.to(logits.dtype)
    if valid is None:
        valid = torch.ones_like(target, dtype=torch.bool)
    valid = _check_mask(valid, "valid", tuple(logits.shape))
    t = target[valid]
    if bool(((t != 0) & (t != 1)).any()):
        raise ValueError("target must hold only 0 and 1 on valid pixels (mark ignored pixels with valid=False)")
    if not bool(valid.any()):
        return _zero_with_graph(logits)
    b = logits.shape[0]
    v = valid.reshape(b, -1).to(logits.dtype)
    y = torch.where(valid, target, torch.zeros((), dtype=logits.dtype)).reshape(b, -1)
    n = v.sum(dim=1)                          # |Y| per image
    n_pos = y.sum(dim=1)
    beta = ((n - n_pos) / n.clamp(min=1)).unsqueeze(1)   # |Y-| / |Y|
    weight = (beta * y + (1 - beta) * (1 - y) * v).detach()
    # invalid pixels: weight 0 and a finite stand-in logit, so NaN there never leaks
    x = torch.where(valid.reshape(b, -1), logits.reshape(b, -1), torch.zeros((), dtype=logits.dtype))
    per_pixel = F.binary_cross_entropy_with_logits(x, y, weight=weight, reduction="none")
    per_image = per_pixel.sum(dim=1) / n.clamp(min=1)
    return per_image.mean()


def side_output_bce(side_logits: Sequence[torch.Tensor], fused_logits: torch.Tensor, target: torch.Tensor,
                    valid: torch.Tensor | None = None) -> torch.Tensor:
    """Deep supervision for boundaries (thesis Eq. 2.2): :func:`class_balanced_bce` of every side
    branch plus the fusion layer, **summed** (five terms for four branches + fusion).

    A side output smaller (or larger) than ``target`` is first resized to the target's
    ``(H, W)`` with bilinear interpolation, ``align_corners=False``. Logits are ``(B, 1, h, w)``;
    ``target`` and ``valid`` are ``(B, 1, H, W)``.

    >>> target = torch.zeros(1, 1, 4, 4); target[..., 1, :] = 1
    >>> side = [torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 4, 4)]
    >>> total = side_output_bce(side, torch.zeros(1, 1, 4, 4), target)
    >>> bool(torch.isclose(total, 3 * class_balanced_bce(torch.zeros(1, 1, 4, 4), target)))
    True
    """
    if isinstance(side_logits, torch.Tensor) or not isinstance(side_logits, Sequence):
        raise WrongTypeError(f"side_logits must be a list of tensors, got {type(side_logits).__name__}")
    check_tensor(fused_logits, "fused_logits", 4)
    if not isinstance(target, torch.Tensor) or target.dim() != 4:
        raise ShapeError(f"target must be a 4-D (B, 1, H, W) tensor, got {getattr(target, 'shape', target)!r}")
    size = tuple(target.shape[-2:])
    total = None
    for i, x in enumerate([*side_logits, fused_logits]):
        name = f"side_logits[{i}]" if i < len(side_logits) else "fused_logits"
        check_tensor(x, name, 4)
        if x.shape[0] != target.shape[0] or x.shape[1] != 1:
            raise ShapeError(f"{name} must be (B, 1, h, w) with B = {target.shape[0]}, got {tuple(x.shape)}")
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        term = class_balanced_bce(x, target, valid)
        total = term if total is None else total + term
    return total
