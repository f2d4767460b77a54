"""The LiDAR evaluation report: per-class IoU with and without kNN refinement (points) and on the
range image, then the range image, ground truth and prediction of the first scans."""

from __future__ import annotations

import numpy as np

from ...data.datasets.semantic_kitti import CLASS_NAMES, IGNORE_INDEX, LabelMap
from ...report import Figure, Report, Section, colorize_scalar
from .inference import label_image

__all__ = ["SCORE_LABELS", "example_sections", "iou_table", "lidar_report"]

SCORE_LABELS = {"point": "points", "point_knn": "points + kNN", "pixel": "range image"}


def iou_table(scores: dict, caption: str, papers: dict | None = None):
    """Rows = classes (then mIoU and accuracy), one column per kind of score; ``papers`` (the same
    kinds scored with the rows-and-columns formula) adds its mIoU as a last row."""
    kinds = [k for k in SCORE_LABELS if k in scores]
    header = ["class"] + [SCORE_LABELS[k] for k in kinds] + ["in ground truth"]
    rows = []
    for c, name in enumerate(CLASS_NAMES):
        if c == IGNORE_INDEX:
            continue
        first = scores[kinds[0]]
        rows.append([name] + [100 * float(scores[k].iou[c]) for k in kinds] + ["yes" if first.present[c] else "no"])
    rows.append(["mIoU (19 classes)"] + [100 * scores[k].miou for k in kinds] + [""])
    rows.append(["mIoU (classes in ground truth)"] + [100 * scores[k].miou_present for k in kinds] + [""])
    rows.append(["accuracy"] + [100 * scores[k].accuracy for k in kinds] + [""])
    if papers:
        rows.append(["mIoU, papers' formula (19 classes)"] + [100 * papers[k].miou for k in kinds] + [""])
    return caption, header, rows


def _strip(image: np.ndarray, rows: int = 3) -> np.ndarray:
    # Range images are 64 x 2048: repeat rows so the strip is legible at page width.
    return np.repeat(image, rows, axis=0)


def example_sections(examples: list[dict], label_map: LabelMap) -> list[Section]:
    sections = []
    for ex in examples:
        mask = ex["mask"]
        values = ex["range"][mask]
        vmax = float(np.percentile(values, 99)) if values.size else 1.0
        sections.append(Section(f"scan {ex['name']}", [
            Figure("range (m)", _strip(colorize_scalar(np.where(mask, ex["range"], 0), mask, vmin=0, vmax=vmax)),
                   f"0 to {vmax:.0f} m; grey: empty pixels"),
            Figure("ground truth", _strip(label_image(ex["target"], mask & (ex["target"] != IGNORE_INDEX), label_map)),
                   "SemanticKITTI colours; black: empty or unlabelled"),
            Figure("prediction", _strip(label_image(ex["pred"], mask, label_map))),
        ], text="Rows are the 64 beams (top = highest), columns the azimuth (centre = straight ahead)."))
    return sections


def lidar_report(result: dict, *, title: str, description: str) -> Report:
    """The report of an :func:`~.inference.evaluate_scans` result."""
    tables = [iou_table(result["scores"], "IoU (%) per class", result.get("scores_rows_and_columns"))]
    timing = [["network (median ms per scan)", result["network_ms"]]]
    if result.get("knn_ms") is not None:
        timing.append(["kNN refinement (median ms per scan)", result["knn_ms"]])
        timing.append(["kNN / network", result["knn_ms"] / result["network_ms"] if result["network_ms"] else None])
    tables.append(("Time", ["what", "value"], timing))
    summary = (f"{description}. Point scores follow the SemanticKITTI protocol: every point of every scan is "
               f"scored (also points that lost their range-image pixel to a closer point), class 0 is ignored, "
               f"and the mIoU averages all 19 classes (absent ones count 0); the mIoU over classes present in the "
               f"ground truth is shown too. IoU and accuracy use the benchmark server's formula (a labelled point "
               f"predicted as class 0 is a miss); the last row is the older formula of the SqueezeSegV3 and "
               f"RangeNet++ papers, which ignores such points. The range-image score only counts the points kept "
               f"in the image.")
    return Report(title, summary=summary, tables=tables,
                  sections=example_sections(result.get("examples", []), LabelMap.default()))
