"""Shared building blocks (pixelwise.nn.blocks): layouts and state_dict keys, "same" padding,
RNG-compatible construction, residual identity, the dilated ResNet at output stride 8."""

from functools import partial

import pytest
import torch
from torch import nn

from pixelwise.models import create_model
from pixelwise.nn.blocks import (
    DRN_STAGE_CHANNELS,
    BasicBlock,
    conv_norm_act,
    conv_stack,
    create_act,
    create_norm,
    dilated_resnet,
    same_padding,
    scale_channels,
)


def _same_tensors(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


# --- conv_norm_act -----------------------------------------------------------------------------


def test_conv_norm_act_layout_and_keys():
    block = conv_norm_act(3, 8, 3)
    assert [type(m) for m in block] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert block[2].inplace
    assert list(block.state_dict()) == ["0.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                                        "1.num_batches_tracked"]  # no conv bias in front of a norm
    assert block[0].weight.shape == (8, 3, 3, 3)


def test_conv_norm_act_without_norm_or_act():
    conv_act = conv_norm_act(3, 8, 5, norm=None)
    assert [type(m) for m in conv_act] == [nn.Conv2d, nn.ReLU]
    assert conv_act[0].bias is not None and conv_act[0].padding == (2, 2)
    conv_bn = conv_norm_act(3, 8, 1, act=None)
    assert [type(m) for m in conv_bn] == [nn.Conv2d, nn.BatchNorm2d] and conv_bn[0].padding == (0, 0)
    assert len(conv_norm_act(3, 8, norm=None, act=None)) == 1
    assert conv_norm_act(3, 8, bias=True)[0].bias is not None
    assert conv_norm_act(3, 8, norm=None, bias=False)[0].bias is None


@pytest.mark.parametrize("kernel_size, dilation", [(1, 1), (3, 1), (3, 2), (3, 4), (5, 1), (7, 3), ((1, 5), 1),
                                                   ((3, 5), (2, 1))])
def test_conv_norm_act_default_padding_keeps_size(kernel_size, dilation):
    block = conv_norm_act(4, 6, kernel_size, dilation=dilation).eval()
    assert block(torch.randn(2, 4, 17, 20)).shape == (2, 6, 17, 20)


def test_conv_norm_act_stride_and_explicit_padding():
    assert conv_norm_act(4, 6, 3, stride=2)(torch.randn(1, 4, 16, 20)).shape == (1, 6, 8, 10)
    assert conv_norm_act(4, 6, 3, stride=(1, 2))(torch.randn(1, 4, 16, 20)).shape == (1, 6, 16, 10)
    assert conv_norm_act(4, 6, 3, padding=0)(torch.randn(1, 4, 16, 20)).shape == (1, 6, 14, 18)


def test_conv_norm_act_transposed_conv_and_custom_act_and_norm():
    block = conv_norm_act(8, 4, (1, 4), stride=(1, 2), padding=(0, 1), conv_layer=nn.ConvTranspose2d,
                          act=partial(nn.LeakyReLU, 0.1, inplace=True))
    assert isinstance(block[0], nn.ConvTranspose2d) and block[0].bias is None
    assert isinstance(block[2], nn.LeakyReLU) and block[2].negative_slope == 0.1
    assert block(torch.randn(1, 8, 5, 16)).shape == (1, 4, 5, 32)  # the width doubles, the height stays
    gn = conv_norm_act(8, 4, norm=partial(nn.GroupNorm, 2))
    assert isinstance(gn[1], nn.GroupNorm) and gn[1].num_channels == 4


def test_conv_norm_act_draws_the_rng_like_a_hand_written_sequential():
    torch.manual_seed(3)
    built = conv_norm_act(5, 7, 3, stride=2, dilation=2)
    after_built = torch.rand(3)
    torch.manual_seed(3)
    by_hand = nn.Sequential(nn.Conv2d(5, 7, 3, 2, 2, 2, bias=False), nn.BatchNorm2d(7), nn.ReLU(inplace=True))
    assert _same_tensors(built, by_hand) and torch.equal(after_built, torch.rand(3))


def test_act_and_norm_specs():
    assert create_act(None) is None and create_norm(None, 4) is None
    assert isinstance(create_act("relu"), nn.ReLU)
    assert isinstance(create_norm("batch", 4), nn.BatchNorm2d)
    assert create_act("relu") is not create_act("relu")  # a fresh layer every time
    with pytest.raises(ValueError, match="act"):
        conv_norm_act(3, 4, act="gelu")
    with pytest.raises(ValueError, match="norm"):
        conv_norm_act(3, 4, norm="layer")
    with pytest.raises(TypeError, match="act"):
        create_act(3)


def test_same_padding_and_scale_channels():
    assert same_padding(3) == 1 and same_padding(3, 4) == 4 and same_padding(1) == 0 and same_padding(5, 2) == 4
    assert same_padding((1, 5)) == (0, 2) and same_padding(3, (1, 2)) == (1, 2)
    assert scale_channels(64, 0.5) == 32 and scale_channels(64, 0.01) == 8 and scale_channels(64, 0.01, 4) == 4
    assert scale_channels(256, 0.125, 4) == 32


# --- conv_stack --------------------------------------------------------------------------------


def test_conv_stack_is_flat_with_same_padding():
    stack = conv_stack(3, [16, 8, 1], [9, 1, 5], act_last=False)
    assert [type(m) for m in stack] == [nn.Conv2d, nn.ReLU, nn.Conv2d, nn.ReLU, nn.Conv2d]
    assert [stack[i].kernel_size for i in (0, 2, 4)] == [(9, 9), (1, 1), (5, 5)]
    assert list(stack.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    assert stack(torch.randn(2, 3, 13, 11)).shape == (2, 1, 13, 11)
    relu_last = conv_stack(3, [4, 4], 5)
    assert [type(m) for m in relu_last] == [nn.Conv2d, nn.ReLU, nn.Conv2d, nn.ReLU]
    assert all(m.kernel_size == (5, 5) for m in relu_last if isinstance(m, nn.Conv2d))


def test_conv_stack_with_norm_and_errors():
    stack = conv_stack(3, [4, 6], 3, norm="batch")
    assert [type(m) for m in stack] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert all(m.bias is None for m in stack if isinstance(m, nn.Conv2d))
    assert [m.kernel_size for m in conv_stack(3, [4, 4], [(1, 5)] * 2) if isinstance(m, nn.Conv2d)] == [(1, 5)] * 2
    with pytest.raises(ValueError, match="kernel sizes"):
        conv_stack(3, [4, 4, 4], [3, 3])
    with pytest.raises(ValueError, match="at least one"):
        conv_stack(3, [])


def test_conv_stack_draws_the_rng_like_a_hand_written_sequential():
    torch.manual_seed(11)
    built = conv_stack(2, [6, 5, 1], [9, 1, 5], act_last=False)
    torch.manual_seed(11)
    by_hand = nn.Sequential(nn.Conv2d(2, 6, 9, padding=4), nn.ReLU(inplace=True), nn.Conv2d(6, 5, 1),
                            nn.ReLU(inplace=True), nn.Conv2d(5, 1, 5, padding=2))
    assert _same_tensors(built, by_hand)


# --- BasicBlock --------------------------------------------------------------------------------


def test_basic_block_identity_shortcut_and_keys():
    block = BasicBlock(8, 8)
    assert block.shortcut is None
    assert [k for k in block.state_dict() if k.endswith("weight")] == ["conv1.weight", "bn1.weight", "conv2.weight",
                                                                       "bn2.weight"]
    assert block.conv1.bias is None and block.conv2.bias is None


@pytest.mark.parametrize("cin, cout, stride", [(8, 16, 1), (8, 8, 2), (8, 16, 2), (8, 8, (1, 2))])
def test_basic_block_projection_shortcut(cin, cout, stride):
    block = BasicBlock(cin, cout, stride).eval()
    assert [type(m) for m in block.shortcut] == [nn.Conv2d, nn.BatchNorm2d]
    assert block.shortcut[0].kernel_size == (1, 1)
    assert {k for k in block.state_dict() if k.startswith("shortcut.")} >= {"shortcut.0.weight", "shortcut.1.weight",
                                                                            "shortcut.1.running_var"}
    s = (stride, stride) if isinstance(stride, int) else stride
    assert block(torch.randn(2, cin, 16, 16)).shape == (2, cout, 16 // s[0], 16 // s[1])


@pytest.mark.parametrize("dilation", [1, 2, 4])
def test_basic_block_dilation_keeps_spatial_size(dilation):
    block = BasicBlock(6, 6, dilation=dilation).eval()
    assert block.conv1.dilation == block.conv2.dilation == (dilation, dilation)
    assert block.conv1.padding == (dilation, dilation)
    assert block(torch.randn(1, 6, 19, 23)).shape == (1, 6, 19, 23)


def _zero_branch(block: BasicBlock) -> BasicBlock:
    with torch.no_grad():
        block.bn2.weight.zero_()
        block.bn2.bias.zero_()
    return block.eval()


def test_basic_block_is_the_identity_when_the_branch_is_zeroed():
    torch.manual_seed(0)
    x = torch.rand(2, 8, 12, 12)  # >= 0, so the ReLU after the add keeps it
    assert torch.equal(_zero_branch(BasicBlock(8, 8, dilation=2))(x), x)
    signed = torch.randn(2, 8, 12, 12)
    pre_act = _zero_branch(BasicBlock(8, 8, act=partial(nn.LeakyReLU, 0.1), act_after_add=False))
    assert torch.equal(pre_act(signed), signed)  # act(0) + x


def test_basic_block_with_zeroed_branch_is_the_projection():
    block = _zero_branch(BasicBlock(4, 8, stride=2))
    x = torch.randn(1, 4, 10, 10)
    assert torch.equal(block(x), torch.relu(block.shortcut(x)))


def test_basic_block_computes_the_resnet_formula():
    torch.manual_seed(1)
    block = BasicBlock(4, 8, stride=2, dilation=2).eval()
    x = torch.randn(2, 4, 12, 12)
    ref = torch.relu(block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(x))))) + block.shortcut(x))
    torch.testing.assert_close(block(x), ref, rtol=0, atol=0)
    act_first = BasicBlock(8, 8, act_after_add=False).eval()
    y = torch.randn(2, 8, 6, 6)
    ref = torch.relu(act_first.bn2(act_first.conv2(torch.relu(act_first.bn1(act_first.conv1(y)))))) + y
    torch.testing.assert_close(act_first(y), ref, rtol=0, atol=0)


