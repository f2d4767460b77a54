"""On-disk formats for images and dense targets (depth, disparity, optical flow).

Pure numpy (plus Pillow for image files). Every reader first checks that the path is a regular
file no larger than its format allows (:func:`~pixelwise.data.io.files.check_regular_file`: no
FIFO, device, socket or directory), then the header, then that the payload size the header
promises is the size of the rest of the file -- before the payload is read -- and raises
:class:`~pixelwise.data.io.files.FormatError` with a message that names the file and says what
was expected and what was found. Arrays are limited to :data:`MAX_ARRAY_BYTES`, images to
:data:`MAX_IMAGE_PIXELS` pixels (checked from the header, before decoding: no decompression
bombs) and :data:`MAX_IMAGE_FILE_BYTES` bytes. Every writer is atomic (see
:mod:`pixelwise.atomic`).

Array conventions
-----------------
* images: ``float32 (H, W, 3)`` in ``[0, 1]``, RGB, first row = top of the picture;
* PFM: ``float32 (H, W)`` ("Pf") or ``(H, W, 3)`` ("PF"), top-to-bottom (the file stores rows
  bottom-to-top; readers and writers flip);
* FLO: ``float32 (H, W, 2)``, channels (u, v) in pixels;
* 16-bit PNG: ``uint16 (H, W)``.

:func:`read_target` / :func:`write_target` pick the format from the suffix; a 16-bit PNG target
stores ``round(value * scale)`` with 0 meaning "invalid" (read back as NaN).
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from pixelwise.atomic import atomic_path, write_bytes_atomic

from .files import FormatError, PathLike, check_regular_file

__all__ = [
    "FLO_MAGIC",
    "FLO_UNKNOWN_THRESHOLD",
    "TARGET_SUFFIXES",
    "IMAGE_SUFFIXES",
    "MAX_ARRAY_BYTES",
    "MAX_IMAGE_FILE_BYTES",
    "MAX_IMAGE_PIXELS",
    "read_pfm",
    "write_pfm",
    "read_pfm_header",
    "read_flo",
    "write_flo",
    "read_flo_header",
    "read_png16",
    "write_png16",
    "read_rgb",
    "write_png",
    "image_size",
    "read_npy",
    "write_npy",
    "read_npy_header",
    "read_target",
    "write_target",
    "target_shape",
]


FLO_MAGIC = 202021.25  # float32 whose little-endian bytes spell b"PIEH"
FLO_UNKNOWN_THRESHOLD = 1e9  # |u| or |v| above this conventionally means "unknown flow"
_FLO_MAX_DIM = 100_000
_PFM_MAX_DIM = 100_000
TARGET_SUFFIXES = (".npy", ".pfm", ".flo", ".png")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_ARRAY_BYTES = 4 << 30  # payload of one PFM / .flo / .npy file (a 16k x 16k x 4 float32 array)
_MAX_HEADER_BYTES = 1 << 16  # room for any header in front of the payload (.npy v2 headers included)
MAX_IMAGE_PIXELS = 178_956_970  # Pillow's default DecompressionBombError threshold, always enforced
MAX_IMAGE_FILE_BYTES = 1 << 30  # bytes of one image file


def _name(path: PathLike) -> str:
    return os.fspath(path)


def _check_array_file(path: PathLike, fmt: str) -> int:
    """Size of an array file (PFM, .flo, .npy) after the regular-file and size-limit checks."""
    return check_regular_file(path, fmt, MAX_ARRAY_BYTES + _MAX_HEADER_BYTES)


def _read_payload(path: PathLike, fmt: str, offset: int, header: str, expected: int) -> bytes:
    """The ``expected`` payload bytes after ``offset``, checked against the file size first."""
    name = _name(path)
    if expected > MAX_ARRAY_BYTES:
        raise FormatError(f"{name}: {fmt} header says {header}, more than the {MAX_ARRAY_BYTES} bytes allowed")
    size = _check_array_file(path, fmt)
    _check_payload(name, fmt, header, expected, size - offset)
    with open(path, "rb") as fh:
        fh.seek(offset)
        payload = fh.read(expected + 1)
    _check_payload(name, fmt, header, expected, len(payload))  # the file changed meanwhile
    return payload


# --------------------------------------------------------------------------------------- PFM


def _parse_pfm_header(path: PathLike, data: bytes) -> tuple[int, int, int, str, int]:
    """Return (height, width, channels, numpy byte order '<' or '>', payload offset)."""
    name = _name(path)
    if data[:2] not in (b"PF", b"Pf"):
        raise FormatError(
            f"{name}: not a PFM file: wrong magic, expected b'PF' or b'Pf', found {data[:2]!r}"
        )
    # Header: three whitespace-separated lines "PF|Pf", "W H", "scale", each ended by one
    # newline; the float payload starts right after the third newline. Some writers split
    # W and H over two lines, so we gather tokens line by line.
    pos = 0
    lines: list[bytes] = []
    tokens: list[bytes] = []
    while len(tokens) < 4:
        end = data.find(b"\n", pos, pos + 256)
        if end < 0:
            raise FormatError(
                f"{name}: malformed PFM header: expected 'PF|Pf', 'width height', 'scale' on "
                f"newline-terminated lines, found {data[:64]!r}"
            )
        line = data[pos:end]
        lines.append(line)
        tokens.extend(line.split())
        pos = end + 1
        if len(lines) > 4:
            break
    if len(tokens) != 4 or tokens[0] not in (b"PF", b"Pf"):
        raise FormatError(
            f"{name}: malformed PFM header: expected 4 tokens 'PF|Pf width height scale', "
            f"found {b' '.join(tokens)[:80]!r}"
        )
    channels = 3 if tokens[0] == b"PF" else 1
    try:
        width, height = int(tokens[1]), int(tokens[2])
    except ValueError:
        raise FormatError(
            f"{name}: malformed PFM header: expected integer width and height, "
            f"found {tokens[1]!r} {tokens[2]!r}"
        ) from None
    if not (0 < width <= _PFM_MAX_DIM and 0 < height <= _PFM_MAX_DIM):
        raise FormatError(
            f"{name}: malformed PFM header: expected 1 <= width, height <= {_PFM_MAX_DIM}, "
            f"found width={width} height={height}"
        )
    try:
        scale = float(tokens[3])
    except ValueError:
        raise FormatError(
            f"{name}: malformed PFM header: expected a numeric scale, found {tokens[3]!r}"
        ) from None
    if scale == 0.0 or not np.isfinite(scale):
        raise FormatError(
            f"{name}: malformed PFM header: expected a finite non-zero scale (its sign gives "
            f"the byte order), found {scale}"
        )
    order = "<" if scale < 0 else ">"
    return height, width, channels, order, pos


def read_pfm_header(path: PathLike) -> tuple[int, int, int]:
    """(height, width, channels) of a PFM file, from its header only."""
    _check_array_file(path, "PFM")
    with open(path, "rb") as fh:
        head = fh.read(1024)
    h, w, c, _, _ = _parse_pfm_header(path, head)
    return h, w, c


def _check_payload(name: str, fmt: str, header: str, expected: int, found: int) -> None:
    if found != expected:
        what = "truncated" if found < expected else "extra bytes after the data"
        raise FormatError(f"{name}: {fmt} payload size mismatch ({what}): header says {header}, "
                          f"found {found} bytes")


def read_pfm(path: PathLike) -> np.ndarray:
    """Read a PFM file: float32 (H, W) for "Pf", (H, W, 3) for "PF", first row = top."""
    _check_array_file(path, "PFM")
    with open(path, "rb") as fh:
        head = fh.read(1024)
    h, w, c, order, offset = _parse_pfm_header(path, head)
    expected = h * w * c * 4
    data = _read_payload(path, "PFM", offset, f"{w}x{h}x{c} float32 = {expected} bytes", expected)
    arr = np.frombuffer(data, dtype=order + "f4", count=h * w * c)
    arr = arr.reshape((h, w, c) if c == 3 else (h, w))
    return np.ascontiguousarray(arr[::-1]).astype(np.float32, copy=False)


def write_pfm(path: PathLike, array: np.ndarray) -> None:
    """Write float data (H, W), (H, W, 1) or (H, W, 3) as little-endian PFM (atomic)."""
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ValueError(
            f"write_pfm({_name(path)}): expected an array of shape (H, W), (H, W, 1) or "
            f"(H, W, 3), found {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"write_pfm({_name(path)}): empty array of shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"write_pfm({_name(path)}): expected numeric data, found {arr.dtype}")
    h, w = arr.shape[:2]
    magic = b"PF" if arr.ndim == 3 else b"Pf"
    header = magic + b"\n" + f"{w} {h}\n-1.0\n".encode("ascii")
    payload = np.ascontiguousarray(arr[::-1], dtype="<f4").tobytes()
    write_bytes_atomic(path, header + payload)


# --------------------------------------------------------------------------------------- FLO


def _parse_flo_header(path: PathLike, head: bytes) -> tuple[int, int]:
    name = _name(path)
    if len(head) < 12:
        raise FormatError(
            f"{name}: truncated .flo header: expected 12 bytes (magic, width, height), "
            f"found {len(head)}"
        )
    magic = float(np.frombuffer(head, "<f4", count=1)[0])
    if magic != FLO_MAGIC:
        raise FormatError(
            f"{name}: not a .flo file: wrong magic, expected {FLO_MAGIC} (b'PIEH'), "
            f"found {magic!r} ({head[:4]!r})"
        )
    width, height = (int(v) for v in np.frombuffer(head, "<i4", count=2, offset=4))
    if not (0 < width <= _FLO_MAX_DIM and 0 < height <= _FLO_MAX_DIM):
        raise FormatError(
            f"{name}: absurd .flo dimensions: expected 1 <= width, height <= {_FLO_MAX_DIM}, "
            f"found width={width} height={height}"
        )
    return height, width


def read_flo_header(path: PathLike) -> tuple[int, int]:
    """(height, width) of a Middlebury .flo file, from its header only."""
    _check_array_file(path, ".flo")
    with open(path, "rb") as fh:
        head = fh.read(12)
    return _parse_flo_header(path, head)


def read_flo(path: PathLike) -> np.ndarray:
    """Read a Middlebury .flo file: float32 (H, W, 2), channels (u, v).

    Values above 1e9 (conventionally "unknown") are returned unchanged.
    """
    h, w = read_flo_header(path)
    expected = h * w * 2 * 4
    data = _read_payload(path, ".flo", 12, f"{w}x{h}x2 float32 = {expected} bytes", expected)
    arr = np.frombuffer(data, "<f4", count=h * w * 2).reshape(h, w, 2)
    return arr.astype(np.float32)  # native byte order, writable copy


def write_flo(path: PathLike, flow: np.ndarray) -> None:
    """Write a (H, W, 2) flow field as a Middlebury .flo file (atomic)."""
    arr = np.asarray(flow)
    if arr.ndim != 3 or arr.shape[2] != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(
            f"write_flo({_name(path)}): expected a non-empty array of shape (H, W, 2), "
            f"found {arr.shape}"
        )
    h, w = arr.shape[:2]
    if h > _FLO_MAX_DIM or w > _FLO_MAX_DIM:
        raise ValueError(f"write_flo({_name(path)}): dimensions {h}x{w} too large")
    header = np.array([FLO_MAGIC], "<f4").tobytes() + np.array([w, h], "<i4").tobytes()
    write_bytes_atomic(path, header + np.ascontiguousarray(arr, dtype="<f4").tobytes())


# ------------------------------------------------------------------------------ Pillow images

_MODE_DESCRIPTIONS = {
    "1": "1-bit black and white",
    "L": "8-bit grayscale",
    "LA": "8-bit grayscale with alpha",
    "P": "8-bit palette",
    "PA": "8-bit palette with alpha",
    "RGB": "8-bit RGB colour",
    "RGBA": "8-bit RGBA colour",
    "I": "32-bit integer grayscale",
    "F": "32-bit float grayscale",
}


def _describe_mode(mode: str) -> str:
    return f"mode {mode!r} ({_MODE_DESCRIPTIONS.get(mode, 'not 16-bit grayscale')})"


def _open_image(path: PathLike):
    """Open and fully decode an image with Pillow; any failure becomes a FormatError."""
    name = _name(path)
    check_regular_file(path, "image", MAX_IMAGE_FILE_BYTES)
    try:
        img = Image.open(path)
        _check_pixels(name, img)
        img.load()
    except FileNotFoundError:
        raise
    except UnidentifiedImageError:
        raise FormatError(f"{name}: not a readable image (Pillow cannot identify it)") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"{name}: unreadable or truncated image: {exc}") from None
    return img


def _check_pixels(name: str, img) -> None:
    """Refuse an image whose header promises more than MAX_IMAGE_PIXELS pixels, before decoding
    (whatever Pillow's own, global, ``Image.MAX_IMAGE_PIXELS`` is set to)."""
    w, h = img.size
    if w * h > MAX_IMAGE_PIXELS:
        img.close()
        raise FormatError(
            f"{name}: {w}x{h} = {w * h} pixels is more than the {MAX_IMAGE_PIXELS} allowed "
            "(a decompression bomb?)"
        )


def image_size(path: PathLike) -> tuple[int, int]:
    """(height, width) of an image file, from its header only (no decoding)."""
    name = _name(path)
    check_regular_file(path, "image", MAX_IMAGE_FILE_BYTES)
    try:
        with Image.open(path) as img:
            _check_pixels(name, img)
            w, h = img.size
    except FileNotFoundError:
        raise
    except UnidentifiedImageError:
        raise FormatError(f"{name}: not a readable image (Pillow cannot identify it)") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"{name}: unreadable image header: {exc}") from None
    return h, w


