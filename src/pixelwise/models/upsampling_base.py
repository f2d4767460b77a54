"""What every guided upsampler shares: argument checks, scale normalisation, the residual path.

All upsamplers take ``(target_lr (B,C,h,w), guide (B,3,H,W))`` with ``H = factor*h`` and
``W = factor*w`` and return ``(B,C,H,W)`` in the units of ``target_lr``.

Normalisation (a pixelwise choice, not in Su et al. 2019): the low-res target is standardised per
sample (per-channel mean, one scale over all channels so flow keeps its direction) before the
network sees it, and the output is mapped back. Depth in metres, disparity in pixels and flow in
pixels then look alike to the network, which is what lets a model trained on synthetic scenes
transfer to a real one.

Residual (also a pixelwise choice; DJF+ does the same): the learned models predict a correction
to the bicubic (depth) or bilinear (flow) upsampling instead of the whole map. The layers are
exactly those of the papers, the skip has no parameters, and it makes short training runs useful.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

KINDS = {"depth": 1, "flow": 2}
# Guides are RGB in [0, 1]; the learned models see them centred.
GUIDE_MEAN = 0.45
GUIDE_STD = 0.25


def check_upsampling_inputs(target_lr: torch.Tensor, guide: torch.Tensor, factor: int, channels: int | None):
    if not isinstance(target_lr, torch.Tensor) or target_lr.dim() != 4:
        raise ValueError(f"target_lr: expected a (B, C, h, w) tensor, got "
                         f"{tuple(target_lr.shape) if isinstance(target_lr, torch.Tensor) else type(target_lr).__name__}")
    if not isinstance(guide, torch.Tensor) or guide.dim() != 4:
        raise ValueError(f"guide: expected a (B, 3, H, W) tensor, got "
                         f"{tuple(guide.shape) if isinstance(guide, torch.Tensor) else type(guide).__name__}")
    b, c, h, w = target_lr.shape
    if channels is not None and c != channels:
        raise ValueError(f"target_lr: this model upsamples {channels}-channel maps, got {c} channels")
    if guide.shape[1] != 3:
        raise ValueError(f"guide: expected 3 (RGB) channels, got {guide.shape[1]}")
    if guide.shape[0] != b:
        raise ValueError(f"guide: batch {guide.shape[0]} differs from target_lr batch {b}")
    if h < 1 or w < 1:
        raise ValueError(f"target_lr: empty map of size {h}x{w}")
    if guide.shape[2] != factor * h or guide.shape[3] != factor * w:
        raise ValueError(f"guide: size {guide.shape[2]}x{guide.shape[3]} must be factor {factor} times the "
                         f"target_lr size {h}x{w}, i.e. {factor * h}x{factor * w}")
    if not torch.isfinite(target_lr).all():
        raise ValueError("target_lr: contains NaN or inf; fill invalid low-resolution samples first "
                         "(pixelwise.data.transforms.upsampling_pairs.fill_invalid)")


def normalization_stats(target_lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and one per-sample scale (RMS deviation over all channels)."""
    mean = target_lr.mean(dim=(2, 3), keepdim=True)
    scale = (target_lr - mean).square().mean(dim=(1, 2, 3), keepdim=True).sqrt()
    # A flat map has no scale of its own: keep the unit scale rather than divide by ~0.
    flat = scale <= 1e-6 * (mean.abs().amax(1, keepdim=True) + 1e-12)
    return mean, torch.where(flat, torch.ones_like(scale), scale)


def zero_init(conv: nn.Conv2d) -> nn.Conv2d:
    """Start the residual branch at zero, so an untrained model is exactly the interpolation."""
    nn.init.zeros_(conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


def interpolate(x: torch.Tensor, factor: int, mode: str) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode=mode, align_corners=False)


class GuidedUpsampler(nn.Module):
    """Base class. Subclasses implement ``predict(x, guide, base)`` on normalised data."""

    def __init__(self, factor: int, kind: str = "depth", *, normalize: bool = True, residual: bool = True):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind: expected one of {sorted(KINDS)}, got {kind!r}")
        if not isinstance(factor, int) or factor < 1:
            raise ValueError(f"factor: expected a positive integer, got {factor!r}")
        self.factor = factor
        self.kind = kind
        self.channels = KINDS[kind]
        self.normalize = normalize
        self.residual = residual
        self.interpolation = "bicubic" if kind == "depth" else "bilinear"

    def forward(self, target_lr: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        check_upsampling_inputs(target_lr, guide, self.factor, self.channels)
        if self.normalize:
            mean, scale = normalization_stats(target_lr)
            x = (target_lr - mean) / scale
        else:
            x = target_lr
        base = interpolate(x, self.factor, self.interpolation)
        y = self.predict(x, guide, base)
        if self.residual:
            y = y + base
        return y * scale + mean if self.normalize else y

    def predict(self, x: torch.Tensor, guide: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError
