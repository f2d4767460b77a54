"""pixelwise.checks: one hand-computed case per check -- what it accepts, the normalised value it
returns, and what it rejects (exception type and a message naming the argument)."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest
import torch

from pixelwise.checks import (
    NotAChoiceError,
    OutOfRangeError,
    ShapeError,
    WrongTypeError,
    check_bool,
    check_choice,
    check_finite,
    check_float,
    check_floats,
    check_int,
    check_kernel_geometry,
    check_odd,
    check_positive,
    check_positive_int,
    check_same_device_dtype,
    check_tensor,
    conv_out_size,
    conv_transpose_out_size,
    pair,
    parse_positive_int,
)


def test_each_error_is_the_standard_exception_callers_expect():
    assert issubclass(WrongTypeError, TypeError)
    assert issubclass(OutOfRangeError, ValueError)
    assert issubclass(NotAChoiceError, ValueError)
    assert issubclass(ShapeError, ValueError)


# ----------------------------------------------------------------------------- ints


def test_check_int_accepts_and_normalises():
    assert check_int(3, "n") == 3
    got = check_int(np.int64(7), "n", min=7, max=7)  # closed bounds: both ends accepted
    assert got == 7 and type(got) is int


@pytest.mark.parametrize("value", [True, False, 3.0, "3", None, np.float64(3)])
def test_check_int_rejects_non_ints_bool_included(value):
    with pytest.raises(WrongTypeError, match="n must be an int, got"):
        check_int(value, "n")


def test_check_int_bounds():
    with pytest.raises(OutOfRangeError, match="n must be >= 2, got 1"):
        check_int(1, "n", min=2)
    with pytest.raises(OutOfRangeError, match="n must be <= 5, got 6"):
        check_int(6, "n", max=5)


def test_check_positive_int():
    assert check_positive_int(1, "size") == 1
    with pytest.raises(OutOfRangeError, match="size must be >= 1, got 0"):
        check_positive_int(0, "size")
    with pytest.raises(TypeError, match="size must be an int"):
        check_positive_int(True, "size")


def test_check_odd():
    assert check_odd(5, "kernel_size") == 5
    with pytest.raises(OutOfRangeError, match="kernel_size must be odd, got 4"):
        check_odd(4, "kernel_size")
    with pytest.raises(OutOfRangeError, match="kernel_size must be >= 1, got -1"):
        check_odd(-1, "kernel_size")
    with pytest.raises(WrongTypeError, match="kernel_size must be an int"):
        check_odd(5.0, "kernel_size")


def test_parse_positive_int():
    assert parse_positive_int("12") == 12
    for text in ("0", "-3", "x", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError, match="positive integer"):
            parse_positive_int(text)


# ----------------------------------------------------------------------------- floats


def test_check_float_accepts_ints_and_numpy_and_returns_a_float():
    got = check_float(2, "sigma")
    assert got == 2.0 and type(got) is float
    assert check_float(np.float32(0.25), "sigma") == 0.25


@pytest.mark.parametrize("value", [True, "0.5", None, [0.5], torch.tensor(0.5)])
def test_check_float_rejects_non_numbers_bool_included(value):
    with pytest.raises(WrongTypeError, match="eta must be a number, got"):
        check_float(value, "eta")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_check_float_rejects_nan_and_inf(value):
    with pytest.raises(OutOfRangeError, match="eta must be finite"):
        check_float(value, "eta")


def test_check_float_closed_and_open_bounds():
    # closed [0, 1]: both ends in
    assert check_float(0, "p", low=0, high=1) == 0.0
    assert check_float(1, "p", low=0, high=1) == 1.0
    # open (0, 1): both ends out, with the strict sign in the message
    with pytest.raises(OutOfRangeError, match="p must be > 0, got 0"):
        check_float(0.0, "p", low=0, low_open=True)
    with pytest.raises(OutOfRangeError, match="p must be < 1, got 1"):
        check_float(1.0, "p", high=1, high_open=True)
    assert check_float(0.5, "p", low=0, high=1, low_open=True, high_open=True) == 0.5
    # outside a closed bound
    with pytest.raises(OutOfRangeError, match="p must be >= 0, got -0.5"):
        check_float(-0.5, "p", low=0)
    with pytest.raises(OutOfRangeError, match="p must be <= 1, got 1.5"):
        check_float(1.5, "p", high=1)


def test_check_float_allow_inf():
    assert check_float(math.inf, "cutoff", low=0, low_open=True, allow_inf=True) == math.inf
    with pytest.raises(OutOfRangeError, match="cutoff must be a number, not NaN"):
        check_float(math.nan, "cutoff", allow_inf=True)
    with pytest.raises(OutOfRangeError, match="cutoff must be > 0, got -inf"):
        check_float(-math.inf, "cutoff", low=0, low_open=True, allow_inf=True)


def test_check_floats():
    assert check_floats([1, 2.5], "kappas") == (1.0, 2.5)
    assert check_floats(np.array([0.5, 0.75]), "thresholds", low=0, high=1) == (0.5, 0.75)
    with pytest.raises(OutOfRangeError, match=r"thresholds\[1\] must be <= 1, got 2"):
        check_floats([0.5, 2.0], "thresholds", high=1)
    with pytest.raises(WrongTypeError, match=r"kappas\[0\] must be a number"):
        check_floats([True], "kappas")
    with pytest.raises(OutOfRangeError, match=r"kappas\[0\] must be finite"):
        check_floats([math.nan], "kappas")
    with pytest.raises(OutOfRangeError, match="kappas must hold at least one number"):
        check_floats([], "kappas")
    for bad in ("6", 6.0, np.array(0.5)):
        with pytest.raises(WrongTypeError, match="kappas must be a sequence of numbers"):
            check_floats(bad, "kappas")


def test_check_positive():
    check_positive(0.5, "sigma")
    check_positive(torch.tensor([0.1, 2.0]), "sigma")  # learnable bandwidths are tensors
    with pytest.raises(OutOfRangeError, match="sigma must be > 0, got 0"):
        check_positive(0, "sigma")
    with pytest.raises(OutOfRangeError, match="sigma must be > 0"):
        check_positive(torch.tensor([1.0, 0.0]), "sigma")
    check_positive(math.inf, "sigma")  # an infinite colour bandwidth: plain Gaussian smoothing
    with pytest.raises(OutOfRangeError, match="sigma must be a number, not NaN"):
        check_positive(math.nan, "sigma")
    with pytest.raises(WrongTypeError, match="sigma must be a number"):
        check_positive(True, "sigma")


# ----------------------------------------------------------------------------- bools and choices


def test_check_bool():
    assert check_bool(False, "thin") is False
    for bad in (0, 1, "false", None, np.bool_(True)):
        with pytest.raises(WrongTypeError, match="thin must be a bool"):
            check_bool(bad, "thin")


def test_check_choice():
    assert check_choice("log", "output", ("log", "prob")) == "log"
    assert check_choice(None, "normalize", (None, "sum")) is None
    with pytest.raises(NotAChoiceError, match="output must be one of log, prob; got 'logits'"):
        check_choice("logits", "output", ("log", "prob"))


# ----------------------------------------------------------------------------- pairs and geometry


def test_pair():
    assert pair(3, "stride") == (3, 3)
    assert pair((2, 5), "stride") == (2, 5)
    assert pair([2, 5], "stride") == (2, 5)
    for bad in (True, 2.0, (1, 2, 3), (1.0, 2), (1, True), "12"):
        with pytest.raises(WrongTypeError, match="stride must be an int or a pair of ints"):
            pair(bad, "stride")


def test_pair_minimum():
    assert pair((1, 4), "out_size", min=1) == (1, 4)
    with pytest.raises(OutOfRangeError, match=r"out_size must be >= 1, got \(0, 4\)"):
        pair((0, 4), "out_size", min=1)


def test_check_kernel_geometry():
    assert check_kernel_geometry(3, 2, (1, 0), 1) == ((3, 3), (2, 2), (1, 0), (1, 1))
    # padding may reach dilation * (k - 1) / 2: 2 * (3 - 1) / 2 = 2
    assert check_kernel_geometry(3, 1, 2, 2)[2] == (2, 2)
    with pytest.raises(OutOfRangeError, match="kernel_size must be odd and positive"):
        check_kernel_geometry(4, 1, 0, 1)
    with pytest.raises(OutOfRangeError, match="stride must be >= 1"):
        check_kernel_geometry(3, 0, 0, 1)
    with pytest.raises(OutOfRangeError, match="dilation must be >= 1"):
        check_kernel_geometry(3, 1, 0, (1, 0))
    with pytest.raises(OutOfRangeError, match="padding must be between 0 and .* = 1"):
        check_kernel_geometry(3, 1, 2, 1)
    with pytest.raises(WrongTypeError, match="padding"):
        check_kernel_geometry(3, 1, 0.5, 1)


def test_conv_output_sizes():
    assert conv_out_size(10, 3, 2, 1, 1) == 5            # (10 + 2 - 2 - 1) // 2 + 1
    assert conv_transpose_out_size(5, 3, 2, 1, 1, 1) == 10  # 4 * 2 - 2 + 2 + 1 + 1


# ----------------------------------------------------------------------------- tensors


def test_check_tensor():
    check_tensor(torch.zeros(2, 3), "x", 2)
    check_tensor(torch.zeros(2, 3, 4), "x", (3, 4))
    with pytest.raises(WrongTypeError, match="x must be a torch.Tensor, got list"):
        check_tensor([[0.0]], "x", 2)
    with pytest.raises(WrongTypeError, match="x must have a floating-point dtype, got torch.int64"):
        check_tensor(torch.zeros(2, 3, dtype=torch.long), "x", 2)
    with pytest.raises(ShapeError, match=r"x must be 3-D or 4-D, got shape \(2, 2\)"):
        check_tensor(torch.zeros(2, 2), "x", (3, 4))


def test_check_finite():
    check_finite(torch.tensor([1.0, -2.0]), "x")
    with pytest.raises(ShapeError, match="x must be finite, got 2 NaN/inf values"):
        check_finite(torch.tensor([1.0, math.nan, math.inf]), "x")


def test_check_same_device_dtype():
    a = torch.zeros(2)
    check_same_device_dtype(a, "input", torch.ones(3), "guide")
    msg = r"guide must have the dtype of input \(torch.float32\), got torch.float64"
    with pytest.raises(WrongTypeError, match=msg):
        check_same_device_dtype(a, "input", torch.ones(3, dtype=torch.float64), "guide")
