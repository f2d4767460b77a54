"""Spatially-adaptive convolution (SAC) against F.conv2d and a naive float64 loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from oracles import naive_adaptive_conv

from pixelwise.ops import pac_conv2d, pac_kernel, sac_conv2d

D64 = torch.float64
VARIANTS = ["I", "S", "IS", "SK", "ISK"]


def rand(*shape, seed=0, dtype=D64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)


def out_hw(H, W, k, s, p, d):
    return (H + 2 * p - d * (k - 1) - 1) // s + 1, (W + 2 * p - d * (k - 1) - 1) // s + 1


def attention_shape(variant, B, C, H, W, k, s, p, d):
    Ho, Wo = out_hw(H, W, k, s, p, d)
    return {"I": (B, C, 1, 1), "S": (B, 1, H, W), "IS": (B, C, H, W),
            "SK": (B, 1, k * k, Ho, Wo), "ISK": (B, C, k * k, Ho, Wo)}[variant]


GEOMS = [(3, 1, 1, 1, 1), (3, 2, 1, 1, 1), (5, 1, 4, 2, 1), (3, 2, 0, 3, 2), (5, 2, 2, 1, 2), (1, 1, 0, 1, 2)]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("k,s,p,d,groups", GEOMS)
def test_unit_attention_is_conv2d(variant, k, s, p, d, groups):
    B, C, H, W = 2, 4, 9, 11
    x = rand(B, C, H, W, seed=1)
    w, b = rand(6, C // groups, k, k, seed=2), rand(6, seed=3)
    A = torch.ones(attention_shape(variant, B, C, H, W, k, s, p, d), dtype=D64)
    y = sac_conv2d(x, A, w, b, s, p, d, groups, variant=variant)
    torch.testing.assert_close(y, F.conv2d(x, w, b, s, p, d, groups), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("variant", ["SK", "ISK"])
@pytest.mark.parametrize("k,s,p,d,groups", GEOMS)
def test_tap_attention_matches_naive_loop(variant, k, s, p, d, groups):
    B, C, H, W = 2, 4, 9, 11
    x = rand(B, C, H, W, seed=4)
    w, b = rand(6, C // groups, k, k, seed=5), rand(6, seed=6)
    A = rand(*attention_shape(variant, B, C, H, W, k, s, p, d), seed=7)
    y = sac_conv2d(x, A, w, b, s, p, d, groups, variant=variant)
    np.testing.assert_allclose(y.numpy(), naive_adaptive_conv(x, A, w, b, s, p, d, groups), atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("variant", ["I", "S", "IS"])
@pytest.mark.parametrize("k,s,p,d,groups", GEOMS[:4])
def test_input_attention_is_conv_of_modulated_input(variant, k, s, p, d, groups):
    # Y = sum_t W * A[p + t] * X[p + t]: attention at the input resolution multiplies the input.
    B, C, H, W = 2, 4, 9, 11
    x = rand(B, C, H, W, seed=8)
    w, b = rand(6, C // groups, k, k, seed=9), rand(6, seed=10)
    A = torch.rand(attention_shape(variant, B, C, H, W, k, s, p, d), dtype=D64,
                   generator=torch.Generator().manual_seed(11))
    y = sac_conv2d(x, A, w, b, s, p, d, groups, variant=variant)
    xa = (x * A).numpy()
    Ho, Wo = out_hw(H, W, k, s, p, d)
    ones = np.ones((B, 1, k * k, Ho, Wo))
    np.testing.assert_allclose(y.numpy(), naive_adaptive_conv(xa, ones, w, b, s, p, d, groups), atol=1e-10, rtol=1e-9)
    torch.testing.assert_close(y, F.conv2d(x * A, w, b, s, p, d, groups), atol=1e-12, rtol=1e-12)


def test_variant_I_is_per_channel_scaling_of_weight():
    # I-attention (squeeze-and-excitation) == conv with the weight scaled per input channel.
    x = rand(2, 3, 9, 11, seed=12)
    w = rand(5, 3, 3, 3, seed=13)
    a = torch.tensor([0.5, 2.0, -1.0], dtype=D64)
    A = a.view(1, 3, 1, 1).expand(2, 3, 1, 1).contiguous()
    y = sac_conv2d(x, A, w, None, 1, 1, variant="I")
    torch.testing.assert_close(y, F.conv2d(x, w * a.view(1, 3, 1, 1), None, 1, 1), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("k,s,p,d", [(3, 1, 1, 1), (5, 2, 2, 1), (3, 1, 2, 2)])
@pytest.mark.parametrize("normalize", [False, True])
def test_pac_is_sac_sk_with_pac_kernel(k, s, p, d, normalize):
    x, guide = rand(2, 3, 9, 11, seed=14), rand(2, 2, 9, 11, seed=15)
    w, b = rand(4, 3, k, k, seed=16), rand(4, seed=17)
    A = pac_kernel(guide, k, s, p, d, normalize=normalize)
    y_sac = sac_conv2d(x, A, w, b, s, p, d, variant="SK")
    y_pac = pac_conv2d(x, w, b, s, p, d, guide=guide, normalize=normalize)
    torch.testing.assert_close(y_sac, y_pac, atol=1e-12, rtol=1e-12)
    # and a channel-wise kernel is an ISK attention
    A_cw = pac_kernel(rand(2, 3, 9, 11, seed=18), k, s, p, d, channel_wise=True)
    torch.testing.assert_close(sac_conv2d(x, A_cw, w, b, s, p, d, variant="ISK"),
                               pac_conv2d(x, w, b, s, p, d, kernel=A_cw), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("variant", ["SK", "ISK"])
@pytest.mark.parametrize("s,p,d,groups", [(1, 1, 1, 1), (2, 2, 2, 2)])
def test_sac_gradcheck(variant, s, p, d, groups):
    # C / groups > 1 with groups > 1, so a mix-up of the (group, channel) order is caught
    B, C, H, W, k = 1, 4, 5, 6, 3
    x = rand(B, C, H, W, seed=19).requires_grad_()
    A = rand(*attention_shape(variant, B, C, H, W, k, s, p, d), seed=20).requires_grad_()
    w = rand(4, C // groups, k, k, seed=21).requires_grad_()
    b = rand(4, seed=22).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x, A, w, b: sac_conv2d(x, A, w, b, s, p, d, groups, variant=variant), (x, A, w, b),
        eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS)
def test_bad_attention_shape_raises(variant):
    x, w = rand(2, 4, 9, 11, seed=23), rand(6, 4, 3, 3, seed=24)
    good = attention_shape(variant, 2, 4, 9, 11, 3, 1, 1, 1)
    bad = list(good)
    bad[-1] += 1
    sac_conv2d(x, torch.ones(good, dtype=D64), w, None, 1, 1, variant=variant)  # the good one is accepted
    with pytest.raises(ValueError, match="attention"):
        sac_conv2d(x, torch.ones(bad, dtype=D64), w, None, 1, 1, variant=variant)


def test_attention_of_another_variant_raises():
    x, w = rand(2, 4, 9, 11, seed=25), rand(6, 4, 3, 3, seed=26)
    A_sk = torch.ones(2, 1, 9, 9, 11, dtype=D64)
    with pytest.raises(ValueError, match="attention"):
        sac_conv2d(x, A_sk, w, None, 1, 1, variant="ISK")
    with pytest.raises(ValueError, match="attention"):
        sac_conv2d(x, torch.ones(2, 4, 1, 1, dtype=D64), w, None, 1, 1, variant="S")
    with pytest.raises(ValueError, match="attention"):
        sac_conv2d(x, torch.ones(2, 4, 9, dtype=D64), w, None, 1, 1, variant="I")


def test_unknown_variant_raises():
    x, w = rand(1, 2, 5, 5), rand(2, 2, 3, 3)
    with pytest.raises(ValueError, match="variant"):
        sac_conv2d(x, torch.ones(1, 2, 9, 5, 5, dtype=D64), w, None, 1, 1, variant="KS")


def test_attention_dtype_mismatch_raises():
    x, w = rand(1, 2, 5, 5), rand(2, 2, 3, 3)
    with pytest.raises(TypeError, match="attention"):
        sac_conv2d(x, torch.ones(1, 2, 9, 5, 5), w, None, 1, 1, variant="ISK")
