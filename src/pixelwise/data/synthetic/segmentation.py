"""Synthetic semantic-segmentation scenes: the embedded default data for PAC-CRF segmentation.

The classes are *materials*: each class is tied to one of scikit-image's sample photos
(:data:`CLASS_PHOTOS`, shipped with the package, nothing is downloaded). A region of class ``c``
is filled with a crop of ``c``'s photo at a random offset, scale (0.5x to 1.5x), flip and
transpose, with a fixed mild colour tint per class, per-region brightness / contrast / colour
jitter and a smooth shading ramp. Two regions of one class therefore look different, and a
class is recognisable from its texture statistics, never from a shape or a flat colour.

The layout imitates real object outlines rather than geometric shapes:

* ``min_regions..max_regions`` distinct classes each get a smooth random field (white noise
  Gaussian-filtered at a random large scale) plus a small-scale noise octave weighted by
  ``boundary_roughness``; the per-pixel argmax is the label map, so boundaries are long, curved
  and ragged. Classes that win less than :data:`MIN_CLASS_FRACTION` of the image are dropped
  (no tiny region is forced); when only one would be left, the runner-up field is offset so
  that it covers a random 25-50 % of the image. So every scene has at least two classes.
* up to ``max_blobs`` compact blobs (convex-ish, elongated) or thick curved strokes (thin
  parts) of a random class are pasted on top, their outlines roughened by the same small-scale
  noise. A blob that would hide most of an earlier region is skipped.
* connected pieces smaller than :data:`MIN_PIECE_PIXELS` (specks left by the rough noise) take
  the label of the nearest larger region; the largest piece of every layout class is always
  kept, so the guarantee of two classes holds (with tiny images or extreme roughness that piece
  may itself be smaller).

Image edges are slightly soft (each region's mask is blurred with sigma 0.7 px before
compositing, about a 1 px anti-aliased transition) while the label map stays hard. Gaussian pixel
noise (``noise``) is added last.

Speed: 7.7 to 9.1 ms per 192 x 192 :class:`SyntheticSegmentation` item (one thread, measured in
rounds of 40 items on a 2-core machine busy with other jobs), plus about 1 s once per process
to load the photos; a data-loader worker keeps up with a GPU easily.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from scipy.fft import next_fast_len
from skimage import measure
from torch.utils.data import Dataset

from .instances import _blob_sdf, _is_int, _is_real, _stroke_sdf, check_scene_dataset_args
from .textures import _axis_coords, _bank, _gather

__all__ = [
    "CLASS_NAMES",
    "CLASS_PHOTOS",
    "NUM_CLASSES",
    "SegSceneConfig",
    "SyntheticSegmentation",
    "generate_segmentation_scene",
]

# (class name, scikit-image photo, RGB tint). Visually distinct surfaces: three gray texture
# photos, the gray moon (an almost smooth surface) and four colour photos. The gray ones get a
# mild fixed tint, so colour is informative but not decisive: with the per-region jitter, mean
# colour alone names about 50-65 % of held-out regions, texture statistics add the rest.
_CLASSES: tuple[tuple[str, str, tuple[float, float, float]], ...] = (
    ("grass", "grass", (0.88, 1.04, 0.80)),
    ("gravel", "gravel", (1.05, 1.00, 0.90)),
    ("brick", "brick", (1.10, 0.90, 0.82)),
    ("fur", "chelsea", (1.0, 1.0, 1.0)),
    ("coffee", "coffee", (1.0, 1.0, 1.0)),
    ("astronaut", "astronaut", (1.0, 1.0, 1.0)),
    ("rocket", "rocket", (1.0, 1.0, 1.0)),
    ("moon", "moon", (0.90, 0.96, 1.10)),
)

CLASS_NAMES: tuple[str, ...] = tuple(c[0] for c in _CLASSES)
CLASS_PHOTOS: tuple[str, ...] = tuple(c[1] for c in _CLASSES)  # scikit-image loader per class
NUM_CLASSES = len(CLASS_NAMES)
_TINTS = np.array([c[2] for c in _CLASSES], np.float32)

MIN_CLASS_FRACTION = 0.04  # a layout class covering less of the image is dropped
MIN_PIECE_PIXELS = 12      # smaller connected pieces are merged into their surroundings

_F = np.float32
_EDGE_SIGMA = 0.7          # px: blur of the region masks -> ~1 px anti-aliased edges
_LARGE_SCALE = (0.1, 0.25)   # sigma of the layout fields, fraction of the short side (log-uniform)
_SMALL_SCALE = 0.025         # sigma of the roughness octave, fraction of the short side
_TEXTURE_SCALE = (0.5, 1.5)  # texture magnification (output px per photo px), log-uniform
_BLOB_ROUGHNESS_PX = 6.0     # outline displacement (px) per unit roughness * unit noise


@dataclass(frozen=True)
class SegSceneConfig:
    """Parameters of :func:`generate_segmentation_scene`.

    Attributes:
        height, width: image size in pixels (each >= 32).
        min_regions, max_regions: number of layout classes, drawn uniformly from this range
            (``2 <= min_regions <= max_regions <= NUM_CLASSES``); classes that would cover less
            than :data:`MIN_CLASS_FRACTION` of the image are dropped, down to two.
        max_blobs: most blobs / strokes pasted on the layout (>= 0; 0 to max_blobs per scene).
        boundary_roughness: weight of the small-scale noise octave relative to the large-scale
            layout field (>= 0; 0 gives smooth curved boundaries, 1 very ragged ones).
        noise: standard deviation of the Gaussian pixel noise, in [0, 0.5).
    """

    height: int = 192
    width: int = 192
    min_regions: int = 2
    max_regions: int = 4
    max_blobs: int = 3
    boundary_roughness: float = 0.15
    noise: float = 0.015

    def __post_init__(self) -> None:
        for name in ("height", "width", "min_regions", "max_regions", "max_blobs"):
            if not _is_int(getattr(self, name)):
                raise ValueError(f"SegSceneConfig.{name}: expected an int, got {getattr(self, name)!r}")
        for name in ("boundary_roughness", "noise"):
            v = getattr(self, name)
            if not _is_real(v) or not math.isfinite(v):
                raise ValueError(f"SegSceneConfig.{name}: expected a finite real number, got {v!r}")
        if self.height < 32 or self.width < 32:
            raise ValueError(f"SegSceneConfig.height/width: expected >= 32, got {self.height}x{self.width}")
        if not 2 <= self.min_regions <= self.max_regions <= NUM_CLASSES:
            raise ValueError(
                "SegSceneConfig.min_regions/max_regions: expected 2 <= min_regions <= max_regions <= "
                f"{NUM_CLASSES}, got {self.min_regions}, {self.max_regions}"
            )
        if self.max_blobs < 0:
            raise ValueError(f"SegSceneConfig.max_blobs: expected >= 0, got {self.max_blobs}")
        if self.boundary_roughness < 0:
            raise ValueError(f"SegSceneConfig.boundary_roughness: expected >= 0, got {self.boundary_roughness}")
        if not 0 <= self.noise < 0.5:
            raise ValueError(f"SegSceneConfig.noise: expected a value in [0, 0.5), got {self.noise}")


# ------------------------------------------------------------------------------------ layout


def _upsample_axis(a: np.ndarray, axis: int, n: int, step: int) -> np.ndarray:
    """Linear interpolation of coarse samples (spacing ``step``) along ``axis`` at ``n`` fine
    pixel centres (a gather and a blend: no BLAS, whose threads stall on a busy machine)."""
    m = a.shape[axis]
    t = np.clip((np.arange(n) + 0.5) / step - 0.5, 0.0, m - 1.0)
    i0 = np.minimum(t.astype(np.intp), m - 2)
    shape = [1] * a.ndim
    shape[axis] = n
    frac = (t - i0).astype(_F).reshape(shape)
    lo = np.take(a, i0, axis=axis)
    return lo + frac * (np.take(a, i0 + 1, axis=axis) - lo)


def _smooth_fields(rng: np.random.Generator, count: int, h: int, w: int, sigma: float) -> np.ndarray:
    """``count`` white-noise images Gaussian-filtered with ``sigma`` px, each normalised to zero
    mean and unit standard deviation: ``float32 (count, h, w)``.

    A smooth field carries no detail finer than its sigma, so it is filtered on a grid coarser
    by ``sigma / 2`` and linearly up-sampled (>= 2 coarse samples per sigma: no visible kinks).
    Filtering is a product in the Fourier domain (a large-sigma spatial filter would cost
    hundreds of taps), on a canvas padded by 3 sigma so that the FFT's periodic wrap-around does
    not make opposite image edges alike."""
    step = max(1, int(sigma // 2))
    ch, cw = -(-h // step) + 1, -(-w // step) + 1
    pad = math.ceil(3.0 * sigma / step)
    ph, pw = next_fast_len(ch + pad, real=True), next_fast_len(cw + pad, real=True)
    spectrum = np.fft.rfft2(rng.standard_normal((count, ph, pw), dtype=_F))
    f2 = np.fft.fftfreq(ph).astype(_F)[:, None] ** 2 + np.fft.rfftfreq(pw).astype(_F)[None, :] ** 2
    spectrum *= np.exp(_F(-2.0 * math.pi**2 * (sigma / step) ** 2) * f2)
    field = np.fft.irfft2(spectrum, s=(ph, pw))[:, :ch, :cw].astype(_F)
    field -= field.mean(axis=(1, 2), keepdims=True)  # on the coarse grid: cheaper, same statistics
    field /= np.maximum(field.std(axis=(1, 2), keepdims=True), _F(1e-12))
    if step > 1:
        field = _upsample_axis(_upsample_axis(field, 1, h, step), 2, w, step)
    return np.ascontiguousarray(field[:, :h, :w])


def _layout(rng: np.random.Generator, fields: np.ndarray) -> np.ndarray:
    """Argmax of the fields, dropping fields that win too little of the image; at least two
    fields always win (see the module docstring). Returns field indices ``int64 (H, W)``."""
    active = list(range(fields.shape[0]))
    min_area = MIN_CLASS_FRACTION * fields[0].size
    while True:
        seg = np.asarray(active)[fields[active].argmax(axis=0)]
        areas = np.bincount(seg.ravel(), minlength=fields.shape[0])[active]
        smallest = int(np.argmin(areas))
        if areas[smallest] >= min_area:
            return seg
        if len(active) > 2:
            del active[smallest]
            continue
        small, big = active[smallest], active[1 - smallest]
        # offset the losing field so that it wins a random 25-50 % of the pixels
        fields[small] += np.quantile(fields[big] - fields[small], rng.uniform(0.25, 0.5))
        return np.where(fields[small] > fields[big], small, big)


def _blob_mask(rng: np.random.Generator, cfg: SegSceneConfig, rough: np.ndarray) -> np.ndarray:
    """Hard ``(H, W)`` mask of a random blob or stroke, its outline displaced by the roughness
    noise ``rough``; the shape is evaluated on its bounding box only."""
    side = min(cfg.height, cfg.width)
    displacement = _BLOB_ROUGHNESS_PX * cfg.boundary_roughness
    compact = rng.random() < 0.65
    if compact:  # an object: a bumpy, possibly elongated disk (bumps reach 1.45 radius)
        radius, aspect = side * rng.uniform(0.07, 0.2), rng.uniform(0.45, 1.0)
        extent = 1.45 * radius
    else:  # a thin part: a thick straight or curved stroke
        length, width = side * rng.uniform(0.3, 0.7), rng.uniform(3.0, max(4.0, 0.06 * side))
        extent = 0.55 * length + width  # the bent curve reaches ~0.54 length from its centre
    r = math.ceil(extent + 3.0 * displacement) + 1
    cy, cx = rng.uniform(0, cfg.height), rng.uniform(0, cfg.width)
    y0, y1 = max(int(cy) - r, 0), min(int(cy) + r + 1, cfg.height)
    x0, x1 = max(int(cx) - r, 0), min(int(cx) + r + 1, cfg.width)
    dy = np.arange(y0, y1, dtype=_F)[:, None] + _F(0.5 - cy)
    dx = np.arange(x0, x1, dtype=_F)[None, :] + _F(0.5 - cx)
    a = rng.uniform(0.0, 2 * np.pi)
    u = _F(math.cos(a)) * dx + _F(math.sin(a)) * dy
    v = _F(math.cos(a)) * dy - _F(math.sin(a)) * dx
    sdf = _blob_sdf(rng, radius, u, v / _F(aspect)) if compact else _stroke_sdf(rng, length, width, u, v)
    mask = np.zeros((cfg.height, cfg.width), bool)
    mask[y0:y1, x0:x1] = sdf + _F(displacement) * rough[y0:y1, x0:x1] >= 0
    return mask


def _add_blobs(rng: np.random.Generator, cfg: SegSceneConfig, seg: np.ndarray, seg_class: list[int],
               rough: np.ndarray) -> None:
    """Paste blobs in place (new segment ids), each of a class other than the one it mostly covers."""
    for _ in range(int(rng.integers(0, cfg.max_blobs + 1))):
        mask = _blob_mask(rng, cfg, rough)
        if np.count_nonzero(mask) < 4 * MIN_PIECE_PIXELS:
            continue
        before = np.bincount(seg.ravel(), minlength=len(seg_class))
        covered = np.bincount(seg[mask], minlength=len(seg_class))
        if np.any((covered > 0) & (before - covered < np.maximum(0.3 * before, 4 * MIN_PIECE_PIXELS))):
            continue  # it would hide (almost) all of an earlier region
        under = seg_class[int(covered.argmax())]
        cls = int(rng.choice([c for c in range(NUM_CLASSES) if c != under]))
        seg[mask] = len(seg_class)
        seg_class.append(cls)


def _merge_specks(seg: np.ndarray, layout_segments: int) -> np.ndarray:
    """Give connected pieces smaller than MIN_PIECE_PIXELS the segment of the nearest pixel
    outside such pieces. The largest piece of each layout segment is kept whatever its size, so
    the layout's classes (two at least) all survive; a blob may vanish."""
    pieces = measure.label(seg, background=-1, connectivity=1)  # 4-connected runs of one value
    sizes = np.bincount(pieces.ravel())
    piece_seg = np.full(sizes.size, -1, np.int64)  # piece 0 does not exist (no background)
    piece_seg[pieces.ravel()] = seg.ravel()
    small = sizes < MIN_PIECE_PIXELS
    by_size = np.lexsort((sizes, piece_seg))  # grouped by segment, ascending size within each
    largest = by_size[np.r_[piece_seg[by_size][1:] != piece_seg[by_size][:-1], True]]
    small[largest[piece_seg[largest] < layout_segments]] = False
    specks = small[pieces]
    if not specks.any():
        return seg
    _, (iy, ix) = ndimage.distance_transform_edt(specks, return_indices=True)
    return seg[iy, ix]


