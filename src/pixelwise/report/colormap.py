"""Turn prediction maps into RGB images: depth / disparity, error magnitude, optical flow.

Every function takes numpy arrays (torch tensors are accepted too and moved to the CPU) and
returns a ``uint8`` array of shape ``(H, W, 3)``. Pixels marked invalid (``valid`` False, or a
non-finite value) are drawn in one fixed colour so holes in the ground truth stay visible.

matplotlib is only used for its colormap registry; it is imported lazily, never pyplot, so
nothing here needs a display.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pixelwise.atomic import write_bytes_atomic
from pixelwise.checks import NotAChoiceError, OutOfRangeError, WrongTypeError, check_float, check_int

__all__ = [
    "INVALID_RGB",
    "INVALID_FLOW_RGB",
    "colorize_scalar",
    "colorize_error",
    "colorize_flow",
    "flow_color_wheel",
    "flow_wheel_legend",
    "to_png_bytes",
    "save_png",
]

#: Colour of invalid pixels in scalar and error maps: a neutral dark grey that lies on none of
#: the usual perceptual colormaps (turbo, viridis, inferno, magma all pass through hues).
INVALID_RGB: tuple[int, int, int] = (48, 48, 48)

#: Colour of invalid pixels in flow maps (the flow coding uses white for zero motion).
INVALID_FLOW_RGB: tuple[int, int, int] = (0, 0, 0)


# --------------------------------------------------------------------------- helpers


def _as_numpy(x: Any, name: str) -> np.ndarray:
    """numpy view of ``x``; torch tensors (duck-typed, torch is not imported) are detached."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except Exception as exc:  # pragma: no cover - odd objects
        raise WrongTypeError(f"{name}: expected an array, got {type(x).__name__}") from exc


def _valid_mask(valid: Any, shape: tuple[int, int], name: str = "valid") -> np.ndarray:
    if valid is None:
        return np.ones(shape, dtype=bool)
    mask = _as_numpy(valid, name)
    if mask.shape != shape:
        raise ValueError(f"{name}: expected shape {shape} to match the map, got {mask.shape}")
    return mask.astype(bool, copy=False)


def _scalar_map(values: Any, name: str) -> np.ndarray:
    arr = _as_numpy(values, name)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D (H, W) map, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise WrongTypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def _get_cmap(cmap: Any):
    import matplotlib
    from matplotlib.colors import Colormap

    if isinstance(cmap, Colormap):
        return cmap
    if not isinstance(cmap, str):
        raise WrongTypeError(f"cmap: expected a colormap name, got {type(cmap).__name__}")
    try:
        return matplotlib.colormaps[cmap]
    except KeyError:
        raise NotAChoiceError(f"cmap: unknown colormap {cmap!r}") from None


def _check_limit(value: Any, name: str, **bounds) -> float | None:
    """``None`` or a finite number within ``bounds`` (as :func:`pixelwise.checks.check_float`)."""
    return None if value is None else check_float(value, name, **bounds)


# --------------------------------------------------------------------------- scalar maps


def colorize_scalar(
    values: Any,
    valid: Any = None,
    *,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "turbo",
) -> np.ndarray:
    """Colour a scalar map (depth, disparity, confidence) with a matplotlib colormap.

    ``vmin`` / ``vmax`` default to the 1st / 99th percentile of the valid, finite values, so a
    few outliers do not wash out the figure; values beyond the limits get the end colours.
    Pass the same limits to several calls to put figures on one scale. A constant map (or
    ``vmin == vmax``) is drawn in the middle colour. Invalid pixels are ``INVALID_RGB``.
    """
    arr = _scalar_map(values, "values")
    mask = _valid_mask(valid, arr.shape) & np.isfinite(arr)
    cm = _get_cmap(cmap)
    lo = _check_limit(vmin, "vmin")
    hi = _check_limit(vmax, "vmax")
    if lo is not None and hi is not None and lo > hi:
        raise OutOfRangeError(f"vmin: must be <= vmax, got vmin={lo} > vmax={hi}")

    out = np.empty(arr.shape + (3,), dtype=np.uint8)
    out[...] = INVALID_RGB
    if not mask.any():
        return out

    v = arr[mask]
    if lo is None or hi is None:
        p_lo, p_hi = np.percentile(v, [1.0, 99.0])
        if lo is None and hi is None:
            lo, hi = float(p_lo), float(p_hi)
        elif lo is None:
            lo = min(float(p_lo), hi)
        else:
            hi = max(float(p_hi), lo)

    span = hi - lo
    if span > 0:
        t = np.clip((v - lo) / span, 0.0, 1.0)
    else:  # constant map or a degenerate range: no division
        t = np.where(v < lo, 0.0, np.where(v > hi, 1.0, 0.5))
    out[mask] = cm(t, bytes=True)[:, :3]
    return out


