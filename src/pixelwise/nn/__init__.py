"""nn.Module wrappers and blocks built on :mod:`pixelwise.ops`: parameters live here,
arithmetic lives in ops."""

from .bilateral import JointBilateralFilter, JointBilateralUpsample
from .blocks import BasicBlock, conv_norm_act, conv_stack, dilated_resnet
from .dense_crf import DenseCRF
from .hot_swap import convert_to_pac
from .mean_shift import RecurrentMeanShift
from .pac import PacConv2d, PacConvTranspose2d, PacPool2d
from .pac_crf import PacCRF, PacCRFLoose, PairwiseKernel
from .sac import CAM, CBAM, SacBlock, SacConv2d, SqueezeExcitation

__all__ = [
    "BasicBlock",
    "conv_norm_act",
    "conv_stack",
    "dilated_resnet",
    "PacConv2d",
    "PacConvTranspose2d",
    "PacPool2d",
    "SacBlock",
    "SacConv2d",
    "SqueezeExcitation",
    "CBAM",
    "CAM",
    "JointBilateralFilter",
    "JointBilateralUpsample",
    "RecurrentMeanShift",
    "PacCRF",
    "PacCRFLoose",
    "PairwiseKernel",
    "DenseCRF",
    "convert_to_pac",
]

from .gating import DepthAwareGating, MultiPool, PagResidual, RecurrentRefinement  # noqa: E402

__all__ += ["DepthAwareGating", "RecurrentRefinement", "PagResidual", "MultiPool"]
