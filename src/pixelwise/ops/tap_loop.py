"""Stride-1 adaptive convolution computed one tap at a time on shifted slices (no columns).

    y[b, o, p] = sum_t K[b, 0, t, p] * sum_c W[o, c, t] * x[b, c, p - pad + t * dilation]

is the same sum as :func:`pixelwise.ops.adaptive_filter.adaptive_conv` with a kernel shared over
channels (``K`` commutes with the channel mixing, spec "PAC"), evaluated as: for each tap ``t``,
mix the channels of the input slice that tap reads (``W_t x``, a 1x1 GEMM) and add
``K_t * (W_t x)`` into the output slice it writes. Why a second algorithm: PAC-CRF message passing
has few channels (the labels) and huge dilations (a 5x5 window at dilation 64 spans 257 px), where
the column engine's strided gathers dominate and most taps of a window fall outside the image.
Here a tap only touches the rectangle where it meets the image (taps entirely outside cost
nothing), every access is a contiguous slice, and backward recomputes ``W_t x`` per tap, so only
``x``, ``K`` and ``W`` are saved.

Padded taps contribute nothing (zero padding); ``K`` at those taps is ignored.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable


def _tap_regions(in_size, out_size, kernel_size, padding, dilation):
    """``(t, out_rows, out_cols, in_rows, in_cols)`` slices for every tap that meets the image."""
    regions = []
    (H, W), (Ho, Wo), (kh, kw), (ph, pw), (dh, dw) = in_size, out_size, kernel_size, padding, dilation
    for a in range(kh):
        sy = a * dh - ph
        y0, y1 = max(0, -sy), min(Ho, H - sy)
        if y0 >= y1:
            continue
        for b in range(kw):
            sx = b * dw - pw
            x0, x1 = max(0, -sx), min(Wo, W - sx)
            if x0 >= x1:
                continue
            regions.append((a * kw + b, slice(y0, y1), slice(x0, x1), slice(y0 + sy, y1 + sy), slice(x0 + sx, x1 + sx)))
    return regions


def _mix_all(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``Z[:, t] = W_t x`` for every tap at once: one 1x1 convolution (one GEMM), ``(B, T, Cout, H, W)``."""
    cout, cin, T = w.shape
    z = torch.nn.functional.conv2d(x, w.permute(2, 0, 1).reshape(T * cout, cin, 1, 1))
    return z.view(x.shape[0], T, cout, *x.shape[-2:])


