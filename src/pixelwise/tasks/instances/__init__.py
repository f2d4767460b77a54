"""Instance grouping with hyperspherical pixel embeddings and recurrent mean shift (Kong & Fowlkes
2018): ``pixelwise instances train|eval|predict|margin``; from Python, a run loaded with
:func:`pixelwise.tasks.load_run` (``extras["scorer"]``, ``extras["class_names"]``) and the
functions below. Extracting instances from any embedding tensor is
:func:`pixelwise.grouping.extract_instances`."""

from .config import InstancesConfig
from .inference import Prediction, evaluate_dataset, fit_scorer, predict_folder, predict_image, proposal_id_map

__all__ = ["InstancesConfig", "Prediction", "evaluate_dataset", "fit_scorer", "predict_folder", "predict_image",
           "proposal_id_map"]
