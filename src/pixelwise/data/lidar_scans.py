"""LiDAR scans as training / evaluation samples: read a SemanticKITTI scan and its labels, map the
labels to the 19 training classes, optionally augment the points, project to a range image.

Augmentation acts on the *points*, before projection, so the range image stays a true sensor
view: a rotation about the vertical axis (the sensor spins, so any heading is plausible), a
mirror across the x-z plane (left/right traffic), and dropping a few percent of the points
(LiDAR dropouts). Every choice comes from a generator seeded by (seed, epoch, index), so a
resumed run sees the same samples as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .semantic_kitti import LabelMap, ScanRecord, read_label, read_scan
from .spherical_projection import ProjectionConfig, RangeImage, normalize, project, project_labels


@dataclass(frozen=True)
class Augmentation:
    rotate: bool = True       # uniform heading about z
    flip: bool = True         # y -> -y with probability 1/2
    drop_max: float = 0.1     # drop a uniform fraction in [0, drop_max] of the points

    def __post_init__(self):
        if not 0 <= self.drop_max < 1:
            raise ValueError(f"drop_max must be in [0, 1), got {self.drop_max}")

    def apply(self, points: np.ndarray, labels: np.ndarray, rng: np.random.Generator):
        points = points.copy()
        if self.rotate:
            a = rng.uniform(-np.pi, np.pi)
            c, s = np.cos(a), np.sin(a)
            x, y = points[:, 0].copy(), points[:, 1].copy()
            points[:, 0], points[:, 1] = c * x - s * y, s * x + c * y
        if self.flip and rng.random() < 0.5:
            points[:, 1] = -points[:, 1]
        if self.drop_max > 0 and len(points):
            keep = rng.random(len(points)) >= rng.uniform(0, self.drop_max)
            points, labels = points[keep], labels[keep]
        return points, labels


def load_scan(record: ScanRecord, label_map: LabelMap, *, require_labels: bool = True):
    """``(points (N,4) float32, train labels (N,) int64 or None)`` of one scan."""
    points = read_scan(record.scan_path)
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


def range_sample(points: np.ndarray, labels: np.ndarray | None, projection: ProjectionConfig):
    """The network input of a point cloud: ``(input (5,H,W) float32 tensor, labels (H,W) int64
    tensor or None, the RangeImage)``. Empty pixels are 0 in the input and class 0 (ignored)."""
    image = project(points, projection)
    x = torch.from_numpy(normalize(image.channels, image.mask))
    y = None if labels is None else torch.from_numpy(project_labels(labels, image, fill=0))
    return x, y, image


class LidarScans(torch.utils.data.Dataset):
    """Labelled scans as ``{"input": (5,H,W) float32, "labels": (H,W) int64}`` range images.

    Args:
        records: scans with labels (from :func:`pixelwise.data.semantic_kitti.find_scans`).
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


__all__ = ["Augmentation", "LidarScans", "RangeImage", "label_histogram", "load_scan", "range_sample"]
