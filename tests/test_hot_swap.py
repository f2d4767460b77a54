"""Hot-swapping convolutions for PAC layers: same weights, same outputs before fine-tuning."""

import copy

import pytest
import torch
from torch import nn

from pixelwise.models import create_model
from pixelwise.nn import PacConv2d, convert_to_pac
from pixelwise.nn.hot_swap import HotSwappedPac


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, padding=1),
                         nn.ReLU(), nn.Conv2d(8, 8, 5, padding=4, dilation=2), nn.ReLU(), nn.Conv2d(8, 2, 1))


def test_outputs_unchanged_and_state_dict_keys_kept():
    net = _net().eval()
    x = torch.randn(2, 3, 17, 14)
    before = net(x)
    keys = list(net.state_dict())
    convert_to_pac(net, layers=["2", "4"], guide="1")
    assert isinstance(net[2], PacConv2d) and isinstance(net[4], HotSwappedPac)
    assert list(net.state_dict()) == keys
    torch.testing.assert_close(net(x), before, rtol=0, atol=1e-6)


def test_segmentation_network_default_swap_unchanged():
    base = create_model("seg_fcn", num_classes=5, width=0.25, blocks=1).eval()
    swapped = create_model("seg_fcn", num_classes=5, width=0.25, blocks=1, hot_swap={}).eval()
    swapped.load_state_dict(base.state_dict())
    assert sum(isinstance(m, HotSwappedPac) for m in swapped.modules()) == 3
    x = torch.rand(1, 3, 48, 40)
    torch.testing.assert_close(swapped(x)["logits"], base(x)["logits"], rtol=0, atol=1e-5)


def test_large_scale_changes_output_and_trains_the_guide():
    net = _net()
    x = torch.randn(1, 3, 12, 12)
    before = net(x).detach()
    convert_to_pac(net, layers=["4"], guide="0", scale=1.0)
    out = net(x)
    assert not torch.allclose(out, before, atol=1e-3)
    out.square().sum().backward()
    assert net[0].weight.grad.abs().sum() > 0  # gradients reach the guide layer through the kernel


def test_guide_is_resized_to_each_layer():
    net = _net()
    convert_to_pac(net, layers=["2", "4"], guide="0", scale=0.5)
    seen = []
    for name in ("2", "4"):
        net[int(name)].register_forward_pre_hook(lambda m, inp: seen.append(inp[0].shape[-2:]))
    net(torch.randn(1, 3, 16, 16))
    assert [tuple(s) for s in seen] == [(16, 16), (8, 8)]


def test_deepcopy_keeps_a_working_guide():
    net = convert_to_pac(_net(), layers=["4"], guide="1", scale=0.3)
    clone = copy.deepcopy(net)
    x = torch.randn(1, 3, 10, 10)
    torch.testing.assert_close(clone(x), net(x))


def test_deepcopy_and_pickle_after_a_training_forward_pass():
    # the recorder held a non-leaf activation (with grad_fn), which copy.deepcopy refuses
    import io

    net = convert_to_pac(_net(), layers=["4"], guide="1", scale=0.3)
    x = torch.randn(1, 3, 10, 10)
    net(x).sum().backward()
    clone = copy.deepcopy(net)
    assert clone[4]._recorder is not net[4]._recorder and clone[4]._recorder.latest is None
    torch.testing.assert_close(clone(x), net(x))
    buffer = io.BytesIO()
    torch.save(net, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert loaded[4]._recorder.latest is None
    torch.testing.assert_close(loaded(x), net(x))


def test_errors_name_the_layer():
    with pytest.raises(ValueError, match="not a submodule"):
        convert_to_pac(_net(), layers=["9"], guide="0")
    with pytest.raises(ValueError, match="guide"):
        convert_to_pac(_net(), layers=["2"], guide="nope")
    with pytest.raises(ValueError, match="not an nn.Conv2d"):
        convert_to_pac(_net(), layers=["1"], guide="0")
    with pytest.raises(ValueError, match="even kernel"):
        convert_to_pac(nn.Sequential(nn.Conv2d(3, 3, 1), nn.Conv2d(3, 3, 2)), layers=["1"], guide="0")
    with pytest.raises(ValueError, match="already a PAC"):
        convert_to_pac(convert_to_pac(_net(), ["2"], "0"), ["2"], "0")
    with pytest.raises(ValueError, match="scale must be > 0"):
        convert_to_pac(_net(), ["2"], "0", scale=0)
    with pytest.raises(TypeError, match="scale must be a number"):
        convert_to_pac(_net(), ["2"], "0", scale="1e-4")
    net = convert_to_pac(_net(), layers=["0"], guide="2")  # guide runs after the layer
    with pytest.raises(RuntimeError, match="has not run yet"):
        net(torch.randn(1, 3, 8, 8))
