"""Hypothesis property tests: output sizes and constant-guide values equal the standard torch ops."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pixelwise.ops import pac_conv2d, pac_conv_transpose2d, pac_kernel, pac_pool2d

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
D64 = torch.float64


@st.composite
def axis_geometry(draw):
    """(k, s, p, d) for one axis, with the package's constraint p <= d*(k-1)/2."""
    k = draw(st.sampled_from([1, 3, 5, 7]))
    s = draw(st.integers(1, 3))
    d = draw(st.integers(1, 3))
    p = draw(st.integers(0, d * (k - 1) // 2))
    return k, s, p, d


@st.composite
def conv_case(draw):
    gh, gw = draw(axis_geometry()), draw(axis_geometry())
    groups = draw(st.sampled_from([1, 2]))
    cin = groups * draw(st.integers(1, 2))
    cout = groups * draw(st.integers(1, 2))
    # input size such that the output is at least one pixel
    lo_h = max(1, gh[3] * (gh[0] - 1) + 1 - 2 * gh[2])
    lo_w = max(1, gw[3] * (gw[0] - 1) + 1 - 2 * gw[2])
    h, w = draw(st.integers(lo_h, lo_h + 8)), draw(st.integers(lo_w, lo_w + 8))
    batch = draw(st.integers(1, 2))
    seed = draw(st.integers(0, 2**16))
    return gh, gw, groups, cin, cout, h, w, batch, seed


def _split(gh, gw):
    return tuple(zip(gh, gw))  # ((kh, kw), (sh, sw), (ph, pw), (dh, dw))


@SETTINGS
@given(conv_case(), st.booleans())
def test_pac_conv2d_size_and_constant_guide(case, large_value):
    gh, gw, groups, cin, cout, h, w, batch, seed = case
    (kh, kw), s, p, d = _split(gh, gw)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, cin, h, w, generator=gen, dtype=D64)
    wt = torch.randn(cout, cin // groups, kh, kw, generator=gen, dtype=D64)
    b = torch.randn(cout, generator=gen, dtype=D64)
    ref = F.conv2d(x, wt, b, s, p, d, groups)
    # random guide: size only
    guide = torch.randn(batch, 2, h, w, generator=gen, dtype=D64)
    assert pac_conv2d(x, wt, b, s, p, d, groups, guide=guide).shape == ref.shape
    # constant guide (any value, any scale): exactly conv2d
    const = torch.full((batch, 3, h, w), 10.0 if large_value else -0.5, dtype=D64)
    y = pac_conv2d(x, wt, b, s, p, d, groups, guide=const)
    torch.testing.assert_close(y, ref, atol=1e-11, rtol=1e-11)


@st.composite
def transpose_case(draw):
    gh, gw = draw(axis_geometry()), draw(axis_geometry())
    oph = draw(st.integers(0, max(gh[1], gh[3]) - 1))
    opw = draw(st.integers(0, max(gw[1], gw[3]) - 1))
    groups = draw(st.sampled_from([1, 2]))
    cin = groups * draw(st.integers(1, 2))
    cout = groups * draw(st.integers(1, 2))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    batch = draw(st.integers(1, 2))
    seed = draw(st.integers(0, 2**16))
    return gh, gw, (oph, opw), groups, cin, cout, h, w, batch, seed


@SETTINGS
@given(transpose_case())
def test_pac_conv_transpose2d_size_and_constant_guide(case):
    gh, gw, op, groups, cin, cout, h, w, batch, seed = case
    (kh, kw), s, p, d = _split(gh, gw)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, cin, h, w, generator=gen, dtype=D64)
    wt = torch.randn(cin, cout // groups, kh, kw, generator=gen, dtype=D64)
    b = torch.randn(cout, generator=gen, dtype=D64)
    ref = F.conv_transpose2d(x, wt, b, s, p, op, groups, d)
    Ho, Wo = ref.shape[-2:]
    guide = torch.randn(batch, 2, Ho, Wo, generator=gen, dtype=D64)
    assert pac_conv_transpose2d(x, wt, b, s, p, op, groups, d, guide=guide).shape == ref.shape
    K = pac_kernel(guide, (kh, kw), s, p, d, transposed=True, output_padding=op)
    assert K.shape == (batch, 1, kh * kw, Ho, Wo)
    const = torch.full((batch, 1, Ho, Wo), 3.0, dtype=D64)
    y = pac_conv_transpose2d(x, wt, b, s, p, op, groups, d, guide=const)
    torch.testing.assert_close(y, ref, atol=1e-11, rtol=1e-11)


@st.composite
def pool_case(draw):
    k = draw(st.sampled_from([1, 3, 5]))
    kw = draw(st.sampled_from([1, 3, 5]))
    stride = draw(st.one_of(st.none(), st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    p = (draw(st.integers(0, k // 2)), draw(st.integers(0, kw // 2)))
    h = draw(st.integers(max(1, k - 2 * p[0]), 12))
    w = draw(st.integers(max(1, kw - 2 * p[1]), 12))
    c = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**16))
    return (k, kw), stride, p, h, w, c, seed


@SETTINGS
@given(pool_case())
def test_pac_pool2d_size_and_constant_guide(case):
    k, stride, p, h, w, c, seed = case
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, c, h, w, generator=gen, dtype=D64)
    ref = F.avg_pool2d(x, k, stride, p, count_include_pad=True)
    guide = torch.randn(2, 2, h, w, generator=gen, dtype=D64)
    assert pac_pool2d(x, k, stride, p, guide=guide).shape == ref.shape
    const = torch.zeros(2, 1, h, w, dtype=D64)
    torch.testing.assert_close(pac_pool2d(x, k, stride, p, guide=const), ref, atol=1e-12, rtol=1e-12)
    ref_n = F.avg_pool2d(x, k, stride, p, count_include_pad=False)
    torch.testing.assert_close(pac_pool2d(x, k, stride, p, guide=const, normalize=True), ref_n,
                               atol=1e-12, rtol=1e-12)


@SETTINGS
@given(conv_case())
def test_normalized_pac_kernel_sums_to_one_and_is_bounded(case):
    gh, gw, _, _, _, h, w, batch, seed = case
    (kh, kw), s, p, d = _split(gh, gw)
    gen = torch.Generator().manual_seed(seed)
    guide = torch.randn(batch, 3, h, w, generator=gen, dtype=D64)
    K = pac_kernel(guide, (kh, kw), s, p, d)
    Kn = pac_kernel(guide, (kh, kw), s, p, d, normalize=True)
    # raw Gaussian kernel: in [0, 1], centre tap exactly 1
    assert ((K >= 0) & (K <= 1)).all()
    torch.testing.assert_close(K[:, :, (kh // 2) * kw + kw // 2], torch.ones_like(K[:, :, 0]))
    torch.testing.assert_close(Kn.sum(2), torch.ones_like(Kn[:, :, 0]), atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(Kn, K / K.sum(2, keepdim=True), atol=1e-12, rtol=1e-12)


@SETTINGS
@given(conv_case())
def test_pac_conv2d_linear_in_input(case):
    gh, gw, groups, cin, cout, h, w, batch, seed = case
    (kh, kw), s, p, d = _split(gh, gw)
    assume(kh * kw > 1)
    gen = torch.Generator().manual_seed(seed)
    x1, x2 = (torch.randn(batch, cin, h, w, generator=gen, dtype=D64) for _ in range(2))
    wt = torch.randn(cout, cin // groups, kh, kw, generator=gen, dtype=D64)
    guide = torch.randn(batch, 2, h, w, generator=gen, dtype=D64)
    f = lambda x: pac_conv2d(x, wt, None, s, p, d, groups, guide=guide, normalize=True)  # noqa: E731
    torch.testing.assert_close(f(2.0 * x1 - 3.0 * x2), 2.0 * f(x1) - 3.0 * f(x2), atol=1e-10, rtol=1e-10)
