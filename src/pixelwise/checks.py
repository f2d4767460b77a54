"""Argument validation: the one module every package uses.

One exception type per kind of mistake, each a subclass of the standard one callers expect:

* :class:`WrongTypeError` (``TypeError``): a value of the wrong type (a float or bool where an
  int is needed, a list where a tensor is needed...);
* :class:`OutOfRangeError` (``ValueError``): a number outside its range (a negative size, an even
  kernel, a rate above 1...);
* :class:`NotAChoiceError` (``ValueError``): a name that is not one of the accepted names;
* :class:`ShapeError` (``ValueError``): a tensor of the wrong rank or shape, or with NaN/inf.

Every message names the argument, what was expected and what was given, so a wrong call is fixed
from the message alone. ``parse_*`` functions are the same checks as ``argparse`` types.
"""

from __future__ import annotations

import argparse
import math
import numbers
from collections.abc import Iterable, Sequence

import torch

__all__ = [
    "NotAChoiceError",
    "OutOfRangeError",
    "ShapeError",
    "WrongTypeError",
    "check_bool",
    "check_choice",
    "check_finite",
    "check_float",
    "check_floats",
    "check_int",
    "check_kernel_geometry",
    "check_odd",
    "check_positive",
    "check_positive_int",
    "check_same_device_dtype",
    "check_tensor",
    "conv_out_size",
    "conv_transpose_out_size",
    "pair",
    "parse_positive_int",
]


class WrongTypeError(TypeError):
    """A value of the wrong type."""


class OutOfRangeError(ValueError):
    """A number outside its allowed range."""


class NotAChoiceError(ValueError):
    """A name that is not one of the accepted ones."""


class ShapeError(ValueError):
    """A tensor of the wrong rank or shape, or with non-finite values."""


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(value, name: str, *, min: int | None = None, max: int | None = None) -> int:  # noqa: A002
    """An int (not a bool, not a float) within ``[min, max]``; returns it as ``int``."""
    if not _is_int(value):
        raise WrongTypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    value = int(value)
    if min is not None and value < min:
        raise OutOfRangeError(f"{name} must be >= {min}, got {value}")
    if max is not None and value > max:
        raise OutOfRangeError(f"{name} must be <= {max}, got {value}")
    return value


def check_positive_int(value, name: str) -> int:
    return check_int(value, name, min=1)


def check_odd(value, name: str) -> int:
    """A positive odd int (kernel sizes)."""
    value = check_int(value, name, min=1)
    if value % 2 == 0:
        raise OutOfRangeError(f"{name} must be odd, got {value}")
    return value


def check_float(value, name: str, *, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False, allow_inf: bool = False) -> float:
    """A finite real number (ints accepted, bools not) within the given bounds; returns a float.
    ``low_open`` / ``high_open`` exclude the bound itself. ``allow_inf=True`` also accepts
    ``inf`` / ``-inf`` (still subject to the bounds; NaN is never accepted)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise WrongTypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if math.isnan(value) or (not allow_inf and math.isinf(value)):
        raise OutOfRangeError(f"{name} must be {'a number, not NaN' if allow_inf else 'finite'}, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise OutOfRangeError(f"{name} must be {'>' if low_open else '>='} {low:g}, got {value:g}")
    if high is not None and (value > high or (high_open and value == high)):
        raise OutOfRangeError(f"{name} must be {'<' if high_open else '<='} {high:g}, got {value:g}")
    return value


def check_floats(values, name: str, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> tuple[float, ...]:
    """A non-empty sequence of numbers (list, tuple, 1-D array), each checked as :func:`check_float`
    with the same bounds (the message names the entry, ``name[i]``); returns a tuple of floats."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise WrongTypeError(f"{name} must be a sequence of numbers, got {values!r} ({type(values).__name__})")
    try:
        items = list(values)
    except TypeError:  # e.g. a 0-d array
        raise WrongTypeError(f"{name} must be a sequence of numbers, got {values!r}") from None
    if not items:
        raise OutOfRangeError(f"{name} must hold at least one number, got {values!r}")
    return tuple(check_float(v, f"{name}[{i}]", low=low, high=high, low_open=low_open, high_open=high_open)
                 for i, v in enumerate(items))


