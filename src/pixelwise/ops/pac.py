"""Pixel-adaptive convolution (PAC), its transposed form (PAC^T) and PAC pooling.

Index convention (matches ``F.conv2d``, which is a cross-correlation): tap ``t = (i, j)`` of output
pixel ``p`` reads input ``p * stride - padding + t * dilation`` and is weighted by
``weight[..., i, j] * K[b, :, t, p]`` -- Eq. 3 of Su et al. with ``W[p_i - p_j]`` written as a
correlation. With a constant guide every op here equals its standard PyTorch counterpart.
"""

from __future__ import annotations

import math

import torch

from ..checks import (
    OutOfRangeError,
    check_int,
    check_kernel_geometry,
    check_positive_int,
    check_same_device_dtype,
    check_tensor,
    conv_out_size,
    conv_transpose_out_size,
    pair,
)
from .adaptive_filter import adaptive_conv, pixel_filter
from .pac_kernel import pac_kernel


def _resolve_kernel(x, guide, kernel, *, out_size, kernel_size, stride, padding, dilation,
                    kernel_options, transposed=False, output_padding=0, channels_ok=None):
    """Return the ``(B, 1|C, T, Ho, Wo)`` kernel: computed from ``guide`` or checked if given."""
    if (guide is None) == (kernel is None):
        raise ValueError("pass exactly one of guide (adapting features) or kernel (precomputed), "
                         f"got guide={'a tensor' if guide is not None else None}, "
                         f"kernel={'a tensor' if kernel is not None else None}")
    B = x.shape[0]
    k = pair(kernel_size, "kernel_size")
    T = k[0] * k[1]
    if guide is not None:
        check_tensor(guide, "guide", 4)
        check_same_device_dtype(x, "input", guide, "guide")
        want_hw = out_size if transposed else tuple(x.shape[-2:])
        if guide.shape[0] != B or tuple(guide.shape[-2:]) != tuple(want_hw):
            where = "the output" if transposed else "the input"
            raise ValueError(f"guide must have batch {B} and the spatial size of {where} {tuple(want_hw)}, "
                             f"got shape {tuple(guide.shape)}")
        kernel = pac_kernel(guide, kernel_size, stride, padding, dilation, transposed=transposed,
                            output_padding=output_padding, **kernel_options)
    else:
        check_tensor(kernel, "kernel", 5)
        check_same_device_dtype(x, "input", kernel, "kernel")
        ok_c = channels_ok if channels_ok is not None else (1,)
        if (kernel.shape[0] != B or kernel.shape[1] not in ok_c or kernel.shape[2] != T
                or tuple(kernel.shape[-2:]) != tuple(out_size)):
            want = f"({B}, {' or '.join(map(str, ok_c))}, {T}, {out_size[0]}, {out_size[1]})"
            raise ValueError(f"kernel must have shape {want}, got {tuple(kernel.shape)}")
    if kernel.shape[1] not in (channels_ok or (1,)):
        raise ValueError(f"a channel-wise kernel needs one channel per input channel "
                         f"({x.shape[1]}), got {kernel.shape[1]} guide channels")
    return kernel


def _check_input_weight(x, weight, groups, *, transposed):
    check_tensor(x, "input", 4)
    check_tensor(weight, "weight", 4)
    check_same_device_dtype(x, "input", weight, "weight")
    check_positive_int(groups, "groups")
    if x.shape[1] % groups:
        raise OutOfRangeError(f"groups must be a positive divisor of the input channels ({x.shape[1]}), got {groups!r}")
    cin_w = weight.shape[0] if transposed else weight.shape[1] * groups
    if cin_w != x.shape[1]:
        which = "weight.shape[0]" if transposed else "weight.shape[1] * groups"
        raise ValueError(f"{which} must equal the input channels {x.shape[1]}, got weight of shape "
                         f"{tuple(weight.shape)} with groups={groups}")


def _check_bias(bias, x, cout):
    if bias is None:
        return
    check_tensor(bias, "bias", 1)
    check_same_device_dtype(x, "input", bias, "bias")
    if bias.shape[0] != cout:
        raise ValueError(f"bias must have shape ({cout},), got {tuple(bias.shape)}")


