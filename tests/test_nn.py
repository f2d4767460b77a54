"""Modules: drop-in compatibility with the standard layers, module == function, the attention
blocks as SAC special cases."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pixelwise.nn import (
    CAM,
    CBAM,
    JointBilateralFilter,
    JointBilateralUpsample,
    PacConv2d,
    PacConvTranspose2d,
    PacPool2d,
    SacConv2d,
    SqueezeExcitation,
)
from pixelwise.ops import (
    joint_bilateral_filter,
    joint_bilateral_upsample,
    pac_conv2d,
    pac_conv_transpose2d,
    pac_kernel,
    pac_pool2d,
    sac_conv2d,
)

DT = torch.float64


@pytest.mark.parametrize("kwargs", [dict(padding=2), dict(stride=2, padding=1, dilation=2), dict(padding="same"),
                                    dict(groups=2, padding=2, bias=False)])
def test_pac_conv2d_is_a_drop_in_for_conv2d(kwargs):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 5, **kwargs).double()
    pac = PacConv2d(4, 6, 5, **kwargs).double()
    pac.load_state_dict(conv.state_dict())  # same parameter names and shapes
    x = torch.randn(2, 4, 13, 10, dtype=DT)
    assert torch.allclose(pac(x, torch.zeros(2, 3, 13, 10, dtype=DT)), conv(x), atol=1e-12)
    f = torch.randn(2, 3, 13, 10, dtype=DT)
    pad = (2, 2) if kwargs.get("padding") == "same" else kwargs.get("padding", 0)
    ref = pac_conv2d(x, pac.weight, pac.bias, kwargs.get("stride", 1), pad, kwargs.get("dilation", 1),
                     kwargs.get("groups", 1), guide=f)
    assert torch.equal(pac(x, f), ref)
    assert torch.equal(pac(x, kernel=pac.compute_kernel(f)), ref)


def test_pac_conv_transpose2d_is_a_drop_in_for_conv_transpose2d():
    torch.manual_seed(0)
    convt = nn.ConvTranspose2d(4, 6, 5, stride=2, padding=2, output_padding=1).double()
    pact = PacConvTranspose2d(4, 6, 5, stride=2, padding=2, output_padding=1).double()
    pact.load_state_dict(convt.state_dict())
    x = torch.randn(2, 4, 7, 9, dtype=DT)
    out = convt(x)
    assert torch.allclose(pact(x, torch.ones(2, 2, *out.shape[-2:], dtype=DT)), out, atol=1e-12)
    f = torch.randn(2, 2, *out.shape[-2:], dtype=DT)
    ref = pac_conv_transpose2d(x, pact.weight, pact.bias, 2, 2, 1, guide=f)
    assert torch.equal(pact(x, f), ref)
    assert torch.equal(pact(x, kernel=pact.compute_kernel(f)), ref)


def test_pac_pool_module_matches_function_and_avg_pool():
    x = torch.randn(2, 3, 12, 11, dtype=DT)
    pool = PacPool2d(3, stride=2, padding=1)
    assert torch.allclose(pool(x, torch.ones_like(x)), F.avg_pool2d(x, 3, 2, 1), atol=1e-12)
    f = torch.randn_like(x)
    assert torch.equal(pool(x, f), pac_pool2d(x, 3, 2, 1, guide=f))


def test_learnable_inverse_kernel_parameters_get_gradients():
    layer = PacConv2d(3, 3, 3, padding=1, kernel_type="inverse", inverse_alpha=0.5, inverse_lambda=-0.5)
    names = dict(layer.named_parameters())
    assert {"inverse_alpha", "inverse_lambda"} <= set(names)
    x, f = torch.randn(1, 3, 8, 8), torch.randn(1, 2, 8, 8)
    layer(x, f).square().sum().backward()
    assert names["inverse_alpha"].grad.abs() > 0 and names["inverse_lambda"].grad.abs() > 0


def test_shared_filters_module_filters_each_channel():
    layer = PacConv2d(3, 3, 3, padding=1, shared_filters=True, bias=False).double()
    x = torch.randn(1, 3, 9, 9, dtype=DT)
    # uniform shared filter, constant guide: a 3x3 box filter per channel
    ref = F.avg_pool2d(x, 3, 1, 1, count_include_pad=True)
    assert torch.allclose(layer(x, torch.zeros(1, 1, 9, 9, dtype=DT)), ref, atol=1e-12)
    with pytest.raises(ValueError, match="shared_filters"):
        PacConv2d(3, 4, 3, shared_filters=True)


def test_padding_modes_other_than_zeros_are_rejected():
    with pytest.raises(ValueError, match="padding_mode must be one of zeros; got 'reflect'"):
        PacConv2d(3, 3, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="padding_mode"):
        SacConv2d(3, 3, 3, padding_mode="circular")
    with pytest.raises(ValueError, match="variant must be one of"):
        SacConv2d(3, 3, 3, variant="I")
    with pytest.raises(ValueError, match="kernel_type must be one of gaussian, inverse"):
        PacConv2d(3, 3, 3, kernel_type="box")


@pytest.mark.parametrize("variant", ["S", "IS", "SK", "ISK"])
def test_sac_module_equals_function_with_its_attention(variant):
    torch.manual_seed(0)
    sac = SacConv2d(4, 5, 3, stride=(1, 2), padding=1, variant=variant, raw_channels=3).double().eval()
    x, raw = torch.randn(2, 4, 8, 16, dtype=DT), torch.randn(2, 3, 16, 32, dtype=DT)
    out = sac(x, raw)
    assert out.shape == F.conv2d(x, sac.weight, stride=(1, 2), padding=1).shape
    in_size, out_size = (8, 16), tuple(out.shape[-2:])
    att = sac.attention_map(raw, in_size, out_size)
    assert torch.equal(out, sac_conv2d(x, att, sac.weight, sac.bias, (1, 2), 1, variant=variant))
    assert att.min() >= 0 and att.max() <= 1  # sigmoid


def test_sac_module_rejects_wrong_raw_channels():
    sac = SacConv2d(4, 4, 3, padding=1, raw_channels=3)
    with pytest.raises(ValueError, match="raw"):
        sac(torch.randn(1, 4, 8, 8), torch.randn(1, 5, 8, 8))


def test_se_cbam_cam_are_sac_special_cases():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 6, 10, dtype=DT)
    w = torch.randn(4, 8, 3, 3, dtype=DT)
    se = SqueezeExcitation(8, reduction=4).double()
    assert torch.allclose(sac_conv2d(x, se.attention(x), w, padding=1, variant="I"), F.conv2d(se(x), w, padding=1))
    cam = CAM(8, reduction=4).double()
    assert torch.allclose(sac_conv2d(x, cam.attention(x), w, padding=1, variant="IS"), F.conv2d(cam(x), w, padding=1))
    cbam = CBAM(8, reduction=4).double()
    x1 = x * cbam.channel_attention(x)
    spatial = cbam.spatial_attention(x1)
    assert torch.allclose(sac_conv2d(x1, spatial, w, padding=1, variant="S"), F.conv2d(cbam(x), w, padding=1))


def test_pac_is_sac_sk_with_a_gaussian_attention():
    x, f = torch.randn(1, 3, 9, 9, dtype=DT), torch.randn(1, 2, 9, 9, dtype=DT)
    w = torch.randn(4, 3, 3, 3, dtype=DT)
    K = pac_kernel(f, 3, padding=1)
    assert torch.allclose(sac_conv2d(x, K, w, padding=1, variant="SK"), pac_conv2d(x, w, padding=1, guide=f))


def test_bilateral_modules_check_their_bandwidths():
    assert JointBilateralFilter(5, 2.0, float("inf")).sigmas() == (2.0, float("inf"))  # fixed: inf allowed
    with pytest.raises(ValueError, match="sigma_color must be finite"):
        JointBilateralFilter(5, 2.0, float("inf"), learnable=True)
    with pytest.raises(ValueError, match="sigma_space must be > 0, got 0"):
        JointBilateralUpsample(3, 0.0, 0.1)
    with pytest.raises(TypeError, match="sigma_color must be a number"):
        JointBilateralUpsample(3, 1.0, "0.1")


def test_bilateral_modules_match_functions_and_learn_bandwidths():
    img, guide = torch.rand(1, 1, 12, 12, dtype=DT), torch.rand(1, 3, 12, 12, dtype=DT)
    jbf = JointBilateralFilter(5, 2.0, 0.2)
    assert torch.equal(jbf(img, guide), joint_bilateral_filter(img, guide, 5, 2.0, 0.2))
    jbu = JointBilateralUpsample(3, 1.0, 0.2, learnable=True).double()
    lr = torch.rand(1, 1, 3, 3, dtype=DT)
    out = jbu(lr, guide)
    assert torch.allclose(out, joint_bilateral_upsample(lr, guide, 3, 1.0, 0.2))
    out.square().sum().backward()
    assert jbu.log_sigma_space.grad is not None and jbu.log_sigma_color.grad is not None
