"""Evaluation measures, each checked against a hand-computed case in the tests."""

from .regression import endpoint_error, mae, rmse
from .segmentation import ConfusionAccumulator, SegmentationScores, confusion_matrix, segmentation_scores
from .instances import IOU_THRESHOLDS, InstanceAP, ProposalRecall, mask_iou, voc_ap
from .boundaries import BoundaryPR, boundaries_from_segmentation, match_boundaries

__all__ = ["endpoint_error", "mae", "rmse", "ConfusionAccumulator", "SegmentationScores", "confusion_matrix",
           "segmentation_scores", "IOU_THRESHOLDS", "InstanceAP", "ProposalRecall", "mask_iou", "voc_ap",
           "BoundaryPR", "boundaries_from_segmentation", "match_boundaries"]
from .depth import DEPTH_METRICS, DepthMetricAccumulator, depth_metrics
from .normals import NORMAL_THRESHOLDS, angular_errors, normal_metrics

__all__ += ["DEPTH_METRICS", "DepthMetricAccumulator", "depth_metrics", "NORMAL_THRESHOLDS", "angular_errors",
            "normal_metrics"]
