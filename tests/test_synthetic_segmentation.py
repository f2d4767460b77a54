"""Synthetic semantic-segmentation scenes (pixelwise.data.synthetic.segmentation)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy import ndimage

from pixelwise.data.synthetic.segmentation import (
    CLASS_NAMES,
    CLASS_PHOTOS,
    MIN_PIECE_PIXELS,
    NUM_CLASSES,
    SegSceneConfig,
    SyntheticSegmentation,
    generate_segmentation_scene,
)
from pixelwise.data.synthetic.textures import photo_names

CFG = SegSceneConfig(height=96, width=96)
N_SCENES = 40


@pytest.fixture(scope="module")
def scenes() -> list[tuple[np.ndarray, np.ndarray]]:
    return [generate_segmentation_scene(np.random.default_rng(i), CFG) for i in range(N_SCENES)]


def _longest_straight_run(label: np.ndarray) -> int:
    """Longest run of label changes between the same two columns (rows) over consecutive rows
    (columns): the length of the longest vertical (horizontal) straight boundary segment."""
    best = 0
    for edges in (label[:, 1:] != label[:, :-1], (label[1:] != label[:-1]).T):
        run = np.zeros(edges.shape[1], np.int64)
        for row in edges:
            run = np.where(row, run + 1, 0)
            best = max(best, int(run.max()))
    return best


def test_constants_and_photos():
    assert NUM_CLASSES == len(CLASS_NAMES) == len(CLASS_PHOTOS) == 8
    assert len(set(CLASS_NAMES)) == NUM_CLASSES and len(set(CLASS_PHOTOS)) == NUM_CLASSES
    assert set(CLASS_PHOTOS) <= set(photo_names())  # every material photo ships with scikit-image


def test_deterministic():
    a = generate_segmentation_scene(np.random.default_rng(7), CFG)
    b = generate_segmentation_scene(np.random.default_rng(7), CFG)
    c = generate_segmentation_scene(np.random.default_rng(8), CFG)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_scene_arrays(scenes):
    for image, label in scenes:
        assert image.shape == (3, CFG.height, CFG.width) and image.dtype == np.float32
        assert image.min() >= 0.0 and image.max() <= 1.0
        assert label.shape == (CFG.height, CFG.width) and label.dtype == np.uint8
        assert label.max() < NUM_CLASSES
        assert len(np.unique(label)) >= 2
    # the default size, and a small image with many regions keep the guarantee too
    image, label = generate_segmentation_scene(np.random.default_rng(0))
    assert image.shape == (3, 192, 192) and label.shape == (192, 192)
    tiny = SegSceneConfig(height=32, width=48, min_regions=3, max_regions=8, max_blobs=6)
    for i in range(10):
        image, label = generate_segmentation_scene(np.random.default_rng(i), tiny)
        assert image.shape == (3, 32, 48) and len(np.unique(label)) >= 2


def test_no_specks_and_variety(scenes):
    for _, label in scenes:
        # 4-connected pieces of one class: none is a speck of a few pixels
        for c in np.unique(label):
            pieces, _ = ndimage.label(label == c)
            assert np.bincount(pieces.ravel())[1:].min() >= MIN_PIECE_PIXELS
    counts = [len(np.unique(label)) for _, label in scenes]
    assert min(counts) >= 2 and max(counts) >= 5  # layout classes plus blobs of other classes
    assert set(np.concatenate([np.unique(label) for _, label in scenes]).tolist()) == set(range(NUM_CLASSES))


def test_boundaries_are_organic(scenes):
    side = min(CFG.height, CFG.width)
    runs = [_longest_straight_run(label) for _, label in scenes]
    # an axis-aligned rectangle would give a run of its side length; ragged curves give short runs
    assert max(runs) <= side // 3 and np.median(runs) <= side // 6, runs
    box = np.zeros((side, side), np.uint8)
    box[20:70, 10:60] = 1
    assert _longest_straight_run(box) == 50
    # both orientations of boundary are about equally common (no preferred axis)
    horizontal = sum(int((lab[:, 1:] != lab[:, :-1]).sum()) for _, lab in scenes)
    vertical = sum(int((lab[1:] != lab[:-1]).sum()) for _, lab in scenes)
    assert 0.8 < horizontal / vertical < 1.25


def test_compositing_leaves_no_seams():
    """The soft (blurred-mask) edges blend the two sides: boundary pixels are neither darker nor
    brighter than the pixels a few steps away (masks that did not sum to one would show)."""
    cfg = SegSceneConfig(height=96, width=96, noise=0.0)
    at, near = [], []
    for i in range(20):
        image, label = generate_segmentation_scene(np.random.default_rng(i), cfg)
        edge = np.zeros(label.shape, bool)
        for axis in (0, 1):
            step = np.diff(label, axis=axis) != 0
            lo = [slice(None)] * 2
            hi = [slice(None)] * 2
            lo[axis], hi[axis] = slice(None, -1), slice(1, None)
            edge[tuple(lo)] |= step
            edge[tuple(hi)] |= step
        ring = ndimage.binary_dilation(edge, iterations=4) & ~ndimage.binary_dilation(edge, iterations=2)
        gray = image.mean(0)
        at.append(gray[edge].mean())
        near.append(gray[ring].mean())
    assert 0.95 < np.mean(at) / np.mean(near) < 1.05


def test_class_identity_is_a_property_of_texture():
    """Per-region statistics (mean colour, contrast, fine and coarse gradient energy) recognise
    the class of held-out regions by nearest class centroid far above chance (1/8), and the
    gray-level texture statistics alone do too: the class is the material, not a shape."""
    feats, labels = [], []
    for i in range(1000, 1080):
        image, label = generate_segmentation_scene(np.random.default_rng(i), CFG)
        gray = image.mean(0)
        fine = np.hypot(*np.gradient(gray))
        coarse = np.hypot(*np.gradient(ndimage.uniform_filter(gray, 3)))
        for c in np.unique(label):
            inner = ndimage.binary_erosion(label == c, iterations=3)
            if inner.sum() >= 100:
                feats.append([*image[:, inner].mean(1), gray[inner].std(), fine[inner].mean(), coarse[inner].mean()])
                labels.append(c)
    x, y = np.array(feats), np.array(labels)
    half = len(y) // 2
    assert set(y[:half].tolist()) == set(range(NUM_CLASSES))

    def held_out_accuracy(cols):
        z = (x[:, cols] - x[:half, cols].mean(0)) / x[:half, cols].std(0)
        centroids = np.stack([z[:half][y[:half] == c].mean(0) for c in range(NUM_CLASSES)])
        pred = ((z[half:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
        return float((pred == y[half:]).mean())

    assert held_out_accuracy([0, 1, 2, 3, 4, 5]) > 0.5
    assert held_out_accuracy([3, 4, 5]) > 0.25  # texture statistics without any colour


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"height": 16}, "height"),
        ({"width": 64.0}, "width"),
        ({"min_regions": 1}, "min_regions"),
        ({"min_regions": 4, "max_regions": 3}, "max_regions"),
        ({"max_regions": NUM_CLASSES + 1}, "max_regions"),
        ({"max_blobs": -1}, "max_blobs"),
        ({"max_blobs": True}, "max_blobs"),
        ({"boundary_roughness": -0.1}, "boundary_roughness"),
        ({"boundary_roughness": float("nan")}, "boundary_roughness"),
        ({"noise": 0.5}, "noise"),
        ({"noise": "0.1"}, "noise"),
    ],
)
def test_bad_config(kwargs, field):
    with pytest.raises(ValueError, match=f"SegSceneConfig.*{field}"):
        SegSceneConfig(**kwargs)


def test_bad_arguments():
    with pytest.raises(TypeError, match="rng"):
        generate_segmentation_scene(np.random.RandomState(0))
    with pytest.raises(TypeError, match="cfg"):
        generate_segmentation_scene(np.random.default_rng(0), {"height": 64})
    with pytest.raises(ValueError, match="count"):
        SyntheticSegmentation(0)
    with pytest.raises(ValueError, match="seed"):
        SyntheticSegmentation(2, seed=-1)
    with pytest.raises(TypeError, match="cfg"):
        SyntheticSegmentation(2, cfg=None)
    with pytest.raises(TypeError, match="augment"):
        SyntheticSegmentation(2, augment=1)


def test_dataset_items():
    cfg = SegSceneConfig(height=64, width=80)
    ds = SyntheticSegmentation(5, seed=3, cfg=cfg)
    assert len(ds) == 5
    item = ds[1]
    assert set(item) == {"image", "label", "name"} and item["name"] == "scene-00001"
    assert item["image"].shape == (3, 64, 80) and item["image"].dtype == torch.float32
    assert item["label"].shape == (64, 80) and item["label"].dtype == torch.int64
    assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
    # item i is the scene of default_rng((seed, i)), independent of access order
    image, label = generate_segmentation_scene(np.random.default_rng((3, 1)), cfg)
    assert torch.equal(item["image"], torch.from_numpy(image))
    assert torch.equal(item["label"], torch.from_numpy(label.astype(np.int64)))
    assert torch.equal(ds[-1]["image"], ds[4]["image"]) and ds[-1]["name"] == "scene-00004"
    assert not torch.equal(SyntheticSegmentation(5, seed=4, cfg=cfg)[1]["image"], item["image"])
    with pytest.raises(IndexError):
        ds[5]
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["image"].shape == (2, 3, 64, 80) and batch["name"] == ["scene-00000", "scene-00001"]


def test_dataset_augment():
    cfg = SegSceneConfig(height=48, width=48)
    plain = SyntheticSegmentation(12, seed=1, cfg=cfg)
    aug = SyntheticSegmentation(12, seed=1, cfg=cfg, augment=True)
    flipped = 0
    for i in range(12):
        p, a = plain[i], aug[i]
        assert torch.equal(a["image"], aug[i]["image"])  # deterministic too
        assert 0.0 <= a["image"].min() and a["image"].max() <= 1.0
        if torch.equal(a["label"], p["label"].flip(-1)) and not torch.equal(a["label"], p["label"]):
            flipped += 1
        else:
            assert torch.equal(a["label"], p["label"])
        assert not torch.equal(a["image"], p["image"])  # colour jitter
    assert 0 < flipped < 12


def test_config_is_frozen_dataclass():
    with pytest.raises(dataclasses.FrozenInstanceError):
        CFG.height = 3
