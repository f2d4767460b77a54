"""Palette PNGs of label indices (the PASCAL VOC annotation format) and the VOC colour map.

A label PNG stores one index per pixel (class, instance or train id) and a palette that colours
it; readers want the indices, never the colours. Readers check that the path is a regular image
file (:func:`~pixelwise.data.io.files.check_regular_file`, through the Pillow reader of
:mod:`pixelwise.data.io.formats`) and raise :class:`~pixelwise.data.io.files.FormatError` naming
the file.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from pixelwise.atomic import atomic_path

from .files import FormatError, PathLike, as_path
from .formats import _describe_mode, _open_image

__all__ = ["VOC_PALETTE", "read_palette_png", "write_palette_png"]


def _voc_palette() -> np.ndarray:
    """The VOC colour map: bit b of the index's three low bits (r, g, b) goes to bit 7 - b of
    each channel, then the next three bits to bit 6, and so on."""
    idx = np.arange(256)
    palette = np.zeros((256, 3), np.int64)
    for j in range(8):
        for channel in range(3):
            palette[:, channel] |= ((idx >> (3 * j + channel)) & 1) << (7 - j)
    palette = palette.astype(np.uint8)
    palette.flags.writeable = False
    return palette


VOC_PALETTE: np.ndarray = _voc_palette()  # uint8 (256, 3), read-only


def read_palette_png(path: PathLike) -> np.ndarray:
    """Read a label PNG as its raw pixel indices (not the colours).

    Args:
        path: a palette ("P") PNG as VOC ships them, or an 8-bit grayscale ("L") PNG.

    Returns:
        ``uint8 (H, W)`` palette indices.

    Raises:
        FormatError: not a PNG, unreadable or truncated, or any other mode (an RGB rendering of
            the labels, say); the message names the file and the mode.
        FileNotFoundError: the file does not exist.
    """
    path = as_path(path)
    img = _open_image(path)
    if img.format != "PNG":
        raise FormatError(f"{path}: expected a palette PNG of label indices, found a {img.format} file")
    if img.mode not in ("P", "L"):
        raise FormatError(
            f"{path}: expected a palette ('P') or grayscale ('L') PNG of label indices, "
            f"found {_describe_mode(img.mode)}"
        )
    return np.array(img, dtype=np.uint8)


def write_palette_png(path: PathLike, indices: np.ndarray, palette: np.ndarray = VOC_PALETTE) -> None:
    """Write label indices as a palette ("P") PNG (atomic), like the VOC annotation files.

    Args:
        path: destination (parent folders are created).
        indices: ``(H, W)`` integer array with values in 0..255.
        palette: ``(N, 3)`` integer RGB colours in 0..255, ``1 <= N <= 256``.
    """
    path = as_path(path)
    arr = np.asarray(indices)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"write_palette_png({path}): indices must be integers, got {arr.dtype}")
    if arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(f"write_palette_png({path}): indices must be a non-empty (H, W) array, got {arr.shape}")
    if arr.min() < 0 or arr.max() > 255:
        raise ValueError(f"write_palette_png({path}): indices must be in 0..255, got {arr.min()}..{arr.max()}")
    pal = np.asarray(palette)
    if not np.issubdtype(pal.dtype, np.integer):
        raise TypeError(f"write_palette_png({path}): palette must be integers, got {pal.dtype}")
    if pal.ndim != 2 or pal.shape[1] != 3 or not 1 <= pal.shape[0] <= 256:
        raise ValueError(f"write_palette_png({path}): palette must have shape (N, 3), 1 <= N <= 256, got {pal.shape}")
    if pal.min() < 0 or pal.max() > 255:
        raise ValueError(f"write_palette_png({path}): palette colours must be in 0..255")
    img = Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8))  # mode "L"
    img.putpalette(pal.astype(np.uint8).tobytes())  # turns the "L" image into a "P" image
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