def colorize_error(
    abs_error: Any,
    valid: Any = None,
    *,
    vmax: float | None = None,
    cmap: str = "inferno",
) -> np.ndarray:
    """Colour an error-magnitude map: 0 is the dark end of ``cmap``, ``vmax`` the bright end.

    The sign is dropped (``|abs_error|``). ``vmax`` defaults to the 99th percentile of the
    valid errors; pass one shared ``vmax`` to compare several methods on the same scale.
    Invalid pixels are ``INVALID_RGB``.
    """
    err = np.abs(_scalar_map(abs_error, "abs_error"))
    hi = _check_limit(vmax, "vmax", low=0, low_open=True)
    if hi is None:
        mask = _valid_mask(valid, err.shape) & np.isfinite(err)
        hi = float(np.percentile(err[mask], 99.0)) if mask.any() else 1.0
        if hi <= 0:  # no error anywhere: everything is the zero colour
            hi = 1.0
    return colorize_scalar(err, valid, vmin=0.0, vmax=hi, cmap=cmap)


# --------------------------------------------------------------------------- optical flow
#
# The Middlebury flow colour coding (Baker et al., "A Database and Evaluation Methodology for
# Optical Flow") is written out by hand here: none of our dependencies ships a maintained
# implementation of it.

_WHEEL_SEGMENTS = (("RY", 15), ("YG", 6), ("GC", 4), ("CB", 11), ("BM", 13), ("MR", 6))


def flow_color_wheel() -> np.ndarray:
    """The 55-entry hue wheel of the Middlebury coding, ``uint8`` of shape (55, 3).

    Six segments, each a linear ramp of one channel between two primaries/secondaries:
    red->yellow (15), yellow->green (6), green->cyan (4), cyan->blue (11),
    blue->magenta (13), magenta->red (6).
    """
    rows: list[tuple[int, int, int]] = []
    for name, n in _WHEEL_SEGMENTS:
        for i in range(n):
            up = (255 * i) // n
            down = 255 - up
            rows.append(
                {
                    "RY": (255, up, 0),
                    "YG": (down, 255, 0),
                    "GC": (0, 255, up),
                    "CB": (0, down, 255),
                    "BM": (up, 0, 255),
                    "MR": (255, 0, down),
                }[name]
            )
    return np.asarray(rows, dtype=np.uint8)


