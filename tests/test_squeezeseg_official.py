"""The released SqueezeSegV3 network: parameter counts, the SAC block's arithmetic against an
unfold-and-1x1-conv loop, xyz resizing, detached skips and head shapes."""

import pytest
import torch
import torch.nn.functional as F

from pixelwise.models import count_parameters, create_model
from pixelwise.models.squeezeseg import SqueezeSegV3
from pixelwise.nn import SacBlock

D64 = torch.float64


def rand(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def randomise_norms(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g, dtype=m.running_mean.dtype) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g, dtype=m.running_var.dtype) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g, dtype=m.weight.dtype) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g, dtype=m.bias.dtype) * 0.1)
    return model


@pytest.mark.parametrize("name, total", [("ssgv3_21", 9_247_140), ("ssgv3_53", 25_959_588)])
def test_parameter_counts_as_released(name, total):
    model = create_model(name)
    assert count_parameters(model) == total
    if name == "ssgv3_21":
        backbone = sum(p.numel() for p in [*model.stem.parameters(), *model.stages.parameters()])
        assert backbone == 6_129_120
        assert count_parameters(model.decoder) == 3_098_080
        assert count_parameters(model.heads) == 19_940


def test_sac_block_equals_unfold_then_1x1_conv():
    torch.manual_seed(0)
    blk = randomise_norms(SacBlock(4)).double().eval()
    x, xyz = rand(2, 4, 5, 12, seed=1, dtype=D64), rand(2, 3, 5, 12, seed=2, dtype=D64)
    # The release's formulation, written out: unfold 3x3 (channel-major), multiply, 1x1 conv.
    att = torch.sigmoid(blk.attention[1](blk.attention[0](xyz)))
    unfolded = F.unfold(x, 3, padding=1).view(2, 36, 5, 12)
    y = F.conv2d(unfolded * att, blk.taps.weight, blk.taps.bias)
    expected = blk.post(y) + x
    torch.testing.assert_close(blk(x, xyz), expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="xyz must have shape"):
        blk(x, xyz[..., :6])
    with pytest.raises(ValueError, match="x must have 4 channels"):
        blk(x[:, :3], xyz)


def test_forward_shapes_and_width_only_strides():
    model = create_model("ssgv3_21", width=0.125).eval()
    x = rand(2, 5, 8, 64)
    assert model(x).shape == (2, 20, 8, 64)
    outs = model(x, aux=True)
    assert [tuple(o.shape) for o in outs] == [(2, 20, 8, w) for w in (64, 32, 16, 8, 8)]
    y, skips = model.encode(x)
    assert y.shape == (2, 32, 8, 8)
    assert [tuple(s.shape[1:]) for s in skips] == [(4, 8, 64), (8, 8, 32), (16, 8, 16)]
    assert torch.equal(model(x), outs[0])


def test_skips_are_detached():
    # No gradient reaches the stem through the skips: with the bottleneck path cut, the stem's
    # gradient is zero.
    model = create_model("ssgv3_21", width=0.125, dropout=0.0).train()
    x = rand(1, 5, 4, 32)
    y, skips = model.encode(x)
    assert all(not s.requires_grad for s in skips)
    out = model.heads[0](model.decode(y.detach(), skips)[0])
    out.sum().backward()
    assert model.stem[0].weight.grad is None or float(model.stem[0].weight.grad.abs().sum()) == 0.0


def test_xyz_resized_bilinear_align_corners():
    # Stage 2's SAC blocks see xyz at W/2, resized by bilinear interpolation with align_corners.
    model = create_model("ssgv3_21", width=0.125).eval()
    seen = {}
    block = model.stages[1].blocks[0]

    def keep(module, args):
        seen["xyz"] = args[1].clone()

    block.register_forward_pre_hook(keep)
    x = rand(1, 5, 4, 32)
    model(x)
    expected = F.interpolate(x[:, 1:4], size=(4, 16), mode="bilinear", align_corners=True)
    assert torch.equal(seen["xyz"], expected)


def test_bn_momentum_as_released():
    model = create_model("ssgv3_21", width=0.125)
    assert model.stem[1].momentum == 0.01 and model.stages[0].down[1].momentum == 0.01
    assert model.decoder[0].residual[0][1].momentum == 0.01
    assert model.stages[0].blocks[0].attention[1].momentum == 0.1


def test_bad_arguments_and_input():
    with pytest.raises(ValueError, match="depth must be one of"):
        SqueezeSegV3(depth=34)
    with pytest.raises(ValueError, match="depth is fixed to 21"):
        create_model("ssgv3_21", depth=53)
    with pytest.raises(ValueError, match="width"):
        SqueezeSegV3(width=0)
    # A run saved by the old ssgv3_21 (the Table-3 network) names its block: say where it went.
    with pytest.raises(ValueError, match="now ssgv3_ablation_21"):
        create_model("ssgv3_21", block="ISK")
    with pytest.raises(ValueError, match="in_channels"):
        SqueezeSegV3(in_channels=3)
    model = create_model("ssgv3_21", width=0.125).eval()
    with pytest.raises(ValueError, match="multiple of 8"):
        model(rand(1, 5, 4, 36))
    with pytest.raises(ValueError, match="5 channels"):
        model(rand(1, 4, 4, 32))
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.zeros(1, 5, 4, 32, dtype=torch.long))
