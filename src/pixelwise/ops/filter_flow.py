"""Per-pixel predicted filters: the primitive of predictive filter flow (Kong 2019) and
kernel-prediction networks. Each output pixel has its own ``k x k`` filter, applied to every
channel of the image around that pixel."""

from __future__ import annotations

import math

import torch

from ..checks import check_choice, check_finite, check_same_device_dtype, check_tensor, pair
from .adaptive_filter import pixel_filter

NORMALIZATIONS = (None, "softmax", "sum")


def apply_pixel_filters(image: torch.Tensor, filters: torch.Tensor, dilation=1, normalize: str | None = None) -> torch.Tensor:
    """Apply one predicted filter per pixel: ``y[b, c, p] = sum_t F[b, t, p] * x[b, c, p + (t - centre) * dilation]``.

    Zero padding keeps the output at the input size.

    Args:
        image: ``(B, C, H, W)``.
        filters: ``(B, k*k, H, W)`` (one filter per pixel, shared by the channels, as a network
            head predicts them) or ``(B, C, k*k, H, W)`` (one per channel); ``k`` odd.
        dilation: spacing of the filter taps.
        normalize: ``None`` (use as given), ``"softmax"`` over the taps (non-negative, sums to 1:
            the filter-flow constraint), or ``"sum"`` (divide by the tap sum).

    Returns:
        ``(B, C, H, W)``.

    Example:
        >>> import torch
        >>> from pixelwise.ops import apply_pixel_filters
        >>> img, logits = torch.rand(1, 3, 24, 24), torch.randn(1, 49, 24, 24)
        >>> apply_pixel_filters(img, logits, normalize="softmax").shape
        torch.Size([1, 3, 24, 24])
    """
    check_tensor(image, "image", 4)
    check_tensor(filters, "filters", (4, 5))
    check_same_device_dtype(image, "image", filters, "filters")
    check_finite(filters, "filters")
    check_choice(normalize, "normalize", NORMALIZATIONS)
    B, C, H, W = image.shape
    f5 = filters.unsqueeze(1) if filters.dim() == 4 else filters
    T = f5.shape[2]
    k = math.isqrt(T)
    if k * k != T or k % 2 == 0:
        raise ValueError(f"filters must have k*k taps with k odd (9, 25, 49, ...), got {T} taps "
                         f"(filters shape {tuple(filters.shape)})")
    if f5.shape[0] != B or f5.shape[1] not in (1, C) or tuple(f5.shape[-2:]) != (H, W):
        raise ValueError(f"filters must be ({B}, {T}, {H}, {W}) or ({B}, {C}, {T}, {H}, {W}) for image "
                         f"{tuple(image.shape)}, got {tuple(filters.shape)}")
    d = pair(dilation, "dilation", min=1)
    if normalize == "softmax":
        f5 = torch.softmax(f5, dim=2)
    elif normalize == "sum":
        total = f5.sum(2, keepdim=True)
        if bool((total == 0).any()):
            raise ValueError("filters: normalize='sum' needs filters whose taps do not sum to 0")
        f5 = f5 / total
    half = ((k - 1) // 2 * d[0], (k - 1) // 2 * d[1])
    return pixel_filter(image, f5, (k, k), (1, 1), (half[0], half[0], half[1], half[1]), d)
