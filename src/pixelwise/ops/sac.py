"""Spatially-adaptive convolution (SAC, Xu et al. 2020, Eqs. 3-4).

``Y[o, p] = sum_{c, t} W[o, c, t] * A[c, p, t] * X[c, p + t]`` with the attention ``A`` collapsed
along some dimensions. A variant is named by the dimensions ``A`` keeps: ``S`` (spatial),
``I`` (input channel), ``K`` (kernel tap).

* ``I``, ``S``, ``IS``: no tap dimension -- the input is multiplied by ``A`` and then convolved
  (the paper's efficient form). ``I`` is squeeze-and-excitation, ``S`` spatial attention,
  ``IS`` CAM (SqueezeSegV2); CBAM is ``I`` followed by ``S``.
* ``SK``, ``ISK``: per-tap attention at each output pixel -- the adaptive-filter engine.
  PAC is ``SK`` with ``A = pac_kernel(guide)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..checks import check_choice, check_kernel_geometry, check_same_device_dtype, check_tensor, conv_out_size
from .adaptive_filter import adaptive_conv
from .pac import _check_bias, _check_input_weight

VARIANTS = ("I", "S", "IS", "SK", "ISK")


def sac_attention_shape(variant: str, batch: int, channels: int, in_size, out_size, taps: int):
    """The attention shape a variant expects (``I``/``S``/``IS`` at the input resolution,
    ``SK``/``ISK`` at the output resolution with one value per tap)."""
    shapes = {
        "I": (batch, channels, 1, 1),
        "S": (batch, 1, *in_size),
        "IS": (batch, channels, *in_size),
        "SK": (batch, 1, taps, *out_size),
        "ISK": (batch, channels, taps, *out_size),
    }
    return shapes[check_choice(variant, "variant", VARIANTS)]


def sac_conv2d(
    input: torch.Tensor,
    attention: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
    variant: str = "ISK",
) -> torch.Tensor:
    """Spatially-adaptive convolution with attention of the given variant.

    Args:
        input: ``(B, C, H, W)``.
        attention: ``I``: ``(B, C, 1, 1)``; ``S``: ``(B, 1, H, W)``; ``IS``: ``(B, C, H, W)``;
            ``SK``: ``(B, 1, kh*kw, Ho, Wo)``; ``ISK``: ``(B, C, kh*kw, Ho, Wo)``.
        weight, bias, stride, padding, dilation, groups: as ``F.conv2d``.
        variant: one of ``"I", "S", "IS", "SK", "ISK"``.

    Returns:
        ``(B, Cout, Ho, Wo)``; with ``attention == 1`` exactly ``F.conv2d``.

    Example:
        >>> import torch
        >>> from pixelwise.ops import sac_conv2d
        >>> x, w = torch.randn(1, 8, 16, 32), torch.randn(8, 8, 3, 3)
        >>> a = torch.rand(1, 8, 9, 16, 32)
        >>> sac_conv2d(x, a, w, padding=1, variant="ISK").shape
        torch.Size([1, 8, 16, 32])
    """
    _check_input_weight(input, weight, groups, transposed=False)
    check_tensor(attention, "attention", (4, 5))
    check_same_device_dtype(input, "input", attention, "attention")
    k, s, p, d = check_kernel_geometry(tuple(weight.shape[-2:]), stride, padding, dilation)
    H, W = input.shape[-2:]
    out_size = tuple(conv_out_size((H, W)[a], k[a], s[a], p[a], d[a]) for a in range(2))
    want = sac_attention_shape(variant, input.shape[0], input.shape[1], (H, W), out_size, k[0] * k[1])
    if tuple(attention.shape) != want:
        raise ValueError(f"attention for variant {variant!r} must have shape {want}, got {tuple(attention.shape)}")
    _check_bias(bias, input, weight.shape[0])
    if variant in ("I", "S", "IS"):
        return F.conv2d(input * attention, weight, bias, s, p, d, groups)
    y = adaptive_conv(input, attention, weight, s, (p[0], p[0], p[1], p[1]), d, groups)
    return y if bias is None else y + bias.view(1, -1, 1, 1)