# ----------------------------------------------------------------------------------- rendering


@functools.lru_cache(maxsize=1)
def _photos() -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """(photo, half-resolution photo) per class, channel-first for colour, (H, W) for gray."""
    bank = {name: (full, half) for name, full, half in _bank()}
    missing = [p for p in CLASS_PHOTOS if p not in bank]
    if missing:
        raise RuntimeError(f"synthetic segmentation: scikit-image sample photo(s) {missing} could not be loaded")
    return tuple(bank[p] for p in CLASS_PHOTOS)


def _material(rng: np.random.Generator, cls: int, box: tuple[int, int, int, int], side: int) -> np.ndarray:
    """A ``(3, h, w)`` crop of class ``cls``'s photo for the box ``(y0, y1, x0, x1)``: random
    offset, scale, flips and transpose, class tint, brightness/contrast jitter, shading ramp."""
    full, half = _photos()[cls]
    y0, y1, x0, x1 = box
    h, w = y1 - y0, x1 - x0
    ph, pw = full.shape[-2:]
    transpose = rng.random() < 0.5
    if transpose:
        ph, pw = pw, ph
    lo, hi = _TEXTURE_SCALE
    stride = 1.0 / math.exp(rng.uniform(math.log(lo), math.log(hi)))  # photo px per output px
    stride = min(stride, (ph - 1) / max(h - 1, 1), (pw - 1) / max(w - 1, 1))
    photo = full
    if stride >= 2.0:  # the pre-filtered half-resolution copy aliases less
        photo, stride, ph, pw = half, stride / 2.0, ph // 2, pw // 2
    ry, rx = _axis_coords(rng, h, stride, ph), _axis_coords(rng, w, stride, pw)
    if rng.random() < 0.5:
        rx = rx[::-1]
    if rng.random() < 0.5:
        ry = ry[::-1]
    tex = _gather(photo, ry, rx, smooth=stride < 0.8, transpose=transpose)
    # contrast c about the crop's mean m, gain g (class tint x brightness x colour), shading:
    # g * (c * tex + (1 - c) * m) * shade, in as few passes as possible
    gain = _TINTS[cls] * _F(rng.uniform(0.8, 1.2)) * rng.uniform(0.95, 1.05, size=3).astype(_F)
    c = _F(rng.uniform(0.75, 1.25))
    a = rng.uniform(0.0, 2 * np.pi)
    ramp = (_F(math.cos(a)) * (np.arange(w, dtype=_F) - _F(0.5 * (w - 1)))[None, :]
            + _F(math.sin(a)) * (np.arange(h, dtype=_F) - _F(0.5 * (h - 1)))[:, None])
    shade = _F(1.0) + _F(rng.uniform(-0.3, 0.3) / side) * ramp
    offset = (gain * (1 - c) * _F(tex.mean()))[:, None, None] * shade
    tex *= shade
    return np.clip((gain * c)[:, None, None] * tex + offset, 0.0, 1.0, out=offset)


