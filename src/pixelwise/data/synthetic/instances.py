"""Synthetic instance-segmentation scenes: the embedded default data for pixel-embedding grouping.

Each scene is rendered from a :class:`numpy.random.Generator`:

* a textured background (:func:`~pixelwise.data.synthetic.textures.texture_chw`: crops of real photos,
  gradients or flat colours);
* ``clutter`` background items -- irregular blobs and thick straight or curved strokes, each with
  its own texture -- that stay *background* (class 0, instance 0), so "anything that differs from
  its surroundings is an object" does not solve the task;
* 2 to 7 objects painted back to front, each of a random class (disk, box, triangle, ellipse,
  star), size, rotation, aspect and position (often next to an earlier object), with its own
  texture (two instances of one class look different), a mild shading ramp and anti-aliased
  edges. Later objects occlude earlier ones, so instances overlap and touch (same-class ones
  too).

Labels follow the hard shape (the anti-aliased edge is drawn at the 0.5 coverage contour). An
object candidate is re-drawn when it would leave an earlier object with less than
``min_visible`` of its area or fewer than ``min_pixels`` pixels, or covers fewer than
``min_pixels`` pixels itself; after a fixed number of tries objects beyond ``min_objects`` are
dropped. So every instance of a scene has at least ``min_pixels`` visible pixels and ids are
consecutive ``1..K`` in painting order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from .textures import texture_chw

__all__ = [
    "CLASS_NAMES",
    "NUM_CLASSES",
    "InstanceScene",
    "SceneConfig",
    "SyntheticInstances",
    "generate_scene",
]

CLASS_NAMES: tuple[str, ...] = ("background", "disk", "box", "triangle", "ellipse", "star")
NUM_CLASSES = len(CLASS_NAMES)

_F = np.float32
_TRIES_PER_OBJECT = 12  # candidate draws per wanted object before giving up on it
_NEAR_P = 0.4  # probability that an object is placed next to an earlier one
# Smallest area of any class at circumradius R is about 1.2 R^2 (thin ellipse / star); the
# config check uses it to reject scales that can never reach min_pixels.
_MIN_AREA_FACTOR = 1.2


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


@dataclass(frozen=True)
class SceneConfig:
    """Parameters of :func:`generate_scene`.

    Attributes:
        height, width: image size in pixels (each >= 16).
        min_objects, max_objects: the number of objects is drawn uniformly from this range
            (``0 <= min_objects <= max_objects``); objects beyond ``min_objects`` may be dropped
            when they cannot be placed (see the module docstring).
        min_scale, max_scale: object size (diameter of its circumscribed circle) as a fraction of
            the short image side, ``0 < min_scale <= max_scale <= 1``; drawn log-uniformly.
        clutter: number of background clutter items (>= 0).
        min_visible: fraction of its area an object keeps after occlusion, in [0, 1].
        min_pixels: fewest visible pixels of any object (>= 1).
    """

    height: int = 128
    width: int = 128
    min_objects: int = 2
    max_objects: int = 7
    min_scale: float = 0.12
    max_scale: float = 0.45
    clutter: int = 6
    min_visible: float = 0.25
    min_pixels: int = 40

    def __post_init__(self) -> None:
        for name in ("height", "width", "min_objects", "max_objects", "clutter", "min_pixels"):
            if not _is_int(getattr(self, name)):
                raise TypeError(f"SceneConfig.{name}: expected an int, got {getattr(self, name)!r}")
        for name in ("min_scale", "max_scale", "min_visible"):
            v = getattr(self, name)
            if not _is_real(v):
                raise TypeError(f"SceneConfig.{name}: expected a real number, got {v!r}")
            if not math.isfinite(v):
                raise ValueError(f"SceneConfig.{name}: expected a finite number, got {v!r}")
        if self.height < 16 or self.width < 16:
            raise ValueError(f"SceneConfig.height/width: expected >= 16, got {self.height}x{self.width}")
        if not 0 <= self.min_objects <= self.max_objects:
            raise ValueError(
                "SceneConfig.min_objects/max_objects: expected 0 <= min_objects <= max_objects, "
                f"got {self.min_objects}, {self.max_objects}"
            )
        if not 0 < self.min_scale <= self.max_scale <= 1:
            raise ValueError(
                "SceneConfig.min_scale/max_scale: expected 0 < min_scale <= max_scale <= 1, "
                f"got {self.min_scale}, {self.max_scale}"
            )
        if self.clutter < 0:
            raise ValueError(f"SceneConfig.clutter: expected >= 0, got {self.clutter}")
        if not 0 <= self.min_visible <= 1:
            raise ValueError(f"SceneConfig.min_visible: expected a value in [0, 1], got {self.min_visible}")
        if self.min_pixels < 1:
            raise ValueError(f"SceneConfig.min_pixels: expected >= 1, got {self.min_pixels}")
        r_max = 0.5 * self.max_scale * min(self.height, self.width)
        if self.max_objects > 0 and _MIN_AREA_FACTOR * r_max**2 < self.min_pixels:
            raise ValueError(
                f"SceneConfig.max_scale: objects of at most {2 * r_max:.1f} px cannot reach "
                f"min_pixels={self.min_pixels}; raise max_scale or lower min_pixels"
            )


@dataclass
class InstanceScene:
    """One rendered scene.

    Attributes:
        image: ``float32 (H, W, 3)`` RGB in [0, 1].
        instances: ``int32 (H, W)``: 0 = background, ``1..K`` = objects in painting order.
        semantic: ``uint8 (H, W)`` class ids (index into :data:`CLASS_NAMES`; 0 = background).
        classes: ``int64 (K,)``: ``classes[k]`` is the class of instance ``k + 1``.
        clutter: ``bool (H, W)``: visible background clutter (labelled background), for
            inspection and tests.
    """

    image: np.ndarray
    instances: np.ndarray
    semantic: np.ndarray
    classes: np.ndarray
    clutter: np.ndarray


# ------------------------------------------------------------------------------------ shapes
# Every shape is a signed distance in pixels (positive inside) over the local coordinates
# (u, v) of its bounding box, rotated into the shape's frame; coverage = clip(sdf + 0.5, 0, 1).


def _convex_polygon_sdf(vertices: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Distance to the nearest edge line of a counter-clockwise convex polygon (exact inside)."""
    p = vertices
    e = np.roll(p, -1, axis=0) - p
    n = np.stack([-e[:, 1], e[:, 0]], axis=1) / np.hypot(e[:, 0], e[:, 1])[:, None]  # inward
    c = -(n * p).sum(axis=1)
    d = n[:, 0, None, None] * u + n[:, 1, None, None] * v + c[:, None, None]
    return d.min(axis=0)