def read_png16(path: PathLike) -> np.ndarray:
    """Read a 16-bit single-channel PNG as uint16 (H, W); anything else is a FormatError."""
    name = _name(path)
    img = _open_image(path)
    if img.format != "PNG":
        raise FormatError(f"{name}: expected a 16-bit grayscale PNG, found a {img.format} file")
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(img).astype(np.uint16)
    if mode == "I":  # older Pillow versions open 16-bit grayscale PNGs as 32-bit "I"
        arr = np.asarray(img)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise FormatError(
                f"{name}: expected 16-bit values in [0, 65535], found [{arr.min()}, {arr.max()}]"
            )
        return arr.astype(np.uint16)
    raise FormatError(
        f"{name}: expected a 16-bit single-channel (grayscale) PNG, found {_describe_mode(mode)}"
    )


def write_png16(path: PathLike, array: np.ndarray) -> None:
    """Write a uint16 (H, W) array as a 16-bit grayscale PNG (atomic)."""
    arr = np.asarray(array)
    if arr.dtype != np.uint16:
        raise ValueError(f"write_png16({_name(path)}): expected dtype uint16, found {arr.dtype}")
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(
            f"write_png16({_name(path)}): expected a non-empty (H, W) array, found {arr.shape}"
        )
    img = Image.fromarray(np.ascontiguousarray(arr))
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def read_rgb(path: PathLike) -> np.ndarray:
    """Read any Pillow-readable image as float32 (H, W, 3) RGB in [0, 1].

    Grayscale is repeated over 3 channels, alpha is dropped, 16-bit grayscale is divided by
    65535. (Pillow decodes 16-bit-per-channel RGB PNGs to 8 bits per channel, so those come
    out with 8-bit precision, still correctly scaled to [0, 1].)
    """
    name = _name(path)
    img = _open_image(path)
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(img).astype(np.float32)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise FormatError(
                f"{name}: expected integer pixel values in [0, 65535] for {_describe_mode(mode)}, "
                f"found [{arr.min()}, {arr.max()}]"
            )
        arr = arr / 65535.0
    elif mode == "F":
        arr = np.asarray(img).astype(np.float32)
        if arr.size and (not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1):
            raise FormatError(
                f"{name}: expected float pixel values in [0, 1] for mode 'F', "
                f"found [{np.nanmin(arr)}, {np.nanmax(arr)}]"
            )
    else:
        arr = np.asarray(img.convert("RGB")).astype(np.float32) / 255.0
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return np.ascontiguousarray(arr, dtype=np.float32)


