"""Naive float64 reference implementations, written straight from the definitions.

Nothing here imports ``pixelwise``: every function loops over output pixels (or input samples
for the transposed convolution) and window taps in plain Python, vectorising only over channels
with numpy. They are slow and meant for tiny inputs only.

Conventions (same as the package, documented in ``spec/pac.md``):

* tap ``t = (i, j)`` of output pixel ``p`` reads ``input[p * stride - padding + t * dilation]``
  (cross-correlation, like ``F.conv2d``); taps are flattened row-major;
* the adapting kernel compares the guide at the window centre ``p * stride - padding + c * dilation``
  (``c = (k - 1) / 2``) with the guide at each tap; taps outside the image contribute nothing;
* ``gaussian``: ``K = exp(-0.5 * ||f_c - f_t||^2)``;
  ``inverse``: ``K = alpha + (||f_c - f_t||^2 + eps^2) ** lam``;
* ``normalize``: divide by the sum of ``K`` over the contributing taps.
"""

from __future__ import annotations

import numpy as np


def as_np(t) -> np.ndarray:
    """Torch tensor / array / scalar -> float64 numpy array."""
    if hasattr(t, "detach"):
        t = t.detach().cpu().double().numpy()
    return np.asarray(t, dtype=np.float64)


def _pair(v):
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def _scalar(v) -> float:
    return float(as_np(v))


def kernel_value(fc, ft, kernel_type="gaussian", alpha=0.0, lam=-0.5, eps=1e-2, channel_wise=False):
    """K(f_c, f_t) for two guide vectors ``(Cf,)``; returns ``(Cf,)`` if channel_wise else ``(1,)``."""
    sq = (fc - ft) ** 2
    dist = sq if channel_wise else np.array([sq.sum()])
    if kernel_type == "gaussian":
        return np.exp(-0.5 * dist)
    if kernel_type == "inverse":
        return _scalar(alpha) + (dist + eps**2) ** _scalar(lam)
    raise ValueError(kernel_type)


# ----------------------------------------------------------------------------------------------
# PAC kernel and a generic per-pixel, per-tap modulated convolution
# ----------------------------------------------------------------------------------------------


