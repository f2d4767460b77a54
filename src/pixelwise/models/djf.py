"""Deep joint filtering (Li et al. 2016), the learned baseline of Su et al. 2019.

CNN_T on the bicubic-upsampled target and CNN_G on the guide (each 9x9/96, 1x1/48, 5x5/1),
their outputs concatenated, then CNN_F (9x9/64, 1x1/32, 5x5/C). 56,323 parameters for depth,
which is what the PAC "lite" networks were sized to match. Convolutions keep the size (zero
padding) so the output is full resolution; like DJF+ it predicts a residual over the bicubic map.
"""

from __future__ import annotations

import torch

from ..nn.blocks import conv_stack
from .registry import register_model
from .upsampling_base import GUIDE_MEAN, GUIDE_STD, GuidedUpsampler, zero_init

BRANCH_KERNELS = (9, 1, 5)  # every branch: 9x9, 1x1, 5x5 convolutions, ReLU between them


class DeepJointFilter(GuidedUpsampler):
    def __init__(self, factor: int = 8, kind: str = "depth", *, normalize: bool = True, residual: bool = True):
        super().__init__(factor, kind, normalize=normalize, residual=residual)
        self.target_branch = conv_stack(self.channels, [96, 48, 1], BRANCH_KERNELS, act_last=False)
        self.guide_branch = conv_stack(3, [96, 48, 1], BRANCH_KERNELS, act_last=False)
        self.fusion = conv_stack(2, [64, 32, self.channels], BRANCH_KERNELS, act_last=False)
        if residual:
            zero_init(self.fusion[-1])

    def predict(self, x, guide, base):
        # No ReLU on the two 1-channel branch outputs: it would throw away the negative half of
        # the (zero-mean) target signal before the fusion network sees it.
        t = self.target_branch(base)
        g = self.guide_branch((guide - GUIDE_MEAN) / GUIDE_STD)
        return self.fusion(torch.cat([t, g], dim=1))


@register_model("djf", task="upsample")
def djf(factor: int = 8, kind: str = "depth", **kwargs) -> DeepJointFilter:
    return DeepJointFilter(factor, kind, **kwargs)