def write_png(path: PathLike, array: np.ndarray) -> None:
    """Write a uint8 (H, W) grayscale or (H, W, 3) RGB array as an 8-bit PNG (atomic)."""
    arr = np.asarray(array)
    if arr.dtype != np.uint8:
        raise ValueError(f"write_png({_name(path)}): expected dtype uint8, found {arr.dtype}")
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)) or 0 in arr.shape:
        raise ValueError(
            f"write_png({_name(path)}): expected a non-empty (H, W) or (H, W, 3) array, "
            f"found {arr.shape}"
        )
    img = Image.fromarray(np.ascontiguousarray(arr))
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


# --------------------------------------------------------------------------------------- NPY

_NPY_MAGIC = b"\x93NUMPY"


def _npy_header(path: PathLike, fh) -> tuple[tuple[int, ...], bool, np.dtype]:
    name = _name(path)
    prefix = fh.read(6)
    if prefix != _NPY_MAGIC:
        raise FormatError(
            f"{name}: not a .npy file: wrong magic, expected {_NPY_MAGIC!r}, found {prefix!r}"
        )
    fh.seek(0)
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except (ValueError, EOFError, SyntaxError) as exc:
        raise FormatError(f"{name}: malformed .npy header: {exc}") from None
    return shape, fortran, dtype