def _star_sdf(radius: float, inner: float, points: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance to the edge of the star's angular sector.

    A concave polygon is not an intersection of half-planes, and a union of convex pieces
    leaves a visible seam where they meet; for a regular star the edge of the pixel's own sector
    is exact near the boundary and continuous across sectors (symmetric edges)."""
    k = np.arange(2 * points)
    ang = k * (np.pi / points)
    r = np.where(k % 2 == 0, radius, inner * radius)
    p = np.stack([r * np.cos(ang), r * np.sin(ang)], axis=1)
    e = np.roll(p, -1, axis=0) - p
    n = np.stack([-e[:, 1], e[:, 0]], axis=1) / np.hypot(e[:, 0], e[:, 1])[:, None]
    c = -(n * p).sum(axis=1)
    theta = np.mod(np.arctan2(v, u), 2 * np.pi)
    sector = np.minimum((theta * (points / np.pi)).astype(np.intp), 2 * points - 1)
    return (n[sector, 0] * u + n[sector, 1] * v + c[sector]).astype(_F)


def _object_sdf(rng: np.random.Generator, cls: int, radius: float, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance of a random instance of class ``cls`` with circumradius ``radius``."""
    name = CLASS_NAMES[cls]
    if name == "disk":
        return radius - np.hypot(u, v)
    if name == "ellipse":
        b = radius * rng.uniform(0.35, 0.65)
        f = (u / radius) ** 2 + (v / b) ** 2 - 1.0
        grad = 2.0 * np.hypot(u / radius**2, v / b**2)
        return -f / np.maximum(grad, 1e-6)  # first-order distance to the f = 0 contour
    if name == "box":
        aspect = rng.uniform(0.45, 1.0)
        hx = radius / math.sqrt(1.0 + aspect**2)
        return np.minimum(hx - np.abs(u), aspect * hx - np.abs(v))
    if name == "triangle":
        back, half = rng.uniform(0.35, 0.6), rng.uniform(0.6, 0.95)
        verts = np.array([[1.0, 0.0], [-back, half], [-back, -half]])
        verts *= radius / np.hypot(verts[:, 0], verts[:, 1]).max()  # circumradius <= radius
        return _convex_polygon_sdf(verts, u, v)
    if name == "star":
        return _star_sdf(radius, rng.uniform(0.4, 0.55), 5, u, v)
    raise AssertionError(f"no shape for class {cls}")


def _blob_sdf(rng: np.random.Generator, radius: float, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Irregular blob: a circle with a few random low-frequency radial bumps."""
    theta = np.arctan2(v, u)
    r = np.ones_like(theta)
    for freq in (2, 3, 4):
        r += rng.uniform(0.0, 0.15) * np.cos(freq * theta + rng.uniform(0, 2 * np.pi))
    return radius * r - np.hypot(u, v)


def _stroke_sdf(rng: np.random.Generator, length: float, width: float, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A thick straight or curved stroke: half-width minus the distance to a quadratic Bezier
    curve (sampled as a polyline) through the box centre."""
    bend = rng.uniform(-0.4, 0.4) * length if rng.random() < 0.6 else 0.0
    t = np.linspace(0.0, 1.0, 9)
    px = (t - 0.5) * length
    py = 2.0 * bend * t * (1.0 - t)  # control point (0, bend): peak 0.5 * bend
    py = py - py.mean()
    ax, ay = px[:-1, None, None], py[:-1, None, None]
    ex, ey = np.diff(px)[:, None, None], np.diff(py)[:, None, None]
    s = np.clip(((u - ax) * ex + (v - ay) * ey) / (ex * ex + ey * ey), 0.0, 1.0)
    dist = np.hypot(u - ax - s * ex, v - ay - s * ey).min(axis=0)
    return 0.5 * width - dist


class _Canvas:
    """The image being painted (channel-first), its instance map and the clutter mask."""

    def __init__(self, rng: np.random.Generator, cfg: SceneConfig) -> None:
        self.h, self.w = cfg.height, cfg.width
        self.image = texture_chw(rng, self.h, self.w).astype(_F, copy=True)
        self.instances = np.zeros((self.h, self.w), np.int32)
        self.clutter = np.zeros((self.h, self.w), bool)

    def window(self, rng: np.random.Generator, cy: float, cx: float, extent: float):
        """Bounding box (y0, y1, x0, x1) around a centre (cy, cx) inside the image, clipped to
        the image, and the local coordinates (u, v) of its pixel centres under a random rotation."""
        r = int(math.ceil(extent)) + 1
        y0, y1 = max(int(cy) - r, 0), min(int(cy) + r + 1, self.h)
        x0, x1 = max(int(cx) - r, 0), min(int(cx) + r + 1, self.w)
        dy = np.arange(y0, y1, dtype=_F)[:, None] + _F(0.5) - _F(cy)
        dx = np.arange(x0, x1, dtype=_F)[None, :] + _F(0.5) - _F(cx)
        a = rng.uniform(0.0, 2 * np.pi)
        ca, sa = _F(math.cos(a)), _F(math.sin(a))
        return (y0, y1, x0, x1), ca * dx + sa * dy, ca * dy - sa * dx

    def paint(self, rng: np.random.Generator, box, sdf: np.ndarray, u: np.ndarray, extent: float) -> None:
        """Composite a fresh texture with anti-aliased coverage and a mild shading ramp."""
        y0, y1, x0, x1 = box
        alpha = np.clip(sdf + 0.5, 0.0, 1.0).astype(_F)
        tex = texture_chw(rng, y1 - y0, x1 - x0)
        # brightness ramp along the shape's own axis: a hint of 3-D shading
        shade = _F(1.0) + _F(rng.uniform(-0.25, 0.25) / max(extent, 1.0)) * u
        region = self.image[:, y0:y1, x0:x1]
        region += alpha * (np.clip(tex * shade, 0.0, 1.0) - region)


def _random_centre(rng: np.random.Generator, cfg: SceneConfig) -> tuple[float, float]:
    return rng.uniform(0, cfg.height), rng.uniform(0, cfg.width)


def _add_clutter(rng: np.random.Generator, canvas: _Canvas, cfg: SceneConfig) -> None:
    side = min(cfg.height, cfg.width)
    for _ in range(cfg.clutter):
        cy, cx = _random_centre(rng, cfg)
        if rng.random() < 0.5:
            extent = side * rng.uniform(0.03, 0.1)
            box, u, v = canvas.window(rng, cy, cx, extent * 1.5)  # bumps reach 1.45 * extent
            sdf = _blob_sdf(rng, extent, u, v)
        else:
            length = side * rng.uniform(0.15, 0.6)
            width = rng.uniform(1.5, max(2.0, 0.04 * side))
            extent = 0.55 * length + width  # the bent curve reaches ~0.54 * length from the centre
            box, u, v = canvas.window(rng, cy, cx, extent)
            sdf = _stroke_sdf(rng, length, width, u, v)
        canvas.paint(rng, box, sdf, u, extent)
        y0, y1, x0, x1 = box
        canvas.clutter[y0:y1, x0:x1] |= sdf >= 0


def generate_scene(rng: np.random.Generator, cfg: SceneConfig = SceneConfig()) -> InstanceScene:
    """Render one random scene (see the module docstring).

    Args:
        rng: the random generator (the scene is a deterministic function of its state).
        cfg: scene parameters.

    Returns:
        An :class:`InstanceScene`; ``K`` is between ``cfg.min_objects`` and ``cfg.max_objects``.

    Raises:
        TypeError: ``rng`` is not a :class:`numpy.random.Generator` or ``cfg`` not a
            :class:`SceneConfig`.
        RuntimeError: fewer than ``cfg.min_objects`` objects could be placed (a config too
            crowded for its ``min_visible`` / ``min_pixels``).

    Example:
        >>> s = generate_scene(np.random.default_rng(0))
        >>> s.image.shape, int(s.instances.max()) == len(s.classes)
        ((128, 128, 3), True)
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    if not isinstance(cfg, SceneConfig):
        raise TypeError(f"cfg: expected a SceneConfig, got {type(cfg).__name__}")
    canvas = _Canvas(rng, cfg)
    _add_clutter(rng, canvas, cfg)

    side = min(cfg.height, cfg.width)
    wanted = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    full_area: list[int] = [0]  # index = instance id; visible[k] <= full_area[k]
    visible = np.zeros(1, np.int64)
    classes: list[int] = []
    placed: list[tuple[float, float, float]] = []  # (centre y, centre x, radius) per object
    log_lo, log_hi = math.log(cfg.min_scale), math.log(cfg.max_scale)
    for _ in range(wanted * _TRIES_PER_OBJECT):
        if len(classes) == wanted:
            break
        cls = int(rng.integers(1, NUM_CLASSES))
        radius = 0.5 * side * math.exp(rng.uniform(log_lo, log_hi))
        if placed and rng.random() < _NEAR_P:
            # next to an earlier object, so that occlusions and contacts are common
            py, px, pr = placed[int(rng.integers(len(placed)))]
            d, a = rng.uniform(0.5, 1.1) * (pr + radius), rng.uniform(0, 2 * np.pi)
            cy = min(max(py + d * math.sin(a), 0.0), cfg.height - 1e-3)
            cx = min(max(px + d * math.cos(a), 0.0), cfg.width - 1e-3)
        else:
            cy, cx = _random_centre(rng, cfg)
        box, u, v = canvas.window(rng, cy, cx, radius)
        sdf = _object_sdf(rng, cls, radius, u, v)
        mask = sdf >= 0
        area = int(np.count_nonzero(mask))
        if area < cfg.min_pixels:
            continue
        y0, y1, x0, x1 = box
        labels = canvas.instances[y0:y1, x0:x1]
        covered = np.bincount(labels[mask], minlength=len(visible))
        left = visible - covered
        need = np.maximum(np.ceil(cfg.min_visible * np.asarray(full_area)), cfg.min_pixels)
        if np.any((covered[1:] > 0) & (left[1:] < need[1:])):
            continue  # it would hide too much of an earlier object: draw another candidate
        canvas.paint(rng, box, sdf, u, radius)
        labels[mask] = len(classes) + 1
        visible = np.append(left, area)
        full_area.append(area)
        classes.append(cls)
        placed.append((cy, cx, radius))
    if len(classes) < cfg.min_objects:
        raise RuntimeError(
            f"generate_scene: placed only {len(classes)} of min_objects={cfg.min_objects} objects "
            f"in {wanted * _TRIES_PER_OBJECT} tries; the config {cfg} is too crowded"
        )

    class_lut = np.array([0] + classes, np.uint8)
    instances = canvas.instances
    clutter = canvas.clutter & (instances == 0)
    noise = rng.uniform(0.0, 0.02)  # mild sensor noise, sometimes none
    image = canvas.image
    if noise > 0.004:
        image += rng.normal(0.0, noise, size=image.shape).astype(_F)
    image = np.ascontiguousarray(np.clip(image, 0.0, 1.0).transpose(1, 2, 0))
    return InstanceScene(
        image=image,
        instances=instances,
        semantic=class_lut[instances],
        classes=np.array(classes, np.int64),
        clutter=clutter,
    )


def check_scene_dataset_args(count, seed, cfg, cfg_type: type, augment) -> None:
    """Argument checks shared by the generated-scene datasets (errors name the argument)."""
    if not _is_int(count) or count < 1:
        raise ValueError(f"count: expected an int >= 1, got {count!r}")
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed: expected an int >= 0, got {seed!r}")
    if not isinstance(cfg, cfg_type):
        raise TypeError(f"cfg: expected a {cfg_type.__name__}, got {type(cfg).__name__}")
    if not isinstance(augment, bool):
        raise TypeError(f"augment: expected a bool, got {type(augment).__name__}")


class SyntheticInstances(Dataset):
    """A fixed-size dataset of :func:`generate_scene` scenes, rendered on access.

    Item ``i`` is a deterministic function of ``(seed, i)`` (and ``augment``): the scene and the
    augmentation use two independent generators spawned from ``SeedSequence([seed, i])``, so the
    same scene appears with and without augmentation.

    Args:
        count: number of items (>= 1).
        seed: non-negative int.
        cfg: scene parameters.
        augment: random horizontal flip and a small colour jitter (brightness, contrast,
            per-channel gain) per item.

    Items are dicts: ``"image"`` float32 ``(3, H, W)`` in [0, 1], ``"instances"`` int64
    ``(H, W)`` (0 = background, ``1..K``), ``"semantic"`` int64 ``(H, W)`` class ids.

    Example:
        >>> item = SyntheticInstances(4, seed=1)[2]
        >>> item["image"].shape, item["instances"].dtype
        (torch.Size([3, 128, 128]), torch.int64)
    """

    def __init__(self, count: int, seed: int = 0, cfg: SceneConfig = SceneConfig(), augment: bool = False) -> None:
        check_scene_dataset_args(count, seed, cfg, SceneConfig, augment)
        self.count, self.seed, self.cfg, self.augment = int(count), int(seed), cfg, augment

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not _is_int(index):
            raise TypeError(f"index: expected an int, got {type(index).__name__}")
        if index < 0:
            index += self.count
        if not 0 <= index < self.count:
            raise IndexError(f"index {index} out of range for {self.count} items")
        scene_ss, aug_ss = np.random.SeedSequence([self.seed, int(index)]).spawn(2)
        scene = generate_scene(np.random.default_rng(scene_ss), self.cfg)
        image, instances, semantic = scene.image, scene.instances, scene.semantic
        if self.augment:
            arng = np.random.default_rng(aug_ss)
            if arng.random() < 0.5:
                image, instances, semantic = image[:, ::-1], instances[:, ::-1], semantic[:, ::-1]
            gain = arng.uniform(0.85, 1.15) * arng.uniform(0.93, 1.07, size=3)
            contrast = arng.uniform(0.85, 1.15)
            mean = image.mean()
            image = np.clip(mean + contrast * (image * gain.astype(_F) - mean), 0.0, 1.0)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=_F)),
            "instances": torch.from_numpy(instances.astype(np.int64)),
            "semantic": torch.from_numpy(semantic.astype(np.int64)),
        }
