"""LiDAR point-cloud segmentation (SqueezeSegV3, Xu et al. 2020): ``pixelwise lidar ...``.

Load a trained model with ``pixelwise.tasks.load_run(spec, task="lidar")``, then segment point
clouds with :func:`predict_points`, score labelled scans with :func:`evaluate_scans` or write
submission files with :func:`predict_scans`.
"""

from .config import KnnConfig, LidarConfig
from .inference import ScanPrediction, evaluate_scans, predict_points, predict_scans
from .scans import prepare_synthetic

__all__ = ["KnnConfig", "LidarConfig", "ScanPrediction", "evaluate_scans", "predict_points", "predict_scans",
           "prepare_synthetic"]