def check_bool(value, name: str) -> bool:
    """A ``bool`` (not an int, not a string such as ``"false"``); returns it."""
    if not isinstance(value, bool):
        raise WrongTypeError(f"{name} must be a bool, got {value!r} ({type(value).__name__})")
    return value


def check_choice(value, name: str, choices: Sequence):
    """One of ``choices``; returns it."""
    if value not in tuple(choices):
        raise NotAChoiceError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value


def parse_positive_int(text: str) -> int:
    """``argparse`` type: a positive integer."""
    try:
        return check_positive_int(int(text), "value")
    except (ValueError, TypeError):
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None


def pair(value, name: str, *, min: int | None = None) -> tuple[int, int]:  # noqa: A002
    """An int or a pair of ints -> (h, w); anything else is a TypeError naming ``name``.
    With ``min``, both entries must be ``>= min`` (:class:`OutOfRangeError` otherwise)."""
    if isinstance(value, bool):
        raise WrongTypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if isinstance(value, int):
        out = (value, value)
    elif isinstance(value, Sequence) and len(value) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        out = (int(value[0]), int(value[1]))
    else:
        raise WrongTypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min is not None and (out[0] < min or out[1] < min):
        raise OutOfRangeError(f"{name} must be >= {min}, got {value!r}")
    return out


def check_tensor(t, name: str, ndim: int | tuple[int, ...]) -> None:
    """A floating-point tensor with the given number of dimensions."""
    if not isinstance(t, torch.Tensor):
        raise WrongTypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise WrongTypeError(f"{name} must have a floating-point dtype, got {t.dtype}")
    dims = (ndim,) if isinstance(ndim, int) else ndim
    if t.dim() not in dims:
        want = " or ".join(f"{d}-D" for d in dims)
        raise ShapeError(f"{name} must be {want}, got shape {tuple(t.shape)}")


def check_finite(t: torch.Tensor, name: str) -> None:
    if not bool(torch.isfinite(t).all()):
        raise ShapeError(f"{name} must be finite, got {int((~torch.isfinite(t)).sum())} NaN/inf values")


def check_positive(value, name: str) -> None:
    """A number ``> 0`` (``inf`` allowed, bools and NaN not), or a tensor whose every entry is
    ``> 0`` (a learnable bandwidth)."""
    if isinstance(value, torch.Tensor):
        if not bool((value > 0).all()):
            raise OutOfRangeError(f"{name} must be > 0, got {value!r}")
        return
    check_float(value, name, low=0, low_open=True, allow_inf=True)


def check_kernel_geometry(kernel_size, stride, padding, dilation) -> tuple[tuple[int, int], ...]:
    """Validate and normalise window geometry: odd kernels, positive stride and dilation,
    and padding no larger than the window's half-extent ``dilation * (k - 1) / 2``."""
    k = pair(kernel_size, "kernel_size")
    s = pair(stride, "stride")
    p = pair(padding, "padding")
    d = pair(dilation, "dilation")
    for axis in range(2):
        if k[axis] < 1 or k[axis] % 2 == 0:
            raise OutOfRangeError(f"kernel_size must be odd and positive, got {kernel_size!r}")
        if s[axis] < 1:
            raise OutOfRangeError(f"stride must be >= 1, got {stride!r}")
        if d[axis] < 1:
            raise OutOfRangeError(f"dilation must be >= 1, got {dilation!r}")
        half = d[axis] * (k[axis] - 1) // 2
        if p[axis] < 0 or p[axis] > half:
            raise OutOfRangeError(
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
        raise WrongTypeError(f"{name} must have the dtype of {ref_name} ({ref.dtype}), got {other.dtype}")
    if other.device != ref.device:
        raise ValueError(f"{name} must be on the device of {ref_name} ({ref.device}), got {other.device}")
