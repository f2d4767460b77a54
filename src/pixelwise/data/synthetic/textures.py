"""Surface textures for the synthetic joint-upsampling scenes.

The textures are crops of the real photographs that ship inside scikit-image's package data
(nothing is downloaded), re-scaled, flipped and colour-jittered at use time, plus some flat colours
and smooth gradients (real scenes have untextured surfaces too).

The Middlebury motorcycle pair that also ships with scikit-image is the held-out *test* scene of
``pixelwise demo``: it is never part of the photo bank (see :data:`PHOTO_SOURCES`).
"""

from __future__ import annotations

import functools
import os

import numpy as np

__all__ = ["PHOTO_SOURCES", "MAX_SIDE", "photo_bank", "photo_names", "random_texture", "texture_chw"]

# (scikit-image loader, file it reads from skimage/data). Only files bundled with the package are
# listed, and a loader is only called when its file is present, so no loader can ever reach for
# the network. The motorcycle stereo pair (motorcycle_left/right.png) is deliberately absent.
PHOTO_SOURCES: tuple[tuple[str, str], ...] = (
    ("astronaut", "astronaut.png"),
    ("coffee", "coffee.png"),
    ("chelsea", "chelsea.png"),
    ("rocket", "rocket.jpg"),
    ("camera", "camera.png"),
    ("brick", "brick.png"),
    ("grass", "grass.png"),
    ("gravel", "gravel.png"),
    ("coins", "coins.png"),
    ("moon", "moon.png"),
    ("text", "text.png"),
    ("page", "page.png"),
    ("horse", "horse.png"),
    ("hubble_deep_field", "hubble_deep_field.jpg"),
    ("immunohistochemistry", "ihc.png"),
    ("retina", "retina.jpg"),
    ("colorwheel", "color.png"),
    ("logo", "logo.png"),
    ("clock", "clock_motion.png"),
    ("cell", "cell.png"),
    ("microaneurysms", "microaneurysms.png"),
    ("checkerboard", "chessboard_GRAY.png"),
)

MAX_SIDE = 512  # photos are downscaled to at most this many pixels on the long side

_FLAT_P = 0.10      # probability of a flat colour instead of a photo crop
_GRADIENT_P = 0.10  # probability of a smooth gradient


def _to_float_rgb_or_gray(img: np.ndarray) -> np.ndarray:
    """uint8/bool/float, gray/RGB/RGBA -> float32 in [0, 1], (H, W) for gray or (H, W, 3)."""
    img = np.asarray(img)
    if img.dtype == bool:
        out = img.astype(np.float32)
    elif np.issubdtype(img.dtype, np.integer):
        out = img.astype(np.float32) / float(np.iinfo(img.dtype).max)
    else:
        out = img.astype(np.float32)
        if out.max() > 1.0:
            out /= out.max()
    if out.ndim == 3 and out.shape[2] == 4:  # RGBA (logo): composite over white
        a = out[:, :, 3:4]
        out = out[:, :, :3] * a + (1.0 - a)
    if out.ndim == 3 and out.shape[2] == 1:
        out = out[:, :, 0]
    if out.ndim == 3:
        if np.allclose(out[:, :, 0], out[:, :, 1]) and np.allclose(out[:, :, 0], out[:, :, 2]):
            out = out[:, :, 0]
        elif out.shape[2] != 3:
            raise ValueError(f"unexpected photo shape {out.shape}")
    return np.clip(out, 0.0, 1.0)


