"""LiDAR point clouds into network samples: point augmentation, then the range-image input.

Augmentation acts on the *points*, before projection, so the range image stays a true sensor
view: a rotation about the vertical axis (the sensor spins, so any heading is plausible), a
mirror across the x-z plane (left/right traffic), and dropping a few percent of the points
(LiDAR dropouts). Every choice comes from the generator the caller passes (the dataset seeds it
by (seed, epoch, index), so a resumed run sees the same samples as an uninterrupted one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .spherical_projection import ProjectionConfig, normalize, project, project_labels

__all__ = ["Augmentation", "range_sample"]


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


def range_sample(points: np.ndarray, labels: np.ndarray | None, projection: ProjectionConfig):
    """The network input of a point cloud: ``(input (5,H,W) float32 tensor, labels (H,W) int64
    tensor or None, the RangeImage)``. Empty pixels are 0 in the input and class 0 (ignored)."""
    image = project(points, projection)
    x = torch.from_numpy(normalize(image.channels, image.mask, projection.means, projection.stds))
    y = None if labels is None else torch.from_numpy(project_labels(labels, image, fill=0))
    return x, y, image
