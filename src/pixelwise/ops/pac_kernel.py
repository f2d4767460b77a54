"""Adapting kernels ``K(f_i, f_j)`` of pixel-adaptive convolution (Su et al. 2019, Eq. 3).

Layout of every kernel tensor in pixelwise: ``(B, 1 or C, kh*kw, Ho, Wo)`` -- per output pixel,
one weight per window tap (row-major taps), shared over channels or one per channel.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from ..checks import (
    check_choice,
    check_finite,
    check_kernel_geometry,
    check_tensor,
    conv_out_size,
    conv_transpose_out_size,
    pair,
)
from .adaptive_filter import _pad, _unpad_grad, window_view

KERNEL_TYPES = ("gaussian", "inverse")


class _WindowSqDist(torch.autograd.Function):
    """``D[b, c|0, t, p] = sum_c (f[b, c, neighbour_t(p)] - centre[b, c, p])^2``.

    ``centre`` defaults to the window's own centre tap; joint upsampling passes the
    high-resolution features instead. Hand-written backward so that the ``C * k^2 * H * W``
    differences are recomputed tap by tap instead of being kept alive by autograd.
    """

    @staticmethod
    def forward(ctx, guide, centre, ksize, stride, padding, dilation, channel_wise, out_size):
        kh, kw = ksize
        win = window_view(_pad(guide, padding), ksize, stride, dilation, out_size)  # (B, C, kh, kw, Ho, Wo)
        c = win[:, :, kh // 2, kw // 2] if centre is None else centre
        B, C = guide.shape[:2]
        D = guide.new_empty(B, C if channel_wise else 1, kh * kw, *out_size)
        for t in range(kh * kw):
            diff = win[:, :, t // kw, t % kw] - c
            diff.mul_(diff)
            D[:, :, t] = diff if channel_wise else diff.sum(1, keepdim=True)
        ctx.save_for_backward(guide, centre)
        ctx.geometry = (ksize, stride, padding, dilation, out_size)
        return D

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_d):
        guide, centre = ctx.saved_tensors
        ksize, stride, padding, dilation, out_size = ctx.geometry
        kh, kw = ksize
        fp = _pad(guide, padding)
        win = window_view(fp, ksize, stride, dilation, out_size)
        c = win[:, :, kh // 2, kw // 2] if centre is None else centre
        g_fp = torch.zeros_like(fp)
        g_win = window_view(g_fp, ksize, stride, dilation, out_size)
        g_c = torch.zeros_like(c)
        for t in range(kh * kw):
            coef = (win[:, :, t // kw, t % kw] - c).mul_(grad_d[:, :, t]).mul_(2.0)
            g_win[:, :, t // kw, t % kw].add_(coef)
            g_c.sub_(coef)
        if centre is None:
            g_win[:, :, kh // 2, kw // 2].add_(g_c)
            g_c = None
        return _unpad_grad(g_fp, padding, guide.shape[-2:]), g_c, None, None, None, None, None, None


def window_sq_dist(guide, kernel_size, stride, padding, dilation, out_size, centre=None, channel_wise=False):
    """Squared feature distance between each window tap of ``guide`` (zero-padded by
    ``padding = (top, bottom, left, right)``) and the window centre (or ``centre``,
    ``(B, C, Ho, Wo)``). Returns ``(B, 1 or C, kh*kw, Ho, Wo)``."""
    return _WindowSqDist.apply(guide, centre, tuple(kernel_size), tuple(stride), tuple(padding),
                               tuple(dilation), channel_wise, tuple(out_size))


def _tap_mask_1d(out_len, in_len, k, s, p, d, transposed, device, dtype):
    """``mask[t, o]``: does tap ``t`` of output ``o`` land on a real input sample?"""
    o = torch.arange(out_len, device=device).view(1, -1)
    t = torch.arange(k, device=device).view(-1, 1)
    if not transposed:
        pos = o * s - p + t * d
        ok = (pos >= 0) & (pos < in_len)
    else:
        # PAC^T as a stride-1 conv on the zero-inserted input: tap t of output o reads
        # position o + t*d - (d*(k-1) - p) there, a real sample iff it is a multiple of s.
        u = o + t * d - (d * (k - 1) - p)
        ok = (u >= 0) & (u % s == 0) & (u // s < in_len)
    return ok.to(dtype)


def tap_validity_mask(in_size, out_size, kernel_size, stride, padding, dilation, transposed=False,
                      output_padding=0, device=None, dtype=torch.float32):
    """``(1, 1, kh*kw, Ho, Wo)`` mask: 1 where a window tap falls on an input sample, 0 on padding
    (and, for ``transposed=True``, 0 on the zeros a transposed convolution inserts)."""
    k, s, p, d = (pair(v, n) for v, n in ((kernel_size, "kernel_size"), (stride, "stride"),
                                            (padding, "padding"), (dilation, "dilation")))
    mh = _tap_mask_1d(out_size[0], in_size[0], k[0], s[0], p[0], d[0], transposed, device, dtype)
    mw = _tap_mask_1d(out_size[1], in_size[1], k[1], s[1], p[1], d[1], transposed, device, dtype)
    return (mh[:, None, :, None] * mw[None, :, None, :]).reshape(1, 1, k[0] * k[1], *out_size)


def pac_kernel(
    guide: torch.Tensor,
    kernel_size=3,
    stride=1,
    padding=0,
    dilation=1,
    kernel_type: str = "gaussian",
    normalize: bool = False,
    channel_wise: bool = False,
    inverse_alpha=0.0,
    inverse_lambda=-0.5,
    inverse_eps: float = 1e-2,
    transposed: bool = False,
    output_padding=0,
) -> torch.Tensor:
    """Compute the adapting kernel ``K(f_i, f_j)`` over every window of ``guide``.

    ``f_i`` is the guidance at the window centre (the output pixel), ``f_j`` at each tap.

    * ``"gaussian"``: ``K = exp(-0.5 * ||f_i - f_j||^2)``; the bandwidth is 1, so put the scale into
      ``guide`` (e.g. ``rgb / sigma``).
    * ``"inverse"`` (detail-preserving pooling): ``K = alpha + (||f_i - f_j||^2 + eps^2) ** lambda``;
      ``alpha`` and ``lambda`` may be tensors with ``requires_grad`` (learnable).

    Taps that fall on padding get ``K = 0``. With ``normalize=True`` the kernel of every output
    pixel is divided by its sum over those valid taps (bilateral filtering, JBU).

    Args:
        guide: ``(B, Cf, H, W)`` adapting features. For ``transposed=True`` it is at the
            *output* resolution of the transposed convolution.
        kernel_size, stride, padding, dilation: the window geometry of the convolution the
            kernel is for (for ``transposed=True``: of the transposed convolution).
        channel_wise: one kernel per guide channel (no sum over channels) instead of one shared.
        transposed, output_padding: build the kernel for :func:`pac_conv_transpose2d`; windows are
            centred on every output pixel and only taps that meet a real input sample (not an
            inserted zero) count, also in the normalisation.

    Returns:
        ``(B, 1 or Cf, kh*kw, Ho, Wo)``.

    Example:
        >>> import torch
        >>> from pixelwise.ops import pac_kernel
        >>> guide = torch.rand(2, 3, 16, 16) / 0.1
        >>> pac_kernel(guide, kernel_size=5, padding=2).shape
        torch.Size([2, 1, 25, 16, 16])
    """
    check_tensor(guide, "guide", 4)
    check_finite(guide, "guide")
    check_choice(kernel_type, "kernel_type", KERNEL_TYPES)
    k, s, p, d = check_kernel_geometry(kernel_size, stride, padding, dilation)
    H, W = guide.shape[-2:]
    if transposed:
        op = pair(output_padding, "output_padding")
        in_size = tuple((n - 1 - op[a] + 2 * p[a] - d[a] * (k[a] - 1)) // s[a] + 1 for a, n in enumerate((H, W)))
        expect = tuple(conv_transpose_out_size(in_size[a], k[a], s[a], p[a], d[a], op[a]) for a in range(2))
        if any(n < 1 for n in in_size) or expect != (H, W):
            raise ValueError(
                f"guide of spatial size {(H, W)} is not the output size of a transposed convolution with "
                f"kernel_size={kernel_size!r}, stride={stride!r}, padding={padding!r}, "
                f"output_padding={output_padding!r}, dilation={dilation!r}"
            )
        out_size = (H, W)
        win_stride, win_pad = (1, 1), tuple(d[a] * (k[a] - 1) // 2 for a in range(2))
    else:
        out_size = tuple(conv_out_size((H, W)[a], k[a], s[a], p[a], d[a]) for a in range(2))
        if min(out_size) < 1:
            raise ValueError(f"guide of spatial size {(H, W)} is smaller than the window "
                             f"(kernel_size={kernel_size!r}, dilation={dilation!r}, padding={padding!r})")
        in_size = (H, W)
        win_stride, win_pad = s, p
    # Tap t of output o reads guide[o * stride - pad + t * dilation]; the centre tap is the output
    # pixel's own feature f_i (padding never exceeds the half-extent, so it is inside the image).
    pad4 = (win_pad[0], win_pad[0], win_pad[1], win_pad[1])
    dist = window_sq_dist(guide, k, win_stride, pad4, d, out_size, channel_wise=channel_wise)
    if kernel_type == "gaussian":
        K = torch.exp(-0.5 * dist)
    else:
        K = inverse_alpha + (dist + inverse_eps**2) ** inverse_lambda
    mask = tap_validity_mask(in_size, out_size, k, s, p, d, transposed, output_padding if transposed else 0,
                             device=guide.device, dtype=guide.dtype)
    K = K * mask
    if normalize:
        total = K.sum(2, keepdim=True)
        K = torch.where(total > 0, K / total.clamp_min(torch.finfo(K.dtype).tiny), torch.zeros_like(K))
    return K
