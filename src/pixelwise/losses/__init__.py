"""Training objectives."""

from .regression import masked_mse
from .segmentation import class_weights, downsample_labels, label_frequencies, multi_layer_cross_entropy

__all__ = ["masked_mse", "class_weights", "downsample_labels", "label_frequencies", "multi_layer_cross_entropy"]
