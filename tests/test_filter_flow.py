"""apply_pixel_filters (per-pixel predicted filters) against a naive loop and exact identities."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracles import naive_pixel_filters

from pixelwise.ops import apply_pixel_filters

D64 = torch.float64


def rand(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=D64)


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("per_channel", [False, True])
def test_matches_naive(k, dilation, per_channel):
    B, C, H, W = 2, 3, 7, 9
    img = rand(B, C, H, W, seed=1)
    filt = rand(B, C, k * k, H, W, seed=2) if per_channel else rand(B, k * k, H, W, seed=2)
    y = apply_pixel_filters(img, filt, dilation)
    assert y.shape == img.shape
    np.testing.assert_allclose(y.numpy(), naive_pixel_filters(img, filt, dilation), atol=1e-12, rtol=1e-10)


def test_pair_dilation_matches_naive():
    img, filt = rand(1, 2, 7, 9, seed=3), rand(1, 9, 7, 9, seed=4)
    y = apply_pixel_filters(img, filt, (1, 2))
    np.testing.assert_allclose(y.numpy(), naive_pixel_filters(img, filt, (1, 2)), atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("per_channel", [False, True])
def test_softmax_and_sum_normalisation(per_channel):
    B, C, H, W, T = 2, 3, 6, 7, 9
    img = rand(B, C, H, W, seed=5)
    logits = rand(B, C, T, H, W, seed=6) if per_channel else rand(B, T, H, W, seed=6)
    tap_dim = 2 if per_channel else 1
    soft = torch.softmax(logits, tap_dim)
    np.testing.assert_allclose(apply_pixel_filters(img, logits, normalize="softmax").numpy(),
                               naive_pixel_filters(img, soft), atol=1e-12, rtol=1e-10)
    pos = logits.exp()
    summed = pos / pos.sum(tap_dim, keepdim=True)
    np.testing.assert_allclose(apply_pixel_filters(img, pos, normalize="sum").numpy(),
                               naive_pixel_filters(img, summed), atol=1e-12, rtol=1e-10)


def test_softmax_filters_of_constant_image_give_the_constant_inside():
    img = torch.full((2, 3, 8, 9), 1.7, dtype=D64)
    logits = rand(2, 25, 8, 9, seed=7)
    y = apply_pixel_filters(img, logits, normalize="softmax")
    # away from the border every tap lands inside the image
    torch.testing.assert_close(y[..., 2:-2, 2:-2], torch.full_like(y[..., 2:-2, 2:-2], 1.7), atol=1e-12, rtol=1e-12)
    # at the border the zero padding removes weight: the result is strictly smaller
    assert (y[..., 0, :] < 1.7 - 1e-6).all()


@pytest.mark.parametrize("k,dilation", [(1, 1), (3, 1), (5, 2)])
def test_delta_filter_is_identity(k, dilation):
    img = rand(2, 3, 7, 9, seed=8)
    filt = torch.zeros(2, k * k, 7, 9, dtype=D64)
    filt[:, (k * k) // 2] = 1.0
    torch.testing.assert_close(apply_pixel_filters(img, filt, dilation), img, atol=0, rtol=0)


@pytest.mark.parametrize("tap", [(0, 0), (0, 2), (2, 1), (1, 0), (2, 2)])
@pytest.mark.parametrize("dilation", [1, 2])
def test_one_hot_off_centre_tap_is_shift(tap, dilation):
    k = 3
    H, W = 7, 9
    img = rand(1, 2, H, W, seed=9)
    filt = torch.zeros(1, k * k, H, W, dtype=D64)
    filt[:, tap[0] * k + tap[1]] = 1.0
    y = apply_pixel_filters(img, filt, dilation)
    dy, dx = (tap[0] - 1) * dilation, (tap[1] - 1) * dilation
    want = torch.zeros_like(img)
    # y[p] = x[p + (dy, dx)], zero where that falls outside
    ys, ye = max(0, -dy), min(H, H - dy)
    xs, xe = max(0, -dx), min(W, W - dx)
    want[..., ys:ye, xs:xe] = img[..., ys + dy : ye + dy, xs + dx : xe + dx]
    torch.testing.assert_close(y, want, atol=0, rtol=0)


def test_per_pixel_filters_differ_per_pixel():
    # Shift left in the top half, identity in the bottom half.
    img = rand(1, 1, 6, 7, seed=10)
    filt = torch.zeros(1, 9, 6, 7, dtype=D64)
    filt[:, 5, :3] = 1.0  # tap (1, 2): reads x[p + (0, 1)]
    filt[:, 4, 3:] = 1.0
    y = apply_pixel_filters(img, filt)
    torch.testing.assert_close(y[..., 3:, :], img[..., 3:, :])
    torch.testing.assert_close(y[..., :3, :-1], img[..., :3, 1:])
    assert (y[..., :3, -1] == 0).all()


@pytest.mark.parametrize("normalize", [None, "softmax", "sum"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_gradcheck(normalize, per_channel):
    img = rand(1, 2, 4, 5, seed=11).requires_grad_()
    filt = rand(1, 2, 9, 4, 5, seed=12) if per_channel else rand(1, 9, 4, 5, seed=12)
    if normalize == "sum":
        filt = filt.abs() + 0.5
    filt.requires_grad_()
    assert torch.autograd.gradcheck(lambda i, f: apply_pixel_filters(i, f, 2, normalize), (img, filt),
                                    eps=1e-6, atol=1e-6, rtol=1e-5)