def test_basic_block_make_conv1_runs_first_and_may_register_modules_ahead():
    class GuidedBlock(BasicBlock):
        def __init__(self, channels):
            super().__init__(channels, channels, make_conv1=partial(self._first, channels))

        def _first(self, channels):
            self.guide = nn.Conv2d(3, 3, 1)
            return nn.Conv2d(channels, channels, 3, padding=1, bias=True)

    block = GuidedBlock(4)
    assert list(block.state_dict())[:4] == ["guide.weight", "guide.bias", "conv1.weight", "conv1.bias"]
    assert block.conv1.bias is not None
    assert block(torch.randn(1, 4, 6, 6)).shape == (1, 4, 6, 6)


# --- dilated_resnet ----------------------------------------------------------------------------


def test_dilated_resnet_output_stride_8_and_channels():
    stem, stages, channels = dilated_resnet(3, width=0.25, blocks=2)
    assert channels == (16, 32, 64, 64) == tuple(scale_channels(c, 0.25) for c in DRN_STAGE_CHANNELS)
    x = torch.randn(1, 3, 64, 96)
    feats = stem(x)
    assert feats.shape == (1, 8, 32, 48)  # stem at 1/2, stem channels 32 * 0.25
    sizes = []
    for stage in stages:
        feats = stage(feats)
        sizes.append(tuple(feats.shape[1:]))
    assert sizes == [(16, 16, 24), (32, 8, 12), (64, 8, 12), (64, 8, 12)]


