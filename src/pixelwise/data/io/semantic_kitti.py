"""SemanticKITTI / KITTI point-cloud files: velodyne scans (``.bin``) and point labels (``.label``).

    <frame>.bin      float32 x, y, z, remission per point (16 bytes a point)
    <frame>.label    uint32 per point: instance << 16 | semantic

Both formats are little-endian with no header, so a scan must hold a multiple of 16 bytes and a
label file exactly 4 bytes per point of its scan. The readers check, before they read anything,
that the path is a regular file (no FIFO, device, socket or directory) of a size the format
allows -- at most :data:`MAX_SCAN_BYTES` (4 M points, over 30 times a real 130k-point scan) --
and raise :class:`~pixelwise.data.io.files.FormatError` naming the file. The dataset layout, the
label map and the pairing of scans with labels are in :mod:`pixelwise.data.datasets.semantic_kitti`.
"""

from __future__ import annotations

import numpy as np

from pixelwise.atomic import atomic_open

from .files import FormatError, PathLike, as_path, check_regular_file, read_regular_file

__all__ = [
    "MAX_ID",
    "MAX_LABEL_BYTES",
    "MAX_SCAN_BYTES",
    "check_integer_array",
    "label_count",
    "read_label",
    "read_scan",
    "write_label",
    "write_scan",
]

MAX_ID = 0xFFFF  # largest semantic (low 16 bits) or instance (high 16 bits) id of a label
MAX_SCAN_BYTES = 64 << 20  # 4 Mi points of 16 bytes
MAX_LABEL_BYTES = MAX_SCAN_BYTES // 4  # the same 4 Mi points, 4 bytes each
_SCAN_DTYPE = np.dtype("<f4")
_LABEL_DTYPE = np.dtype("<u4")


def check_integer_array(value, name: str) -> np.ndarray:
    """``value`` if it is a numpy array of an integer dtype; TypeError naming ``name`` otherwise."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(value).__name__}")
    if not np.issubdtype(value.dtype, np.integer):
        raise TypeError(f"{name} must have an integer dtype, got {value.dtype}")
    return value


def read_scan(path: PathLike) -> np.ndarray:
    """Read a SemanticKITTI / KITTI velodyne scan (``.bin``).

    Args:
        path: the ``.bin`` file: little-endian float32 x, y, z, remission per point.

    Returns:
        ``float32 (N, 4)`` with N >= 1.

    Raises:
        FormatError: the path is not a regular file (a FIFO, device, socket or directory), the
            file is empty, larger than :data:`MAX_SCAN_BYTES`, its size is not a multiple of 16
            bytes, or it holds non-finite values; the message names the file.
        FileNotFoundError: the file does not exist.
    """
    path = as_path(path)
    size = check_regular_file(path, "SemanticKITTI scan", MAX_SCAN_BYTES)
    _check_scan_size(path, size)
    data = read_regular_file(path, "SemanticKITTI scan", MAX_SCAN_BYTES)
    _check_scan_size(path, len(data))  # the file changed since it was checked
    points = np.frombuffer(data, dtype=_SCAN_DTYPE).reshape(-1, 4).astype(np.float32)
    bad = ~np.isfinite(points).all(axis=1)
    if bad.any():
        raise FormatError(
            f"{path}: {int(bad.sum())} of {len(points)} points have non-finite values "
            f"(first at point {int(np.argmax(bad))})"
        )
    return points


def _check_scan_size(path, size: int) -> None:
    if not size:
        raise FormatError(f"{path}: empty scan file (expected 16 bytes per point)")
    if size % 16:
        raise FormatError(
            f"{path}: {size} bytes is not a multiple of 16 (4 float32 per point); "
            "the file is truncated or not a velodyne scan"
        )


def write_scan(path: PathLike, points: np.ndarray) -> None:
    """Write a scan as little-endian float32 x, y, z, remission (atomic).

    Args:
        path: destination ``.bin`` (parent folders are created).
        points: ``(N, 4)`` real array, N >= 1, finite (what :func:`read_scan` accepts).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> p = Path(tempfile.mkdtemp()) / "000000.bin"
        >>> write_scan(p, np.ones((2, 4)))
        >>> read_scan(p).shape
        (2, 4)
    """
    path = as_path(path)
    if not isinstance(points, np.ndarray):
        raise TypeError(f"points must be a numpy array, got {type(points).__name__}")
    if points.ndim != 2 or points.shape[1] != 4 or points.shape[0] == 0:
        raise ValueError(f"points must have shape (N, 4) with N >= 1, got {points.shape}")
    if not (np.issubdtype(points.dtype, np.floating) or np.issubdtype(points.dtype, np.integer)):
        raise TypeError(f"points must have a real dtype, got {points.dtype}")
    data = points.astype(_SCAN_DTYPE)
    if not np.isfinite(data).all():
        raise ValueError("points must be finite (as float32)")
    with atomic_open(path, "wb") as fh:
        fh.write(data.tobytes())


def read_label(path: PathLike, num_points: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read a ``.label`` file: one little-endian uint32 per point.

    Args:
        path: the ``.label`` file.
        num_points: if given, the number of points of the matching scan; the count must agree.

    Returns:
        ``(semantic, instance)``, both ``uint32 (N,)``: the low and the high 16 bits.

    Raises:
        FormatError: the path is not a regular file (a FIFO, device, socket or directory), the
            file is larger than :data:`MAX_LABEL_BYTES`, its size is not a multiple of 4 bytes,
            or the count differs from ``num_points``; the message names the file.
        FileNotFoundError: the file does not exist.
    """
    path = as_path(path)
    if num_points is not None and (
        isinstance(num_points, bool) or not isinstance(num_points, (int, np.integer)) or num_points < 0
    ):
        raise ValueError(f"num_points must be a non-negative int or None, got {num_points!r}")
    count = label_count(path)
    if num_points is not None and count != num_points:
        raise FormatError(f"{path}: {count} labels for a scan of {num_points} points")
    data = read_regular_file(path, "SemanticKITTI label", MAX_LABEL_BYTES)
    if len(data) != 4 * count:
        raise FormatError(f"{path}: changed while it was read ({len(data)} bytes, {4 * count} before)")
    labels = np.frombuffer(data, dtype=_LABEL_DTYPE).astype(np.uint32)
    return labels & MAX_ID, labels >> 16