def pac_conv2d(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
    *,
    guide: torch.Tensor | None = None,
    kernel: torch.Tensor | None = None,
    shared_filters: bool = False,
    **kernel_options,
) -> torch.Tensor:
    """Pixel-adaptive convolution: ``y_i = sum_j K(f_i, f_j) W[j - i] x_j + b``.

    Same arguments and output size as ``F.conv2d`` plus the adapting features (``guide``) or a
    precomputed kernel from :func:`pac_kernel`.

    Args:
        input: ``(B, C, H, W)``.
        weight: ``(Cout, C // groups, kh, kw)``; with ``shared_filters=True``, ``(1, 1, kh, kw)``:
            one filter applied to every channel on its own (``Cout = C``).
        bias: ``(Cout,)`` or None.
        guide: ``(B, Cf, H, W)`` adapting features ``f``.
        kernel: ``(B, 1 or C, kh*kw, Ho, Wo)`` precomputed adapting kernel (instead of ``guide``).
        **kernel_options: passed to :func:`pac_kernel` (``kernel_type``, ``normalize``,
            ``channel_wise``, ``inverse_alpha``, ``inverse_lambda``, ``inverse_eps``).

    Returns:
        ``(B, Cout, Ho, Wo)`` with ``Ho, Wo`` as for ``F.conv2d``.

    Example:
        >>> import torch
        >>> from pixelwise.ops import pac_conv2d
        >>> x, f = torch.randn(1, 8, 32, 32), torch.randn(1, 4, 32, 32)
        >>> w = torch.randn(16, 8, 5, 5)
        >>> pac_conv2d(x, w, guide=f, padding=2).shape
        torch.Size([1, 16, 32, 32])
    """
    if shared_filters:
        check_tensor(input, "input", 4)
        check_tensor(weight, "weight", 4)
        check_same_device_dtype(input, "input", weight, "weight")
        if weight.shape[:2] != (1, 1):
            raise ValueError(f"with shared_filters=True weight must be (1, 1, kh, kw), got {tuple(weight.shape)}")
        if check_int(groups, "groups") != 1:
            raise OutOfRangeError(f"shared_filters=True filters each channel on its own; groups must be 1, "
                                  f"got {groups}")
    else:
        _check_input_weight(input, weight, groups, transposed=False)
    k, s, p, d = check_kernel_geometry(tuple(weight.shape[-2:]), stride, padding, dilation)
    H, W = input.shape[-2:]
    out_size = tuple(conv_out_size((H, W)[a], k[a], s[a], p[a], d[a]) for a in range(2))
    if min(out_size) < 1:
        raise ValueError(f"input of spatial size {(H, W)} is smaller than the window "
                         f"(kernel_size={k}, dilation={d}, padding={p})")
    cout = input.shape[1] if shared_filters else weight.shape[0]
    _check_bias(bias, input, cout)
    K = _resolve_kernel(input, guide, kernel, out_size=out_size, kernel_size=k, stride=s, padding=p,
                        dilation=d, kernel_options=kernel_options, channels_ok=(1, input.shape[1]))
    pad4 = (p[0], p[0], p[1], p[1])
    if shared_filters:
        y = pixel_filter(input, K * weight.reshape(1, 1, -1, 1, 1), k, s, pad4, d)
    else:
        y = adaptive_conv(input, K, weight, s, pad4, d, groups)
    return y if bias is None else y + bias.view(1, -1, 1, 1)


