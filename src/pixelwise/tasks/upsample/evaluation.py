"""Scoring guided upsamplers: the error metrics, the held-out scenes (validation and test) and the
side-by-side comparison of several methods on the same pairs."""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn

from ...data.datasets.upsampling_sources import open_dataset
from ...data.transforms.upsampling_pairs import crop_to_multiple, make_pair
from ...metrics import endpoint_error, mae, rmse
from ...models.upsampling_base import normalization_stats

__all__ = ["VALIDATION_SEED", "error_metrics", "evaluate_methods", "evaluation_pairs", "model_device",
           "normalised_error", "validation_pairs"]

VALIDATION_SEED = 1_000_003  # synthetic validation scenes never coincide with training scenes


def error_metrics(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, kind: str) -> dict[str, torch.Tensor]:
    """Per-image metrics: RMSE and MAE for depth, EPE (and RMSE) for flow."""
    if kind == "flow":
        return {"epe": endpoint_error(pred, target, valid), "rmse": rmse(pred, target, valid)}
    return {"rmse": rmse(pred, target, valid), "mae": mae(pred, target, valid)}


def model_device(model: nn.Module) -> torch.device:
    """Where ``model``'s weights are (the CPU for a model without any, such as bicubic)."""
    first = next(itertools.chain(model.parameters(), model.buffers()), None)
    return torch.device("cpu") if first is None else first.device


def normalised_error(model: nn.Module, pairs: list[dict]) -> float:
    """Mean over pairs of RMSE in units of each pair's low-res scale (unit-free validation); the
    pairs (on the CPU) meet the model on its device."""
    device = model_device(model)
    errors = []
    with torch.no_grad():
        for p in pairs:
            x, g = p["target_lr"][None], p["image"][None]
            _, scale = normalization_stats(x)
            pred = model(x.to(device), g.to(device)).cpu()
            errors.append(float(rmse(pred, p["target"][None], p["valid"][None])) / float(scale))
    return float(np.mean(errors))


def validation_pairs(kind: str, factor: int, count: int, size: int) -> list[dict]:
    """``count`` held-out generated ``size`` x ``size`` scenes (model selection, JBU's search)."""
    base = open_dataset("synthetic", kind, synthetic_length=count, synthetic_size=size, seed=VALIDATION_SEED)
    return [make_pair(base[i], factor, kind) for i in range(len(base))]


def evaluation_pairs(spec: str, factor: int, kind: str, target_scale: float = 1000.0, *,
                     follow_symlinks: bool = False) -> list[dict]:
    """The test pairs of data source ``spec``, each centre-cropped to a multiple of ``factor``."""
    data = open_dataset(spec, kind, split="test", synthetic_length=8, seed=VALIDATION_SEED + 1,
                        target_scale=target_scale, follow_symlinks=follow_symlinks)
    return [make_pair(crop_to_multiple(data[i], factor), factor, kind) for i in range(len(data))]


def evaluate_methods(methods: list[tuple[str, nn.Module]], pairs: list[dict], kind: str, *,
                     keep_predictions: int = 1, device: str | torch.device = "cpu"):
    """Metrics of every method on every pair: ``{method: {metric: mean over images}}``, plus the
    predictions of the first ``keep_predictions`` pairs for figures (on the CPU)."""
    results, predictions = {}, {}
    for label, model in methods:
        per_image: dict[str, list[float]] = {}
        with torch.no_grad():
            for i, p in enumerate(pairs):
                pred = model(p["target_lr"][None].to(device), p["image"][None].to(device)).cpu()
                for key, value in error_metrics(pred, p["target"][None], p["valid"][None], kind).items():
                    per_image.setdefault(key, []).append(float(value))
                if i < keep_predictions:
                    predictions.setdefault(label, []).append(pred[0])
        results[label] = {key: float(np.mean(v)) for key, v in per_image.items()}
        results[label]["images"] = len(pairs)
    return results, predictions
