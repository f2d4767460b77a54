"""Bilateral filter, joint bilateral filter and joint bilateral upsampling vs brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracles import naive_bilateral, naive_jbu

from pixelwise.ops import bilateral_filter, joint_bilateral_filter, joint_bilateral_upsample

D64 = torch.float64


def rand(*shape, seed=0, dtype=D64):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g, dtype=torch.float64).to(dtype)


def close(got, want, atol=1e-10, rtol=1e-9):
    np.testing.assert_allclose(got.detach().double().numpy(), want, atol=atol, rtol=rtol)


@pytest.mark.parametrize("k,sigma_space,sigma_color", [(1, 1.0, 0.1), (3, 1.0, 0.2), (5, 1.5, 0.1), (7, 3.0, 0.5), (5, 0.7, 2.0)])
@pytest.mark.parametrize("channels", [1, 3])
def test_bilateral_filter_matches_brute_force(k, sigma_space, sigma_color, channels):
    img = rand(2, channels, 9, 11, seed=k + channels)
    y = bilateral_filter(img, k, sigma_space, sigma_color)
    assert y.shape == img.shape
    close(y, naive_bilateral(img, img, k, sigma_space, sigma_color))


@pytest.mark.parametrize("k,sigma_space,sigma_color", [(3, 1.0, 0.1), (5, 2.0, 0.15), (7, 1.5, 0.3)])
@pytest.mark.parametrize("guide_channels", [1, 3])
@pytest.mark.parametrize("size", [(9, 11), (7, 5)])
def test_joint_bilateral_filter_matches_brute_force(k, sigma_space, sigma_color, guide_channels, size):
    img = rand(2, 2, *size, seed=1)
    guide = rand(2, guide_channels, *size, seed=2)
    y = joint_bilateral_filter(img, guide, k, sigma_space, sigma_color)
    close(y, naive_bilateral(img, guide, k, sigma_space, sigma_color))


@pytest.mark.parametrize("dilation", [2, 3])
def test_joint_bilateral_filter_dilation_matches_brute_force(dilation):
    img, guide = rand(1, 2, 9, 11, seed=3), rand(1, 3, 9, 11, seed=4)
    y = joint_bilateral_filter(img, guide, 5, 2.0, 0.2, dilation=dilation)
    close(y, naive_bilateral(img, guide, 5, 2.0, 0.2, dilation=dilation))


def test_joint_bilateral_filter_float32():
    img, guide = rand(1, 1, 9, 11, seed=5, dtype=torch.float32), rand(1, 3, 9, 11, seed=6, dtype=torch.float32)
    y = joint_bilateral_filter(img, guide, 5, 1.5, 0.1)
    assert y.dtype == torch.float32
    close(y, naive_bilateral(img, guide, 5, 1.5, 0.1), atol=1e-5, rtol=1e-5)


def test_bilateral_preserves_edge_and_smooths_flat_regions():
    # A noisy step: a bilateral filter reduces the noise but keeps the step; a plain blur would not.
    g = torch.Generator().manual_seed(7)
    clean = torch.zeros(1, 1, 12, 12, dtype=D64)
    clean[..., 6:] = 1.0
    noisy = clean + 0.02 * torch.randn(clean.shape, generator=g, dtype=D64)
    y = bilateral_filter(noisy, 5, 2.0, 0.1)
    assert (y - clean).abs().max() < (noisy - clean).abs().max()
    assert (y[..., 6:].mean() - y[..., :6].mean()).item() > 0.98


@pytest.mark.parametrize("k", [3, 5])
def test_constant_image_stays_constant(k):
    img = torch.full((2, 3, 9, 11), 0.37, dtype=D64)
    torch.testing.assert_close(bilateral_filter(img, k, 1.0, 0.1), img, atol=1e-13, rtol=1e-13)
    guide = rand(2, 3, 9, 11, seed=8)
    torch.testing.assert_close(joint_bilateral_filter(img, guide, k, 1.0, 0.1), img, atol=1e-13, rtol=1e-13)
    lr = torch.full((2, 3, 4, 5), -1.25, dtype=D64)
    hr_guide = rand(2, 3, 12, 15, seed=9)
    up = joint_bilateral_upsample(lr, hr_guide, k, 1.0, 0.1)
    torch.testing.assert_close(up, torch.full_like(up, -1.25), atol=1e-13, rtol=1e-13)


@pytest.mark.parametrize("factor", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("kernel_size", [3, 5])
def test_jbu_matches_brute_force(factor, kernel_size):
    h, w = 4, 5
    src = rand(2, 2, h, w, seed=10 + factor)
    guide = rand(2, 3, factor * h, factor * w, seed=20 + factor)
    y = joint_bilateral_upsample(src, guide, kernel_size, sigma_space=0.8, sigma_color=0.3)
    assert y.shape == (2, 2, factor * h, factor * w)
    close(y, naive_jbu(src, guide, kernel_size, 0.8, 0.3))


@pytest.mark.parametrize("factor", [2, 3])
def test_jbu_gray_guide_and_nonsquare(factor):
    src = rand(1, 1, 3, 6, seed=30)
    guide = rand(1, 1, 3 * factor, 6 * factor, seed=31)
    y = joint_bilateral_upsample(src, guide, 3, 1.5, 0.05)
    close(y, naive_jbu(src, guide, 3, 1.5, 0.05))


def test_jbu_factor_one_is_joint_bilateral_filter():
    src, guide = rand(1, 2, 7, 9, seed=32), rand(1, 3, 7, 9, seed=33)
    torch.testing.assert_close(joint_bilateral_upsample(src, guide, 5, 1.2, 0.2),
                               joint_bilateral_filter(src, guide, 5, 1.2, 0.2), atol=1e-12, rtol=1e-12)


def test_jbu_samples_reproduce_source_with_tiny_sigmas():
    # With tiny spatial sigma each high-res pixel at a sample position copies that sample.
    s = 3
    src = rand(1, 2, 4, 5, seed=34)
    guide = rand(1, 3, 4 * s, 5 * s, seed=35)
    y = joint_bilateral_upsample(src, guide, 3, sigma_space=0.05, sigma_color=1.0)
    torch.testing.assert_close(y[..., (s - 1) // 2 :: s, (s - 1) // 2 :: s], src, atol=1e-10, rtol=1e-10)


def test_joint_bilateral_filter_gradcheck():
    img = rand(1, 2, 5, 6, seed=36).requires_grad_()
    guide = rand(1, 2, 5, 6, seed=37).requires_grad_()
    assert torch.autograd.gradcheck(lambda i, g: joint_bilateral_filter(i, g, 3, 1.0, 0.5), (img, guide),
                                    eps=1e-6, atol=1e-6, rtol=1e-5)


def test_bilateral_filter_gradcheck():
    img = rand(1, 2, 5, 6, seed=38).requires_grad_()
    assert torch.autograd.gradcheck(lambda i: bilateral_filter(i, 3, 1.0, 0.5), (img,), eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("factor", [2, 3])
def test_jbu_gradcheck(factor):
    src = rand(1, 1, 3, 3, seed=39).requires_grad_()
    guide = rand(1, 2, 3 * factor, 3 * factor, seed=40).requires_grad_()
    assert torch.autograd.gradcheck(lambda s, g: joint_bilateral_upsample(s, g, 3, 1.0, 0.5), (src, guide),
                                    eps=1e-6, atol=1e-6, rtol=1e-5)