def _transposed_as_conv_weight(weight, groups):
    """ConvTranspose2d weight ``(Cin, Cout/g, kh, kw)`` -> the equivalent correlation weight on
    the zero-inserted input: ``(Cout, Cin/g, kh, kw)``, in/out swapped per group and flipped."""
    cin, coutg, kh, kw = weight.shape
    w = weight.reshape(groups, cin // groups, coutg, kh, kw).transpose(1, 2)
    return w.reshape(groups * coutg, cin // groups, kh, kw).flip(-2, -1)


def _phase_taps(phase, k, s, p, d, in_len, out_len):
    """Taps of the zero-inserted correlation that meet real samples for outputs ``phase::s``.

    Returns ``(first_tap, tap_step, n_taps, input_dilation, pad_before, pad_after, n_out)``
    such that these outputs are a stride-1 correlation of the *original* input with the taps
    ``first_tap + l * tap_step`` at dilation ``input_dilation`` and the given zero padding.
    """
    big_p = d * (k - 1) - p
    n_out = len(range(phase, out_len, s))
    taps = [t for t in range(k) if (phase + t * d - big_p) % s == 0]
    if not taps or n_out == 0:
        return None
    step = s // math.gcd(s, d)
    first = taps[0]
    n_taps = len(taps)
    e0 = (phase + first * d - big_p) // s
    in_dil = step * d // s
    pad_before = -e0
    pad_after = n_out - 1 + e0 + (n_taps - 1) * in_dil - (in_len - 1)
    return first, step, n_taps, in_dil, pad_before, pad_after, n_out


def pac_conv_transpose2d(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride=1,
    padding=0,
    output_padding=0,
    groups: int = 1,
    dilation=1,
    *,
    guide: torch.Tensor | None = None,
    kernel: torch.Tensor | None = None,
    shared_filters: bool = False,
    **kernel_options,
) -> torch.Tensor:
    """Pixel-adaptive transposed convolution (PAC^T): learnable, guided upsampling.

    Same arguments and output size as ``F.conv_transpose2d``; the guide (or kernel) is at the
    *output* resolution. It is PAC on the zero-inserted input with the flipped, in/out-swapped
    weight; ``K(f_o, f_j)`` compares the output pixel with the output position of each tap.
    It is computed without inserting zeros: the outputs are split into ``stride^2`` phases, each
    of which is an ordinary (smaller) adaptive correlation of the original input.

    Args:
        input: ``(B, Cin, H, W)``.
        weight: ``(Cin, Cout // groups, kh, kw)`` as in ``nn.ConvTranspose2d``; with
            ``shared_filters=True``, ``(1, 1, kh, kw)`` applied to each channel on its own.
        guide: ``(B, Cf, Ho, Wo)`` adapting features at the output resolution.
        kernel: ``(B, 1 or Cin, kh*kw, Ho, Wo)``, e.g. ``pac_kernel(guide, ..., transposed=True)``.

    Returns:
        ``(B, Cout, Ho, Wo)``, ``Ho = (H - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1``.

    Example:
        >>> import torch
        >>> from pixelwise.ops import pac_conv_transpose2d
        >>> x, f = torch.randn(1, 8, 16, 16), torch.randn(1, 4, 32, 32)
        >>> w = torch.randn(8, 4, 5, 5)
        >>> pac_conv_transpose2d(x, w, guide=f, stride=2, padding=2, output_padding=1).shape
        torch.Size([1, 4, 32, 32])
    """
    if shared_filters:
        check_tensor(input, "input", 4)
        check_tensor(weight, "weight", 4)
        check_same_device_dtype(input, "input", weight, "weight")
        if check_int(groups, "groups") != 1:
            raise OutOfRangeError(f"shared_filters=True filters each channel on its own; groups must be 1, "
                                  f"got {groups}")
        if weight.shape[:2] != (1, 1):
            raise ValueError(f"with shared_filters=True weight must be (1, 1, kh, kw), got {tuple(weight.shape)}")
    else:
        _check_input_weight(input, weight, groups, transposed=True)
    k, s, p, d = check_kernel_geometry(tuple(weight.shape[-2:]), stride, padding, dilation)
    op = pair(output_padding, "output_padding")
    for a in range(2):
        if not 0 <= op[a] < max(s[a], d[a]):
            raise OutOfRangeError(f"output_padding must be >= 0 and smaller than stride or dilation, got "
                             f"output_padding={output_padding!r}, stride={stride!r}, dilation={dilation!r}")
    H, W = input.shape[-2:]
    out_size = tuple(conv_transpose_out_size((H, W)[a], k[a], s[a], p[a], d[a], op[a]) for a in range(2))
    cout = input.shape[1] if shared_filters else weight.shape[1] * groups
    _check_bias(bias, input, cout)
    K = _resolve_kernel(input, guide, kernel, out_size=out_size, kernel_size=k, stride=s, padding=p,
                        dilation=d, kernel_options=kernel_options, transposed=True, output_padding=op,
                        channels_ok=(1, input.shape[1]))
    B, ca = K.shape[:2]
    K6 = K.view(B, ca, k[0], k[1], *out_size)
    w_conv = weight.flip(-2, -1) if shared_filters else _transposed_as_conv_weight(weight, groups)
    y = input.new_zeros(B, cout, *out_size)
    for ph in range(s[0]):
        rows = _phase_taps(ph, k[0], s[0], p[0], d[0], H, out_size[0])
        for pw in range(s[1]):
            cols = _phase_taps(pw, k[1], s[1], p[1], d[1], W, out_size[1])
            if rows is None or cols is None:
                continue  # no tap of this phase meets an input sample: output stays 0 (+ bias)
            th, sth, nh, dh, pt, pb, mh = rows
            tw, stw, nw, dw, pl, pr, mw = cols
            taps_h = slice(th, th + (nh - 1) * sth + 1, sth)
            taps_w = slice(tw, tw + (nw - 1) * stw + 1, stw)
            k_phase = K6[:, :, taps_h, taps_w, ph :: s[0], pw :: s[1]].reshape(B, ca, nh * nw, mh, mw)
            w_phase = w_conv[:, :, taps_h, taps_w]
            pad4 = (pt, pb, pl, pr)
            if shared_filters:
                part = pixel_filter(input, k_phase * w_phase.reshape(1, 1, -1, 1, 1), (nh, nw), (1, 1), pad4, (dh, dw))
            else:
                part = adaptive_conv(input, k_phase, w_phase, (1, 1), pad4, (dh, dw), groups)
            y[:, :, ph :: s[0], pw :: s[1]] = part
    return y if bias is None else y + bias.view(1, -1, 1, 1)


def pac_pool2d(
    input: torch.Tensor,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    *,
    guide: torch.Tensor | None = None,
    kernel: torch.Tensor | None = None,
    **kernel_options,
) -> torch.Tensor:
    """Pixel-adaptive pooling: ``y_i = (1 / k^2) sum_j K(f_i, f_j) x_j`` per channel.

    Arguments as ``F.avg_pool2d`` (``stride`` defaults to ``kernel_size``). With a constant guide it
    equals ``F.avg_pool2d(count_include_pad=True)``; with ``normalize=True`` the weights are
    ``K / sum K`` over the valid taps (a guided weighted average; constant guide ->
    ``count_include_pad=False``). With ``kernel_type="inverse"`` it is detail-preserving pooling.

    Args:
        input: ``(B, C, H, W)``.
        guide: ``(B, Cf, H, W)``; or ``kernel``: ``(B, 1 or C, kh*kw, Ho, Wo)``.

    Example:
        >>> import torch
        >>> from pixelwise.ops import pac_pool2d
        >>> x = torch.randn(1, 3, 32, 32)
        >>> pac_pool2d(x, 3, guide=x, kernel_type="inverse", padding=1).shape
        torch.Size([1, 3, 11, 11])
    """
    check_tensor(input, "input", 4)
    stride = kernel_size if stride is None else stride
    k, s, p, d = check_kernel_geometry(kernel_size, stride, padding, dilation)
    H, W = input.shape[-2:]
    out_size = tuple(conv_out_size((H, W)[a], k[a], s[a], p[a], d[a]) for a in range(2))
    if min(out_size) < 1:
        raise ValueError(f"input of spatial size {(H, W)} is smaller than the pooling window {k}")
    K = _resolve_kernel(input, guide, kernel, out_size=out_size, kernel_size=k, stride=s, padding=p,
                        dilation=d, kernel_options=kernel_options, channels_ok=(1, input.shape[1]))
    if not kernel_options.get("normalize", False):
        K = K / (k[0] * k[1])
    return pixel_filter(input, K, k, s, (p[0], p[0], p[1], p[1]), d)
