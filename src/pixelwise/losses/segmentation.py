"""Class-weighted cross-entropy for range-image segmentation, with SqueezeSegV3's multi-layer loss.

* :func:`label_frequencies` and :func:`class_weights` turn label statistics into per-class
  weights ``w_c ~ 1 / (f_c + eps)`` (inverse frequency, as RangeNet++ does).
* :func:`downsample_labels` subsamples a label map along the width, the way the network's
  width-only strides shrink its feature maps.
* :func:`multi_layer_cross_entropy` is Eq. 5 of SqueezeSegV3: one weighted cross-entropy per
  prediction head, each at the head's width, summed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..checks import check_float, check_int, check_positive_int

__all__ = ["class_weights", "downsample_labels", "label_frequencies", "multi_layer_cross_entropy"]


def label_frequencies(labels_or_counts: Iterable, num_classes: int) -> np.ndarray:
    """Relative class frequencies from integer label arrays, or from per-class counts.

    Args:
        labels_or_counts: an iterable of integer label arrays (numpy or torch, any shape), whose
            values are bincounted; a single array is also accepted. An iterable of *floating*
            arrays of length ``num_classes`` is read as per-class counts and summed instead.
        num_classes: number of classes; labels must lie in ``[0, num_classes)``.

    Returns:
        ``(num_classes,)`` float64 frequencies summing to 1.

    Example:
        >>> label_frequencies([np.array([0, 1, 1]), np.array([[2, 1]])], 3).tolist()
        [0.2, 0.6, 0.2]
    """
    num_classes = check_positive_int(num_classes, "num_classes")
    if isinstance(labels_or_counts, (np.ndarray, torch.Tensor)):
        labels_or_counts = [labels_or_counts]
    counts = np.zeros(num_classes, dtype=np.float64)
    for i, arr in enumerate(labels_or_counts):
        a = arr.detach().cpu().numpy() if isinstance(arr, torch.Tensor) else np.asarray(arr)
        if np.issubdtype(a.dtype, np.floating):
            if a.shape != (num_classes,) or not np.all(np.isfinite(a)) or np.any(a < 0):
                raise ValueError(f"labels_or_counts: item {i} is floating, so it must be {num_classes} finite "
                                 f"non-negative counts; got shape {a.shape}")
            counts += a
            continue
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"labels_or_counts: item {i} must hold integer labels, got dtype {a.dtype}")
        a = a.reshape(-1).astype(np.int64, copy=False)
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"labels_or_counts: item {i} has labels outside [0, {num_classes}): "
                             f"range [{a.min()}, {a.max()}]")
        counts += np.bincount(a, minlength=num_classes)
    total = counts.sum()
    if total <= 0:
        raise ValueError("labels_or_counts: no labels counted")
    return counts / total


def class_weights(frequencies, eps: float = 1e-3, ignore_index: int | None = 0) -> torch.Tensor:
    """Inverse-frequency class weights for the cross-entropy, normalised to a mean of 1 per pixel.

    ``frequencies`` are first normalised to sum 1 over *all* classes (so counts work too), then
    ``w_c = 1 / (f_c + eps)``; the weight of ``ignore_index`` is set to 0; then all weights are
    multiplied by one constant so that ``sum_c f_c w_c = 1`` over the non-ignored classes. With
    the ignored class at weight 0, that makes the pixel-averaged weight (over all pixels, ignored
    ones included, as :func:`multi_layer_cross_entropy` divides) equal to 1, so the loss keeps the
    scale of plain cross-entropy; a constant factor does not move the optimum.

    SqueezeSegV3 prints ``w_c = 1 / log(f_c + eps)``, which is negative whenever
    ``f_c + eps < 1`` (always, for a small eps), so it cannot be used as written. We use the
    inverse frequency ``1 / (f_c + eps)``, as the RangeNet++ code does. ``eps`` bounds the weight
    of rare or absent classes at ``1 / eps`` before rescaling.

    Args:
        frequencies: ``(C,)`` non-negative finite class frequencies or counts, not all zero
            over the non-ignored classes.
        eps: positive smoothing term.
        ignore_index: class whose weight is 0 (``None`` for none).

    Returns:
        ``(C,)`` float32 tensor, finite and non-negative.

    Example:
        >>> class_weights([0.5, 0.25, 0.25], eps=0.25).tolist()  # 1/(0.25+0.25) = 2, 0.25*2*2 = 1
        [0.0, 2.0, 2.0]
    """
    f = torch.as_tensor(np.asarray(frequencies.detach().cpu() if isinstance(frequencies, torch.Tensor)
                                   else frequencies, dtype=np.float64))
    if f.dim() != 1 or f.numel() < 1:
        raise ValueError(f"frequencies: expected a non-empty 1-D sequence, got shape {tuple(f.shape)}")
    if not bool(torch.isfinite(f).all()) or bool((f < 0).any()):
        raise ValueError("frequencies: values must be finite and non-negative")
    eps = check_float(eps, "eps", low=0, low_open=True)
    n = f.numel()
    include = torch.ones(n, dtype=torch.bool)
    if ignore_index is not None:
        include[check_int(ignore_index, "ignore_index", min=0, max=n - 1)] = False
    if not bool(include.any()) or float(f[include].sum()) <= 0:
        raise ValueError("frequencies: all zero over the non-ignored classes")
    f = f / f.sum()
    w = torch.where(include, 1.0 / (f + eps), torch.zeros_like(f))
    w = w / (f * w).sum()
    return w.float()


def downsample_labels(labels: torch.Tensor, factor: int) -> torch.Tensor:
    """Nearest-neighbour subsampling of ``(B, H, W)`` labels along the width: ``labels[..., ::factor]``.

    Keeps columns ``0, factor, 2*factor, ...`` -- exactly what
    ``F.interpolate(labels[:, None].float(), size=(H, W // factor), mode="nearest")`` selects
    (source index ``floor(j * W / W_out)``), and the column a stride-2, padding-``k//2`` conv
    centres its output ``j`` on at each halving (input column ``2j``).

    Args:
        labels: ``(B, H, W)`` integer label map.
        factor: positive int dividing ``W``.

    Returns:
        ``(B, H, W // factor)`` labels (a strided view when ``factor > 1``).

    Example:
        >>> downsample_labels(torch.tensor([[[1, 2, 3, 4]]]), 2)
        tensor([[[1, 3]]])
    """
    if not isinstance(labels, torch.Tensor) or labels.dim() != 3:
        raise ValueError(f"labels: expected a (B, H, W) tensor, got "
                         f"{tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__}")
    factor = check_positive_int(factor, "factor")
    if labels.shape[-1] % factor:
        raise ValueError(f"factor: {factor} does not divide the label width {labels.shape[-1]}")
    return labels if factor == 1 else labels[..., ::factor]


def multi_layer_cross_entropy(
    logits: torch.Tensor | Sequence[torch.Tensor],
    labels: torch.Tensor,
    weight: torch.Tensor | None,
    ignore_index: int = 0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """SqueezeSegV3's multi-layer loss (Eq. 5): weighted cross-entropy summed over heads.

    For head ``i`` with logits ``(B, C, H, W_i)``, the labels are subsampled to width ``W_i``
    with :func:`downsample_labels` and

        ``L_i = sum_{b,h,w} weight[y] * (-log_softmax(logits)[y]) / (B * H * W_i)``

    (Eq. 5 divides the sum over pixels by ``H_i * W_i``; we also average over the batch). Pixels
    labelled ``ignore_index`` contribute 0 but still count in the divisor, as Eq. 5 is written.
    The total is ``sum_i L_i``.

    Args:
        logits: a list of ``(B, C, H, W_i)`` tensors (a single tensor is one head); every
            ``W_i`` must divide the label width ``W``.
        labels: ``(B, H, W)`` int64 labels in ``[0, C)``.
        weight: ``(C,)`` class weights (e.g. :func:`class_weights`), or ``None`` for 1 each.
        ignore_index: label whose pixels do not contribute.

    Returns:
        ``(total, logs)``: the scalar loss with a graph, and ``{"loss": ..., "loss_head0": ...,
        ...}`` as Python floats.

    Example:
        >>> lg = [torch.zeros(1, 3, 2, 4), torch.zeros(1, 3, 2, 2)]
        >>> y = torch.tensor([[[1, 2, 0, 1], [2, 2, 1, 0]]])
        >>> total, logs = multi_layer_cross_entropy(lg, y, torch.ones(3))
        >>> round(logs["loss_head0"], 4), round(logs["loss_head1"], 4)  # 6/8 and 3/4 of log 3
        (0.824, 0.824)
    """
    heads = [logits] if isinstance(logits, torch.Tensor) else list(logits)
    if not heads:
        raise ValueError("logits: expected at least one head")
    if not isinstance(labels, torch.Tensor) or labels.dim() != 3 or labels.is_floating_point():
        raise ValueError(f"labels: expected an integer (B, H, W) tensor, got "
                         f"{labels.dtype if isinstance(labels, torch.Tensor) else type(labels).__name__} "
                         f"{tuple(labels.shape) if isinstance(labels, torch.Tensor) else ''}")
    b, h, w = labels.shape
    c = heads[0].shape[1] if heads[0].dim() == 4 else None
    for i, lg in enumerate(heads):
        if not isinstance(lg, torch.Tensor) or lg.dim() != 4 or not lg.is_floating_point():
            raise ValueError(f"logits: head {i} must be a floating (B, C, H, W_i) tensor, got "
                             f"{tuple(lg.shape) if isinstance(lg, torch.Tensor) else type(lg).__name__}")
        if lg.shape[0] != b or lg.shape[2] != h or lg.shape[1] != c:
            raise ValueError(f"logits: head {i} has shape {tuple(lg.shape)}; expected ({b}, {c}, {h}, W_i) "
                             f"to match labels {tuple(labels.shape)} and head 0")
        if lg.shape[3] < 1 or w % lg.shape[3]:
            raise ValueError(f"logits: head {i} width {lg.shape[3]} does not divide the label width {w}")
    if weight is not None and (not isinstance(weight, torch.Tensor) or weight.shape != (c,)):
        raise ValueError(f"weight: expected a ({c},) tensor, got "
                         f"{tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__}")
    labels = labels.long()
    valid = labels != ignore_index
    if bool(((labels < 0) | (labels >= c))[valid].any()):
        raise ValueError(f"labels: values must lie in [0, {c}) (or equal ignore_index={ignore_index})")

    total = None
    logs: dict[str, float] = {}
    for i, lg in enumerate(heads):
        y = downsample_labels(labels, w // lg.shape[3])
        wt = None if weight is None else weight.to(device=lg.device, dtype=lg.dtype)
        logp = F.log_softmax(lg, dim=1)
        loss = F.nll_loss(logp, y.to(lg.device), weight=wt, ignore_index=ignore_index,
                          reduction="sum") / (b * h * lg.shape[3])
        logs[f"loss_head{i}"] = float(loss.detach())
        total = loss if total is None else total + loss
    logs["loss"] = float(total.detach())
    return total, {"loss": logs.pop("loss"), **logs}