class _TapLoopConv(torch.autograd.Function):
    # Channel mixing for all taps is one GEMM over the whole image (a per-slice einsum with a
    # handful of labels was dominated by copies); the tap loop itself is only multiply-adds on
    # slices. Z is transient: backward recomputes it.
    @staticmethod
    def forward(ctx, x, K, weight, padding, dilation, shared):
        B, C, H, W = x.shape
        kh, kw = weight.shape[-2:]
        Ho, Wo = K.shape[-2:]
        cout = C if shared else weight.shape[0]
        w = weight.reshape(weight.shape[0], weight.shape[1], kh * kw)
        y = x.new_zeros(B, cout, Ho, Wo)
        regions = _tap_regions((H, W), (Ho, Wo), (kh, kw), padding, dilation)
        if shared:
            taps = w[0, 0].tolist()
            for t, oy, ox, iy, ix in regions:
                y[:, :, oy, ox].addcmul_(K[:, :, t, oy, ox], x[:, :, iy, ix], value=taps[t])
        else:
            z = _mix_all(x, w)
            for t, oy, ox, iy, ix in regions:
                y[:, :, oy, ox].addcmul_(K[:, :, t, oy, ox], z[:, t, :, iy, ix])
        ctx.save_for_backward(x, K, weight)
        ctx.geometry = (padding, dilation, shared)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        x, K, weight = ctx.saved_tensors
        padding, dilation, shared = ctx.geometry
        need_x, need_k, need_w = ctx.needs_input_grad[:3]
        B, C, H, W = x.shape
        kh, kw = weight.shape[-2:]
        Ho, Wo = K.shape[-2:]
        T = kh * kw
        w = weight.reshape(weight.shape[0], weight.shape[1], T)
        g = g.contiguous()
        regions = _tap_regions((H, W), (Ho, Wo), (kh, kw), padding, dilation)
        gK = torch.zeros_like(K) if need_k else None
        if shared:
            taps = w[0, 0].tolist()
            gx = torch.zeros_like(x) if need_x else None
            gw = torch.zeros_like(w) if need_w else None
            for t, oy, ox, iy, ix in regions:
                x_r, g_r, k_r = x[:, :, iy, ix], g[:, :, oy, ox], K[:, :, t, oy, ox]
                if need_k or need_w:
                    gx_dot = g_r * x_r
                    if need_k:
                        gK[:, 0, t, oy, ox] = gx_dot.sum(1) * taps[t]
                    if need_w:
                        gw[0, 0, t] = (gx_dot * k_r).sum()
                if need_x:
                    gx[:, :, iy, ix].addcmul_(g_r, k_r, value=taps[t])
            return gx, gK, gw.view_as(weight) if need_w else None, None, None, None
        cout = w.shape[0]
        z = _mix_all(x, w) if need_k else None
        gz = x.new_zeros(B, T, cout, H, W) if (need_x or need_w) else None
        for t, oy, ox, iy, ix in regions:
            g_r = g[:, :, oy, ox]
            if need_k:
                gK[:, 0, t, oy, ox] = (g_r * z[:, t, :, iy, ix]).sum(1)
            if gz is not None:
                torch.mul(g_r, K[:, :, t, oy, ox], out=gz[:, t, :, iy, ix])
        gx = gw = None
        if gz is not None:
            gz = gz.view(B, T * cout, H, W)
            w_all = w.permute(2, 0, 1).reshape(T * cout, C, 1, 1)
            if need_x:
                gx = torch.nn.functional.conv_transpose2d(gz, w_all)
            if need_w:
                # (T*Cout, C): sum over batch and pixels of gz x^T -- one GEMM
                gw_all = torch.einsum("bkn,bcn->kc", gz.view(B, T * cout, -1), x.reshape(B, C, -1))
                gw = gw_all.view(T, cout, C).permute(1, 2, 0).reshape_as(weight)
        return gx, gK, gw, None, None, None


def tap_loop_conv(x: torch.Tensor, K: torch.Tensor, weight: torch.Tensor, padding, dilation,
                  shared_filters: bool = False) -> torch.Tensor:
    """Stride-1 adaptive convolution with a channel-shared kernel, one tap at a time.

    Args:
        x: ``(B, C, H, W)``.
        K: ``(B, 1, kh*kw, Ho, Wo)`` per-pixel tap weights (e.g. from :func:`pixelwise.ops.pac_kernel`).
        weight: ``(Cout, C, kh, kw)``, or ``(1, 1, kh, kw)`` with ``shared_filters=True`` (each
            channel filtered on its own, ``Cout = C``).
        padding, dilation: ``(ph, pw)`` symmetric zero padding and ``(dh, dw)`` dilation.

    Returns:
        ``(B, Cout, Ho, Wo)``, equal to ``pac_conv2d(x, weight, padding=..., dilation=..., kernel=K)``.
    """
    if K.dim() != 5 or K.shape[1] != 1 or K.shape[0] != x.shape[0] or K.shape[2] != weight.shape[-2] * weight.shape[-1]:
        raise ValueError(f"K must be (B, 1, kh*kw, Ho, Wo) for input {tuple(x.shape)} and weight "
                         f"{tuple(weight.shape)}, got {tuple(K.shape)}")
    if not shared_filters and weight.shape[1] != x.shape[1]:
        raise ValueError(f"weight must have {x.shape[1]} input channels, got {tuple(weight.shape)}")
    if shared_filters and tuple(weight.shape[:2]) != (1, 1):
        raise ValueError(f"with shared_filters=True weight must be (1, 1, kh, kw), got {tuple(weight.shape)}")
    padding, dilation = tuple(padding), tuple(dilation)
    # K's spatial size fixes the output; one from another geometry would silently shift every tap
    expect = tuple(x.shape[2 + a] + 2 * padding[a] - dilation[a] * (weight.shape[2 + a] - 1) for a in range(2))
    if tuple(K.shape[-2:]) != expect:
        raise ValueError(f"K is {tuple(K.shape[-2:])} per tap, but input {tuple(x.shape[-2:])} with padding "
                         f"{padding} and dilation {dilation} gives a {expect} output")
    return _TapLoopConv.apply(x, K, weight, padding, dilation, bool(shared_filters))
