"""Semantic segmentation with PAC-CRF, PAC hot-swap and the fully connected CRF: ``pixelwise segment``.

``task.py`` (the :class:`SegmentTask`: staged training, evaluation, prediction), ``config.py``,
``data.py``, ``inference.py`` (class maps and scores of a trained network), ``dense_search.py``
(the dense CRF's grid search), ``report.py``, ``demo.py`` and ``bench.py``.
"""

from .config import SegmentConfig, StageConfig
from .dense_search import grid_search_dense_crf
from .inference import evaluate_dataset, predict_folder, predict_image
from .task import SegmentTask

__all__ = ["SegmentConfig", "SegmentTask", "StageConfig", "evaluate_dataset", "grid_search_dense_crf",
           "predict_folder", "predict_image"]
