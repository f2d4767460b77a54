"""Deep joint filtering (Li et al. 2016), the learned baseline of Su et al. 2019.

CNN_T on the bicubic-upsampled target and CNN_G on the guide (each 9x9/96, 1x1/48, 5x5/1),
their outputs concatenated, then CNN_F (9x9/64, 1x1/32, 5x5/C). 56,323 parameters for depth,
which is what the PAC "lite" networks were sized to match. Convolutions keep the size (zero
padding) so the output is full resolution; like DJF+ it predicts a residual over the bicubic map.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .registry import register_model
from .upsampling_base import GUIDE_MEAN, GUIDE_STD, GuidedUpsampler, zero_init


def _djf_branch(in_ch: int, out_ch: int, widths: tuple[int, int]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, widths[0], 9, padding=4), nn.ReLU(inplace=True),
        nn.Conv2d(widths[0], widths[1], 1), nn.ReLU(inplace=True),
        nn.Conv2d(widths[1], out_ch, 5, padding=2),
    )


class DeepJointFilter(GuidedUpsampler):
    def __init__(self, factor: int = 8, kind: str = "depth", *, normalize: bool = True, residual: bool = True):
        super().__init__(factor, kind, normalize=normalize, residual=residual)
        self.target_branch = _djf_branch(self.channels, 1, (96, 48))
        self.guide_branch = _djf_branch(3, 1, (96, 48))
        self.fusion = _djf_branch(2, self.channels, (64, 32))
        if residual:
            zero_init(self.fusion[-1])

    def predict(self, x, guide, base):
        # No ReLU on the two 1-channel branch outputs: it would throw away the negative half of
        # the (zero-mean) target signal before the fusion network sees it.
        t = self.target_branch(base)
        g = self.guide_branch((guide - GUIDE_MEAN) / GUIDE_STD)
        return self.fusion(torch.cat([t, g], dim=1))


@register_model("djf")
def djf(factor: int = 8, kind: str = "depth", **kwargs) -> DeepJointFilter:
    return DeepJointFilter(factor, kind, **kwargs)
