"""Using a trained LiDAR model: segment a point cloud (network on the range image, labels read
back for *every* point, optional kNN refinement), score labelled scans per point and per pixel,
and write submission-ready predictions.

The model comes from :func:`pixelwise.tasks.load_run` (task ``lidar``), which attaches the
range-image projection and the kNN settings it was trained with (``loaded.extras["projection"]``,
``loaded.extras["knn"]``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...data.datasets.lidar_scans import load_scan
from ...data.datasets.semantic_kitti import (IGNORE_INDEX, NUM_CLASSES, LabelMap, prediction_path,
                                             read_scan_record)
from ...data.io.ply import write_ply
from ...data.io.semantic_kitti import write_label
from ...data.transforms.range_samples import range_sample
from ...data.transforms.spherical_projection import project_labels
from ...metrics.segmentation import ROWS_AND_COLUMNS, ConfusionAccumulator
from ...ops import knn_refine
from ...report import save_png
from ..base import LoadedRun

__all__ = ["ScanPrediction", "evaluate_scans", "label_image", "predict_points", "predict_scans",
           "range_image_scores", "scores_json"]


@dataclass
class ScanPrediction:
    pixel_labels: torch.Tensor      # (H, W) network argmax per pixel
    point_labels: torch.Tensor      # (N,) read back at every point's pixel
    knn_labels: torch.Tensor | None  # (N,) after kNN refinement
    image: object                   # the RangeImage
    network_s: float
    knn_s: float


def range_image_scores(model, samples: list[dict], device=None):
    """Range-image (pixel) confusion over pre-projected samples, as in the paper's ablation."""
    acc = ConfusionAccumulator(NUM_CLASSES, ignore=(IGNORE_INDEX,))
    device = device or next(model.parameters()).device
    with torch.no_grad():
        for s in samples:
            pred = model(s["input"][None].to(device), aux=False).argmax(1)[0].cpu()
            acc.update(pred, s["labels"])
    return acc.scores()


def predict_points(loaded: LoadedRun, points: np.ndarray, *, knn: bool = True) -> ScanPrediction:
    """Segment one point cloud: network on the range image, labels read back per point, kNN."""
    x, _, image = range_sample(points, None, loaded.extras["projection"])
    device = next(loaded.model.parameters()).device
    t0 = time.perf_counter()
    with torch.no_grad():
        logits = loaded.model(x[None].to(device), aux=False)
        pixel = logits.argmax(1)[0]
    if device.type == "cuda":
        torch.cuda.synchronize()
    t1 = time.perf_counter()
    u, v = torch.from_numpy(image.u).to(device), torch.from_numpy(image.v).to(device)
    point = pixel[v, u]
    refined = None
    if knn:
        rng = torch.from_numpy(image.channels[0]).to(device)
        refined = knn_refine(rng, pixel, torch.from_numpy(image.point_range).to(device), u, v,
                             num_classes=NUM_CLASSES, ignore_index=IGNORE_INDEX, **loaded.extras["knn"].options())
        if device.type == "cuda":
            torch.cuda.synchronize()
    t2 = time.perf_counter()
    return ScanPrediction(pixel.cpu(), point.cpu(), None if refined is None else refined.cpu(), image,
                          t1 - t0, t2 - t1)


