"""Every public op rejects bad arguments with the right exception and a message naming the argument."""

from __future__ import annotations

import pytest
import torch

from pixelwise.ops import (
    apply_pixel_filters,
    bilateral_filter,
    joint_bilateral_filter,
    joint_bilateral_upsample,
    pac_conv2d,
    pac_conv_transpose2d,
    pac_kernel,
    pac_pool2d,
    sac_conv2d,
)

B, C, H, W = 2, 4, 9, 11


def t(*shape, dtype=torch.float32):
    return torch.rand(*shape).to(dtype)


def with_value(tensor, value):
    tensor = tensor.clone()
    tensor.view(-1)[3] = value
    return tensor


x = t(B, C, H, W)
g = t(B, 3, H, W)
w3 = t(5, C, 3, 3)
wt3 = t(C, 5, 3, 3)  # transposed-conv weight
g_up = t(B, 3, 18, 22)  # output of a stride-2, k=3, p=1, op=1 transposed conv of 9x11
lr = t(B, 1, 4, 5)
hr = t(B, 3, 12, 15)

CASES = {
    # ---- kernel_size: odd only -----------------------------------------------------------------
    "pac_kernel even k": (lambda: pac_kernel(g, 4), ValueError, "kernel_size"),
    "pac_kernel zero k": (lambda: pac_kernel(g, 0), ValueError, "kernel_size"),
    "pac_conv2d even k": (lambda: pac_conv2d(x, t(5, C, 4, 4), guide=g), ValueError, "kernel_size"),
    "pac_conv2d even kw": (lambda: pac_conv2d(x, t(5, C, 3, 2), guide=g), ValueError, "kernel_size"),
    "pac_conv_transpose2d even k": (lambda: pac_conv_transpose2d(x, t(C, 5, 2, 2), stride=2, guide=t(B, 3, 18, 22)),
                                    ValueError, "kernel_size"),
    "pac_pool2d even k": (lambda: pac_pool2d(x, 2, guide=g), ValueError, "kernel_size"),
    "sac_conv2d even k": (lambda: sac_conv2d(x, t(B, C, 16, 6, 8), t(5, C, 4, 4), variant="ISK"),
                          ValueError, "kernel_size"),
    "bilateral even k": (lambda: bilateral_filter(x, 4), ValueError, "kernel_size"),
    "joint_bilateral even k": (lambda: joint_bilateral_filter(x, g, 6), ValueError, "kernel_size"),
    "jbu even k": (lambda: joint_bilateral_upsample(lr, hr, 4), ValueError, "kernel_size"),
    "kernel_size not int": (lambda: pac_kernel(g, 3.0), TypeError, "kernel_size"),
    "kernel_size triple": (lambda: pac_kernel(g, (3, 3, 3)), TypeError, "kernel_size"),
    # ---- padding / stride / dilation -------------------------------------------------------------
    "pac_kernel padding too large": (lambda: pac_kernel(g, 3, padding=2), ValueError, "padding"),
    "pac_kernel negative padding": (lambda: pac_kernel(g, 3, padding=-1), ValueError, "padding"),
    "pac_conv2d padding too large": (lambda: pac_conv2d(x, w3, padding=2, guide=g), ValueError, "padding"),
    "pac_conv2d padding vs dilation": (lambda: pac_conv2d(x, t(5, C, 5, 5), padding=(2, 5), dilation=2, guide=g),
                                       ValueError, "padding"),
    "pac_conv_transpose2d padding too large": (lambda: pac_conv_transpose2d(x, wt3, stride=2, padding=2, guide=g_up),
                                               ValueError, "padding"),
    "pac_pool2d padding too large": (lambda: pac_pool2d(x, 3, padding=2, guide=g), ValueError, "padding"),
    "sac padding too large": (lambda: sac_conv2d(x, t(B, C, 9, 11, 13), w3, padding=2, variant="ISK"),
                              ValueError, "padding"),
    "stride zero": (lambda: pac_conv2d(x, w3, stride=0, guide=g), ValueError, "stride"),
    "dilation zero": (lambda: pac_conv2d(x, w3, dilation=0, guide=g), ValueError, "dilation"),
    "stride bool": (lambda: pac_conv2d(x, w3, stride=True, guide=g), TypeError, "stride"),
    "padding float": (lambda: pac_pool2d(x, 3, padding=1.0, guide=g), TypeError, "padding"),
    "jbf dilation zero": (lambda: joint_bilateral_filter(x, g, 3, dilation=0), ValueError, "dilation"),
    "apply_pixel_filters dilation zero": (lambda: apply_pixel_filters(x, t(B, 9, H, W), dilation=0),
                                          ValueError, "dilation"),
    # ---- guide geometry ------------------------------------------------------------------------
    "pac_conv2d guide spatial": (lambda: pac_conv2d(x, w3, guide=t(B, 3, H, W + 1)), ValueError, "guide"),
    "pac_conv2d guide batch": (lambda: pac_conv2d(x, w3, guide=t(B + 1, 3, H, W)), ValueError, "guide"),
    "pac_conv2d guide 3-D": (lambda: pac_conv2d(x, w3, guide=t(3, H, W)), ValueError, "guide"),
    "pac_conv_transpose2d guide at input size": (lambda: pac_conv_transpose2d(x, wt3, stride=2, padding=1,
                                                                              output_padding=1, guide=g),
                                                 ValueError, "guide"),
    "pac_conv_transpose2d guide batch": (lambda: pac_conv_transpose2d(x, wt3, stride=2, padding=1, output_padding=1,
                                                                      guide=t(1, 3, 18, 22)), ValueError, "guide"),
    "pac_pool2d guide spatial": (lambda: pac_pool2d(x, 3, guide=t(B, 3, H - 1, W)), ValueError, "guide"),
    "pac_pool2d guide batch": (lambda: pac_pool2d(x, 3, guide=t(1, 3, H, W)), ValueError, "guide"),
    "pac_kernel transposed guide of impossible size": (lambda: pac_kernel(t(1, 1, 2, 2), 5, 2, 0, 1, transposed=True),
                                                       ValueError, "guide"),
    "pac_kernel guide smaller than window": (lambda: pac_kernel(t(1, 1, 2, 2), 5), ValueError, "guide"),
    "joint_bilateral guide spatial": (lambda: joint_bilateral_filter(x, t(B, 3, H, W - 1)), ValueError, "guide"),
    "joint_bilateral guide batch": (lambda: joint_bilateral_filter(x, t(1, 3, H, W)), ValueError, "guide"),
    "channel_wise guide channels": (lambda: pac_conv2d(x, w3, padding=1, guide=g, channel_wise=True),
                                    ValueError, "channel.wise"),
    "input smaller than window": (lambda: pac_conv2d(t(1, C, 2, 2), w3, guide=t(1, 3, 2, 2)), ValueError, "input"),
    "pac_pool2d input smaller than window": (lambda: pac_pool2d(t(1, C, 2, 2), 3, guide=t(1, 3, 2, 2)),
                                             ValueError, "input"),
    # ---- dtypes ---------------------------------------------------------------------------------
    "pac_conv2d int input": (lambda: pac_conv2d(x.to(torch.int64), w3, guide=g), TypeError, "input"),
    "pac_conv2d int weight": (lambda: pac_conv2d(x, w3.to(torch.int32), guide=g), TypeError, "weight"),
    "pac_conv2d int guide": (lambda: pac_conv2d(x, w3, guide=g.to(torch.int64)), TypeError, "guide"),
    "pac_conv2d guide dtype mismatch": (lambda: pac_conv2d(x, w3, guide=g.double()), TypeError, "guide"),
    "pac_conv2d weight dtype mismatch": (lambda: pac_conv2d(x, w3.double(), guide=g), TypeError, "weight"),
    "pac_conv2d bool input": (lambda: pac_conv2d(x > 0.5, w3, guide=g), TypeError, "input"),
    "pac_conv2d not a tensor": (lambda: pac_conv2d(x.numpy(), w3, guide=g), TypeError, "input"),
    "pac_conv_transpose2d int input": (lambda: pac_conv_transpose2d(x.to(torch.int64), wt3, guide=t(B, 3, 11, 13)),
                                       TypeError, "input"),
    "pac_pool2d int input": (lambda: pac_pool2d(x.to(torch.uint8), 3, guide=g), TypeError, "input"),
    "pac_kernel int guide": (lambda: pac_kernel(g.to(torch.int64), 3), TypeError, "guide"),
    "sac int input": (lambda: sac_conv2d(x.to(torch.int64), t(B, C, 9, 7, 9), w3, variant="ISK"), TypeError, "input"),
    "bilateral int image": (lambda: bilateral_filter(x.to(torch.int64), 3), TypeError, "image"),
    "joint_bilateral int guide": (lambda: joint_bilateral_filter(x, g.to(torch.int64), 3), TypeError, "guide"),
    "jbu int source": (lambda: joint_bilateral_upsample(lr.to(torch.int64), hr), TypeError, "source"),
    "jbu guide dtype mismatch": (lambda: joint_bilateral_upsample(lr, hr.double()), TypeError, "guide"),
    "apply_pixel_filters int image": (lambda: apply_pixel_filters(x.to(torch.int64), t(B, 9, H, W)), TypeError, "image"),
    "apply_pixel_filters int filters": (lambda: apply_pixel_filters(x, t(B, 9, H, W).to(torch.int64)),
                                        TypeError, "filters"),
    # ---- non-finite guides -----------------------------------------------------------------------
    "pac_kernel nan guide": (lambda: pac_kernel(with_value(g, float("nan")), 3), ValueError, "guide"),
    "pac_conv2d nan guide": (lambda: pac_conv2d(x, w3, guide=with_value(g, float("nan"))), ValueError, "guide"),
    "pac_conv2d inf guide": (lambda: pac_conv2d(x, w3, guide=with_value(g, float("inf"))), ValueError, "guide"),
    "pac_conv_transpose2d nan guide": (lambda: pac_conv_transpose2d(x, wt3, stride=2, padding=1, output_padding=1,
                                                                    guide=with_value(g_up, float("nan"))),
                                       ValueError, "guide"),
    "pac_pool2d inf guide": (lambda: pac_pool2d(x, 3, guide=with_value(g, -float("inf"))), ValueError, "guide"),
    "joint_bilateral nan guide": (lambda: joint_bilateral_filter(x, with_value(g, float("nan")), 3),
                                  ValueError, "guide"),
    "bilateral nan image": (lambda: bilateral_filter(with_value(x, float("nan")), 3), ValueError, "image"),
    "jbu inf guide": (lambda: joint_bilateral_upsample(lr, with_value(hr, float("inf"))), ValueError, "guide"),
    "apply_pixel_filters nan filters": (lambda: apply_pixel_filters(x, with_value(t(B, 9, H, W), float("nan"))),
                                        ValueError, "filters"),
    # ---- guide xor kernel --------------------------------------------------------------------------
    "pac_conv2d both": (lambda: pac_conv2d(x, w3, guide=g, kernel=t(B, 1, 9, 7, 9)), ValueError, "guide"),
    "pac_conv2d neither": (lambda: pac_conv2d(x, w3), ValueError, "guide"),
    "pac_conv_transpose2d both": (lambda: pac_conv_transpose2d(x, wt3, guide=t(B, 3, 11, 13), kernel=t(B, 1, 9, 11, 13)),
                                  ValueError, "guide"),
    "pac_conv_transpose2d neither": (lambda: pac_conv_transpose2d(x, wt3), ValueError, "guide"),
    "pac_pool2d both": (lambda: pac_pool2d(x, 3, guide=g, kernel=t(B, 1, 9, 3, 3)), ValueError, "guide"),
    "pac_pool2d neither": (lambda: pac_pool2d(x, 3), ValueError, "guide"),
    # ---- precomputed kernel shape --------------------------------------------------------------------
    "pac_conv2d kernel wrong taps": (lambda: pac_conv2d(x, w3, kernel=t(B, 1, 8, 7, 9)), ValueError, "kernel"),
    "pac_conv2d kernel wrong size": (lambda: pac_conv2d(x, w3, kernel=t(B, 1, 9, 9, 11)), ValueError, "kernel"),
    "pac_conv2d kernel wrong channels": (lambda: pac_conv2d(x, w3, kernel=t(B, 2, 9, 7, 9)), ValueError, "kernel"),
    "pac_conv2d kernel 4-D": (lambda: pac_conv2d(x, w3, kernel=t(B, 9, 7, 9)), ValueError, "kernel"),
    "pac_conv_transpose2d kernel at input size": (lambda: pac_conv_transpose2d(x, wt3, kernel=t(B, 1, 9, 9, 11)),
                                                  ValueError, "kernel"),
    "pac_pool2d kernel wrong batch": (lambda: pac_pool2d(x, 3, kernel=t(1, 1, 9, 3, 3)), ValueError, "kernel"),
    "pac_kernel bad kernel_type": (lambda: pac_kernel(g, 3, kernel_type="box"), ValueError, "kernel_type"),
    "pac_conv2d bad kernel_type": (lambda: pac_conv2d(x, w3, guide=g, kernel_type="laplace"), ValueError, "kernel_type"),
    # ---- bias ------------------------------------------------------------------------------------
    "pac_conv2d bias length": (lambda: pac_conv2d(x, w3, t(4), guide=g), ValueError, "bias"),
    "pac_conv2d bias 2-D": (lambda: pac_conv2d(x, w3, t(5, 1), guide=g), ValueError, "bias"),
    "pac_conv2d bias dtype": (lambda: pac_conv2d(x, w3, t(5).double(), guide=g), TypeError, "bias"),
    "pac_conv2d shared bias length": (lambda: pac_conv2d(x, t(1, 1, 3, 3), t(5), guide=g, shared_filters=True),
                                      ValueError, "bias"),
    "pac_conv_transpose2d bias length": (lambda: pac_conv_transpose2d(x, wt3, t(4), guide=t(B, 3, 11, 13)),
                                         ValueError, "bias"),
    "sac bias length": (lambda: sac_conv2d(x, t(B, C, 9, 7, 9), w3, t(6), variant="ISK"), ValueError, "bias"),
    # ---- weight / groups -----------------------------------------------------------------------------
    "pac_conv2d weight in-channels": (lambda: pac_conv2d(x, t(5, C + 1, 3, 3), guide=g), ValueError, "weight"),
    "pac_conv2d weight with groups": (lambda: pac_conv2d(x, w3, groups=2, guide=g), ValueError, "weight"),
    "pac_conv2d weight 3-D": (lambda: pac_conv2d(x, t(5, C, 3), guide=g), ValueError, "weight"),
    "pac_conv2d groups not divisor": (lambda: pac_conv2d(x, t(6, 1, 3, 3), groups=3, guide=g), ValueError, "groups"),
    "pac_conv2d shared weight shape": (lambda: pac_conv2d(x, t(2, 1, 3, 3), guide=g, shared_filters=True),
                                       ValueError, "weight"),
    "pac_conv2d shared groups": (lambda: pac_conv2d(x, t(1, 1, 3, 3), groups=2, guide=g, shared_filters=True),
                                 ValueError, "groups"),
    "pac_conv_transpose2d weight in-channels": (lambda: pac_conv_transpose2d(x, t(C + 1, 5, 3, 3), guide=t(B, 3, 11, 13)),
                                                ValueError, "weight"),
    "pac_conv_transpose2d conv-layout weight": (lambda: pac_conv_transpose2d(x, t(5, C, 3, 3), guide=t(B, 3, 11, 13)),
                                                ValueError, "weight"),
    "pac_conv_transpose2d shared weight shape": (lambda: pac_conv_transpose2d(x, t(C, 1, 3, 3), guide=t(B, 3, 11, 13),
                                                                              shared_filters=True), ValueError, "weight"),
    "sac weight in-channels": (lambda: sac_conv2d(x, t(B, C, 9, 7, 9), t(5, C - 1, 3, 3), variant="ISK"),
                               ValueError, "weight"),
    "sac attention 3-D": (lambda: sac_conv2d(x, t(B, C, 9), w3, variant="I"), ValueError, "attention"),
    # ---- output_padding --------------------------------------------------------------------------------
    "output_padding == stride": (lambda: pac_conv_transpose2d(x, wt3, stride=2, padding=1, output_padding=2,
                                                              guide=t(B, 3, 19, 23)), ValueError, "output_padding"),
    "output_padding without stride": (lambda: pac_conv_transpose2d(x, wt3, output_padding=1, guide=t(B, 3, 12, 14)),
                                      ValueError, "output_padding"),
    "output_padding negative": (lambda: pac_conv_transpose2d(x, wt3, stride=2, output_padding=-1, guide=t(B, 3, 18, 22)),
                                ValueError, "output_padding"),
    "output_padding triple": (lambda: pac_conv_transpose2d(x, wt3, stride=2, output_padding=(1, 1, 1),
                                                           guide=t(B, 3, 20, 24)), TypeError, "output_padding"),
    # ---- joint bilateral upsampling geometry ------------------------------------------------------
    "jbu guide not a multiple": (lambda: joint_bilateral_upsample(lr, t(B, 3, 10, 15)), ValueError, "guide"),
    "jbu different factors": (lambda: joint_bilateral_upsample(lr, t(B, 3, 8, 15)), ValueError, "guide"),
    "jbu guide smaller than source": (lambda: joint_bilateral_upsample(t(B, 1, 8, 10), t(B, 3, 4, 5)),
                                      ValueError, "guide"),
    "jbu guide batch": (lambda: joint_bilateral_upsample(lr, t(1, 3, 12, 15)), ValueError, "guide"),
    # ---- apply_pixel_filters ------------------------------------------------------------------------
    "apply_pixel_filters 8 taps": (lambda: apply_pixel_filters(x, t(B, 8, H, W)), ValueError, "filters"),
    "apply_pixel_filters 16 taps": (lambda: apply_pixel_filters(x, t(B, 16, H, W)), ValueError, "filters"),
    "apply_pixel_filters wrong size": (lambda: apply_pixel_filters(x, t(B, 9, H, W - 1)), ValueError, "filters"),
    "apply_pixel_filters wrong batch": (lambda: apply_pixel_filters(x, t(1, 9, H, W)), ValueError, "filters"),
    "apply_pixel_filters wrong channels": (lambda: apply_pixel_filters(x, t(B, 3, 9, H, W)), ValueError, "filters"),
    "apply_pixel_filters 3-D": (lambda: apply_pixel_filters(x, t(9, H, W)), ValueError, "filters"),
    "apply_pixel_filters bad normalize": (lambda: apply_pixel_filters(x, t(B, 9, H, W), normalize="l1"),
                                          ValueError, "normalize"),
    "apply_pixel_filters zero-sum": (lambda: apply_pixel_filters(x, torch.zeros(B, 9, H, W), normalize="sum"),
                                     ValueError, "filters"),
    # ---- sigmas ------------------------------------------------------------------------------------
    "bilateral sigma_space zero": (lambda: bilateral_filter(x, 3, sigma_space=0.0), ValueError, "sigma_space"),
    "bilateral sigma_color negative": (lambda: bilateral_filter(x, 3, sigma_color=-0.1), ValueError, "sigma_color"),
    "joint_bilateral sigma_space negative": (lambda: joint_bilateral_filter(x, g, 3, sigma_space=-1.0),
                                             ValueError, "sigma_space"),
    "joint_bilateral sigma_color zero": (lambda: joint_bilateral_filter(x, g, 3, sigma_color=0.0),
                                         ValueError, "sigma_color"),
    "jbu sigma_space zero": (lambda: joint_bilateral_upsample(lr, hr, sigma_space=0), ValueError, "sigma_space"),
    "jbu sigma_color negative": (lambda: joint_bilateral_upsample(lr, hr, sigma_color=-2.0), ValueError, "sigma_color"),
    # ---- ranks -----------------------------------------------------------------------------------
    "pac_conv2d 3-D input": (lambda: pac_conv2d(x[0], w3, guide=g[0]), ValueError, "input"),
    "pac_pool2d 5-D input": (lambda: pac_pool2d(x[None], 3, guide=g), ValueError, "input"),
    "bilateral 3-D image": (lambda: bilateral_filter(x[0], 3), ValueError, "image"),
    "jbu 3-D source": (lambda: joint_bilateral_upsample(lr[0], hr), ValueError, "source"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_rejects_bad_arguments(name):
    fn, exc, pattern = CASES[name]
    with pytest.raises(exc, match=pattern):
        fn()


# Controls: the same calls with the offending argument fixed must succeed, so the cases above
# fail for the reason they name.
CONTROLS = {
    "pac_conv2d": lambda: pac_conv2d(x, w3, guide=g),
    "pac_conv2d padding 1": lambda: pac_conv2d(x, w3, padding=1, guide=g),
    "pac_conv2d padding vs dilation": lambda: pac_conv2d(x, t(5, C, 5, 5), padding=(2, 4), dilation=2, guide=g),
    "pac_conv2d groups": lambda: pac_conv2d(x, t(6, 2, 3, 3), groups=2, guide=g),
    "pac_conv2d kernel": lambda: pac_conv2d(x, w3, kernel=t(B, 1, 9, 7, 9)),
    "pac_conv2d channel_wise": lambda: pac_conv2d(x, w3, padding=1, guide=t(B, C, H, W), channel_wise=True),
    "pac_conv2d shared": lambda: pac_conv2d(x, t(1, 1, 3, 3), t(C), guide=g, shared_filters=True),
    "pac_conv_transpose2d": lambda: pac_conv_transpose2d(x, wt3, stride=2, padding=1, output_padding=1, guide=g_up),
    "pac_conv_transpose2d op<dilation": lambda: pac_conv_transpose2d(x, wt3, output_padding=1, dilation=2,
                                                                     guide=t(B, 3, 14, 16)),
    "pac_pool2d": lambda: pac_pool2d(x, 3, guide=g),
    "pac_kernel transposed": lambda: pac_kernel(t(1, 1, 3, 3), 5, 2, 2, 1, transposed=True),
    "sac": lambda: sac_conv2d(x, t(B, C, 9, 7, 9), w3, t(5), variant="ISK"),
    "jbu": lambda: joint_bilateral_upsample(lr, hr),
    "jbf": lambda: joint_bilateral_filter(x, g, 3),
    "apply_pixel_filters": lambda: apply_pixel_filters(x, t(B, 9, H, W)),
    "apply_pixel_filters per channel": lambda: apply_pixel_filters(x, t(B, C, 9, H, W), normalize="sum"),
}


@pytest.mark.parametrize("name", list(CONTROLS))
def test_valid_calls_succeed(name):
    out = CONTROLS[name]()
    assert torch.isfinite(out).all()
