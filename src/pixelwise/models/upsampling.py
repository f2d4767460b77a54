"""Guided (joint) upsampling models: importing this registers all of them."""

from .classical_upsampling import InterpolationUpsampler, JointBilateralUpsampler
from .djf import DeepJointFilter
from .pac_upsampler import ARCHITECTURES, PacJointUpsampler

__all__ = ["ARCHITECTURES", "DeepJointFilter", "InterpolationUpsampler", "JointBilateralUpsampler", "PacJointUpsampler"]