def test_dilated_resnet_layout():
    layers = dilated_resnet(3, width=0.25, blocks=3, stem=16)
    assert layers.out_channels == 64 and len(layers.stem) == 2
    assert [len(s) for s in layers.stages] == [3, 3, 3, 3]
    assert [s[0].conv1.stride for s in layers.stages] == [(2, 2), (2, 2), (1, 1), (1, 1)]
    assert [s[-1].conv2.dilation for s in layers.stages] == [(1, 1), (1, 1), (2, 2), (4, 4)]
    # Only the first block of a stage may project; the others keep the identity shortcut.
    assert all(b.shortcut is None for s in layers.stages for b in list(s)[1:])
    assert layers.stages[2][0].shortcut is not None  # 32 -> 64 channels
    assert layers.stages[3][0].shortcut is None  # 64 -> 64 at stride 1
    keys = list(nn.ModuleDict({"stem": layers.stem, "stages": layers.stages}).state_dict())
    assert keys[:2] == ["stem.0.0.weight", "stem.0.1.weight"] and "stages.0.0.shortcut.0.weight" in keys


def test_dilated_resnet_custom_layout_and_errors():
    stem, stages, channels = dilated_resnet(1, channels=(8, 8), strides=(2, 1), dilations=(1, 2), blocks=1)
    assert channels == (8, 8) and stages(stem(torch.randn(1, 1, 16, 16))).shape == (1, 8, 4, 4)
    with pytest.raises(ValueError, match="one entry per stage"):
        dilated_resnet(3, channels=(8, 8), strides=(2,), dilations=(1, 1))
    with pytest.raises(ValueError, match="blocks"):
        dilated_resnet(3, blocks=0)


def test_models_hold_the_dilated_resnet_as_built():
    """The embedding and segmentation networks are the builder's layers under their own names,
    drawn from the RNG first."""
    torch.manual_seed(5)
    stem, stages, _ = dilated_resnet(3, width=0.25, blocks=1)
    torch.manual_seed(5)
    emb = create_model("embedding_drn", embedding_dim=8, width=0.25, blocks=1)
    assert _same_tensors(nn.ModuleDict({"stem": stem, "stages": stages}),
                         nn.ModuleDict({"stem": emb.stem, "stages": emb.stages}))
    torch.manual_seed(5)
    seg = create_model("seg_fcn", num_classes=4, width=0.25, blocks=1)
    assert _same_tensors(nn.ModuleDict({"stem": stem, "stages": stages}),
                         nn.ModuleDict({"stem": seg.backbone.stem, "stages": seg.backbone.stages}))
