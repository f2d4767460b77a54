"""The ablation SqueezeSegV3 model: head shapes for every block type, width-only striding, pinned parameter
counts, SAC-block wiring (attention == 1 gives the plain block) and argument validation."""

from __future__ import annotations

import pytest
import torch

from pixelwise.models import count_parameters, create_model, list_models
from pixelwise.models.squeezeseg_ablation import BLOCK_TYPES, SacResidualBlock, SqueezeSegV3Ablation

D64 = torch.float64
SMALL = {"width": 0.125, "num_classes": 20}


def rand(*shape, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)


def test_registered():
    assert {"ssgv3_ablation_21", "ssgv3_ablation_53"} <= set(list_models())
    assert BLOCK_TYPES == ("plain", "S", "IS", "SK", "ISK", "PAC", "SE", "CBAM", "CAM")


@pytest.mark.parametrize("block", BLOCK_TYPES)
def test_heads_shapes_eval_and_gradients(block):
    torch.manual_seed(0)
    model = create_model("ssgv3_ablation_21", block=block, **SMALL)
    assert model.block == block and model.depth == 21 and model.width == 0.125
    assert model.head_scales == (1, 2, 4, 8, 8)
    x = rand(2, 5, 16, 64, seed=1)

    model.train()
    outs = model(x)  # aux defaults to self.training
    assert isinstance(outs, list) and len(outs) == 5
    assert [tuple(o.shape) for o in outs] == [(2, 20, 16, 64), (2, 20, 16, 32), (2, 20, 16, 16),
                                              (2, 20, 16, 8), (2, 20, 16, 8)]
    assert [64 // o.shape[-1] for o in outs] == list(model.head_scales)
    loss = sum(o.square().mean() for o in outs)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{block}: no gradient for {name}"
        assert torch.isfinite(p.grad).all(), f"{block}: non-finite gradient for {name}"
    # Every head contributes: its 1x1 conv weight gets a non-zero gradient.
    assert all(h[1].weight.grad.abs().sum() > 0 for h in model.heads)

    model.eval()  # BN (attention BN included) on running statistics
    with torch.no_grad():
        pred = model(x)
        both = model(x, aux=True)
    assert isinstance(pred, torch.Tensor) and pred.shape == (2, 20, 16, 64)
    assert torch.isfinite(pred).all()
    assert len(both) == 5 and torch.equal(both[0], pred)


def test_aux_false_in_training_returns_prediction_only():
    model = SqueezeSegV3Ablation(block="plain", dropout=0.0, **SMALL).train()
    y = model(rand(1, 5, 8, 32), aux=False)
    assert isinstance(y, torch.Tensor) and y.shape == (1, 20, 8, 32)


def test_rows_preserved_at_every_stage():
    model = SqueezeSegV3Ablation(block="ISK", **SMALL).eval()
    H, W = 5, 64  # odd height: any height reduction would show
    seen = []

    def hook(name):
        return lambda mod, inp, out: seen.append((name, tuple(inp[0].shape), tuple(out.shape)))

    handles = [model.stem.register_forward_hook(hook("stem"))]
    handles += [s.register_forward_hook(hook(f"stage{i + 1}")) for i, s in enumerate(model.stages)]
    handles += [d.register_forward_hook(hook(f"decoder{i + 1}")) for i, d in enumerate(model.decoder)]
    handles += [b.register_forward_hook(hook("block")) for b in model.modules() if isinstance(b, SacResidualBlock)]
    with torch.no_grad():
        model(rand(1, 5, H, W))
    for h in handles:
        h.remove()
    assert len(seen) == 1 + 5 + 3 + sum((1, 1, 2, 2, 1))
    for name, inp, out in seen:
        assert inp[2] == H and out[2] == H, f"{name} changed the row count: {inp} -> {out}"
    widths = {name: out[3] for name, _, out in seen if name.startswith(("stage", "decoder"))}
    assert widths == {"stage1": 64, "stage2": 32, "stage3": 16, "stage4": 8, "stage5": 8,
                      "decoder1": 16, "decoder2": 32, "decoder3": 64}
    chans = [out[1] for name, _, out in seen if name.startswith("stage")]
    assert chans == [8, 16, 32, 32, 32] and model.stage_channels == (8, 16, 32, 32, 32)


def test_full_size_bottleneck_64x256():
    # One full-width forward of ssgv3_ablation_21 (width 1): the bottleneck of a 64 x 2048 scan is 64 x 256.
    # The plain block keeps this to a few seconds on CPU; the stage geometry does not depend on it.
    torch.manual_seed(0)
    model = create_model("ssgv3_ablation_21", block="plain").eval()
    shapes = {}
    model.stages[4].register_forward_hook(lambda m, i, o: shapes.__setitem__("stage5", tuple(o.shape)))
    with torch.no_grad():
        y = model(torch.randn(1, 5, 64, 2048))
    assert shapes["stage5"] == (1, 256, 64, 256)
    assert y.shape == (1, 20, 64, 2048)


PARAMS = {("ssgv3_ablation_21", "plain"): 9_064_132, ("ssgv3_ablation_21", "ISK"): 11_051_332,
          ("ssgv3_ablation_53", "plain"): 27_069_636, ("ssgv3_ablation_53", "ISK"): 34_413_636}


@pytest.mark.parametrize("name", ["ssgv3_ablation_21", "ssgv3_ablation_53"])
def test_parameter_counts(name):
    plain = count_parameters(create_model(name, block="plain"))
    isk = count_parameters(create_model(name, block="ISK"))
    assert plain == PARAMS[(name, "plain")]
    assert isk == PARAMS[(name, "ISK")]
    # Each ISK layer adds a 3 -> 9C 7x7 conv with bias and a 9C BN: 1350 C parameters per block.
    blocks = {"ssgv3_ablation_21": (1, 1, 2, 2, 1), "ssgv3_ablation_53": (1, 2, 8, 8, 4)}[name]
    assert isk - plain == 1350 * sum(n * c for n, c in zip(blocks, (64, 128, 256, 256, 256)))
    ratio = (isk - plain) / plain
    print(f"{name}: plain {plain:,}, ISK {isk:,}, ISK extra {ratio:.1%}")
    assert ratio == pytest.approx({"ssgv3_ablation_21": 0.2192, "ssgv3_ablation_53": 0.2713}[name], abs=5e-4)


def _match_plain(block: SacResidualBlock) -> SacResidualBlock:
    """A plain block with the same conv and BN weights as ``block``."""
    plain = SacResidualBlock(block.channels, "plain").to(D64)
    missing, unexpected = plain.load_state_dict(block.state_dict(), strict=False)
    assert not missing
    assert all(k.startswith(("conv1.attention.", "guide.", "pre_attention.")) for k in unexpected)
    return plain.eval()


def _randomise_bn(block, seed):
    g = torch.Generator().manual_seed(seed)
    for bn in (block.bn1, block.bn2):
        bn.running_mean.copy_(torch.randn(bn.num_features, generator=g, dtype=D64) * 0.1)
        bn.running_var.copy_(torch.rand(bn.num_features, generator=g, dtype=D64) + 0.5)
        bn.weight.data.copy_(torch.rand(bn.num_features, generator=g, dtype=D64) + 0.5)
        bn.bias.data.copy_(torch.randn(bn.num_features, generator=g, dtype=D64) * 0.1)


@pytest.mark.parametrize("variant", ["S", "IS", "SK", "ISK"])
def test_sac_block_with_unit_attention_is_plain_block(variant):
    torch.manual_seed(0)
    C = 6
    block = SacResidualBlock(C, variant).to(D64).eval()
    _randomise_bn(block, seed=1)
    x, raw = rand(2, C, 8, 16, seed=2, dtype=D64), rand(2, 3, 8, 32, seed=3, dtype=D64)

    # Random attention: the SAC block must differ from the plain one (the attention is wired in).
    plain = _match_plain(block)
    with torch.no_grad():
        assert not torch.allclose(block(x, raw), plain(x, raw), atol=1e-6)

        # Force the attention to 1: zero 7x7 conv, BN shifted far into the sigmoid's saturation.
        conv, bn = block.conv1.attention[0], block.conv1.attention[1]
        conv.weight.zero_()
        conv.bias.zero_()
        bn.bias.fill_(60.0)
        att = block.conv1.attention_map(raw, (8, 16), (8, 16))
        assert torch.equal(att, torch.ones_like(att))
        torch.testing.assert_close(block(x, raw), plain(x, raw), rtol=1e-12, atol=1e-12)


def test_pac_block_guide_is_identity_and_constant_guide_gives_plain_block():
    torch.manual_seed(0)
    C = 6
    block = SacResidualBlock(C, "PAC").to(D64).eval()
    assert torch.equal(block.guide.weight.view(3, 3), torch.eye(3, dtype=D64))
    assert torch.equal(block.guide.bias, torch.zeros(3, dtype=D64))
    _randomise_bn(block, seed=4)
    plain = _match_plain(block)
    x = rand(2, C, 8, 16, seed=5, dtype=D64)
    with torch.no_grad():
        # Constant xyz: every Gaussian weight is exp(0) = 1, so PAC is the plain convolution.
        flat = torch.full((2, 3, 8, 16), 0.3, dtype=D64)
        torch.testing.assert_close(block(x, flat), plain(x, flat), rtol=1e-12, atol=1e-12)
        varied = rand(2, 3, 8, 16, seed=6, dtype=D64)
        assert not torch.allclose(block(x, varied), plain(x, varied), atol=1e-6)


@pytest.mark.parametrize("block", ["SE", "CBAM", "CAM"])
def test_pre_attention_blocks(block):
    torch.manual_seed(0)
    blk = SacResidualBlock(8, block).to(D64).eval()
    plain = _match_plain(blk)
    x = rand(1, 8, 4, 16, seed=7, dtype=D64)
    with torch.no_grad():
        # The attention comes from the features, not from X0 ...
        a = blk(x, rand(1, 3, 4, 16, seed=8, dtype=D64))
        assert torch.equal(a, blk(x, rand(1, 3, 4, 16, seed=9, dtype=D64)))
        # ... and it is applied to the block input before the plain conv.
        expected = plain.act(plain.bn2(plain.conv2(plain.act(plain.bn1(plain.conv1(blk.pre_attention(x))))))) + x
        torch.testing.assert_close(a, expected, rtol=1e-12, atol=1e-12)
        assert not torch.allclose(a, plain(x, x[:, :3]), atol=1e-6)


def test_create_model_plain_defaults():
    model = create_model("ssgv3_ablation_21", block="plain")
    assert isinstance(model, SqueezeSegV3Ablation)
    assert (model.depth, model.block, model.width, model.num_classes) == (21, "plain", 1.0, 20)
    assert model.stage_channels == (64, 128, 256, 256, 256)
    assert create_model("ssgv3_ablation_53", block="plain", width=0.125).depth == 53
    # A sidecar that records depth rebuilds the same model.
    assert create_model("ssgv3_ablation_21", depth=21, block="plain", width=0.125).depth == 21


def test_bad_input():
    model = SqueezeSegV3Ablation(block="plain", **SMALL).eval()
    with pytest.raises(ValueError, match=r"input must have 5 channels"):
        model(rand(1, 4, 8, 32))
    with pytest.raises(ValueError, match=r"input width must be a multiple of 8"):
        model(rand(1, 5, 8, 36))
    with pytest.raises(ValueError, match=r"input must be 4-D"):
        model(rand(5, 8, 32))
    with pytest.raises(TypeError, match=r"input"):
        model(torch.zeros(1, 5, 8, 32, dtype=torch.long))


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"block must be one of \('plain', 'S'.*'CAM'\)"):
        SqueezeSegV3Ablation(block="SAC")
    with pytest.raises(ValueError, match=r"block must be one of"):
        create_model("ssgv3_ablation_21", block="conv")
    with pytest.raises(ValueError, match=r"block must be one of"):
        SacResidualBlock(8, "OISK")
    with pytest.raises(ValueError, match=r"depth must be one of \(21, 53\)"):
        SqueezeSegV3Ablation(depth=34)
    with pytest.raises(ValueError, match=r"depth is fixed to 21"):
        create_model("ssgv3_ablation_21", depth=53)
    with pytest.raises(ValueError, match=r"in_channels"):
        SqueezeSegV3Ablation(in_channels=3)
    with pytest.raises(ValueError, match=r"width"):
        SqueezeSegV3Ablation(width=0)
    with pytest.raises(ValueError, match=r"num_classes"):
        SqueezeSegV3Ablation(num_classes=0)
    with pytest.raises(ValueError, match=r"dropout"):
        SqueezeSegV3Ablation(dropout=1.0)