def _flow_to_rgb(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Colour already-normalised flow components (1-D float arrays) -> (N, 3) uint8."""
    wheel = flow_color_wheel().astype(np.float64) / 255.0
    ncols = wheel.shape[0]
    rad = np.hypot(u, v)
    # Angle in [-1, 1]; -1 and +1 are the same direction (+u), both land on red.
    a = np.arctan2(-v, -u) / np.pi
    fk = (a + 1.0) / 2.0 * (ncols - 1)
    k0 = np.clip(np.floor(fk).astype(np.int64), 0, ncols - 1)
    k1 = (k0 + 1) % ncols
    f = (fk - k0)[:, None]
    col = (1.0 - f) * wheel[k0] + f * wheel[k1]
    small = rad <= 1.0
    # Inside the unit circle: blend towards white as the motion shrinks.
    col[small] = 1.0 - rad[small, None] * (1.0 - col[small])
    # Outside it (only when the caller's max_magnitude is below the true maximum): darken.
    col[~small] *= 0.75
    return np.floor(255.0 * np.clip(col, 0.0, 1.0)).astype(np.uint8)


def colorize_flow(
    flow: Any,
    valid: Any = None,
    *,
    max_magnitude: float | None = None,
) -> np.ndarray:
    """Colour an optical-flow field ``(H, W, 2)`` = (u, v) in pixels with the Middlebury code.

    Hue gives the direction (``atan2(-v, -u)``; +u is red, +v - downwards in image
    coordinates - is yellow, -u is cyan-blue, -v is blue-violet), saturation the magnitude
    divided by ``max_magnitude`` (default: the largest valid magnitude): zero motion is
    white. Motion beyond ``max_magnitude`` is darkened. Invalid pixels (``valid`` False or
    a non-finite component) are black.
    """
    arr = _as_numpy(flow, "flow")
    if arr.ndim != 3 or arr.shape[-1] != 2:
        hint = " (channels first? use np.moveaxis(flow, 0, -1))" if arr.ndim == 3 and arr.shape[0] == 2 else ""
        raise ValueError(f"flow: expected shape (H, W, 2), got {arr.shape}{hint}")
    if not np.issubdtype(arr.dtype, np.number):
        raise WrongTypeError(f"flow: expected a numeric array, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    shape = arr.shape[:2]
    mask = _valid_mask(valid, shape) & np.isfinite(arr).all(axis=-1)

    scale = _check_limit(max_magnitude, "max_magnitude", low=0, low_open=True)

    out = np.empty(shape + (3,), dtype=np.uint8)
    out[...] = INVALID_FLOW_RGB
    if not mask.any():
        return out
    u = arr[..., 0][mask]
    v = arr[..., 1][mask]
    if scale is None:
        scale = float(np.hypot(u, v).max())
        if scale <= 0:  # all-zero flow: anything positive keeps it white
            scale = 1.0
    out[mask] = _flow_to_rgb(u / scale, v / scale)
    return out


def flow_wheel_legend(size: int = 64) -> np.ndarray:
    """A ``size x size`` legend: the colour of every flow vector up to the unit magnitude.

    The centre is zero motion; a pixel's offset from the centre is its flow (x right = +u,
    y down = +v). Outside the disc the legend is white.
    """
    size = check_int(size, "size", min=3)
    c = (size - 1) / 2.0
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    u = (xs - c) / c
    v = (ys - c) / c
    inside = np.hypot(u, v) <= 1.0
    out = np.full((size, size, 3), 255, dtype=np.uint8)
    out[inside] = _flow_to_rgb(u[inside], v[inside])
    return out


# --------------------------------------------------------------------------- PNG output


def _check_image(rgb: Any, name: str = "rgb") -> np.ndarray:
    arr = _as_numpy(rgb, name)
    if arr.dtype != np.uint8:
        raise ValueError(
            f"{name}: expected a uint8 image, got dtype {arr.dtype} "
            "(colour float maps with colorize_scalar / colorize_error / colorize_flow first)"
        )
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] in (3, 4))):
        raise ValueError(f"{name}: expected shape (H, W, 3), (H, W, 4) or (H, W), got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: empty image of shape {arr.shape}")
    return np.ascontiguousarray(arr)


def to_png_bytes(rgb: Any) -> bytes:
    """Encode a ``uint8`` RGB (or RGBA / greyscale) image as PNG bytes (lossless)."""
    arr = _check_image(rgb)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def save_png(path: str | os.PathLike, rgb: Any) -> Path:
    """Write ``rgb`` as a PNG file atomically (temporary sibling + rename); returns the path."""
    path = Path(path)
    write_bytes_atomic(path, to_png_bytes(rgb))
    return path
