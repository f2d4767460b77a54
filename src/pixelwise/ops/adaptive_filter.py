"""The adaptive-filter engine: the one primitive every content-adaptive layer is built on.

    y[b, o, p] = sum_{c, t} W[o, c, t] * A[b, c|0, t, p] * x[b, c, p * stride + t * dilation]

``x`` is zero-padded first; ``t`` runs over the taps of a ``kh x kw`` window in row-major order;
``A`` is the per-pixel, per-tap modulation (PAC kernel, SAC attention, ...), either shared over
the input channels (``A.shape[1] == 1``) or one per input channel. Two forms:

* :func:`adaptive_conv` mixes channels with a spatially shared weight ``W`` (PAC, SAC-SK/ISK).
* :func:`pixel_filter` filters each channel on its own with ``A`` alone (``W = 1``): bilateral
  filters, PAC pooling, predicted per-pixel filters (filter flow).

Why hand-written autograd: the obvious implementation (``F.unfold`` then multiply then matmul)
materialises ``B * C * k^2 * H * W`` numbers and autograd keeps them for backward -- for a 32-channel
5x5 layer on 256x256 that is 210 MB per layer. Here the forward pass builds the modulated columns
a few rows at a time in one reused buffer (one fused ``as_strided`` multiply, then a GEMM), and the
backward pass recomputes them, so only ``x``, ``A`` and ``W`` are saved.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

# Columns are built in chunks of about this many elements: small enough to stay in the
# L2 cache of a CPU core, large enough that the GEMM runs at full speed.
CHUNK_ELEMENTS = 1 << 21


def window_view(x_pad: torch.Tensor, kernel_size, stride, dilation, out_size, row0: int = 0, rows=None):
    """All windows of a padded ``(..., C, Hp, Wp)`` tensor as a view, no copy.

    Returns shape ``(..., C, kh, kw, rows, Wo)``: element ``[..., c, i, j, r, q]`` is
    ``x_pad[..., c, (row0 + r) * sh + i * dh, q * sw + j * dw]``.
    """
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    ho, wo = out_size
    rows = ho - row0 if rows is None else rows
    *lead, sc, srow, scol = x_pad.stride()
    size = (*x_pad.shape[:-2], kh, kw, rows, wo)
    strides = (*lead, sc, dh * srow, dw * scol, sh * srow, sw * scol)
    return x_pad.as_strided(size, strides, x_pad.storage_offset() + row0 * sh * srow)


def _pad(x: torch.Tensor, padding) -> torch.Tensor:
    """Zero-pad ``(top, bottom, left, right)``; negative entries crop (used by PAC^T phases)."""
    top, bottom, left, right = padding
    if top == bottom == left == right == 0:
        return x.contiguous()
    return F.pad(x, (left, right, top, bottom)).contiguous()


def _unpad_grad(g_pad: torch.Tensor, padding, in_size) -> torch.Tensor:
    """Adjoint of :func:`_pad`: crop what was padded, zero-fill what was cropped."""
    top, bottom, left, right = padding
    return F.pad(g_pad, (-left, -right, -top, -bottom))[..., : in_size[0], : in_size[1]]


def _out_size(in_size, kernel_size, stride, dilation, padding):
    top, bottom, left, right = padding
    ho = (in_size[0] + top + bottom - dilation[0] * (kernel_size[0] - 1) - 1) // stride[0] + 1
    wo = (in_size[1] + left + right - dilation[1] * (kernel_size[1] - 1) - 1) // stride[1] + 1
    return ho, wo


def _rows_per_chunk(elements_per_row: int) -> int:
    return max(1, CHUNK_ELEMENTS // max(1, elements_per_row))


def _windows_nhwc(xp_b, ksize, stride, dilation, wo: int, row0: int, rows: int, groups: int):
    """Windows of one padded channels-last image ``(Hp, Wp, C)`` as a view
    ``(rows, Wo, G, kh, kw, C // G)``: the pixel-major column layout (no copy)."""
    (kh, kw), (sh, sw), (dh, dw) = ksize, stride, dilation
    hp, wp, c = xp_b.shape
    cg = c // groups
    size = (rows, wo, groups, kh, kw, cg)
    strides = (sh * wp * c, sw * c, cg, dh * wp * c, dw * c, 1)
    return xp_b.as_strided(size, strides, xp_b.storage_offset() + row0 * sh * wp * c)


def _tap_modulation(A_b, ksize, r0: int, n: int, groups: int):
    """``A[b]`` rows ``r0 .. r0+n`` as a view broadcastable against :func:`_windows_nhwc`."""
    kh, kw = ksize
    ca, _, _, wo = A_b.shape
    a = A_b[:, :, r0 : r0 + n]  # (Ca, T, n, Wo)
    if ca == 1:
        return a[0].permute(1, 2, 0).reshape(n, wo, 1, kh, kw, 1)
    return a.reshape(groups, ca // groups, kh, kw, n, wo).permute(4, 5, 0, 2, 3, 1)


class _AdaptiveConv(torch.autograd.Function):
    # Layout: columns are built pixel-major, ``(pixels, G * kh * kw * Cg)``, from a channels-last
    # copy of the input, so that the channel mixing is a 1x1 convolution on a channels-last
    # tensor -- which oneDNN runs at nearly the speed of the dense convolution itself (a plain
    # sgemm on the channel-major layout ran 2-3x slower on the machines we measured).
    @staticmethod
    def forward(ctx, x, A, weight, stride, padding, dilation, groups):
        B, C, H, W = x.shape
        cout, cg, kh, kw = weight.shape
        ksize = (kh, kw)
        T = kh * kw
        xp = _pad(x, padding).permute(0, 2, 3, 1).contiguous()  # (B, Hp, Wp, C)
        ho, wo = _out_size((H, W), ksize, stride, dilation, padding)
        w1x1 = weight.permute(0, 2, 3, 1).reshape(cout, T * cg, 1, 1)
        out = x.new_empty(B, cout, ho, wo)
        rows = _rows_per_chunk(C * T * wo)
        buf = x.new_empty(min(rows, ho) * wo * C * T)
        for b in range(B):
            for r0 in range(0, ho, rows):
                n = min(rows, ho - r0)
                cols = _modulated_columns(xp[b], A[b], buf, ksize, stride, dilation, wo, r0, n, groups)
                res = F.conv2d(cols, w1x1, groups=groups)
                out[b, :, r0 : r0 + n].copy_(res[0])
        ctx.save_for_backward(x, A, weight)
        ctx.geometry = (stride, padding, dilation, groups)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        x, A, weight = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.geometry
        need_x, need_a, need_w = ctx.needs_input_grad[:3]
        B, C, H, W = x.shape
        cout, cg, kh, kw = weight.shape
        ksize = (kh, kw)
        T = kh * kw
        G = groups
        xp = _pad(x, padding).permute(0, 2, 3, 1).contiguous()
        ho, wo = grad_out.shape[-2:]
        wmat = weight.permute(0, 2, 3, 1).reshape(G, cout // G, T * cg)
        g_w = torch.zeros_like(wmat) if need_w else None
        g_xp = torch.zeros_like(xp) if need_x else None
        g_a = torch.empty_like(A) if need_a else None
        rows = _rows_per_chunk(C * T * wo)
        chunk = min(rows, ho) * wo * C * T
        buf, g_buf = x.new_empty(chunk), x.new_empty(chunk)  # reused: fresh multi-MB tensors per chunk cost page faults
        for b in range(B):
            for r0 in range(0, ho, rows):
                n = min(rows, ho - r0)
                # (G, pixels, Cout/G): the output gradient, pixel-major per group
                g = grad_out[b, :, r0 : r0 + n].reshape(G, cout // G, n * wo).transpose(1, 2)
                if need_w:
                    cols = _modulated_columns(xp[b], A[b], buf, ksize, stride, dilation, wo, r0, n, G)
                    cols = cols.permute(0, 2, 3, 1).reshape(n * wo, G, T * cg).transpose(0, 1)
                    g_w.baddbmm_(g.transpose(1, 2), cols)
                if need_x or need_a:
                    g_cols = g_buf[: n * wo * C * T].view(G, n * wo, T * cg)
                    torch.bmm(g, wmat, out=g_cols)
                    g_cols = g_cols.view(G, n, wo, kh, kw, cg).permute(1, 2, 0, 3, 4, 5)
                    a = _tap_modulation(A[b], ksize, r0, n, G)
                    if need_a:
                        win = _windows_nhwc(xp[b], ksize, stride, dilation, wo, r0, n, G)
                        prod = buf[: win.numel()].view(n, wo, G, kh, kw, cg)
                        torch.mul(g_cols, win, out=prod)
                        if A.shape[1] == 1:
                            g_a[b, 0, :, r0 : r0 + n].copy_(prod.sum((2, 5)).reshape(n, wo, T).permute(2, 0, 1))
                        else:
                            g_a[b, :, :, r0 : r0 + n].copy_(prod.permute(2, 5, 3, 4, 0, 1).reshape(C, T, n, wo))
                    if need_x:
                        g_cols.mul_(a)
                        g_win = _windows_nhwc(g_xp[b], ksize, stride, dilation, wo, r0, n, G)
                        # Windows overlap, so the scatter-add goes one tap at a time (within one
                        # tap the positions are distinct, so each in-place add is well defined).
                        for i in range(kh):
                            for j in range(kw):
                                g_win[:, :, :, i, j].add_(g_cols[:, :, :, i, j])
        g_x = _unpad_grad(g_xp.permute(0, 3, 1, 2), padding, (H, W)) if need_x else None
        g_w = g_w.view(cout, kh, kw, cg).permute(0, 3, 1, 2).contiguous() if need_w else None
        return g_x, g_a, g_w, None, None, None, None


def _modulated_columns(xp_b, A_b, buf, ksize, stride, dilation, wo, r0, n, groups):
    """``buf <- windows(x) * A`` for output rows ``r0 .. r0+n`` of one image, returned as a
    channels-last ``(1, G*kh*kw*Cg, n, Wo)`` tensor ready for a grouped 1x1 convolution."""
    win = _windows_nhwc(xp_b, ksize, stride, dilation, wo, r0, n, groups)
    cols = buf[: win.numel()].view(win.shape)
    torch.mul(win, _tap_modulation(A_b, ksize, r0, n, groups), out=cols)
    return cols.view(1, n, wo, -1).permute(0, 3, 1, 2)


def adaptive_conv(x, A, weight, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups: int = 1):
    """Engine entry point for channel-mixing adaptive convolution (arguments already validated).

    Args:
        x: ``(B, C, H, W)`` input.
        A: ``(B, 1 or C, kh*kw, Ho, Wo)`` per-pixel tap modulation.
        weight: ``(Cout, C // groups, kh, kw)`` shared filter bank.
        stride, dilation: pairs; padding: ``(top, bottom, left, right)`` zero padding.
    Returns:
        ``(B, Cout, Ho, Wo)``.
    """
    return _AdaptiveConv.apply(x, A, weight, tuple(stride), tuple(padding), tuple(dilation), groups)


class _PixelFilter(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, A, kernel_size, stride, padding, dilation):
        kh, kw = kernel_size
        x_pad = _pad(x, padding)
        ho, wo = A.shape[-2:]
        win = window_view(x_pad, kernel_size, stride, dilation, (ho, wo))  # (B, C, kh, kw, Ho, Wo)
        out = x.new_zeros(x.shape[0], x.shape[1], ho, wo)
        for t in range(kh * kw):
            out.addcmul_(win[:, :, t // kw, t % kw], A[:, :, t])
        ctx.save_for_backward(x, A)
        ctx.geometry = (kernel_size, stride, padding, dilation)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        x, A = ctx.saved_tensors
        kernel_size, stride, padding, dilation = ctx.geometry
        need_x, need_a = ctx.needs_input_grad[:2]
        kh, kw = kernel_size
        ho, wo = grad_out.shape[-2:]
        x_pad = _pad(x, padding)
        g_x = g_a = None
        if need_a:
            win = window_view(x_pad, kernel_size, stride, dilation, (ho, wo))
            g_a = torch.empty_like(A)
            for t in range(kh * kw):
                prod = grad_out * win[:, :, t // kw, t % kw]
                g_a[:, :, t] = prod.sum(1, keepdim=True) if A.shape[1] == 1 else prod
        if need_x:
            g_xpad = torch.zeros_like(x_pad)
            g_win = window_view(g_xpad, kernel_size, stride, dilation, (ho, wo))
            for t in range(kh * kw):
                g_win[:, :, t // kw, t % kw].addcmul_(grad_out, A[:, :, t])
            g_x = _unpad_grad(g_xpad, padding, x.shape[-2:])
        return g_x, g_a, None, None, None, None


def pixel_filter(x, A, kernel_size, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1)):
    """Engine entry point for per-channel adaptive filtering (arguments already validated).

    ``y[b, c, p] = sum_t A[b, c|0, t, p] * x_pad[b, c, p * stride + t * dilation]``.
    ``A`` is ``(B, 1 or C, kh*kw, Ho, Wo)``; returns ``(B, C, Ho, Wo)``.
    """
    return _PixelFilter.apply(x, A, tuple(kernel_size), tuple(stride), tuple(padding), tuple(dilation))
