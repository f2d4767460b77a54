"""Bilateral filtering modules with optionally learnable bandwidths."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..checks import check_float
from ..ops import joint_bilateral_filter, joint_bilateral_upsample


class _Bandwidths(nn.Module):
    """``sigma_space`` and ``sigma_color``, stored as logs when learnable so they stay positive."""

    def __init__(self, sigma_space, sigma_color, learnable):
        super().__init__()
        # A fixed bandwidth may be inf (no weighting along that axis); a learnable one is a finite log.
        sigma_space = check_float(sigma_space, "sigma_space", low=0, low_open=True, allow_inf=not learnable)
        sigma_color = check_float(sigma_color, "sigma_color", low=0, low_open=True, allow_inf=not learnable)
        self.learnable = learnable
        if learnable:
            self.log_sigma_space = nn.Parameter(torch.tensor(math.log(sigma_space)))
            self.log_sigma_color = nn.Parameter(torch.tensor(math.log(sigma_color)))
        else:
            self._sigmas = (sigma_space, sigma_color)

    def sigmas(self):
        if self.learnable:
            return self.log_sigma_space.exp(), self.log_sigma_color.exp()
        return self._sigmas


class JointBilateralFilter(_Bandwidths):
    """Module form of :func:`pixelwise.ops.joint_bilateral_filter`; call as ``m(image, guide)``.

    Example:
        >>> import torch
        >>> from pixelwise.nn import JointBilateralFilter
        >>> JointBilateralFilter(5, 2.0, 0.1)(torch.rand(1, 1, 32, 32), torch.rand(1, 3, 32, 32)).shape
        torch.Size([1, 1, 32, 32])
    """

    def __init__(self, kernel_size: int = 5, sigma_space: float = 1.5, sigma_color: float = 0.1, learnable: bool = False):
        super().__init__(sigma_space, sigma_color, learnable)
        self.kernel_size = kernel_size

    def forward(self, image, guide):
        s, c = self.sigmas()
        return joint_bilateral_filter(image, guide, self.kernel_size, s, c)


class JointBilateralUpsample(_Bandwidths):
    """Module form of :func:`pixelwise.ops.joint_bilateral_upsample`; ``m(source, guide)``.

    Example:
        >>> import torch
        >>> from pixelwise.nn import JointBilateralUpsample
        >>> JointBilateralUpsample(5, 1.0, 0.1)(torch.rand(1, 1, 8, 8), torch.rand(1, 3, 64, 64)).shape
        torch.Size([1, 1, 64, 64])
    """

    def __init__(self, kernel_size: int = 5, sigma_space: float = 1.0, sigma_color: float = 0.1, learnable: bool = False):
        super().__init__(sigma_space, sigma_color, learnable)
        self.kernel_size = kernel_size

    def forward(self, source, guide):
        s, c = self.sigmas()
        return joint_bilateral_upsample(source, guide, self.kernel_size, s, c)
