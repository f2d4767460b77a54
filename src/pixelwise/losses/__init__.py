"""Training objectives."""

from .pixel_embedding import PixelEmbeddingLoss, instance_weights, pairwise_embedding_loss, sample_pixels
from .regression import masked_mse
from .segmentation import class_weights, downsample_labels, label_frequencies, multi_layer_cross_entropy

__all__ = ["masked_mse", "class_weights", "downsample_labels", "label_frequencies", "multi_layer_cross_entropy"]
__all__ += ["PixelEmbeddingLoss", "pairwise_embedding_loss", "instance_weights", "sample_pixels"]
from .dense import class_balanced_bce, log_depth_loss, normal_loss, side_output_bce

__all__ += ["class_balanced_bce", "log_depth_loss", "normal_loss", "side_output_bce"]