def conv_out(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def conv_transpose_out(n, k, s, p, d, op):
    return (n - 1) * s - 2 * p + d * (k - 1) + op + 1


def naive_pac_kernel(guide, kernel_size, stride=1, padding=0, dilation=1, kernel_type="gaussian",
                     normalize=False, channel_wise=False, alpha=0.0, lam=-0.5, eps=1e-2):
    """``(B, 1|Cf, kh*kw, Ho, Wo)`` adapting kernel of a (non-transposed) PAC."""
    f = as_np(guide)
    B, Cf, H, W = f.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = map(_pair, (kernel_size, stride, padding, dilation))
    Ho, Wo = conv_out(H, kh, sh, ph, dh), conv_out(W, kw, sw, pw, dw)
    ch, cw = (kh - 1) // 2, (kw - 1) // 2
    out = np.zeros((B, Cf if channel_wise else 1, kh * kw, Ho, Wo))
    for b in range(B):
        for oy in range(Ho):
            for ox in range(Wo):
                fc = f[b, :, oy * sh - ph + ch * dh, ox * sw - pw + cw * dw]
                for i in range(kh):
                    for j in range(kw):
                        y, x = oy * sh - ph + i * dh, ox * sw - pw + j * dw
                        if 0 <= y < H and 0 <= x < W:
                            out[b, :, i * kw + j, oy, ox] = kernel_value(
                                fc, f[b, :, y, x], kernel_type, alpha, lam, eps, channel_wise)
                if normalize:
                    total = out[b, :, :, oy, ox].sum(1, keepdims=True)
                    out[b, :, :, oy, ox] = np.where(total > 0, out[b, :, :, oy, ox] / np.where(total > 0, total, 1), 0)
    return out


def naive_pac_kernel_transposed(guide, kernel_size, stride=1, padding=0, dilation=1, in_size=None,
                                kernel_type="gaussian", normalize=False, channel_wise=False,
                                alpha=0.0, lam=-0.5, eps=1e-2):
    """``(B, 1|Cf, kh*kw, Ho, Wo)`` kernel of PAC^T (guide at the output resolution).

    PAC^T is a stride-1 correlation of the zero-inserted input with the flipped weight; its tap
    ``t`` of output ``o`` pairs ``f_o`` with ``f_{o + (t - c) * d}`` and counts only when it meets a
    real input sample ``i``, i.e. when ``o = i * s - p + (k - 1 - t) * d`` for some ``0 <= i < n_in``.
    """
    f = as_np(guide)
    B, Cf, Ho, Wo = f.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = map(_pair, (kernel_size, stride, padding, dilation))
    hin, win = in_size
    ch, cw = (kh - 1) // 2, (kw - 1) // 2

    def real_sample(o, t, k, s, p, d, n):
        num = o + p - (k - 1 - t) * d
        return num % s == 0 and 0 <= num // s < n

    out = np.zeros((B, Cf if channel_wise else 1, kh * kw, Ho, Wo))
    for b in range(B):
        for oy in range(Ho):
            for ox in range(Wo):
                for i in range(kh):
                    for j in range(kw):
                        if real_sample(oy, i, kh, sh, ph, dh, hin) and real_sample(ox, j, kw, sw, pw, dw, win):
                            y, x = oy + (i - ch) * dh, ox + (j - cw) * dw
                            out[b, :, i * kw + j, oy, ox] = kernel_value(
                                f[b, :, oy, ox], f[b, :, y, x], kernel_type, alpha, lam, eps, channel_wise)
                if normalize:
                    total = out[b, :, :, oy, ox].sum(1, keepdims=True)
                    out[b, :, :, oy, ox] = np.where(total > 0, out[b, :, :, oy, ox] / np.where(total > 0, total, 1), 0)
    return out


def naive_adaptive_conv(x, A, w, b=None, stride=1, padding=0, dilation=1, groups=1, shared_filters=False):
    """``y[o, p] = sum_{c, t} W[o, c, t] * A[c|0, t, p] * x_pad[c, p*s - pad + t*d] + b[o]``.

    ``A``: ``(B, 1|C, kh*kw, Ho, Wo)``. With ``shared_filters`` the weight is ``(1, 1, kh, kw)`` and
    every channel is filtered on its own.
    """
    x, A, w = as_np(x), as_np(A), as_np(w)
    B, C, H, W = x.shape
    kh, kw = w.shape[-2:]
    (sh, sw), (ph, pw), (dh, dw) = map(_pair, (stride, padding, dilation))
    Ho, Wo = conv_out(H, kh, sh, ph, dh), conv_out(W, kw, sw, pw, dw)
    cout = C if shared_filters else w.shape[0]
    cg, og = C // groups, cout // groups
    out = np.zeros((B, cout, Ho, Wo))
    for bb in range(B):
        for oy in range(Ho):
            for ox in range(Wo):
                acc = np.zeros(cout)
                for i in range(kh):
                    for j in range(kw):
                        y, xx = oy * sh - ph + i * dh, ox * sw - pw + j * dw
                        if not (0 <= y < H and 0 <= xx < W):
                            continue  # zero padding
                        v = A[bb, :, i * kw + j, oy, ox] * x[bb, :, y, xx]  # (C,)
                        if shared_filters:
                            acc += w[0, 0, i, j] * v
                        else:
                            for g in range(groups):
                                acc[g * og:(g + 1) * og] += w[g * og:(g + 1) * og, :, i, j] @ v[g * cg:(g + 1) * cg]
                out[bb, :, oy, ox] = acc
    if b is not None:
        out += as_np(b).reshape(1, -1, 1, 1)
    return out


def naive_pac_conv2d(x, w, b=None, guide=None, stride=1, padding=0, dilation=1, kernel_type="gaussian",
                     normalize=False, channel_wise=False, alpha=0.0, lam=-0.5, eps=1e-2,
                     shared_filters=False, groups=1):
    """PAC (Su et al. 2019, Eq. 3) as a float64 loop."""
    kh, kw = as_np(w).shape[-2:]
    K = naive_pac_kernel(guide, (kh, kw), stride, padding, dilation, kernel_type, normalize,
                         channel_wise, alpha, lam, eps)
    return naive_adaptive_conv(x, K, w, b, stride, padding, dilation, groups, shared_filters)


def naive_pac_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, guide=None, kernel_type="gaussian",
                     normalize=False, channel_wise=False, alpha=0.0, lam=-0.5, eps=1e-2):
    """``y_i = (1/k^2) sum_j K_ij x_j`` per channel, or ``sum_j K_ij x_j / sum_j K_ij`` if normalised."""
    kh, kw = _pair(kernel_size)
    stride = kernel_size if stride is None else stride
    w = np.ones((1, 1, kh, kw)) if normalize else np.full((1, 1, kh, kw), 1.0 / (kh * kw))
    return naive_pac_conv2d(x, w, None, guide, stride, padding, dilation, kernel_type, normalize,
                            channel_wise, alpha, lam, eps, shared_filters=True)


