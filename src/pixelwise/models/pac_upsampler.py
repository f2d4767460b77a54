"""Deep joint upsampling with PAC^T (Su et al. 2019, Sec. 4 and Table 5).

Three branches: an encoder on the low-resolution target, a guidance branch on the
high-resolution RGB image whose last output is split equally along channels (one slice per
PAC^T), and a decoder of x2 PAC^T layers followed by two convolutions. 5x5 filters everywhere,
ReLU after every layer except the final convolution and the guidance branch's last layer (its
output is an embedding for the Gaussian kernel; a ReLU would throw away half its range).

Two choices the paper leaves open, both about where the kernel looks (``guide_sampling``):
- the x2 PAC^T chain places low-res sample ``q`` at high-res pixel ``s*q``, while the data put it
  at ``s*q + (s-1)//2`` (nearest-neighbour downsampling, as JBU assumes). ``"aligned"`` (default)
  runs the network on a guide shifted by ``(s-1)//2`` and shifts the result back, so each PAC^T
  compares the guide at the pixels its samples really came from;
- intermediate PAC^T layers run below full resolution: ``"aligned"`` takes each guidance slice at
  exactly the pixels those outputs stand for (strided subsampling), ``"bilinear"`` resizes it
  bilinearly (up to ``r/2`` pixels off the data at ``1/r`` resolution).

Initialisation (``guide_init_sigma``): see :meth:`PacJointUpsampler._init_guidance_as_colour`.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..nn import PacConvTranspose2d
from ..nn.blocks import conv_stack
from .registry import register_model
from .upsampling_base import GUIDE_MEAN, GUIDE_STD, KINDS, GuidedUpsampler, zero_init

KERNEL_SIZE = 5  # every convolution and PAC^T (Sec. 4)
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
                 normalize: bool = True, residual: bool = True, guide_sampling: str = "aligned",
                 guide_init_sigma: float | None = 0.1):
        super().__init__(factor, kind, normalize=normalize, residual=residual)
        if (variant, factor) not in ARCHITECTURES:
            raise ValueError(f"pac_upsampler: no Table 5 architecture for variant={variant!r}, factor={factor}; "
                             f"factors 4, 8, 16 and variants 'standard', 'lite' exist")
        self.variant = variant
        if guide_sampling not in ("aligned", "bilinear"):
            raise ValueError(f"guide_sampling: expected 'aligned' or 'bilinear', got {guide_sampling!r}")
        self.guide_sampling = guide_sampling
        arch = ARCHITECTURES[(variant, factor)]
        channels = KINDS[kind]
        n_pac = len(arch["pac"])
        if arch["guidance"][-1] % n_pac:
            raise AssertionError("guidance width must split evenly over the PAC^T layers")
        self.slice_channels = arch["guidance"][-1] // n_pac
        self.encoder = conv_stack(channels, arch["encoder"], KERNEL_SIZE)
        self.guidance = conv_stack(3, arch["guidance"], KERNEL_SIZE, act_last=False)
        in_ch = arch["encoder"][-1]
        ups = []
        for width in arch["pac"]:
            ups.append(PacConvTranspose2d(in_ch, width, KERNEL_SIZE, stride=2, padding=KERNEL_SIZE // 2,
                                          output_padding=1))
            in_ch = width
        self.upconvs = nn.ModuleList(ups)
        self.head = conv_stack(in_ch, [arch["conv"], channels], KERNEL_SIZE, act_last=False)
        if residual:
            zero_init(self.head[-1])
        if guide_init_sigma is not None:
            self._init_guidance_as_colour(guide_init_sigma)

    @torch.no_grad()
    def _init_guidance_as_colour(self, sigma: float) -> None:
        """Start every PAC^T kernel as a colour bilateral kernel of bandwidth ``sigma`` (RGB units).

        With PyTorch's default init the guidance features come out ~20x too small, so K = 1
        everywhere and PAC^T starts as a plain transposed convolution that must first learn to
        see edges. Here the first three channels of each guidance slice start as the RGB value
        divided by ``sigma`` (carried through the two ReLU layers with a positive offset); the
        other channels keep their random init and learn from there. Parameter counts unchanged.
        """
        convs = [m for m in self.guidance if isinstance(m, nn.Conv2d)]
        offset = 1.0 / GUIDE_STD  # normalised RGB lies above -0.45/0.25 > -offset: ReLU keeps it
        centre = convs[0].kernel_size[0] // 2
        for i, conv in enumerate(convs):
            last = i == len(convs) - 1
            outs = [s * self.slice_channels + c for s in range(len(self.upconvs)) for c in range(3)] if last else range(3)
            for o, c in zip(outs, itertools.cycle(range(3))):
                conv.weight[o].zero_()
                scale = GUIDE_STD / sigma if last else 1.0
                conv.weight[o, c, centre, centre] = scale
                conv.bias[o] = -offset * scale if last else (offset if i == 0 else 0.0)

    def predict(self, x, guide, base):
        shift = (self.factor - 1) // 2 if self.guide_sampling == "aligned" else 0
        if shift:
            # Low-res sample q lies at high-res pixel s*q + shift, but the x2 PAC^T chain puts it at
            # s*q: work on a guide shifted by -shift and shift the result back.
            guide = F.pad(guide, (0, shift, 0, shift), mode="replicate")[..., shift:, shift:]
        features = self.encoder(x)
        guide_features = self.guidance((guide - GUIDE_MEAN) / GUIDE_STD)
        slices = guide_features.split(self.slice_channels, dim=1)
        for upconv, g in zip(self.upconvs, slices):
            size = (features.shape[2] * 2, features.shape[3] * 2)
            if g.shape[2:] != size:
                if self.guide_sampling == "aligned":
                    step = g.shape[2] // size[0]  # output sample j of this PAC^T sits at pixel step*j
                    g = g[..., ::step, ::step]
                else:
                    g = F.interpolate(g, size=size, mode="bilinear", align_corners=False)
            features = torch.relu(upconv(features, g))
        out = self.head(features)
        if shift:
            out = F.pad(out, (shift, 0, shift, 0), mode="replicate")[..., :-shift, :-shift]
        return out


@register_model("pac_upsampler", task="upsample")
def pac_upsampler(factor: int = 8, kind: str = "depth", **kwargs) -> PacJointUpsampler:
    return PacJointUpsampler(factor, kind, "standard", **kwargs)


@register_model("pac_upsampler_lite", task="upsample")
def pac_upsampler_lite(factor: int = 8, kind: str = "depth", **kwargs) -> PacJointUpsampler:
    return PacJointUpsampler(factor, kind, "lite", **kwargs)
