"""Tuning the fully connected CRF for a trained network: its parameters grid-searched on
validation images (as the Full-CRF baselines of DeepLab and PAC-CRF were), saved beside the run
as ``dense_crf.json`` and read back when the run is loaded."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, fields, replace
from pathlib import Path

import torch

from ...atomic import write_text_atomic
from ...engine import config_to_dict
from ...metrics.segmentation import SegmentationScores, confusion_matrix, segmentation_scores
from ...nn.dense_crf import DenseCRF, DenseCRFParams
from .config import IGNORE_LABEL, SegmentConfig

__all__ = ["DENSE_FILE", "grid_search_dense_crf", "read_dense_params", "search_dense_crf", "write_dense_params"]

DENSE_FILE = "dense_crf.json"


def grid_search_dense_crf(unaries: Sequence[torch.Tensor], images: Sequence[torch.Tensor],
                          labels: Sequence[torch.Tensor], grid: Mapping[str, Sequence],
                          base: DenseCRFParams = DenseCRFParams(), ignore_index: int = 255,
                          score: Callable[[SegmentationScores], float] | None = None,
                          ) -> tuple[DenseCRFParams, list[dict]]:
    """Tune the CRF on validation images, as the Full-CRF baselines of DeepLab and PAC-CRF were.

    Every combination of the values in ``grid`` (keys: :class:`DenseCRFParams` fields; fields not
    in the grid keep their value in ``base``) runs the permutohedral CRF on every image; one
    ``[target, pred]`` confusion matrix is accumulated over all images (``ignore_index`` pixels
    left out) and scored by the mIoU over the classes present in the labels.

    Args:
        unaries: ``(L, H, W)`` logits per image (the sizes may differ between images).
        images: ``(3, H, W)`` RGB in [0, 1], same sizes as the unaries.
        labels: ``(H, W)`` integer labels in ``[0, L)`` or ``ignore_index``.
        grid: field name -> values to try, e.g. ``{"appearance_xy": [50, 80], "appearance_rgb": [3, 5]}``.
        base: the values of the fields not searched.
        ignore_index: label of pixels that do not count.
        score: what to maximise, from the :class:`SegmentationScores` of one combination
            (default ``miou_present``).

    Returns:
        ``(best_params, table)``: ``table`` has one dict per combination -- its parameters plus
        ``miou`` (over classes present), ``accuracy`` (pixel accuracy) and ``score`` -- best first
        (ties keep the grid order).
    """
    names = {f.name for f in fields(DenseCRFParams)}
    for key, values in grid.items():
        if key not in names:
            raise ValueError(f"grid: unknown key {key!r}; DenseCRFParams fields are {', '.join(sorted(names))}")
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
            raise ValueError(f"grid[{key!r}]: expected a non-empty sequence of values, got {values!r}")
    if not isinstance(base, DenseCRFParams):
        raise TypeError(f"base: expected DenseCRFParams, got {type(base).__name__}")
    if not len(unaries) == len(images) == len(labels) or not unaries:
        raise ValueError(f"unaries, images, labels: expected equally many (at least one), got "
                         f"{len(unaries)}, {len(images)}, {len(labels)}")
    num_classes = unaries[0].shape[0]
    for i, (u, im, lab) in enumerate(zip(unaries, images, labels)):
        if u.dim() != 3 or u.shape[0] != num_classes or lab.shape != u.shape[1:]:
            raise ValueError(f"item {i}: expected unary ({num_classes}, H, W) and labels (H, W), got "
                             f"{tuple(u.shape)} and {tuple(lab.shape)}")
    if not any(bool((lab != ignore_index).any()) for lab in labels):
        raise ValueError(f"labels: every pixel is ignore_index={ignore_index}; nothing to score")
    score = score or (lambda s: s.miou_present)

    table = []
    for combo in itertools.product(*grid.values()):
        params = replace(base, **dict(zip(grid.keys(), combo)))
        crf = DenseCRF(params, output="prob")
        confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
        for u, im, lab in zip(unaries, images, labels):
            pred = crf(u[None], im[None])[0].argmax(0).cpu()
            keep = lab.cpu() != ignore_index
            confusion += confusion_matrix(pred[keep], lab.cpu()[keep], num_classes)
        s = segmentation_scores(confusion, ignore=())
        table.append({**asdict(params), "miou": s.miou_present, "accuracy": s.accuracy, "score": float(score(s))})
    table.sort(key=lambda row: -row["score"])
    best = DenseCRFParams(**{k: table[0][k] for k in names})
    return best, table


def search_dense_crf(model, dataset, cfg: SegmentConfig, *, max_images: int = 0,
                     log: Callable[[str], object] = print) -> tuple[DenseCRFParams, list[dict]]:
    """Grid-search the dense CRF's parameters (``cfg.dense_grid``, ``cfg.crf_steps`` mean-field
    steps) on the network's unaries for the first ``max_images`` (0: all) images of ``dataset``."""
    was_training = model.training
    model.eval()
    unaries, images, labels = [], [], []
    count = min(len(dataset), max_images or len(dataset))
    with torch.no_grad():
        for i in range(count):
            item = dataset[i]
            unaries.append(model.unaries(item["image"][None].to(next(model.parameters()).device))[0].cpu())
            images.append(item["image"])
            labels.append(item["label"])
    model.train(was_training)
    grid = {k: list(v) for k, v in cfg.dense_grid.items()}
    best, table = grid_search_dense_crf(unaries, images, labels, grid, base=DenseCRFParams(steps=cfg.crf_steps),
                                        ignore_index=IGNORE_LABEL)
    log(f"dense CRF grid search: {len(table)} settings, best mIoU {table[0]['miou']:.4f}")
    return best, table


def write_dense_params(run_dir: str | Path, params: DenseCRFParams, table: list[dict]) -> Path:
    """``run_dir/dense_crf.json``: the chosen parameters and the whole grid, best first."""
    path = Path(run_dir) / DENSE_FILE
    write_text_atomic(path, json.dumps({"params": config_to_dict(params), "grid": table}, indent=2))
    return path


def read_dense_params(run_dir: str | Path | None, log: Callable[[str], object] = print) -> DenseCRFParams:
    """The dense CRF parameters grid-searched for a run (its ``dense_crf.json``); without that
    file (or without a run folder: a zoo model), :class:`DenseCRFParams` defaults (DeepLab's VOC
    setting, not tuned for these unaries)."""
    path = Path(run_dir) / DENSE_FILE if run_dir is not None else None
    if path is None or not path.exists():
        log(f"warning: no {path or DENSE_FILE} (the run did not grid-search a dense CRF); using the default "
            f"dense CRF parameters, not tuned for this network")
        return DenseCRFParams()
    try:
        return DenseCRFParams(**json.loads(path.read_text())["params"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a dense CRF parameter file ({exc})") from None