def naive_pac_conv_transpose2d(x, w, b=None, guide=None, stride=1, padding=0, output_padding=0, dilation=1,
                               kernel_type="gaussian", normalize=False, channel_wise=False, alpha=0.0,
                               lam=-0.5, eps=1e-2, shared_filters=False, groups=1):
    """PAC^T by explicit scatter of every input sample.

    Input sample ``i`` sends ``W[c_in, c_out, t] * x[c_in, i]`` to output ``o = i*s - p + t*d``
    (the ``nn.ConvTranspose2d`` weight, not flipped). Its guide position is the output position
    of its centre tap, ``g(i) = i*s - p + c*d``, so the contribution is weighted by
    ``K(f_o, f_{g(i)})``; normalisation divides by the sum of ``K`` over everything reaching ``o``.
    """
    x, w, f = as_np(x), as_np(w), as_np(guide)
    B, Cin, H, W = x.shape
    kh, kw = w.shape[-2:]
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = map(_pair, (stride, padding, output_padding, dilation))
    Ho, Wo = conv_transpose_out(H, kh, sh, ph, dh, oph), conv_transpose_out(W, kw, sw, pw, dw, opw)
    assert f.shape[-2:] == (Ho, Wo)
    ch, cw = (kh - 1) // 2, (kw - 1) // 2
    cout = Cin if shared_filters else w.shape[1] * groups
    cg, og = Cin // groups, cout // groups
    nk = f.shape[1] if channel_wise else 1

    def contributions(bb):
        for iy in range(H):
            for ix in range(W):
                gy, gx = iy * sh - ph + ch * dh, ix * sw - pw + cw * dw
                for i in range(kh):
                    for j in range(kw):
                        oy, ox = iy * sh - ph + i * dh, ix * sw - pw + j * dw
                        if 0 <= oy < Ho and 0 <= ox < Wo:
                            K = kernel_value(f[bb, :, oy, ox], f[bb, :, gy, gx], kernel_type, alpha, lam,
                                             eps, channel_wise)
                            yield iy, ix, i, j, oy, ox, K

    out = np.zeros((B, cout, Ho, Wo))
    for bb in range(B):
        ksum = np.zeros((nk, Ho, Wo))
        for _, _, _, _, oy, ox, K in contributions(bb):
            ksum[:, oy, ox] += K
        for iy, ix, i, j, oy, ox, K in contributions(bb):
            if normalize:
                K = K / ksum[:, oy, ox]
            v = K * x[bb, :, iy, ix]  # (Cin,)
            if shared_filters:
                out[bb, :, oy, ox] += w[0, 0, i, j] * v
            else:
                for g in range(groups):
                    out[bb, g * og:(g + 1) * og, oy, ox] += w[g * cg:(g + 1) * cg, :, i, j].T @ v[g * cg:(g + 1) * cg]
    if b is not None:
        out += as_np(b).reshape(1, -1, 1, 1)
    return out


# ----------------------------------------------------------------------------------------------
# Bilateral filters, JBU, per-pixel filters
# ----------------------------------------------------------------------------------------------


