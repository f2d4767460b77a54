"""The tap-loop engine against the column engine (pac_conv2d) and gradcheck."""

import pytest
import torch

from pixelwise.ops import pac_conv2d, pac_kernel
from pixelwise.ops.tap_loop import tap_loop_conv


@pytest.mark.parametrize("H,W,k,d,p", [(7, 9, 3, 1, 1), (11, 6, 5, 3, 6), (9, 8, 5, 4, 8), (8, 8, 3, 2, 0),
                                       (5, 6, 5, 8, 16), (10, 9, 5, 2, 2)])  # last: partial padding, Ho < H
@pytest.mark.parametrize("shared", [False, True])
def test_equals_pac_conv2d_and_gradcheck(H, W, k, d, p, shared):
    g = torch.Generator().manual_seed(H * 31 + k)
    x = torch.randn(2, 3, H, W, dtype=torch.float64, generator=g, requires_grad=True)
    f = torch.randn(2, 2, H, W, dtype=torch.float64, generator=g, requires_grad=True)
    shape = (1, 1, k, k) if shared else (4, 3, k, k)
    w = torch.randn(*shape, dtype=torch.float64, generator=g, requires_grad=True)
    K = pac_kernel(f, k, 1, p, d)
    ref = pac_conv2d(x, w, None, 1, p, d, kernel=K, shared_filters=shared)
    torch.testing.assert_close(tap_loop_conv(x, K, w, (p, p), (d, d), shared), ref, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda x, f, w: tap_loop_conv(x, pac_kernel(f, k, 1, p, d), w, (p, p), (d, d),
                                                                  shared), (x, f, w))


def test_taps_entirely_outside_cost_nothing_and_give_zero():
    x = torch.randn(1, 2, 4, 4)
    K = torch.ones(1, 1, 9, 4, 4)
    w = torch.randn(2, 2, 3, 3)
    w[:, :, 1, 1] = 0  # only off-centre taps, all 10 px away: outside a 4x4 image
    assert tap_loop_conv(x, K, w, (10, 10), (10, 10)).abs().max() == 0


def test_bad_kernel_shape():
    with pytest.raises(ValueError, match="K must be"):
        tap_loop_conv(torch.randn(1, 2, 4, 4), torch.ones(1, 2, 9, 4, 4), torch.randn(2, 2, 3, 3), (1, 1), (1, 1))
    with pytest.raises(ValueError, match="input channels"):
        tap_loop_conv(torch.randn(1, 2, 4, 4), torch.ones(1, 1, 9, 4, 4), torch.randn(2, 3, 3, 3), (1, 1), (1, 1))


def test_kernel_of_another_geometry_and_bad_shared_weight_are_refused():
    x = torch.randn(1, 2, 8, 8)
    K = pac_kernel(torch.randn(1, 2, 8, 8), 3, 1, 1, 1)  # for padding 1: an 8x8 output
    with pytest.raises(ValueError, match=r"gives a \(6, 6\) output"):
        tap_loop_conv(x, K, torch.randn(2, 2, 3, 3), (0, 0), (1, 1))  # padding 0 needs a 6x6 kernel
    with pytest.raises(ValueError, match="shared_filters"):
        tap_loop_conv(x, K, torch.randn(2, 2, 3, 3), (1, 1), (1, 1), shared_filters=True)