def evaluate_scans(loaded: LoadedRun, records, *, knn: bool = True, label_map: LabelMap | None = None,
                   keep_examples: int = 1, log=print) -> dict:
    """Point-level scores (with and without kNN) and range-image scores over labelled scans, under
    the benchmark server's formula (``scores``) and the papers' (``scores_rows_and_columns``)."""
    label_map = label_map or LabelMap.default()
    acc = {"point": ConfusionAccumulator(NUM_CLASSES), "pixel": ConfusionAccumulator(NUM_CLASSES)}
    if knn:
        acc["point_knn"] = ConfusionAccumulator(NUM_CLASSES)
    network_s, knn_s, examples, points_total = [], [], [], 0
    for i, record in enumerate(records):
        points, labels = load_scan(record, label_map)
        pred = predict_points(loaded, points, knn=knn)
        target = torch.from_numpy(labels)
        acc["point"].update(pred.point_labels, target)
        if knn:
            acc["point_knn"].update(pred.knn_labels, target)
        pixel_target = torch.from_numpy(project_labels(labels, pred.image, fill=IGNORE_INDEX))
        acc["pixel"].update(pred.pixel_labels, pixel_target)
        network_s.append(pred.network_s)
        knn_s.append(pred.knn_s)
        points_total += len(points)
        if i < keep_examples:
            examples.append({"name": f"{record.sequence}/{record.frame}", "range": pred.image.channels[0],
                             "mask": pred.image.mask, "target": pixel_target.numpy(),
                             "pred": pred.pixel_labels.numpy()})
        log(f"{record.sequence}/{record.frame}: {len(points)} points, network {pred.network_s * 1e3:.0f} ms"
            + (f", kNN {pred.knn_s * 1e3:.0f} ms" if knn else ""))
    scores = {name: a.scores() for name, a in acc.items()}
    papers = {name: a.scores(formula=ROWS_AND_COLUMNS) for name, a in acc.items()}
    return {"scores": scores, "scores_rows_and_columns": papers, "scans": len(records), "points": points_total,
            "network_ms": 1e3 * float(np.median(network_s)) if network_s else None,
            "knn_ms": 1e3 * float(np.median(knn_s)) if knn and knn_s else None, "examples": examples}


def predict_scans(loaded: LoadedRun, records, out: Path, *, knn: bool = True, png: bool = True, ply: bool = False,
                  label_map: LabelMap | None = None, log=print) -> list[Path]:
    """Write submission-ready ``.label`` files (``out/sequences/<seq>/predictions/<frame>.label``),
    plus a colour range-image PNG (``out/images/<seq>/<frame>.png``) and optionally a coloured
    point cloud (``out/ply/<seq>/<frame>.ply``) per scan.

    A scan with a ``.label`` file beside it (``record.label_path``) must have one label per point
    (:func:`~pixelwise.data.datasets.semantic_kitti.read_scan_record`); a mismatch is an error."""
    label_map = label_map or LabelMap.default()
    out = Path(out)
    written = []
    for record in records:
        points = read_scan_record(record)
        pred = predict_points(loaded, points, knn=knn)
        labels = (pred.knn_labels if knn else pred.point_labels).numpy()
        path = prediction_path(out, record)
        write_label(path, label_map.to_raw(labels))
        written.append(path)
        # Figures live outside sequences/ so that folder zips as a submission as it is.
        if png:
            save_png(out / "images" / record.sequence / f"{record.frame}.png",
                     label_image(pred.pixel_labels.numpy(), pred.image.mask, label_map))
        if ply:
            write_ply(out / "ply" / record.sequence / f"{record.frame}.ply", points[:, :3], label_map.colors[labels])
        log(f"{record.sequence}/{record.frame}: {len(points)} points -> {path}")
    return written


def label_image(labels: np.ndarray, mask: np.ndarray, label_map: LabelMap) -> np.ndarray:
    """(H, W, 3) uint8 colours of a label map (SemanticKITTI colours), black where empty."""
    rgb = label_map.colors[np.clip(labels, 0, len(label_map.colors) - 1)]
    rgb[~mask] = 0
    return rgb


def scores_json(result: dict, class_names) -> dict:
    """The JSON-friendly part of :func:`evaluate_scans`' result: the server formula's scores per
    evaluation (``point``, ``point_knn``, ``pixel``) and, under ``rows_and_columns``, the mIoU and
    accuracy of the formula the SqueezeSegV3 and RangeNet++ papers report."""
    papers = {name: {"miou": s.miou, "miou_present": s.miou_present, "accuracy": s.accuracy}
              for name, s in result["scores_rows_and_columns"].items()}
    return {"scans": result["scans"], "points": result["points"], "network_ms": result["network_ms"],
            "knn_ms": result["knn_ms"], "formula": "server", "rows_and_columns": papers,
            **{name: s.to_dict(class_names) for name, s in result["scores"].items()}}