def naive_bilateral(image, guide, k, sigma_space, sigma_color, dilation=1):
    """Brute-force (joint) bilateral filter over the ``k x k`` window that lies inside the image.

    ``w_pq = exp(-|p - q|^2 / (2 sigma_space^2)) * exp(-||g_p - g_q||^2 / (2 sigma_color^2))``,
    ``y_p = sum_q w_pq x_q / sum_q w_pq``.
    """
    x, g = as_np(image), as_np(guide)
    B, C, H, W = x.shape
    r = k // 2
    out = np.zeros_like(x)
    for b in range(B):
        for py in range(H):
            for px in range(W):
                num, den = np.zeros(C), 0.0
                for dy in range(-r, r + 1):
                    for dx in range(-r, r + 1):
                        qy, qx = py + dy * dilation, px + dx * dilation
                        if not (0 <= qy < H and 0 <= qx < W):
                            continue
                        ws = np.exp(-((dy * dilation) ** 2 + (dx * dilation) ** 2) / (2 * sigma_space**2))
                        wr = np.exp(-((g[b, :, py, px] - g[b, :, qy, qx]) ** 2).sum() / (2 * sigma_color**2))
                        num += ws * wr * x[b, :, qy, qx]
                        den += ws * wr
                out[b, :, py, px] = num / den
    return out


def naive_jbu(src, guide, kernel_size, sigma_space, sigma_color):
    """Joint bilateral upsampling (Kopf et al. 2007), brute force.

    Low-res sample ``q`` sits at high-res pixel ``s*q + (s-1)//2``; high-res pixel ``p`` averages
    the samples with ``|pos(q) - p|_inf <= (kernel_size // 2) * s``, weighted by
    ``exp(-|p - pos(q)|^2 / (2 (s sigma_space)^2)) * exp(-||g_p - g_pos(q)||^2 / (2 sigma_color^2))``.
    """
    x, g = as_np(src), as_np(guide)
    B, C, h, w = x.shape
    Hg, Wg = g.shape[-2:]
    s = Hg // h
    assert Hg == s * h and Wg == s * w
    reach = (kernel_size // 2) * s
    qy, qx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    pos_y, pos_x = (s * qy + (s - 1) // 2).ravel(), (s * qx + (s - 1) // 2).ravel()
    out = np.zeros((B, C, Hg, Wg))
    for b in range(B):
        xs = x[b].reshape(C, -1)  # (C, h*w), same order as pos_y / pos_x
        gs = g[b][:, pos_y, pos_x]  # (Cg, h*w)
        for py in range(Hg):
            for px in range(Wg):
                sel = (np.abs(pos_y - py) <= reach) & (np.abs(pos_x - px) <= reach)
                d2 = (pos_y[sel] - py) ** 2 + (pos_x[sel] - px) ** 2
                ws = np.exp(-d2 / (2 * (s * sigma_space) ** 2))
                wr = np.exp(-((gs[:, sel] - g[b, :, py, px][:, None]) ** 2).sum(0) / (2 * sigma_color**2))
                wt = ws * wr
                out[b, :, py, px] = (xs[:, sel] * wt).sum(1) / wt.sum()
    return out


def naive_pixel_filters(image, filters, dilation=1):
    """``y[b, c, p] = sum_t F[b, c|., t, p] * x[b, c, p + (t - centre) * dilation]``, zero outside."""
    x, F = as_np(image), as_np(filters)
    if F.ndim == 4:
        F = F[:, None]
    B, C, H, W = x.shape
    T = F.shape[2]
    k = int(round(T**0.5))
    r = k // 2
    dh, dw = _pair(dilation)
    out = np.zeros_like(x)
    for b in range(B):
        for py in range(H):
            for px in range(W):
                for i in range(k):
                    for j in range(k):
                        qy, qx = py + (i - r) * dh, px + (j - r) * dw
                        if 0 <= qy < H and 0 <= qx < W:
                            out[b, :, py, px] += F[b, :, i * k + j, py, px] * x[b, :, qy, qx]
    return out
