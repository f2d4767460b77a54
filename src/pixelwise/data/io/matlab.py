"""MATLAB ``.mat`` files (v5, as scipy reads them): variables, 1x1 structs and label images.

SBD and BSDS500 ship their annotations as ``.mat`` files; these helpers turn every way such a
file can be wrong into a :class:`~pixelwise.data.io.files.FormatError` naming the file. The path
must be a regular file of at most :data:`MAX_MAT_BYTES` (checked before it is opened).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from .files import FormatError, check_regular_file

__all__ = ["MAX_MAT_BYTES", "label_image", "load_mat", "mat_variable", "struct_field"]

MAX_MAT_BYTES = 256 << 20  # SBD and BSDS500 annotations are under 1 MB each


def load_mat(path: Path) -> dict:
    """scipy.io.loadmat with every failure but a missing file turned into a FormatError
    (scipy raises a zoo of exception types for truncated or foreign files)."""
    check_regular_file(path, ".mat", MAX_MAT_BYTES)
    with open(path, "rb") as fh:  # a missing file raises FileNotFoundError here, unwrapped
        try:
            return scipy.io.loadmat(fh)
        except NotImplementedError as exc:  # MATLAB v7.3 (HDF5) files
            raise FormatError(f"{path}: unsupported .mat version ({exc})") from None
        except (scipy.io.matlab.MatReadError, ValueError, TypeError, OSError, IndexError, EOFError) as exc:
            raise FormatError(
                f"{path}: unreadable or truncated .mat file ({type(exc).__name__}: {exc})"
            ) from None


def struct_field(path: Path, struct, where: str, field: str) -> np.ndarray:
    """``struct.field`` of a 1x1 MATLAB struct as loadmat returns it (a record array)."""
    names = getattr(getattr(struct, "dtype", None), "names", None)
    if not isinstance(struct, np.ndarray) or names is None or struct.size != 1:
        raise FormatError(f"{path}: {where} is not a 1x1 MATLAB struct")
    if field not in names:
        raise FormatError(f"{path}: {where} has no field {field!r} (fields: {', '.join(names)})")
    return np.asarray(struct.reshape(-1)[0][field])


def mat_variable(path: Path, data: dict, variable: str) -> np.ndarray:
    if variable not in data:
        found = sorted(k for k in data if not k.startswith("__"))
        raise FormatError(f"{path}: no variable {variable!r} (variables: {', '.join(found) or 'none'})")
    return data[variable]


def label_image(path: Path, arr: np.ndarray, what: str, max_value: int) -> np.ndarray:
    """Check a 2-D integer label image with values in 0..max_value."""
    if arr.ndim != 2 or 0 in arr.shape or not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        raise FormatError(f"{path}: {what} must be a non-empty 2-D integer image, got {arr.dtype} {arr.shape}")
    if arr.min() < 0 or arr.max() > max_value:
        raise FormatError(f"{path}: {what} values must be in 0..{max_value}, got {arr.min()}..{arr.max()}")
    return arr
