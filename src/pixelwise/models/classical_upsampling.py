"""Parameter-free upsampling baselines: bicubic / bilinear interpolation and joint bilateral
upsampling (Kopf et al. 2007) as a fixed, normalised Gaussian PAC^T.

They share the learned models' interface so one evaluation loop compares every method. JBU's
two bandwidths are buffers, set by :func:`pixelwise.tasks.upsample.search_jbu` (a grid search on
training data) and saved in checkpoints like any weight.
"""

from __future__ import annotations

import torch

from ..ops import joint_bilateral_upsample
from .registry import register_model
from .upsampling_base import GuidedUpsampler


class InterpolationUpsampler(GuidedUpsampler):
    def __init__(self, factor: int = 8, kind: str = "depth", mode: str | None = None):
        super().__init__(factor, kind, normalize=False, residual=False)
        if mode is not None:
            if mode not in ("bicubic", "bilinear", "nearest"):
                raise ValueError(f"mode: expected 'bicubic', 'bilinear' or 'nearest', got {mode!r}")
            self.interpolation = mode

    def predict(self, x, guide, base):
        return base


class JointBilateralUpsampler(GuidedUpsampler):
    def __init__(self, factor: int = 8, kind: str = "depth", kernel_size: int = 5,
                 sigma_space: float = 1.0, sigma_color: float = 0.1):
        super().__init__(factor, kind, normalize=False, residual=False)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size: expected an odd positive integer, got {kernel_size}")
        self.kernel_size = kernel_size
        self.register_buffer("sigma_space", torch.tensor(float(sigma_space)))
        self.register_buffer("sigma_color", torch.tensor(float(sigma_color)))

    def predict(self, x, guide, base):
        return joint_bilateral_upsample(x, guide, self.kernel_size, float(self.sigma_space), float(self.sigma_color))


@register_model("bicubic", task="upsample")
def bicubic(factor: int = 8, kind: str = "depth") -> InterpolationUpsampler:
    return InterpolationUpsampler(factor, kind, "bicubic")


@register_model("bilinear", task="upsample")
def bilinear(factor: int = 8, kind: str = "depth") -> InterpolationUpsampler:
    return InterpolationUpsampler(factor, kind, "bilinear")


@register_model("jbu", task="upsample")
def jbu(factor: int = 8, kind: str = "depth", **kwargs) -> JointBilateralUpsampler:
    return JointBilateralUpsampler(factor, kind, **kwargs)
