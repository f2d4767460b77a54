"""Spherical projection of LiDAR point clouds to range images (RangeNet++ / SqueezeSeg).

Each point ``(x, y, z)`` gets

* ``r = sqrt(x^2 + y^2 + z^2)``, ``yaw = atan2(y, x)``, ``pitch = asin(z / r)`` (0 when r = 0);
* column ``u = floor(0.5 * (1 - yaw / pi) * W)`` and row
  ``v = floor((1 - (pitch - fov_down) / (fov_up - fov_down)) * H)``, both clipped to the image.
  For ``fov_down <= 0 <= fov_up`` (the HDL-64E case) this is the published
  ``(1 - (pitch + |fov_down|) / fov) * H`` with ``fov = |fov_up| + |fov_down|``.

Row 0 is the top (``fov_up``); column 0 is behind the sensor (yaw = +pi) and the column
index grows clockwise seen from above, so straight ahead (+x) is column W/2.

Several points can fall into one pixel; the pixel keeps the closest one (ties: the lower point
index). Every point keeps its ``(v, u)`` so per-pixel predictions can be read back per point
with :func:`unproject` (evaluation is per point).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "CHANNELS",
    "EMPTY",
    "SENSOR_MEANS",
    "SENSOR_STDS",
    "ProjectionConfig",
    "RangeImage",
    "normalize",
    "project",
    "project_labels",
    "unproject",
]

CHANNELS = ("range", "x", "y", "z", "remission")
# Per-channel statistics of SemanticKITTI scans, in CHANNELS order (RangeNet++ / SqueezeSegV3).
SENSOR_MEANS = (12.12, 10.88, 0.23, -1.04, 0.21)
SENSOR_STDS = (12.32, 11.47, 6.91, 0.86, 0.16)
EMPTY = -1.0


@dataclass(frozen=True)
class ProjectionConfig:
    """Range image size and the sensor's vertical field of view (degrees).

    Defaults are the Velodyne HDL-64E of KITTI: 64 x 2048, +3 deg .. -25 deg. ``means`` / ``stds``
    standardise the network input (:func:`normalize`); a model must be fed the statistics it was
    trained with (an imported official checkpoint brings its yaml's).
    """

    height: int = 64
    width: int = 2048
    fov_up: float = 3.0
    fov_down: float = -25.0
    means: tuple[float, ...] = SENSOR_MEANS  # per-channel input normalisation (range, x, y, z, remission)
    stds: tuple[float, ...] = SENSOR_STDS

    def __post_init__(self) -> None:
        for name in ("height", "width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("fov_up", "fov_down"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not np.isfinite(value):
                raise ValueError(f"{name} must be a finite number of degrees, got {value!r}")
        if not self.fov_up > self.fov_down:
            raise ValueError(f"fov_up must be > fov_down, got fov_up={self.fov_up}, fov_down={self.fov_down}")
        for name in ("means", "stds"):
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != len(CHANNELS) or not all(np.isfinite(value)):
                raise ValueError(f"{name} must be {len(CHANNELS)} finite numbers ({', '.join(CHANNELS)}), got "
                                 f"{getattr(self, name)!r}")
            object.__setattr__(self, name, value)
        if min(self.stds) <= 0:
            raise ValueError(f"stds must all be > 0, got {self.stds}")


@dataclass
class RangeImage:
    """A projected scan.

    Fields:
        channels: ``float32 (5, H, W)``: range, x, y, z, remission of the kept point; EMPTY
            where no point fell.
        mask: ``bool (H, W)``: True where a point was kept.
        point_index: ``int64 (H, W)``: index of the kept point, -1 where empty.
        u: ``int64 (N,)``: column of every point.
        v: ``int64 (N,)``: row of every point.
        point_range: ``float32 (N,)``: range of every point.
    """

    channels: np.ndarray
    mask: np.ndarray
    point_index: np.ndarray
    u: np.ndarray
    v: np.ndarray
    point_range: np.ndarray

    @property
    def height(self) -> int:
        """Number of rows H."""
        return self.mask.shape[0]

    @property
    def width(self) -> int:
        """Number of columns W."""
        return self.mask.shape[1]

    @property
    def num_points(self) -> int:
        """Number of points N of the projected scan."""
        return len(self.u)


def project(points: np.ndarray, config: ProjectionConfig = ProjectionConfig()) -> RangeImage:
    """Project a point cloud to a range image (see the module docstring for the formulas).

    Args:
        points: ``(N, 4)`` x, y, z, remission or ``(N, 3)`` x, y, z (remission 0) real array,
            finite; N may be 0 (all pixels empty).
        config: image size and field of view.

    Returns:
        The :class:`RangeImage`. Each pixel keeps its closest point, ties going to the lower
        point index; the result does not depend on numpy's write order.

    Example:
        >>> img = project(np.array([[10.0, 0.0, 0.0, 0.5]]), ProjectionConfig(64, 2048))
        >>> int(img.u[0]), int(img.v[0]), img.channels[:, img.v[0], img.u[0]].tolist()
        (1024, 6, [10.0, 10.0, 0.0, 0.0, 0.5])
    """
    if not isinstance(config, ProjectionConfig):
        raise TypeError(f"config must be a ProjectionConfig, got {type(config).__name__}")
    if not isinstance(points, np.ndarray):
        raise TypeError(f"points must be a numpy array, got {type(points).__name__}")
    if points.ndim != 2 or points.shape[1] not in (3, 4):
        raise ValueError(f"points must have shape (N, 4) or (N, 3), got {points.shape}")
    if not (np.issubdtype(points.dtype, np.floating) or np.issubdtype(points.dtype, np.integer)):
        raise TypeError(f"points must have a real dtype, got {points.dtype}")
    if not np.isfinite(points).all():
        raise ValueError("points must be finite (a NaN or inf has no pixel)")
    h, w = config.height, config.width
    n = len(points)
    values = np.zeros((n, 5), dtype=np.float32)
    values[:, 1 : 1 + points.shape[1]] = points

    # Angles in float64: float32 rounding would move points near pixel borders.
    xyz = points[:, :3].astype(np.float64)
    r = np.sqrt((xyz**2).sum(axis=1))
    pitch = np.arcsin(np.clip(np.divide(xyz[:, 2], r, out=np.zeros(n), where=r > 0), -1.0, 1.0))
    yaw = np.arctan2(xyz[:, 1], xyz[:, 0])
    up, down = np.radians(config.fov_up), np.radians(config.fov_down)
    u = np.clip(np.floor(0.5 * (1.0 - yaw / np.pi) * w), 0, w - 1).astype(np.int64)
    v = np.clip(np.floor((1.0 - (pitch - down) / (up - down)) * h), 0, h - 1).astype(np.int64)
    point_range = r.astype(np.float32)
    values[:, 0] = point_range

    # Sort by pixel, then range, then index; the first point of each pixel's run wins.
    # Ranges are compared as the float32 values reported in point_range.
    pixel = v * w + u
    index = np.arange(n, dtype=np.int64)
    order = np.lexsort((index, point_range, pixel))
    sorted_pixel = pixel[order]
    first = np.ones(n, dtype=bool)
    first[1:] = sorted_pixel[1:] != sorted_pixel[:-1]
    kept = order[first]
    kept_pixel = pixel[kept]

    channels = np.full((5, h * w), EMPTY, dtype=np.float32)
    channels[:, kept_pixel] = values[kept].T
    point_index = np.full(h * w, -1, dtype=np.int64)
    point_index[kept_pixel] = kept
    return RangeImage(
        channels=channels.reshape(5, h, w),
        mask=(point_index >= 0).reshape(h, w),
        point_index=point_index.reshape(h, w),
        u=u,
        v=v,
        point_range=point_range,
    )


def normalize(
    channels: np.ndarray,
    mask: np.ndarray,
    means: tuple[float, ...] = SENSOR_MEANS,
    stds: tuple[float, ...] = SENSOR_STDS,
) -> np.ndarray:
    """Standardise range-image channels: ``(c - mean) / std`` on valid pixels, 0 on empty ones.

    Args:
        channels: ``(C, H, W)`` real array (C = 5 for the default statistics).
        mask: ``bool (H, W)``, True on valid pixels.
        means: C per-channel means.
        stds: C per-channel standard deviations, all > 0.

    Returns:
        ``float32 (C, H, W)``.

    Example:
        >>> img = project(np.array([[10.0, 0.0, 0.0, 0.5]]), ProjectionConfig(2, 4))
        >>> x = normalize(img.channels, img.mask)
        >>> float(abs(x[:, ~img.mask]).max()), round(float(x[0][img.mask][0]), 4)
        (0.0, -0.1721)
    """
    if not isinstance(channels, np.ndarray) or channels.ndim != 3:
        raise ValueError(f"channels must be a (C, H, W) numpy array, got {getattr(channels, 'shape', type(channels))}")
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != channels.shape[1:]:
        raise ValueError(
            f"mask must be a bool numpy array of shape {channels.shape[1:]}, "
            f"got {getattr(mask, 'dtype', type(mask))} {getattr(mask, 'shape', '')}"
        )
    means_arr = np.asarray(means, dtype=np.float64)
    stds_arr = np.asarray(stds, dtype=np.float64)
    c = channels.shape[0]
    if means_arr.shape != (c,) or stds_arr.shape != (c,):
        raise ValueError(f"means and stds must have {c} entries (one per channel), got {len(means)} and {len(stds)}")
    if not (stds_arr > 0).all():
        raise ValueError(f"stds must all be > 0, got {tuple(stds)}")
    out = (channels - means_arr[:, None, None]) / stds_arr[:, None, None]
    return np.where(mask, out, 0.0).astype(np.float32)


def project_labels(labels: np.ndarray, image: RangeImage, fill: int = 0) -> np.ndarray:
    """Per-pixel labels: the label of the point each pixel kept.

    Args:
        labels: ``(N,)`` integer labels of the projected points.
        image: the :class:`RangeImage` of those points.
        fill: label of empty pixels.

    Returns:
        ``int64 (H, W)``.

    Example:
        >>> img = project(np.array([[10.0, 0.0, 0.0], [-10.0, 0.0, 0.0]]), ProjectionConfig(2, 4))
        >>> project_labels(np.array([7, 9]), img, fill=-1).tolist()
        [[9, -1, 7, -1], [-1, -1, -1, -1]]
    """
    if not isinstance(image, RangeImage):
        raise TypeError(f"image must be a RangeImage, got {type(image).__name__}")
    if not isinstance(labels, np.ndarray) or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be an integer numpy array, got {getattr(labels, 'dtype', type(labels))}")
    if labels.shape != (image.num_points,):
        raise ValueError(f"labels must have shape ({image.num_points},) (one per point), got {labels.shape}")
    if isinstance(fill, bool) or not isinstance(fill, (int, np.integer)):
        raise TypeError(f"fill must be an int, got {fill!r}")
    out = np.full(image.point_index.shape, fill, dtype=np.int64)
    out[image.mask] = labels[image.point_index[image.mask]]
    return out


def unproject(values, image: RangeImage):
    """Read per-pixel values back per point, at each point's ``(v, u)``.

    Args:
        values: numpy array or torch tensor of shape ``(..., H, W)`` (e.g. logits
            ``(C, H, W)`` or predictions ``(H, W)``).
        image: the :class:`RangeImage` the values belong to.

    Returns:
        Same type, shape ``(..., N)``; points that lost their pixel to a closer point get the
        value of that pixel.

    Example:
        >>> img = project(np.array([[10.0, 0.0, 0.0], [-10.0, 0.0, 0.0]]), ProjectionConfig(2, 4))
        >>> unproject(np.arange(8).reshape(2, 4), img).tolist()
        [2, 0]
    """
    if not isinstance(image, RangeImage):
        raise TypeError(f"image must be a RangeImage, got {type(image).__name__}")
    if not isinstance(values, (np.ndarray, torch.Tensor)):
        raise TypeError(f"values must be a numpy array or torch tensor, got {type(values).__name__}")
    shape = tuple(values.shape)
    if len(shape) < 2 or shape[-2:] != (image.height, image.width):
        raise ValueError(f"values must have shape (..., {image.height}, {image.width}), got {shape}")
    if isinstance(values, np.ndarray):
        return values[..., image.v, image.u]
    v = torch.from_numpy(image.v).to(values.device)
    u = torch.from_numpy(image.u).to(values.device)
    return values[..., v, u]