def read_npy_header(path: PathLike) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of a .npy file, from its header only."""
    _check_array_file(path, ".npy")
    with open(path, "rb") as fh:
        shape, _, dtype = _npy_header(path, fh)
    return tuple(shape), dtype


def read_npy(path: PathLike) -> np.ndarray:
    """Read a .npy file (never unpickles); size and header are checked."""
    name = _name(path)
    size = _check_array_file(path, ".npy")
    with open(path, "rb") as fh:
        shape, fortran, dtype = _npy_header(path, fh)
        if dtype.hasobject:
            raise FormatError(
                f"{name}: .npy holds Python objects (dtype {dtype}), which would need unpickling; "
                f"expected a plain numeric array"
            )
        offset = fh.tell()
        expected = math.prod(shape) * dtype.itemsize
        header = f"shape {tuple(shape)} dtype {dtype} = {expected} bytes"
        if expected > MAX_ARRAY_BYTES:
            raise FormatError(f"{name}: .npy header says {header}, more than the {MAX_ARRAY_BYTES} bytes allowed")
        _check_payload(name, ".npy", header, expected, size - offset)
        fh.seek(0)
        try:
            arr = np.load(fh, allow_pickle=False)
        except (ValueError, EOFError, OSError) as exc:  # pragma: no cover - caught by checks above
            raise FormatError(f"{name}: unreadable .npy file: {exc}") from None
    return arr


def write_npy(path: PathLike, array: np.ndarray) -> None:
    """Write an array as .npy (atomic); object arrays are refused."""
    arr = np.asarray(array)
    if arr.dtype.hasobject:
        raise ValueError(f"write_npy({_name(path)}): object arrays are not allowed ({arr.dtype})")
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    write_bytes_atomic(path, buf.getvalue())


# ------------------------------------------------------------------------- targets by suffix


def _suffix(path: PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in TARGET_SUFFIXES:
        raise ValueError(
            f"{_name(path)}: unknown target suffix {Path(path).suffix!r}; accepted suffixes: "
            f"{', '.join(TARGET_SUFFIXES)} (.png = 16-bit PNG, value / scale, 0 = invalid)"
        )
    return suffix


def _check_scale(scale: float) -> float:
    scale = float(scale)
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a finite positive number, got {scale}")
    return scale


def target_shape(path: PathLike) -> tuple[int, int, int]:
    """(height, width, channels) of a target file, from its header only.

    .npy arrays must be (H, W) or (H, W, C); other shapes are a FormatError.
    """
    suffix = _suffix(path)
    if suffix == ".pfm":
        return read_pfm_header(path)
    if suffix == ".flo":
        return (*read_flo_header(path), 2)
    if suffix == ".png":
        h, w = image_size(path)
        return h, w, 1
    shape, _ = read_npy_header(path)
    if len(shape) == 2:
        return shape[0], shape[1], 1
    if len(shape) == 3:
        return shape[0], shape[1], shape[2]
    raise FormatError(f"{_name(path)}: expected a (H, W) or (H, W, C) array, found shape {shape}")


def read_target(path: PathLike, *, scale: float = 1000.0) -> np.ndarray:
    """Read a dense target as float32, format by suffix.

    * ``.npy``: the stored array, cast to float32;
    * ``.pfm``: (H, W) or (H, W, 3);
    * ``.flo``: (H, W, 2);
    * ``.png``: 16-bit grayscale, ``value = png / scale``; png value 0 (invalid) becomes NaN.
    """
    suffix = _suffix(path)
    if suffix == ".npy":
        arr = read_npy(path)
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
                or arr.dtype == np.bool_):
            raise FormatError(f"{_name(path)}: expected a numeric array, found dtype {arr.dtype}")
        return arr.astype(np.float32)
    if suffix == ".pfm":
        return read_pfm(path)
    if suffix == ".flo":
        return read_flo(path)
    scale = _check_scale(scale)
    raw = read_png16(path)
    out = raw.astype(np.float32) / np.float32(scale)
    out[raw == 0] = np.nan
    return out


def write_target(path: PathLike, array: np.ndarray, *, scale: float = 1000.0) -> None:
    """Write a dense target, format by suffix (atomic). Inverse of :func:`read_target`.

    For ``.png`` the value is stored as ``round(value * scale)`` in 16 bits; non-finite and
    non-positive values are stored as 0 (= invalid); positive values that would round to 0 are
    stored as 1; values above ``65535 / scale`` are a ValueError. The array must be (H, W) or
    (H, W, 1) for ``.png``, (H, W, 2) for ``.flo``.
    """
    suffix = _suffix(path)
    if suffix == ".npy":
        write_npy(path, array)
        return
    if suffix == ".pfm":
        write_pfm(path, array)
        return
    if suffix == ".flo":
        write_flo(path, array)
        return
    scale = _check_scale(scale)
    arr = np.asarray(array, dtype=np.float64)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise ValueError(
            f"write_target({_name(path)}): a 16-bit PNG target must be (H, W) or (H, W, 1), "
            f"found {np.shape(array)}"
        )
    valid = np.isfinite(arr) & (arr > 0)
    scaled = np.where(valid, np.rint(np.where(valid, arr, 0.0) * scale), 0.0)
    if valid.any() and scaled[valid].max() > 65535:
        raise ValueError(
            f"write_target({_name(path)}): values up to {arr[valid].max():g} do not fit a 16-bit "
            f"PNG at scale {scale:g} (max {65535 / scale:g}); use a smaller scale or .npy/.pfm"
        )
    scaled[valid & (scaled < 1)] = 1
    write_png16(path, scaled.astype(np.uint16))
