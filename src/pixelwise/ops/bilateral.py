"""Bilateral filtering, joint bilateral filtering and joint bilateral upsampling (JBU) as uses
of the PAC engine: a Gaussian adapting kernel on colour / ``sigma_color`` times a fixed spatial
Gaussian ``W``, normalised over the valid taps, applied to each channel on its own.
"""

from __future__ import annotations

import torch

from ..checks import check_finite, check_odd, check_positive, check_same_device_dtype, check_tensor, pair
from .adaptive_filter import pixel_filter
from .pac import _phase_taps
from .pac_kernel import pac_kernel, window_sq_dist


def _spatial_gaussian(offsets_h, offsets_w, sigma, like):
    """``exp(-(dy^2 + dx^2) / (2 sigma^2))`` over the taps, shaped ``(1, 1, T, 1, 1)``."""
    dy = torch.as_tensor(offsets_h, dtype=like.dtype, device=like.device).view(-1, 1)
    dx = torch.as_tensor(offsets_w, dtype=like.dtype, device=like.device).view(1, -1)
    sigma = sigma.to(like.dtype) if isinstance(sigma, torch.Tensor) else float(sigma)  # tensor: learnable
    return torch.exp(-(dy**2 + dx**2) / (2.0 * sigma**2)).reshape(1, 1, -1, 1, 1)


def _check_sigmas(sigma_space, sigma_color):
    check_positive(sigma_space, "sigma_space")
    check_positive(sigma_color, "sigma_color")


