"""Argument validation shared by every op.

Each check raises ``TypeError`` / ``ValueError`` whose message names the argument, what was
expected and what was given, so a wrong call is fixed from the message alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def pair(value, name: str) -> tuple[int, int]:
    """An int or a pair of ints -> (h, w); anything else is a TypeError naming ``name``."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, Sequence) and len(value) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        return (int(value[0]), int(value[1]))
    raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")


def check_tensor(t, name: str, ndim: int | tuple[int, ...]) -> None:
    """A floating-point tensor with the given number of dimensions."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {t.dtype}")
    dims = (ndim,) if isinstance(ndim, int) else ndim
    if t.dim() not in dims:
        want = " or ".join(f"{d}-D" for d in dims)
        raise ValueError(f"{name} must be {want}, got shape {tuple(t.shape)}")


def check_finite(t: torch.Tensor, name: str) -> None:
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite, got {int((~torch.isfinite(t)).sum())} NaN/inf values")


def check_positive(value, name: str) -> None:
    if isinstance(value, torch.Tensor):
        ok = bool((value > 0).all())
    else:
        ok = value > 0
    if not ok:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def check_kernel_geometry(kernel_size, stride, padding, dilation) -> tuple[tuple[int, int], ...]:
    """Validate and normalise window geometry: odd kernels, positive stride and dilation,
    and padding no larger than the window's half-extent ``dilation * (k - 1) / 2``."""
    k = pair(kernel_size, "kernel_size")
    s = pair(stride, "stride")
    p = pair(padding, "padding")
    d = pair(dilation, "dilation")
    for axis in range(2):
        if k[axis] < 1 or k[axis] % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size!r}")
        if s[axis] < 1:
            raise ValueError(f"stride must be >= 1, got {stride!r}")
        if d[axis] < 1:
            raise ValueError(f"dilation must be >= 1, got {dilation!r}")
        half = d[axis] * (k[axis] - 1) // 2
        if p[axis] < 0 or p[axis] > half:
            raise ValueError(
                f"padding must be between 0 and dilation*(kernel_size-1)/2 = {half} "
                f"for kernel_size={kernel_size!r}, dilation={dilation!r}; got padding={padding!r}"
            )
    return k, s, p, d


def conv_out_size(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def conv_transpose_out_size(size: int, k: int, s: int, p: int, d: int, op: int) -> int:
    return (size - 1) * s - 2 * p + d * (k - 1) + op + 1


def check_same_device_dtype(ref: torch.Tensor, ref_name: str, other: torch.Tensor, name: str) -> None:
    if other.dtype != ref.dtype:
        raise TypeError(f"{name} must have the dtype of {ref_name} ({ref.dtype}), got {other.dtype}")
    if other.device != ref.device:
        raise ValueError(f"{name} must be on the device of {ref_name} ({ref.device}), got {other.device}")
