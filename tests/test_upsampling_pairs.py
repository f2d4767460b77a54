"""Low-resolution pair construction: sampling geometry, invalid handling, deterministic crops."""

import pytest
import torch

from pixelwise.data.transforms.upsampling_pairs import (
    UpsamplingPairs,
    crop_to_multiple,
    downsample_target,
    fill_invalid,
    make_pair,
)


def test_depth_uses_nearest_sample_at_jbu_position():
    target = torch.arange(64, dtype=torch.float32).view(1, 8, 8)
    valid = torch.ones(1, 8, 8, dtype=torch.bool)
    lr, lr_valid = downsample_target(target, valid, 4, "depth")
    # sample q comes from high-res pixel 4q + (4-1)//2 = 4q + 1
    assert lr.tolist() == [[[target[0, 1, 1].item(), target[0, 1, 5].item()],
                            [target[0, 5, 1].item(), target[0, 5, 5].item()]]]
    assert lr_valid.all()


def test_depth_invalid_source_makes_invalid_sample():
    target = torch.ones(1, 4, 4)
    valid = torch.ones(1, 4, 4, dtype=torch.bool)
    valid[0, 0, 0] = False
    target[0, 0, 0] = float("inf")
    lr, lr_valid = downsample_target(target, valid, 2, "depth")
    assert not lr_valid[0, 0, 0] and lr[0, 0, 0] == 0 and lr_valid.sum() == 3


def test_flow_downsampling_ignores_invalid_values():
    flow = torch.full((2, 8, 8), 3.0)
    valid = torch.ones(1, 8, 8, dtype=torch.bool)
    flow[:, 0, 0] = 1e9
    valid[0, 0, 0] = False
    lr, lr_valid = downsample_target(flow, valid, 4, "flow")
    torch.testing.assert_close(lr, torch.full((2, 2, 2), 3.0))
    assert lr_valid.all()


def test_fill_invalid_takes_nearest_valid():
    target = torch.tensor([[[1.0, 0.0, 0.0, 5.0]]])
    valid = torch.tensor([[[True, False, False, True]]])
    assert fill_invalid(target, valid).tolist() == [[[1.0, 1.0, 5.0, 5.0]]]
    with pytest.raises(ValueError, match="every low-resolution sample is invalid"):
        fill_invalid(target, torch.zeros_like(valid))


def _item(h=20, w=30):
    return {"image": torch.rand(3, h, w), "target": torch.rand(1, h, w) + 1,
            "valid": torch.ones(1, h, w, dtype=torch.bool), "name": "x"}


def test_make_pair_and_crop_to_multiple():
    item = crop_to_multiple(_item(), 8)
    assert item["target"].shape == (1, 16, 24)
    pair = make_pair(item, 8, "depth")
    assert pair["target_lr"].shape == (1, 2, 3) and pair["valid_lr"].shape == (1, 2, 3)
    empty = dict(item, valid=torch.zeros_like(item["valid"]))
    with pytest.raises(ValueError, match="x: the target has no valid pixel"):
        make_pair(empty, 8, "depth")


def test_pairs_are_deterministic_per_epoch_and_index():
    base = [_item(40, 40) for _ in range(3)]
    pairs = UpsamplingPairs(base, 4, "depth", 16, seed=3)
    a, b = pairs[1], pairs[1]
    torch.testing.assert_close(a["target"], b["target"])
    pairs.set_epoch(1)
    crops = {tuple(pairs[1]["target"].flatten()[:4].tolist()) for _ in range(1)}
    pairs.set_epoch(0)
    assert tuple(pairs[1]["target"].flatten()[:4].tolist()) == tuple(a["target"].flatten()[:4].tolist())
    assert crops  # epoch 1 produced a valid crop too
    with pytest.raises(ValueError, match="crop: must be a positive multiple"):
        UpsamplingPairs(base, 4, "depth", 18)


def test_flow_flip_negates_u():
    item = _item(16, 16)
    item["target"] = torch.stack([torch.full((16, 16), 2.0), torch.full((16, 16), 1.0)])
    pairs = UpsamplingPairs([item], 4, "flow", 16, seed=0)
    seen = set()
    for epoch in range(20):
        pairs.set_epoch(epoch)
        seen.add(float(pairs[0]["target"][0, 0, 0]))
        assert float(pairs[0]["target"][1, 0, 0]) == 1.0
    assert seen == {2.0, -2.0}


def test_a_crop_larger_than_the_data_is_a_named_error():
    pairs = UpsamplingPairs([_item(40, 40)], 8, "depth", 64)
    with pytest.raises(ValueError, match=r"crop: 64 is larger than the data allows: x is 40x40; use a crop of at "
                                         r"most 40"):
        pairs[0]
