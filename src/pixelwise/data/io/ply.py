"""Coloured point clouds as binary PLY files (readable by MeshLab, CloudCompare, Open3D).

Written by hand: the format is a ten-line text header followed by packed records, which numpy
writes directly; a dependency would add nothing.
"""

from __future__ import annotations

import os

import numpy as np

from pixelwise.atomic import atomic_open

from .files import FormatError, read_regular_file

__all__ = ["MAX_PLY_BYTES", "read_ply", "write_ply"]

MAX_PLY_BYTES = 1 << 30  # 70 M vertices of 15 bytes; a 130k-point scan is 2 MB
_VERTEX = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])


def write_ply(path: str | os.PathLike, xyz: np.ndarray, rgb: np.ndarray) -> None:
    """Write points ``xyz`` (N, 3) with colours ``rgb`` (N, 3) uint8 as a binary little-endian PLY."""
    xyz, rgb = np.asarray(xyz), np.asarray(rgb)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ValueError(f"xyz must have shape (N, 3), got {xyz.shape}")
    if rgb.shape != xyz.shape:
        raise ValueError(f"rgb must have the shape of xyz {xyz.shape}, got {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise TypeError(f"rgb must be uint8, got {rgb.dtype}")
    records = np.empty(len(xyz), _VERTEX)
    for i, name in enumerate("xyz"):
        records[name] = xyz[:, i]
    for i, name in enumerate(("red", "green", "blue")):
        records[name] = rgb[:, i]
    header = ("ply\nformat binary_little_endian 1.0\ncomment written by pixelwise\n"
              f"element vertex {len(xyz)}\n"
              "property float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n")
    with atomic_open(path, "wb") as fh:
        fh.write(header.encode("ascii"))
        fh.write(records.tobytes())


def read_ply(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read back a PLY written by :func:`write_ply`: ``(xyz (N,3) float32, rgb (N,3) uint8)``."""
    data = read_regular_file(path, "PLY", MAX_PLY_BYTES)
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise FormatError(f"{path}: not a PLY file")
    header = data[:end].decode("ascii", "replace").splitlines()
    if "format binary_little_endian 1.0" not in header:
        raise FormatError(f"{path}: only binary little-endian PLY is supported")
    count = next((int(line.split()[2]) for line in header if line.startswith("element vertex")), None)
    body = data[end + len(b"end_header\n"):]
    if count is None or len(body) != count * _VERTEX.itemsize:
        raise FormatError(f"{path}: {len(body)} bytes of vertex data for {count} vertices of {_VERTEX.itemsize} bytes")
    records = np.frombuffer(body, _VERTEX)
    xyz = np.stack([records[n] for n in "xyz"], 1)
    rgb = np.stack([records[n] for n in ("red", "green", "blue")], 1)
    return xyz, rgb
