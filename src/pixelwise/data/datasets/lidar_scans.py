"""LiDAR scans as training / evaluation samples: read a SemanticKITTI scan and its labels, map the
labels to the 19 training classes, optionally augment the points
(:class:`~pixelwise.data.transforms.range_samples.Augmentation`), project to a range image
(:func:`~pixelwise.data.transforms.range_samples.range_sample`).

Augmentation draws come from a generator seeded by (seed, epoch, index), so a resumed run sees
the same samples as an uninterrupted one.
"""

from __future__ import annotations

import numpy as np
import torch

from ..io.semantic_kitti import read_label
from ..transforms.range_samples import Augmentation, range_sample
from ..transforms.spherical_projection import ProjectionConfig
from .semantic_kitti import LabelMap, ScanRecord, read_scan_record


def load_scan(record: ScanRecord, label_map: LabelMap, *, require_labels: bool = True):
    """``(points (N,4) float32, train labels (N,) int64 or None)`` of one scan.

    The points come from :func:`~pixelwise.data.datasets.semantic_kitti.read_scan_record`: a
    label file whose count differs from the scan's is an error naming both files.
    """
    points = read_scan_record(record)
    if record.label_path is None:
        if require_labels:
            raise FileNotFoundError(f"{record.scan_path}: no label file (expected {record.scan_path.parent.parent}"
                                    f"/labels/{record.frame}.label)")
        return points, None
    semantic, _ = read_label(record.label_path, num_points=len(points))
    try:
        return points, label_map.to_train(semantic)
    except ValueError as err:
        raise ValueError(f"{record.label_path}: {err}") from None


class LidarScans(torch.utils.data.Dataset):
    """Labelled scans as ``{"input": (5,H,W) float32, "labels": (H,W) int64}`` range images.

    Args:
        records: scans with labels (from :func:`pixelwise.data.datasets.semantic_kitti.find_scans`).
        projection: range-image geometry.
        label_map: raw SemanticKITTI ids -> training ids.
        augment: an :class:`Augmentation`, or None for evaluation.
        seed: base seed of the augmentation.
    """

    def __init__(self, records: list[ScanRecord], projection: ProjectionConfig, label_map: LabelMap | None = None,
                 augment: Augmentation | None = None, seed: int = 0):
        if not records:
            raise ValueError("records: no scans")
        missing = [r.scan_path for r in records if r.label_path is None]
        if missing:
            raise FileNotFoundError(f"{missing[0]}: no label file next to this scan ({len(missing)} scan(s) unlabelled)")
        self.records = list(records)
        self.projection = projection
        self.label_map = label_map or LabelMap.default()
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        points, labels = load_scan(self.records[index], self.label_map)
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            points, labels = self.augment.apply(points, labels, rng)
        x, y, _ = range_sample(points, labels, self.projection)
        return {"input": x, "labels": y}


def label_histogram(records: list[ScanRecord], label_map: LabelMap, num_classes: int) -> np.ndarray:
    """Point counts per training class over ``records`` (int64, length ``num_classes``)."""
    counts = np.zeros(num_classes, dtype=np.int64)
    for r in records:
        semantic, _ = read_label(r.label_path)
        counts += np.bincount(label_map.to_train(semantic), minlength=num_classes)[:num_classes]
    return counts


__all__ = ["LidarScans", "label_histogram", "load_scan"]
