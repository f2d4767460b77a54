"""Synthetic instance scenes (pixelwise.data.synthetic.instances)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pixelwise.data.synthetic.instances import (
    CLASS_NAMES,
    NUM_CLASSES,
    InstanceScene,
    SceneConfig,
    SyntheticInstances,
    generate_scene,
)

CFG = SceneConfig()
N_SCENES = 40


@pytest.fixture(scope="module")
def scenes() -> list[InstanceScene]:
    return [generate_scene(np.random.default_rng(i)) for i in range(N_SCENES)]


def _touching_pairs(inst: np.ndarray) -> set[tuple[int, int]]:
    """Pairs of different instance ids that are 4-neighbours somewhere."""
    pairs = set()
    for a, b in ((inst[:, 1:], inst[:, :-1]), (inst[1:], inst[:-1])):
        sel = (a != b) & (a > 0) & (b > 0)
        pairs |= {(min(x, y), max(x, y)) for x, y in zip(a[sel].tolist(), b[sel].tolist())}
    return pairs


def test_constants():
    assert CLASS_NAMES[0] == "background"
    assert NUM_CLASSES == len(CLASS_NAMES) == 6


def test_deterministic():
    a = generate_scene(np.random.default_rng(7))
    b = generate_scene(np.random.default_rng(7))
    c = generate_scene(np.random.default_rng(8))
    for f in ("image", "instances", "semantic", "classes", "clutter"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert not np.array_equal(a.image, c.image)


def test_scene_arrays(scenes):
    for s in scenes:
        assert s.image.shape == (CFG.height, CFG.width, 3) and s.image.dtype == np.float32
        assert s.image.min() >= 0.0 and s.image.max() <= 1.0
        assert s.instances.shape == (CFG.height, CFG.width) and s.instances.dtype == np.int32
        assert s.semantic.dtype == np.uint8 and s.clutter.dtype == bool
        k = len(s.classes)
        assert CFG.min_objects <= k <= CFG.max_objects
        # ids consecutive 1..K, every instance big enough
        np.testing.assert_array_equal(np.unique(s.instances), np.arange(k + 1))
        counts = np.bincount(s.instances.ravel(), minlength=k + 1)
        assert counts[1:].min() >= CFG.min_pixels
        # semantic agrees with the per-instance classes
        assert ((1 <= s.classes) & (s.classes < NUM_CLASSES)).all()
        np.testing.assert_array_equal(s.semantic, np.concatenate([[0], s.classes])[s.instances])


def test_occlusion_and_variety(scenes):
    touching = sum(bool(_touching_pairs(s.instances)) for s in scenes)
    assert touching >= N_SCENES // 4, touching  # instances overlap / touch in many scenes
    same_class_touch = any(
        s.classes[a - 1] == s.classes[b - 1] for s in scenes for a, b in _touching_pairs(s.instances)
    )
    assert same_class_touch
    assert set(np.concatenate([s.classes for s in scenes]).tolist()) == set(range(1, NUM_CLASSES))


def test_clutter_is_background(scenes):
    for s in scenes:
        assert s.clutter.any()
        assert (s.instances[s.clutter] == 0).all() and (s.semantic[s.clutter] == 0).all()
        # clutter is textured like the objects, not a flat background colour
        assert s.image[s.clutter].std() > 0.01
    none = generate_scene(np.random.default_rng(0), SceneConfig(clutter=0))
    assert not none.clutter.any()


def test_other_sizes_and_counts():
    cfg = SceneConfig(height=48, width=80, min_objects=0, max_objects=1, clutter=0, min_scale=0.3, max_scale=0.6)
    s = generate_scene(np.random.default_rng(3), cfg)
    assert s.image.shape == (48, 80, 3) and len(s.classes) <= 1


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"height": 8}, ValueError),
        ({"height": 64.0}, TypeError),
        ({"min_objects": 5, "max_objects": 3}, ValueError),
        ({"min_objects": -1}, ValueError),
        ({"min_scale": 0.0}, ValueError),
        ({"min_scale": 0.5, "max_scale": 0.4}, ValueError),
        ({"max_scale": 1.5}, ValueError),
        ({"max_scale": float("nan")}, ValueError),
        ({"clutter": -1}, ValueError),
        ({"clutter": True}, TypeError),
        ({"min_visible": 1.5}, ValueError),
        ({"min_pixels": 0}, ValueError),
        ({"height": 16, "width": 16, "min_scale": 0.1, "max_scale": 0.2, "min_pixels": 40}, ValueError),
    ],
)
def test_bad_config(kwargs, error):
    with pytest.raises(error, match="SceneConfig"):
        SceneConfig(**kwargs)


def test_bad_arguments():
    with pytest.raises(TypeError, match="rng"):
        generate_scene(np.random.RandomState(0))
    with pytest.raises(TypeError, match="cfg"):
        generate_scene(np.random.default_rng(0), {"height": 64})
    with pytest.raises(RuntimeError, match="too crowded"):
        crowded = SceneConfig(min_objects=20, max_objects=20, min_scale=0.45, max_scale=0.45, min_visible=1.0)
        generate_scene(np.random.default_rng(0), crowded)
    with pytest.raises(ValueError, match="count"):
        SyntheticInstances(0)
    with pytest.raises(ValueError, match="seed"):
        SyntheticInstances(2, seed=-1)
    with pytest.raises(TypeError, match="cfg"):
        SyntheticInstances(2, cfg=None)
    with pytest.raises(TypeError, match="augment"):
        SyntheticInstances(2, augment=1)


def test_dataset_items():
    cfg = SceneConfig(height=64, width=96)
    ds = SyntheticInstances(5, seed=3, cfg=cfg)
    assert len(ds) == 5
    item = ds[1]
    assert set(item) == {"image", "instances", "semantic"}
    assert item["image"].shape == (3, 64, 96) and item["image"].dtype == torch.float32
    assert item["instances"].shape == (64, 96) and item["instances"].dtype == torch.int64
    assert item["semantic"].shape == (64, 96) and item["semantic"].dtype == torch.int64
    assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
    # deterministic in (seed, index); independent of access order and of other instances
    again = SyntheticInstances(5, seed=3, cfg=cfg)
    for key in item:
        assert torch.equal(item[key], again[1][key])
    assert torch.equal(ds[-1]["image"], ds[4]["image"])
    assert not torch.equal(ds[0]["image"], ds[1]["image"])
    assert not torch.equal(SyntheticInstances(5, seed=4, cfg=cfg)[1]["image"], item["image"])
    with pytest.raises(IndexError):
        ds[5]
    loader = torch.utils.data.DataLoader(ds, batch_size=2)
    batch = next(iter(loader))
    assert batch["image"].shape == (2, 3, 64, 96)


def test_dataset_augment():
    cfg = SceneConfig(height=48, width=48)
    plain = SyntheticInstances(12, seed=1, cfg=cfg)
    aug = SyntheticInstances(12, seed=1, cfg=cfg, augment=True)
    flipped = 0
    for i in range(12):
        p, a = plain[i], aug[i]
        assert torch.equal(a["image"], aug[i]["image"])  # deterministic too
        assert 0.0 <= a["image"].min() and a["image"].max() <= 1.0
        if torch.equal(a["instances"], p["instances"].flip(-1)) and not torch.equal(a["instances"], p["instances"]):
            flipped += 1
            assert torch.equal(a["semantic"], p["semantic"].flip(-1))
        else:
            assert torch.equal(a["instances"], p["instances"])
        assert not torch.equal(a["image"], p["image"])  # colour jitter
    assert 0 < flipped < 12


def test_config_is_frozen_dataclass():
    with pytest.raises(dataclasses.FrozenInstanceError):
        CFG.height = 3
