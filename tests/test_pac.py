"""PAC, PAC^T, PAC pooling and the adapting kernel against naive float64 oracles and torch ops."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from oracles import (
    naive_pac_conv2d,
    naive_pac_conv_transpose2d,
    naive_pac_kernel,
    naive_pac_kernel_transposed,
    naive_pac_pool2d,
)

from pixelwise.ops import adaptive_filter, pac_conv2d, pac_conv_transpose2d, pac_kernel, pac_pool2d, tap_validity_mask

D64 = torch.float64


def close(got, want, atol=1e-10, rtol=1e-9):
    np.testing.assert_allclose(got.detach().double().numpy(), np.asarray(want), atol=atol, rtol=rtol)


def rand(*shape, seed=0, scale=1.0, dtype=D64):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(dtype)


def geometries(kernel_sizes=(1, 3, 5), strides=(1, 2), dilations=(1, 2, 3)):
    """Every (k, s, p, d) with 0 <= p <= d*(k-1)/2 (k = 1 once per stride)."""
    out = []
    for k, s, d in itertools.product(kernel_sizes, strides, dilations):
        if k == 1 and d > 1:
            continue
        for p in range(d * (k - 1) // 2 + 1):
            out.append((k, s, p, d))
    return out


def fitting_size(k, p, d, base=(9, 11)):
    """A non-square odd input size large enough for the window."""
    need = d * (k - 1) + 1 - 2 * p
    h = max(base[0], need)
    return h, max(base[1], need + 2)


GEOMS = geometries()


# ----------------------------------------------------------------------------------------------
# pac_kernel
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k,s,p,d", [(3, 1, 1, 1), (5, 2, 2, 1), (3, 2, 0, 3), (5, 1, 4, 2), (1, 2, 0, 1)])
@pytest.mark.parametrize("kernel_type", ["gaussian", "inverse"])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("channel_wise", [False, True])
def test_pac_kernel_matches_oracle(k, s, p, d, kernel_type, normalize, channel_wise):
    H, W = fitting_size(k, p, d)
    guide = rand(2, 3, H, W, seed=1)
    opts = dict(kernel_type=kernel_type, normalize=normalize, channel_wise=channel_wise)
    if kernel_type == "inverse":
        opts.update(inverse_alpha=0.3, inverse_lambda=-0.7, inverse_eps=0.05)
    K = pac_kernel(guide, k, s, p, d, **opts)
    ref = naive_pac_kernel(guide, k, s, p, d, kernel_type, normalize, channel_wise, alpha=0.3, lam=-0.7, eps=0.05)
    assert K.shape == ref.shape
    close(K, ref)


@pytest.mark.parametrize("k,s,p,d,op", [(3, 2, 1, 1, 1), (5, 2, 2, 1, 0), (5, 3, 1, 2, 2), (3, 1, 2, 2, 1), (1, 2, 0, 1, 1)])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("channel_wise", [False, True])
def test_pac_kernel_transposed_matches_oracle(k, s, p, d, op, normalize, channel_wise):
    hin, win = 3, 4
    Ho, Wo = (hin - 1) * s - 2 * p + d * (k - 1) + op + 1, (win - 1) * s - 2 * p + d * (k - 1) + op + 1
    guide = rand(2, 2, Ho, Wo, seed=2)
    K = pac_kernel(guide, k, s, p, d, normalize=normalize, channel_wise=channel_wise, transposed=True,
                   output_padding=op)
    ref = naive_pac_kernel_transposed(guide, k, s, p, d, (hin, win), normalize=normalize, channel_wise=channel_wise)
    close(K, ref)


def test_tap_validity_mask_against_definition():
    # Non-transposed: tap (i, j) of output (y, x) valid iff y*s - p + i*d in [0, H).
    H, W, k, s, p, d = 7, 9, 3, 2, 2, 2
    Ho, Wo = (H + 2 * p - d * (k - 1) - 1) // s + 1, (W + 2 * p - d * (k - 1) - 1) // s + 1
    m = tap_validity_mask((H, W), (Ho, Wo), k, s, p, d, dtype=D64)
    assert m.shape == (1, 1, k * k, Ho, Wo)
    for i, j, y, x in itertools.product(range(k), range(k), range(Ho), range(Wo)):
        want = 0 <= y * s - p + i * d < H and 0 <= x * s - p + j * d < W
        assert m[0, 0, i * k + j, y, x].item() == float(want)


# ----------------------------------------------------------------------------------------------
# pac_conv2d
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k,s,p,d", GEOMS)
def test_pac_conv2d_geometry_matches_oracle(k, s, p, d):
    H, W = fitting_size(k, p, d)
    x, guide = rand(2, 3, H, W, seed=3), rand(2, 2, H, W, seed=4)
    w, b = rand(4, 3, k, k, seed=5), rand(4, seed=6)
    y = pac_conv2d(x, w, b, s, p, d, guide=guide)
    ref = naive_pac_conv2d(x, w, b, guide, s, p, d)
    assert y.shape == ref.shape
    close(y, ref)


OPTION_GEOMS = [(3, 1, 1, 1), (5, 2, 3, 2)]


@pytest.mark.parametrize("k,s,p,d", OPTION_GEOMS)
@pytest.mark.parametrize("kernel_type", ["gaussian", "inverse"])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("channel_wise", [False, True])
@pytest.mark.parametrize("shared_filters", [False, True])
def test_pac_conv2d_options_match_oracle(k, s, p, d, kernel_type, normalize, channel_wise, shared_filters):
    H, W = 9, 11
    C = 3
    x = rand(2, C, H, W, seed=7)
    guide = rand(2, C if channel_wise else 2, H, W, seed=8, scale=0.7)
    w = rand(1, 1, k, k, seed=9) if shared_filters else rand(5, C, k, k, seed=9)
    b = rand(C if shared_filters else 5, seed=10)
    opts = dict(kernel_type=kernel_type, normalize=normalize, channel_wise=channel_wise)
    if kernel_type == "inverse":
        opts.update(inverse_alpha=0.1, inverse_lambda=-0.3, inverse_eps=0.1)
    y = pac_conv2d(x, w, b, s, p, d, guide=guide, shared_filters=shared_filters, **opts)
    ref = naive_pac_conv2d(x, w, b, guide, s, p, d, kernel_type, normalize, channel_wise, 0.1, -0.3, 0.1,
                           shared_filters=shared_filters)
    close(y, ref)


@pytest.mark.parametrize("k,s,p,d", [(3, 1, 1, 1), (5, 2, 2, 1), (3, 2, 2, 2)])
@pytest.mark.parametrize("channel_wise", [False, True])
def test_pac_conv2d_groups_match_oracle(k, s, p, d, channel_wise):
    x = rand(2, 4, 9, 11, seed=11)
    guide = rand(2, 4 if channel_wise else 3, 9, 11, seed=12)
    w, b = rand(6, 2, k, k, seed=13), rand(6, seed=14)
    y = pac_conv2d(x, w, b, s, p, d, groups=2, guide=guide, channel_wise=channel_wise, normalize=True)
    ref = naive_pac_conv2d(x, w, b, guide, s, p, d, normalize=True, channel_wise=channel_wise, groups=2)
    close(y, ref)


def test_pac_conv2d_rectangular_kernel_and_pair_args():
    x, guide = rand(2, 2, 9, 11, seed=15), rand(2, 3, 9, 11, seed=16)
    w = rand(3, 2, 3, 5, seed=17)
    y = pac_conv2d(x, w, None, (2, 1), (1, 2), (1, 2), guide=guide)
    ref = naive_pac_conv2d(x, w, None, guide, (2, 1), (1, 2), (1, 2))
    close(y, ref)


def test_pac_conv2d_float32_matches_oracle():
    x, guide = rand(2, 3, 9, 11, seed=18, dtype=torch.float32), rand(2, 2, 9, 11, seed=19, dtype=torch.float32)
    w = rand(4, 3, 3, 3, seed=20, dtype=torch.float32)
    y = pac_conv2d(x, w, None, 1, 1, 1, guide=guide, normalize=True)
    assert y.dtype == torch.float32
    close(y, naive_pac_conv2d(x, w, None, guide, 1, 1, 1, normalize=True), atol=1e-5, rtol=1e-5)


def test_pac_conv2d_depends_on_guide():
    # Guard against an implementation that ignores the guide: an edge changes the output.
    x, w = rand(1, 2, 9, 11, seed=21), rand(3, 2, 3, 3, seed=22)
    flat = torch.zeros(1, 1, 9, 11, dtype=D64)
    edge = flat.clone()
    edge[..., :, 5:] = 3.0
    y0 = pac_conv2d(x, w, padding=1, guide=flat)
    y1 = pac_conv2d(x, w, padding=1, guide=edge)
    assert not torch.allclose(y0, y1)
    close(y1, naive_pac_conv2d(x, w, None, edge, 1, 1, 1))


def test_pac_conv2d_row_chunking(monkeypatch):
    # The engine builds its columns a few output rows at a time; force many tiny chunks.
    x, guide = rand(2, 3, 9, 11, seed=23), rand(2, 2, 9, 11, seed=24)
    w, b = rand(4, 3, 3, 3, seed=25), rand(4, seed=26)
    ref = naive_pac_conv2d(x, w, b, guide, 1, 1, 1, normalize=True)
    x1, g1, w1 = (t.clone().requires_grad_() for t in (x, guide, w))
    y1 = pac_conv2d(x1, w1, b, 1, 1, 1, guide=g1, normalize=True)
    grads1 = torch.autograd.grad(y1.square().sum(), (x1, g1, w1))
    monkeypatch.setattr(adaptive_filter, "CHUNK_ELEMENTS", 64)
    x2, g2, w2 = (t.clone().requires_grad_() for t in (x, guide, w))
    y2 = pac_conv2d(x2, w2, b, 1, 1, 1, guide=g2, normalize=True)
    grads2 = torch.autograd.grad(y2.square().sum(), (x2, g2, w2))
    close(y2, ref)
    for a, c in zip(grads1, grads2):
        close(a, c.numpy())


@pytest.mark.parametrize("k,s,p,d", GEOMS)
@pytest.mark.parametrize("groups", [1, 2])
def test_pac_conv2d_constant_guide_is_conv2d(k, s, p, d, groups):
    H, W = fitting_size(k, p, d)
    x = rand(2, 4, H, W, seed=27)
    guide = torch.full((2, 3, H, W), 0.7, dtype=D64)
    w, b = rand(6, 4 // groups, k, k, seed=28), rand(6, seed=29)
    y = pac_conv2d(x, w, b, s, p, d, groups, guide=guide)
    torch.testing.assert_close(y, F.conv2d(x, w, b, s, p, d, groups), atol=1e-12, rtol=1e-12)


def test_pac_conv2d_constant_guide_is_conv2d_float32():
    x = rand(2, 8, 16, 13, seed=30, dtype=torch.float32)
    guide = torch.ones(2, 1, 16, 13)
    w, b = rand(5, 8, 5, 5, seed=31, dtype=torch.float32), rand(5, seed=32, dtype=torch.float32)
    y = pac_conv2d(x, w, b, 2, 2, 1, guide=guide)
    torch.testing.assert_close(y, F.conv2d(x, w, b, 2, 2), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("k,s,p,d", [(3, 1, 1, 1), (5, 2, 2, 2), (3, 2, 0, 1)])
@pytest.mark.parametrize("channel_wise", [False, True])
@pytest.mark.parametrize("shared_filters", [False, True])
def test_pac_conv2d_precomputed_kernel_equals_guide(k, s, p, d, channel_wise, shared_filters):
    x = rand(2, 3, 9, 11, seed=33)
    guide = rand(2, 3 if channel_wise else 2, 9, 11, seed=34)
    w = rand(1, 1, k, k, seed=35) if shared_filters else rand(4, 3, k, k, seed=35)
    opts = dict(kernel_type="inverse", normalize=True, channel_wise=channel_wise, inverse_lambda=-0.4)
    K = pac_kernel(guide, k, s, p, d, **opts)
    y_k = pac_conv2d(x, w, None, s, p, d, kernel=K, shared_filters=shared_filters)
    y_g = pac_conv2d(x, w, None, s, p, d, guide=guide, shared_filters=shared_filters, **opts)
    torch.testing.assert_close(y_k, y_g, atol=1e-12, rtol=1e-12)
    close(y_k, naive_pac_conv2d(x, w, None, guide, s, p, d, "inverse", True, channel_wise, 0.0, -0.4,
                                shared_filters=shared_filters))


def test_pac_conv2d_arbitrary_kernel_tensor():
    # A kernel that is not a valid PAC kernel (random signs, non-zero on padded taps where the
    # input is zero anyway) is applied as given.
    x, w = rand(2, 3, 9, 11, seed=36), rand(4, 3, 3, 3, seed=37)
    K = rand(2, 1, 9, 5, 6, seed=38)
    from oracles import naive_adaptive_conv

    close(pac_conv2d(x, w, None, 2, 1, 1, kernel=K), naive_adaptive_conv(x, K, w, None, 2, 1, 1))


# ----------------------------------------------------------------------------------------------
# pac_conv_transpose2d
# ----------------------------------------------------------------------------------------------


def transposed_geometries():
    out = []
    for k, s, d in itertools.product((1, 3, 5), (1, 2, 3), (1, 2, 3)):
        if k == 1 and d > 1:
            continue
        for p in range(d * (k - 1) // 2 + 1):
            for op in range(max(s, d)):
                out.append((k, s, p, d, op))
    return out


T_GEOMS = transposed_geometries()
# a representative subset for the (slower) oracle comparison
T_GEOMS_ORACLE = [g for i, g in enumerate(T_GEOMS) if i % 4 == 0 or g[1] == 2 and g[3] == 1]


@pytest.mark.parametrize("k,s,p,d,op", T_GEOMS_ORACLE)
def test_pac_conv_transpose2d_geometry_matches_oracle(k, s, p, d, op):
    hin, win = 4, 5
    Ho, Wo = (hin - 1) * s - 2 * p + d * (k - 1) + op + 1, (win - 1) * s - 2 * p + d * (k - 1) + op + 1
    x = rand(2, 3, hin, win, seed=40)
    guide = rand(2, 2, Ho, Wo, seed=41)
    w, b = rand(3, 2, k, k, seed=42), rand(2, seed=43)
    y = pac_conv_transpose2d(x, w, b, s, p, op, 1, d, guide=guide)
    ref = naive_pac_conv_transpose2d(x, w, b, guide, s, p, op, d)
    assert y.shape == ref.shape
    close(y, ref)


@pytest.mark.parametrize("k,s,p,d,op", [(3, 2, 1, 1, 1), (5, 2, 2, 1, 1), (5, 3, 3, 2, 0)])
@pytest.mark.parametrize("kernel_type", ["gaussian", "inverse"])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("channel_wise", [False, True])
@pytest.mark.parametrize("shared_filters", [False, True])
def test_pac_conv_transpose2d_options_match_oracle(k, s, p, d, op, kernel_type, normalize, channel_wise,
                                                   shared_filters):
    hin, win, C = 4, 3, 3
    Ho, Wo = (hin - 1) * s - 2 * p + d * (k - 1) + op + 1, (win - 1) * s - 2 * p + d * (k - 1) + op + 1
    x = rand(2, C, hin, win, seed=44)
    guide = rand(2, C if channel_wise else 2, Ho, Wo, seed=45, scale=0.7)
    w = rand(1, 1, k, k, seed=46) if shared_filters else rand(C, 4, k, k, seed=46)
    b = rand(C if shared_filters else 4, seed=47)
    opts = dict(kernel_type=kernel_type, normalize=normalize, channel_wise=channel_wise)
    if kernel_type == "inverse":
        opts.update(inverse_alpha=0.2, inverse_lambda=-0.6, inverse_eps=0.1)
    y = pac_conv_transpose2d(x, w, b, s, p, op, 1, d, guide=guide, shared_filters=shared_filters, **opts)
    ref = naive_pac_conv_transpose2d(x, w, b, guide, s, p, op, d, kernel_type, normalize, channel_wise,
                                     0.2, -0.6, 0.1, shared_filters=shared_filters)
    close(y, ref)


@pytest.mark.parametrize("k,s,p,d,op", [(3, 2, 1, 1, 1), (5, 2, 2, 1, 0), (3, 3, 2, 2, 1)])
def test_pac_conv_transpose2d_groups_match_oracle(k, s, p, d, op):
    hin, win = 3, 4
    Ho, Wo = (hin - 1) * s - 2 * p + d * (k - 1) + op + 1, (win - 1) * s - 2 * p + d * (k - 1) + op + 1
    x = rand(2, 4, hin, win, seed=48)
    guide = rand(2, 3, Ho, Wo, seed=49)
    w, b = rand(4, 3, k, k, seed=50), rand(6, seed=51)
    y = pac_conv_transpose2d(x, w, b, s, p, op, 2, d, guide=guide, normalize=True)
    close(y, naive_pac_conv_transpose2d(x, w, b, guide, s, p, op, d, normalize=True, groups=2))


def test_pac_conv_transpose2d_rectangular_and_pair_args():
    x = rand(2, 2, 3, 4, seed=52)
    k, s, p, op, d = (3, 5), (2, 3), (1, 2), (1, 0), (1, 1)
    Ho, Wo = (3 - 1) * 2 - 2 + 2 + 1 + 1, (4 - 1) * 3 - 4 + 4 + 0 + 1
    guide = rand(2, 2, Ho, Wo, seed=53)
    w = rand(2, 3, *k, seed=54)
    y = pac_conv_transpose2d(x, w, None, s, p, op, 1, d, guide=guide, normalize=True)
    close(y, naive_pac_conv_transpose2d(x, w, None, guide, s, p, op, d, normalize=True))


@pytest.mark.parametrize("k,s,p,d,op", T_GEOMS)
def test_pac_conv_transpose2d_constant_guide_is_conv_transpose2d(k, s, p, d, op):
    x = rand(2, 4, 4, 5, seed=55)
    w, b = rand(4, 3, k, k, seed=56), rand(6, seed=57)
    ref = F.conv_transpose2d(x, w, b, s, p, op, 2, d)
    guide = torch.full((2, 2, *ref.shape[-2:]), -1.3, dtype=D64)
    y = pac_conv_transpose2d(x, w, b, s, p, op, 2, d, guide=guide)
    torch.testing.assert_close(y, ref, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("s,p,op", [(2, 2, 1), (2, 1, 0), (3, 2, 2)])
def test_pac_conv_transpose2d_precomputed_kernel_equals_guide(s, p, op):
    x = rand(2, 3, 4, 5, seed=58)
    w = rand(3, 4, 5, 5, seed=59)
    Ho, Wo = (4 - 1) * s - 2 * p + 4 + op + 1, (5 - 1) * s - 2 * p + 4 + op + 1
    guide = rand(2, 2, Ho, Wo, seed=60)
    K = pac_kernel(guide, 5, s, p, 1, normalize=True, transposed=True, output_padding=op)
    y_k = pac_conv_transpose2d(x, w, None, s, p, op, kernel=K)
    y_g = pac_conv_transpose2d(x, w, None, s, p, op, guide=guide, normalize=True)
    torch.testing.assert_close(y_k, y_g, atol=1e-12, rtol=1e-12)
    close(y_k, naive_pac_conv_transpose2d(x, w, None, guide, s, p, op, normalize=True))


def test_pac_conv_transpose2d_normalized_constant_input_stays_constant():
    # Normalised PAC^T with an all-ones weight: every output pixel is a convex combination of the
    # input samples that reach it (all pixels are reached here), so a constant input stays constant
    # whatever the guide.
    x = torch.full((1, 1, 4, 5), 2.5, dtype=D64)
    w = torch.ones(1, 1, 5, 5, dtype=D64)
    guide = rand(1, 3, 8, 10, seed=61)
    y = pac_conv_transpose2d(x, w, None, 2, 2, 1, guide=guide, normalize=True)
    torch.testing.assert_close(y, torch.full_like(y, 2.5), atol=1e-12, rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# pac_pool2d
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k,s,p,d", [(3, None, 0, 1), (3, 2, 1, 1), (5, 1, 2, 1), (3, 1, 2, 2), (5, 2, 3, 2), (1, 2, 0, 1)])
@pytest.mark.parametrize("kernel_type", ["gaussian", "inverse"])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("channel_wise", [False, True])
def test_pac_pool2d_matches_oracle(k, s, p, d, kernel_type, normalize, channel_wise):
    x = rand(2, 3, 9, 11, seed=62)
    guide = rand(2, 3 if channel_wise else 2, 9, 11, seed=63, scale=0.8)
    opts = dict(kernel_type=kernel_type, normalize=normalize, channel_wise=channel_wise)
    if kernel_type == "inverse":
        opts.update(inverse_alpha=0.5, inverse_lambda=-0.5, inverse_eps=0.2)
    y = pac_pool2d(x, k, s, p, d, guide=guide, **opts)
    ref = naive_pac_pool2d(x, k, s, p, d, guide, kernel_type, normalize, channel_wise, 0.5, -0.5, 0.2)
    assert y.shape == ref.shape
    close(y, ref)


POOL_GEOMS = [(k, s, p) for k in (1, 3, 5) for s in (None, 1, 2, 3) for p in range(k // 2 + 1)]


@pytest.mark.parametrize("k,s,p", POOL_GEOMS)
def test_pac_pool2d_constant_guide_is_avg_pool(k, s, p):
    x = rand(2, 3, 9, 11, seed=64)
    guide = torch.full((2, 2, 9, 11), 4.0, dtype=D64)
    y = pac_pool2d(x, k, s, p, guide=guide)
    torch.testing.assert_close(y, F.avg_pool2d(x, k, s, p, count_include_pad=True), atol=1e-12, rtol=1e-12)
    yn = pac_pool2d(x, k, s, p, guide=guide, normalize=True)
    torch.testing.assert_close(yn, F.avg_pool2d(x, k, s, p, count_include_pad=False), atol=1e-12, rtol=1e-12)


def test_pac_pool2d_precomputed_kernel_equals_guide():
    x, guide = rand(2, 3, 9, 11, seed=65), rand(2, 2, 9, 11, seed=66)
    K = pac_kernel(guide, 3, 2, 1, 1, kernel_type="inverse")
    y_k = pac_pool2d(x, 3, 2, 1, kernel=K)
    y_g = pac_pool2d(x, 3, 2, 1, guide=guide, kernel_type="inverse")
    torch.testing.assert_close(y_k, y_g, atol=1e-12, rtol=1e-12)
    close(y_k, naive_pac_pool2d(x, 3, 2, 1, 1, guide, "inverse"))


# ----------------------------------------------------------------------------------------------
# gradients
# ----------------------------------------------------------------------------------------------


def _gradcheck(fn, inputs, **kw):
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4, **kw)


@pytest.mark.parametrize("kernel_type,normalize,channel_wise", [
    ("gaussian", False, False), ("gaussian", True, False), ("gaussian", True, True), ("inverse", True, False),
])
def test_pac_conv2d_gradcheck(kernel_type, normalize, channel_wise):
    x = rand(2, 2, 5, 6, seed=70).requires_grad_()
    guide = rand(2, 2, 5, 6, seed=71, scale=0.6).requires_grad_()
    w = rand(3, 2, 3, 3, seed=72).requires_grad_()
    b = rand(3, seed=73).requires_grad_()
    alpha = torch.tensor(0.2, dtype=D64, requires_grad=True)
    lam = torch.tensor(-0.6, dtype=D64, requires_grad=True)

    def fn(x, w, b, guide, alpha, lam):
        opts = dict(kernel_type=kernel_type, normalize=normalize, channel_wise=channel_wise)
        if kernel_type == "inverse":
            opts.update(inverse_alpha=alpha, inverse_lambda=lam, inverse_eps=0.3)
        return pac_conv2d(x, w, b, 2, 1, 1, guide=guide, **opts)

    _gradcheck(fn, (x, w, b, guide, alpha, lam))


def test_pac_conv2d_gradcheck_shared_groups_dilation():
    x = rand(1, 4, 6, 5, seed=74).requires_grad_()
    guide = rand(1, 2, 6, 5, seed=75, scale=0.6).requires_grad_()
    w = rand(4, 2, 3, 3, seed=76).requires_grad_()
    ws = rand(1, 1, 3, 3, seed=77).requires_grad_()
    _gradcheck(lambda x, w, g: pac_conv2d(x, w, None, 1, 2, 2, 2, guide=g, normalize=True), (x, w, guide))
    _gradcheck(lambda x, w, g: pac_conv2d(x, w, None, 1, 1, 1, guide=g, shared_filters=True), (x, ws, guide))
    guide_cw = rand(1, 4, 6, 5, seed=87, scale=0.6).requires_grad_()
    _gradcheck(lambda x, w, g: pac_conv2d(x, w, None, 2, 1, 1, 2, guide=g, channel_wise=True), (x, w, guide_cw))


@pytest.mark.parametrize("kernel_type,normalize", [("gaussian", False), ("gaussian", True), ("inverse", True)])
def test_pac_conv_transpose2d_gradcheck(kernel_type, normalize):
    x = rand(1, 2, 3, 3, seed=78).requires_grad_()
    guide = rand(1, 2, 6, 6, seed=79, scale=0.6).requires_grad_()
    w = rand(2, 2, 3, 3, seed=80).requires_grad_()
    b = rand(2, seed=81).requires_grad_()
    alpha = torch.tensor(0.1, dtype=D64, requires_grad=True)
    lam = torch.tensor(-0.4, dtype=D64, requires_grad=True)

    def fn(x, w, b, guide, alpha, lam):
        opts = dict(kernel_type=kernel_type, normalize=normalize)
        if kernel_type == "inverse":
            opts.update(inverse_alpha=alpha, inverse_lambda=lam, inverse_eps=0.3)
        return pac_conv_transpose2d(x, w, b, 2, 1, 1, guide=guide, **opts)

    _gradcheck(fn, (x, w, b, guide, alpha, lam))


@pytest.mark.parametrize("k,s,p,d,op", [(3, 3, 1, 1, 0), (3, 3, 1, 2, 2), (5, 3, 3, 2, 1), (3, 2, 2, 2, 1)])
def test_pac_conv_transpose2d_gradcheck_phases(k, s, p, d, op):
    # stride 3 and dilation 2: phases whose stride-1 correlation crops the input (negative padding)
    # or reads it at an input dilation > 1; with groups and a channel-wise kernel.
    x = rand(1, 4, 3, 3, seed=88).requires_grad_()
    w = rand(4, 1, k, k, seed=89).requires_grad_()
    Ho = (3 - 1) * s - 2 * p + d * (k - 1) + op + 1
    guide = rand(1, 4, Ho, Ho, seed=90, scale=0.6).requires_grad_()
    _gradcheck(lambda x, w, g: pac_conv_transpose2d(x, w, None, s, p, op, 2, d, guide=g, channel_wise=True,
                                                    normalize=True), (x, w, guide), fast_mode=True)


@pytest.mark.parametrize("kernel_type,normalize", [("gaussian", False), ("gaussian", True), ("inverse", False)])
def test_pac_pool2d_gradcheck(kernel_type, normalize):
    x = rand(2, 2, 6, 5, seed=82).requires_grad_()
    guide = rand(2, 2, 6, 5, seed=83, scale=0.6).requires_grad_()
    alpha = torch.tensor(0.3, dtype=D64, requires_grad=True)
    lam = torch.tensor(-0.5, dtype=D64, requires_grad=True)

    def fn(x, guide, alpha, lam):
        opts = dict(kernel_type=kernel_type, normalize=normalize)
        if kernel_type == "inverse":
            opts.update(inverse_alpha=alpha, inverse_lambda=lam, inverse_eps=0.3)
        return pac_pool2d(x, 3, 2, 1, guide=guide, **opts)

    _gradcheck(fn, (x, guide, alpha, lam))


def test_pac_kernel_gradcheck_precomputed_path():
    # Gradients through a precomputed kernel equal those through the guide path.
    x = rand(1, 2, 5, 6, seed=84).requires_grad_()
    K = pac_kernel(rand(1, 2, 5, 6, seed=85), 3, 1, 1, 1, normalize=True).requires_grad_()
    w = rand(2, 2, 3, 3, seed=86).requires_grad_()
    _gradcheck(lambda x, K, w: pac_conv2d(x, w, padding=1, kernel=K), (x, K, w))


def test_pac_conv2d_saves_no_im2col_tensor_for_backward():
    B, C, k, H, W = 2, 16, 5, 32, 32
    x = torch.randn(B, C, H, W, requires_grad=True)
    guide = torch.randn(B, 3, H, W, requires_grad=True)
    w = torch.randn(C, C, k, k, requires_grad=True)
    sizes = []

    def pack(t):
        sizes.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = pac_conv2d(x, w, None, 1, 2, 1, guide=guide, normalize=True)
    assert sizes, "nothing was saved for backward?"
    limit = C * k * k * H * W / 2
    assert max(sizes) < limit, f"a tensor of {max(sizes)} elements was saved (limit {limit})"
    y.sum().backward()
    assert x.grad is not None and guide.grad is not None and w.grad is not None