def joint_bilateral_filter(image: torch.Tensor, guide: torch.Tensor, kernel_size: int = 5,
                           sigma_space: float = 1.5, sigma_color: float = 0.1, dilation: int = 1) -> torch.Tensor:
    """Joint (cross) bilateral filter: smooth ``image`` with edges taken from ``guide``.

    ``y_p = sum_q w_pq x_q / sum_q w_pq``, ``w_pq = exp(-|p-q|^2 / 2 sigma_space^2)
    * exp(-|g_p - g_q|^2 / 2 sigma_color^2)``, over the ``kernel_size^2`` window inside the image.

    Args:
        image: ``(B, C, H, W)``.
        guide: ``(B, Cg, H, W)``, e.g. RGB in [0, 1] (then ``sigma_color`` is in those units).
        kernel_size: odd window size; sigma_space in pixels.

    Example:
        >>> import torch
        >>> from pixelwise.ops import joint_bilateral_filter
        >>> depth, rgb = torch.rand(1, 1, 32, 32), torch.rand(1, 3, 32, 32)
        >>> joint_bilateral_filter(depth, rgb, 5, 2.0, 0.1).shape
        torch.Size([1, 1, 32, 32])
    """
    check_tensor(image, "image", 4)
    check_tensor(guide, "guide", 4)
    check_same_device_dtype(image, "image", guide, "guide")
    if guide.shape[0] != image.shape[0] or guide.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"guide must have the batch and spatial size of image {tuple(image.shape)}, "
                         f"got {tuple(guide.shape)}")
    _check_sigmas(sigma_space, sigma_color)
    k = pair(kernel_size, "kernel_size")
    d = pair(dilation, "dilation")
    half = (d[0] * (k[0] - 1) // 2, d[1] * (k[1] - 1) // 2)
    K = pac_kernel(guide / sigma_color, k, 1, half, d)  # padded taps already 0
    offs_h = [(i - k[0] // 2) * d[0] for i in range(k[0])]
    offs_w = [(j - k[1] // 2) * d[1] for j in range(k[1])]
    K = K * _spatial_gaussian(offs_h, offs_w, sigma_space, K)
    K = K / K.sum(2, keepdim=True)  # the centre tap is always valid, so the sum is > 0
    return pixel_filter(image, K, k, (1, 1), (half[0], half[0], half[1], half[1]), d)


def bilateral_filter(image: torch.Tensor, kernel_size: int = 5, sigma_space: float = 1.5,
                     sigma_color: float = 0.1, dilation: int = 1) -> torch.Tensor:
    """Edge-preserving bilateral filter (Tomasi & Manduchi 1998); the image is its own guide.

    Example:
        >>> import torch
        >>> from pixelwise.ops import bilateral_filter
        >>> bilateral_filter(torch.rand(2, 3, 20, 30), 7, 2.0, 0.2).shape
        torch.Size([2, 3, 20, 30])
    """
    check_tensor(image, "image", 4)
    check_finite(image, "image")
    return joint_bilateral_filter(image, image, kernel_size, sigma_space, sigma_color, dilation)


def joint_bilateral_upsample(source: torch.Tensor, guide: torch.Tensor, kernel_size: int = 5,
                             sigma_space: float = 1.0, sigma_color: float = 0.1) -> torch.Tensor:
    """Joint bilateral upsampling (Kopf et al. 2007) as a normalised, fixed-Gaussian PAC^T.

    Low-resolution sample ``q`` sits at high-resolution pixel ``s*q + (s-1)//2`` (``s`` the
    integer factor ``guide size / source size``). Each high-resolution pixel ``p`` averages the
    samples within ``kernel_size // 2`` low-resolution pixels, weighted by
    ``exp(-|p - pos(q)|^2 / (2 (s*sigma_space)^2)) * exp(-|g_p - g_pos(q)|^2 / (2 sigma_color^2))``.

    Computed phase by phase (one stride-1 filter per output phase, only over real samples), so the
    ``(kernel_size - 1) * s + 1`` high-resolution window is never materialised.

    Args:
        source: ``(B, C, h, w)`` low-resolution signal (depth, flow, ...).
        guide: ``(B, Cg, s*h, s*w)`` high-resolution guidance.
        kernel_size: odd window in low-resolution samples; sigma_space in low-resolution pixels.

    Example:
        >>> import torch
        >>> from pixelwise.ops import joint_bilateral_upsample
        >>> joint_bilateral_upsample(torch.rand(1, 1, 16, 16), torch.rand(1, 3, 64, 64)).shape
        torch.Size([1, 1, 64, 64])
    """
    check_tensor(source, "source", 4)
    check_tensor(guide, "guide", 4)
    check_same_device_dtype(source, "source", guide, "guide")
    check_finite(guide, "guide")
    _check_sigmas(sigma_space, sigma_color)
    k_lr = tuple(check_odd(v, "kernel_size") for v in pair(kernel_size, "kernel_size"))
    B, C, h, w = source.shape
    Hg, Wg = guide.shape[-2:]
    if guide.shape[0] != B or Hg % h or Wg % w or Hg // h != Wg // w or Hg < h:
        raise ValueError(f"guide spatial size must be the same integer multiple of source size {(h, w)} "
                         f"in both dimensions (and the same batch {B}), got guide {tuple(guide.shape)}")
    s = Hg // h
    # The PAC^T geometry that puts sample q at s*q + (s-1)//2 and returns exactly (s*h, s*w).
    k = tuple((v - 1) * s + 1 for v in k_lr)
    p = tuple((v - 1) // 2 - (s - 1) // 2 for v in k)
    f = guide / sigma_color
    g_lr = f[:, :, (s - 1) // 2 :: s, (s - 1) // 2 :: s]  # guide at the sample positions
    y = source.new_zeros(B, C, Hg, Wg)
    for ph in range(s):
        rows = _phase_taps(ph, k[0], s, p[0], 1, h, Hg)
        for pw in range(s):
            cols = _phase_taps(pw, k[1], s, p[1], 1, w, Wg)
            th, sth, nh, dh, pt, pb, mh = rows
            tw, stw, nw, dw, pl, pr, mw = cols
            pad4 = (pt, pb, pl, pr)
            centre = f[:, :, ph::s, pw::s]
            dist = window_sq_dist(g_lr, (nh, nw), (1, 1), pad4, (dh, dw), (mh, mw), centre=centre)
            # Spatial distance from output pixel to each tap's sample, in high-res pixels:
            # tap t of the zero-inserted correlation lies (t - centre_tap) pixels away.
            offs_h = [th + l * sth - (k[0] - 1) // 2 for l in range(nh)]
            offs_w = [tw + l * stw - (k[1] - 1) // 2 for l in range(nw)]
            K = torch.exp(-0.5 * dist) * _spatial_gaussian(offs_h, offs_w, s * sigma_space, dist)
            mask = _inside_mask(h, w, (nh, nw), pad4, (dh, dw), (mh, mw), dist)
            K = K * mask
            total = K.sum(2, keepdim=True)
            K = K / total.clamp_min(torch.finfo(K.dtype).tiny)
            y[:, :, ph::s, pw::s] = pixel_filter(source, K, (nh, nw), (1, 1), pad4, (dh, dw))
    return y


def _inside_mask(h, w, ksize, pad4, dilation, out_size, like):
    """1 where a tap of a stride-1 window over an ``(h, w)`` input padded by ``pad4`` is inside."""
    def axis(n_out, n_in, k, before, d):
        pos = torch.arange(n_out, device=like.device).view(1, -1) - before + d * torch.arange(k, device=like.device).view(-1, 1)
        return ((pos >= 0) & (pos < n_in)).to(like.dtype)
    mh = axis(out_size[0], h, ksize[0], pad4[0], dilation[0])
    mw = axis(out_size[1], w, ksize[1], pad4[2], dilation[1])
    return (mh[:, None, :, None] * mw[None, :, None, :]).reshape(1, 1, -1, *out_size)
