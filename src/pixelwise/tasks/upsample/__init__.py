"""Guided (joint) upsampling of depth and flow with an RGB guide: ``pixelwise upsample ...``.

The Python API: :class:`UpsampleConfig` and training through the task
(``get_task("upsample").train(cfg, run_dir)``), :func:`search_jbu`, :func:`load_method`,
:func:`evaluate_methods` on :func:`evaluation_pairs`, and prediction from files
(:func:`read_prediction_inputs`, :func:`predict_map`, :func:`write_prediction`).
"""

from .evaluation import error_metrics, evaluate_methods, evaluation_pairs, normalised_error, validation_pairs
from .prediction import predict_map, read_prediction_inputs, write_prediction
from .config import LEARNED, PARAMETER_FREE, UpsampleConfig
from .task import Method, UpsampleTask, jbu_grid, load_method, search_jbu

__all__ = ["LEARNED", "PARAMETER_FREE", "Method", "UpsampleConfig", "UpsampleTask", "error_metrics",
           "evaluate_methods", "evaluation_pairs", "jbu_grid", "load_method", "normalised_error", "predict_map",
           "read_prediction_inputs", "search_jbu", "validation_pairs", "write_prediction"]
