"""Evaluation measures, each checked against a hand-computed case in the tests."""

from .regression import endpoint_error, mae, rmse
from .segmentation import ConfusionAccumulator, SegmentationScores, confusion_matrix, segmentation_scores

__all__ = ["endpoint_error", "mae", "rmse", "ConfusionAccumulator", "SegmentationScores", "confusion_matrix",
           "segmentation_scores"]
