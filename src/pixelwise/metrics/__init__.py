"""Evaluation measures, each checked against a hand-computed case in the tests."""

from .regression import endpoint_error, mae, rmse
from .segmentation import ConfusionAccumulator, SegmentationScores, confusion_matrix, segmentation_scores
from .instances import IOU_THRESHOLDS, InstanceAP, ProposalRecall, mask_iou, voc_ap
from .boundaries import BoundaryPR, boundaries_from_segmentation, match_boundaries

__all__ = ["endpoint_error", "mae", "rmse", "ConfusionAccumulator", "SegmentationScores", "confusion_matrix",
           "segmentation_scores", "IOU_THRESHOLDS", "InstanceAP", "ProposalRecall", "mask_iou", "voc_ap",
           "BoundaryPR", "boundaries_from_segmentation", "match_boundaries"]