def _render(rng: np.random.Generator, seg: np.ndarray, seg_class: list[int]) -> np.ndarray:
    """Composite one material crop per segment through its blurred (anti-aliased) mask."""
    h, w = seg.shape
    side = min(h, w)
    image = np.zeros((3, h, w), _F)
    margin = math.ceil(4 * _EDGE_SIGMA) + 1  # the blur's reach: masks vanish beyond it
    for s, cls in enumerate(seg_class):
        mask = seg == s
        ys, xs = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        if ys.size == 0:
            continue
        box = (max(int(ys[0]) - margin, 0), min(int(ys[-1]) + margin + 1, h),
               max(int(xs[0]) - margin, 0), min(int(xs[-1]) + margin + 1, w))
        y0, y1, x0, x1 = box
        alpha = ndimage.gaussian_filter(mask[y0:y1, x0:x1].astype(_F), _EDGE_SIGMA, mode="nearest")
        tex = _material(rng, cls, box, side)
        tex *= alpha
        image[:, y0:y1, x0:x1] += tex
    return image


def generate_segmentation_scene(
    rng: np.random.Generator, cfg: SegSceneConfig = SegSceneConfig()
) -> tuple[np.ndarray, np.ndarray]:
    """Render one random scene (see the module docstring).

    Args:
        rng: the random generator (the scene is a deterministic function of its state).
        cfg: scene parameters.

    Returns:
        ``(image, label)``: ``float32 (3, H, W)`` RGB in [0, 1] and ``uint8 (H, W)`` class ids in
        ``0..NUM_CLASSES - 1`` (index into :data:`CLASS_NAMES`), at least two classes present.

    Raises:
        TypeError: ``rng`` is not a :class:`numpy.random.Generator` or ``cfg`` not a
            :class:`SegSceneConfig`.

    Example:
        >>> image, label = generate_segmentation_scene(np.random.default_rng(0))
        >>> image.shape, label.shape, len(np.unique(label)) >= 2
        ((3, 192, 192), (192, 192), True)
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    if not isinstance(cfg, SegSceneConfig):
        raise TypeError(f"cfg: expected a SegSceneConfig, got {type(cfg).__name__}")
    h, w = cfg.height, cfg.width
    side = min(h, w)
    count = int(rng.integers(cfg.min_regions, cfg.max_regions + 1))
    classes = rng.choice(NUM_CLASSES, size=count, replace=False).tolist()
    large_sigma = side * math.exp(rng.uniform(*np.log(_LARGE_SCALE)))
    # one extra field: the roughness noise that also roughens the blob outlines
    large = _smooth_fields(rng, count, h, w, large_sigma)
    small = _smooth_fields(rng, count + 1, h, w, side * _SMALL_SCALE)
    fields = large + _F(cfg.boundary_roughness) * small[:count]
    seg = _layout(rng, fields)
    _add_blobs(rng, cfg, seg, classes, small[count])
    seg = _merge_specks(seg, count)
    image = _render(rng, seg, classes)
    if cfg.noise > 0:
        image += _F(cfg.noise) * rng.standard_normal(image.shape, dtype=_F)
    label = np.asarray(classes, np.uint8)[seg]
    return np.clip(image, 0.0, 1.0), label


class SyntheticSegmentation(Dataset):
    """A fixed-size dataset of :func:`generate_segmentation_scene` scenes, rendered on access.

    Item ``i`` is a deterministic function of ``(seed, i)``: it is rendered from
    ``np.random.default_rng((seed, i))``; the augmentation draws from the same generator after
    the scene, so the same scene appears with and without ``augment``.

    Args:
        count: number of items (>= 1).
        seed: non-negative int.
        cfg: scene parameters.
        augment: random horizontal flip and a mild colour jitter (brightness, contrast,
            per-channel gain) per item.

    Items are dicts: ``"image"`` float32 ``(3, H, W)`` in [0, 1], ``"label"`` int64 ``(H, W)``
    class ids (no ignore label: every pixel is labelled), ``"name"`` ``"scene-00042"``.

    Example:
        >>> item = SyntheticSegmentation(4, seed=1)[2]
        >>> item["image"].shape, item["label"].dtype, item["name"]
        (torch.Size([3, 192, 192]), torch.int64, 'scene-00002')
    """

    def __init__(self, count: int, seed: int = 0, cfg: SegSceneConfig = SegSceneConfig(),
                 augment: bool = False) -> None:
        check_scene_dataset_args(count, seed, cfg, SegSceneConfig, augment)
        self.count, self.seed, self.cfg, self.augment = int(count), int(seed), cfg, augment

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict:
        if not _is_int(index):
            raise TypeError(f"index: expected an int, got {type(index).__name__}")
        if index < 0:
            index += self.count
        if not 0 <= index < self.count:
            raise IndexError(f"index {index} out of range for {self.count} items")
        rng = np.random.default_rng((self.seed, int(index)))
        image, label = generate_segmentation_scene(rng, self.cfg)
        if self.augment:
            if rng.random() < 0.5:
                image, label = image[:, :, ::-1], label[:, ::-1]
            gain = (rng.uniform(0.9, 1.1) * rng.uniform(0.95, 1.05, size=3)).astype(_F)
            mean = _F(image.mean())
            image = np.clip(mean + _F(rng.uniform(0.9, 1.1)) * (image * gain[:, None, None] - mean), 0.0, 1.0)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image, dtype=_F)),
            "label": torch.from_numpy(label.astype(np.int64)),
            "name": f"scene-{int(index):05d}",
        }
