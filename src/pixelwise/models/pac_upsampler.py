"""Deep joint upsampling with PAC^T (Su et al. 2019, Sec. 4 and Table 5).

Three branches: an encoder on the low-resolution target, a guidance branch on the
high-resolution RGB image whose last output is split equally along channels (one slice per
PAC^T), and a decoder of x2 PAC^T layers followed by two convolutions. 5x5 filters everywhere,
ReLU after every layer except the final convolution and the guidance branch's last layer (its
output is an embedding for the Gaussian kernel; a ReLU would throw away half its range).

The intermediate PAC^T layers run below full resolution; the paper does not say how their
guidance is obtained, so each slice is resized bilinearly to its PAC^T's output size.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..nn import PacConvTranspose2d
from .registry import register_model
from .upsampling_base import GUIDE_MEAN, GUIDE_STD, KINDS, GuidedUpsampler, conv5, conv_stack, zero_init

# Table 5 of Su et al. 2019: encoder, guidance and decoder widths (P = PAC^T, C = conv).
ARCHITECTURES = {
    ("standard", 4): dict(encoder=[32, 32, 32], guidance=[32, 32, 32], pac=[32, 32], conv=32),
    ("standard", 8): dict(encoder=[32, 32, 32], guidance=[32, 32, 48], pac=[32, 32, 32], conv=32),
    ("standard", 16): dict(encoder=[32, 32, 32], guidance=[32, 32, 64], pac=[32, 32, 32, 32], conv=32),
    ("lite", 4): dict(encoder=[12, 16, 22], guidance=[12, 22, 24], pac=[12, 16], conv=22),
    ("lite", 8): dict(encoder=[12, 16, 16], guidance=[12, 16, 36], pac=[12, 16, 16], conv=20),
    ("lite", 16): dict(encoder=[8, 16, 16], guidance=[8, 16, 40], pac=[8, 16, 16, 16], conv=16),
}


class PacJointUpsampler(GuidedUpsampler):
    """PAC joint upsampling network; see the module docstring.

    Args:
        factor: 4, 8 or 16 (one x2 PAC^T per octave).
        kind: ``"depth"`` (1 channel) or ``"flow"`` (2 channels: first encoder and last decoder
            layers become C2, as in the paper).
        variant: ``"standard"`` or ``"lite"`` (Table 5).
        normalize, residual: see :class:`GuidedUpsampler`.
    """

    def __init__(self, factor: int = 8, kind: str = "depth", variant: str = "standard", *,
                 normalize: bool = True, residual: bool = True):
        super().__init__(factor, kind, normalize=normalize, residual=residual)
        if (variant, factor) not in ARCHITECTURES:
            raise ValueError(f"pac_upsampler: no Table 5 architecture for variant={variant!r}, factor={factor}; "
                             f"factors 4, 8, 16 and variants 'standard', 'lite' exist")
        self.variant = variant
        arch = ARCHITECTURES[(variant, factor)]
        channels = KINDS[kind]
        n_pac = len(arch["pac"])
        if arch["guidance"][-1] % n_pac:
            raise AssertionError("guidance width must split evenly over the PAC^T layers")
        self.slice_channels = arch["guidance"][-1] // n_pac
        self.encoder = conv_stack(channels, arch["encoder"])
        self.guidance = conv_stack(3, arch["guidance"], relu_last=False)
        in_ch = arch["encoder"][-1]
        ups = []
        for width in arch["pac"]:
            ups.append(PacConvTranspose2d(in_ch, width, 5, stride=2, padding=2, output_padding=1))
            in_ch = width
        self.upconvs = nn.ModuleList(ups)
        self.head = nn.Sequential(conv5(in_ch, arch["conv"]), nn.ReLU(inplace=True), conv5(arch["conv"], channels))
        if residual:
            zero_init(self.head[-1])

    def predict(self, x, guide, base):
        features = self.encoder(x)
        guide_features = self.guidance((guide - GUIDE_MEAN) / GUIDE_STD)
        slices = guide_features.split(self.slice_channels, dim=1)
        for upconv, g in zip(self.upconvs, slices):
            size = (features.shape[2] * 2, features.shape[3] * 2)
            if g.shape[2:] != size:
                g = F.interpolate(g, size=size, mode="bilinear", align_corners=False)
            features = torch.relu(upconv(features, g))
        return self.head(features)


@register_model("pac_upsampler")
def pac_upsampler(factor: int = 8, kind: str = "depth", **kwargs) -> PacJointUpsampler:
    return PacJointUpsampler(factor, kind, "standard", **kwargs)


@register_model("pac_upsampler_lite")
def pac_upsampler_lite(factor: int = 8, kind: str = "depth", **kwargs) -> PacJointUpsampler:
    return PacJointUpsampler(factor, kind, "lite", **kwargs)