def _limit_size(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    if max(h, w) <= MAX_SIDE:
        return np.ascontiguousarray(img, dtype=np.float32)
    from skimage.transform import resize

    s = MAX_SIDE / max(h, w)
    shape = (max(1, round(h * s)), max(1, round(w * s))) + img.shape[2:]
    return np.ascontiguousarray(resize(img, shape, order=1, anti_aliasing=True, preserve_range=True),
                                dtype=np.float32)


@functools.lru_cache(maxsize=1)
def _bank() -> tuple[tuple[str, np.ndarray, np.ndarray], ...]:
    """(name, photo, half-resolution photo) for each loadable photo: colour photos (3, H, W),
    gray photos (H, W)."""
    from skimage import data

    folder = os.path.dirname(data.__file__)
    entries = []
    for name, filename in PHOTO_SOURCES:
        if "motorcycle" in name or "motorcycle" in filename:  # the test scene, never a texture
            continue
        if not os.path.isfile(os.path.join(folder, filename)):
            continue
        try:
            img = _limit_size(_to_float_rgb_or_gray(getattr(data, name)()))
        except Exception:  # noqa: BLE001 - a photo that does not load is simply skipped
            continue
        if min(img.shape[:2]) < 32:
            continue
        if img.ndim == 3:  # channel-first internally: fast gathers and per-channel arithmetic
            img = np.ascontiguousarray(img.transpose(2, 0, 1))
        h2, w2 = img.shape[-2] // 2 * 2, img.shape[-1] // 2 * 2
        c = img[..., :h2, :w2]
        half = 0.25 * (c[..., 0::2, 0::2] + c[..., 1::2, 0::2] + c[..., 0::2, 1::2] + c[..., 1::2, 1::2])
        half = np.ascontiguousarray(half, dtype=np.float32)
        img.flags.writeable = False  # shared by every caller: read-only
        half.flags.writeable = False
        entries.append((name, img, half))
    if not entries:
        raise RuntimeError("no scikit-image sample photo could be loaded for the synthetic textures")
    return tuple(entries)


def photo_names() -> list[str]:
    """Names (scikit-image loaders) of the photos in :func:`photo_bank`, in the same order."""
    return [e[0] for e in _bank()]


@functools.lru_cache(maxsize=1)
def _public_bank() -> tuple[np.ndarray, ...]:
    out = []
    for _, img, _half in _bank():
        if img.ndim == 2:  # gray: a read-only 3-channel view, no extra memory
            img = np.broadcast_to(img[:, :, None], img.shape + (3,))
        else:  # (H, W, 3) view of the channel-first array
            img = img.transpose(1, 2, 0)
        out.append(img)
    return tuple(out)


def photo_bank() -> list[np.ndarray]:
    """The photos as float32 ``(H, W, 3)`` arrays in [0, 1], long side <= :data:`MAX_SIDE`.

    Loaded once per process. The arrays are shared views: treat them as read-only (gray photos
    are read-only broadcast views, colour photos views of channel-first arrays).
    """
    return list(_public_bank())


# --------------------------------------------------------------------------------------------
# Sampling


def _axis_coords(rng: np.random.Generator, n: int, stride: float, extent: int) -> np.ndarray:
    """n sample positions with the given stride inside [0, extent - 1], random offset."""
    span = (n - 1) * stride
    start = rng.uniform(0.0, max(0.0, extent - 1 - span))
    return start + np.arange(n, dtype=np.float32) * np.float32(stride)


def _blur3(a: np.ndarray, axes=(0, 1)) -> np.ndarray:
    """[1/4, 1/2, 1/4] blur along the given axes (edges replicated); returns a new array."""
    out = a
    for ax in axes:
        if out.shape[ax] < 2:
            continue
        src = out
        out = src * np.float32(0.5)
        lo = [slice(None)] * src.ndim
        hi = [slice(None)] * src.ndim
        lo[ax], hi[ax] = slice(None, -1), slice(1, None)
        lo, hi = tuple(lo), tuple(hi)
        out[hi] += np.float32(0.25) * src[lo]
        out[lo] += np.float32(0.25) * src[hi]
        first = [slice(None)] * src.ndim
        last = [slice(None)] * src.ndim
        first[ax], last[ax] = slice(0, 1), slice(-1, None)
        out[tuple(first)] += np.float32(0.25) * src[tuple(first)]
        out[tuple(last)] += np.float32(0.25) * src[tuple(last)]
    return out


def _gather(photo: np.ndarray, ry: np.ndarray, rx: np.ndarray, smooth: bool, transpose: bool) -> np.ndarray:
    """Nearest-neighbour resampling of a (..., H, W) photo at rows ``ry`` x columns ``rx``.

    ``transpose`` samples rows at ``rx`` and columns at ``ry`` and returns the transpose.
    ``smooth`` (used when up-sampling) softens the pixel blocks with a small blur, much cheaper
    than bilinear interpolation.
    """
    if transpose:
        ry, rx = rx, ry
    iy = np.minimum(ry.astype(np.intp), photo.shape[-2] - 1)
    ix = np.minimum(rx.astype(np.intp), photo.shape[-1] - 1)
    out = np.take(np.take(photo, iy, axis=-2), ix, axis=-1)
    if transpose:
        out = np.ascontiguousarray(out.swapaxes(-1, -2))
    return _blur3(out, axes=(-2, -1)) if smooth else out


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    """A random RGB colour, biased towards the muted colours of real scenes."""
    base = rng.uniform(0.05, 0.95)
    sat = rng.uniform(0.0, 0.5) ** 1.5 * 2.0
    c = base + sat * (rng.random(3) - 0.5)
    return np.clip(c, 0.0, 1.0).astype(np.float32)


def _photo_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    bank = _bank()
    _, full, half = bank[rng.integers(len(bank))]
    transpose = rng.random() < 0.25
    # stride in photo pixels per output pixel (log-uniform), limited so that the crop fits
    ph, pw = full.shape[-2:]
    if transpose:
        ph, pw = pw, ph
    stride = float(np.exp(rng.uniform(np.log(0.5), np.log(3.0))))
    stride = min(stride, (ph - 1) / max(height - 1, 1), (pw - 1) / max(width - 1, 1))
    photo = full
    if stride >= 2.0:  # sample the pre-filtered half-resolution copy (less aliasing)
        photo, stride = half, stride / 2.0
    ry = _axis_coords(rng, height, stride, ph if photo is full else ph // 2)
    rx = _axis_coords(rng, width, stride, pw if photo is full else pw // 2)
    if rng.random() < 0.5:
        rx = rx[::-1]
    if rng.random() < 0.2:
        ry = ry[::-1]
    tex = _gather(photo, ry, rx, smooth=stride < 0.8, transpose=transpose)

    gain = rng.uniform(0.55, 1.25)
    if tex.ndim == 2:  # gray photo: random tint (sometimes none)
        tint = np.ones(3) if rng.random() < 0.3 else 0.45 + 0.55 * _random_colour(rng) / 0.95
        tex = (gain * tint).astype(np.float32)[:, None, None] * tex[None]
    else:  # colour photo: channel mixing towards a random matrix (hue-ish shift) and gain
        m = rng.uniform(0.0, 0.6) if rng.random() < 0.6 else 0.0
        mix = (1.0 - m) * np.eye(3) + m * rng.dirichlet(np.ones(3), size=3)
        if rng.random() < 0.15:
            mix = mix[rng.permutation(3)]
        mix = (gain * mix).astype(np.float32)
        out = np.empty_like(tex)
        for c in range(3):
            np.multiply(tex[0], mix[c, 0], out=out[c])
            out[c] += mix[c, 1] * tex[1]
            out[c] += mix[c, 2] * tex[2]
        tex = out
    # contrast about the mean, tone curve (cheap gamma-like), sometimes inversion
    contrast = np.float32(rng.uniform(0.35, 1.3))
    mean = np.float32(tex.mean())
    tex = np.clip(mean + contrast * (tex - mean), 0.0, 1.0)
    k = np.float32(rng.uniform(-0.6, 0.6))
    tex += k * tex * (1.0 - tex)
    if rng.random() < 0.08:
        tex = 1.0 - tex
    return tex.astype(np.float32, copy=False)


def _gradient_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    c0, c1 = _random_colour(rng), _random_colour(rng)
    side = max(height, width)
    y = (np.arange(height, dtype=np.float32) / side)[:, None]
    x = (np.arange(width, dtype=np.float32) / side)[None, :]
    if rng.random() < 0.7:  # linear ramp in a random direction
        a = rng.uniform(0, 2 * np.pi)
        t = np.float32(np.cos(a)) * x + np.float32(np.sin(a)) * y
    else:  # radial
        cy, cx = rng.uniform(-0.2, 1.2, size=2)
        t = np.sqrt((x - np.float32(cx * width / side)) ** 2 + (y - np.float32(cy * height / side)) ** 2)
    t = t - t.min()
    t = t / max(float(t.max()), 1e-6)
    return c0[:, None, None] + t[None] * (c1 - c0)[:, None, None]


def texture_chw(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Like :func:`random_texture` but channel-first ``(3, height, width)`` (what the scene
    generator composites with; same distribution)."""
    height, width = int(height), int(width)
    if height < 1 or width < 1:
        return np.zeros((3, max(height, 0), max(width, 0)), np.float32)
    p = rng.random()
    if p < _FLAT_P:
        return np.broadcast_to(_random_colour(rng)[:, None, None], (3, height, width)).copy()
    if p < _FLAT_P + _GRADIENT_P:
        return _gradient_texture(rng, height, width)
    return _photo_texture(rng, height, width)


def random_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random ``(height, width, 3)`` float32 texture in [0, 1].

    Mostly a crop of a random bank photo at a random scale (0.5x to 3x: each output pixel steps
    over 0.5 to 3 photo pixels), flipped or transposed, with colour jitter (gain, channel mixing
    or a tint for gray photos, contrast, tone curve, rare inversion); sometimes (20 %) a flat
    colour or a smooth linear/radial gradient instead.
    """
    return np.ascontiguousarray(texture_chw(rng, height, width).transpose(1, 2, 0))