def label_count(path: PathLike) -> int:
    """Number of labels in a ``.label`` file, from its size alone (nothing is read).

    Raises:
        FormatError: not a regular file, larger than :data:`MAX_LABEL_BYTES`, or a size that is
            not a multiple of 4 bytes; the message names the file.
        FileNotFoundError: the file does not exist.
    """
    path = as_path(path)
    size = check_regular_file(path, "SemanticKITTI label", MAX_LABEL_BYTES)
    if size % 4:
        raise FormatError(f"{path}: {size} bytes is not a multiple of 4 (one uint32 per point)")
    return size // 4


def write_label(path: PathLike, semantic: np.ndarray, instance: np.ndarray | None = None) -> None:
    """Write a ``.label`` file: ``(instance << 16) | semantic`` as little-endian uint32 (atomic).

    Args:
        path: destination (parent folders are created).
        semantic: ``(N,)`` integer raw semantic ids in ``0..65535`` (raw ids, not training ids:
            map predictions with
            :meth:`pixelwise.data.datasets.semantic_kitti.LabelMap.to_raw` first).
        instance: optional ``(N,)`` integer instance ids in ``0..65535`` (default 0).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> p = Path(tempfile.mkdtemp()) / "000000.label"
        >>> write_label(p, np.array([10, 40]), np.array([3, 0]))
        >>> [a.tolist() for a in read_label(p, num_points=2)]
        [[10, 40], [3, 0]]
    """
    path = as_path(path)
    semantic = check_integer_array(semantic, "semantic")
    if semantic.ndim != 1:
        raise ValueError(f"semantic must be 1-D (one id per point), got shape {semantic.shape}")
    if semantic.size and (semantic.min() < 0 or semantic.max() > MAX_ID):
        raise ValueError(f"semantic: ids must be in 0..{MAX_ID}, got range {semantic.min()}..{semantic.max()}")
    packed = semantic.astype(np.uint32)
    if instance is not None:
        instance = check_integer_array(instance, "instance")
        if instance.shape != semantic.shape:
            raise ValueError(f"instance must have shape {semantic.shape} like semantic, got {instance.shape}")
        if instance.size and (instance.min() < 0 or instance.max() > MAX_ID):
            raise ValueError(f"instance: ids must be in 0..{MAX_ID}, got range {instance.min()}..{instance.max()}")
        packed |= instance.astype(np.uint32) << 16
    with atomic_open(path, "wb") as fh:
        fh.write(packed.astype(_LABEL_DTYPE).tobytes())
