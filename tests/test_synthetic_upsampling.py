"""Synthetic joint-upsampling data: textures from the scikit-image photos and layered scenes."""

import time

import numpy as np
import pytest
import torch
from scipy import ndimage

from pixelwise.data.synthetic import textures
from pixelwise.data.synthetic.upsampling import SyntheticUpsampling, render_scene

# ---------------------------------------------------------------------------------------------
# textures


def test_photo_bank_loads_offline_and_is_cached():
    bank = textures.photo_bank()
    names = textures.photo_names()
    assert len(bank) >= 5 and len(bank) == len(names)
    for img in bank:
        assert img.dtype == np.float32 and img.ndim == 3 and img.shape[2] == 3
        assert max(img.shape[:2]) <= textures.MAX_SIDE
        assert 0.0 <= img.min() and img.max() <= 1.0
    again = textures.photo_bank()
    assert all(a is b for a, b in zip(bank, again))  # lru-cached, not reloaded


def test_photo_bank_excludes_the_motorcycle_test_scene():
    from skimage import data
    from skimage.transform import resize

    assert not any("motorcycle" in n for n in textures.photo_names())
    assert not any("motorcycle" in n or "motorcycle" in f for n, f in textures.PHOTO_SOURCES)
    left = np.asarray(data.stereo_motorcycle()[0], np.float32).mean(axis=2) / 255.0
    for name, img in zip(textures.photo_names(), textures.photo_bank()):
        gray = np.asarray(img).mean(axis=2)
        m = resize(left, gray.shape, order=1, anti_aliasing=True)
        corr = np.corrcoef(gray.ravel(), m.ravel())[0, 1]
        assert not corr > 0.9, f"photo {name} looks like the motorcycle test image (r={corr:.3f})"


def test_random_texture_shapes_ranges_and_determinism():
    for h, w in [(1, 1), (7, 300), (256, 256), (600, 40)]:
        for s in range(6):
            t = textures.random_texture(np.random.default_rng(s), h, w)
            assert t.shape == (h, w, 3) and t.dtype == np.float32
            assert t.min() >= 0.0 and t.max() <= 1.0
    a = textures.random_texture(np.random.default_rng(3), 64, 64)
    b = textures.random_texture(np.random.default_rng(3), 64, 64)
    assert np.array_equal(a, b)
    many = [textures.random_texture(np.random.default_rng(s), 32, 32) for s in range(40)]
    assert len({m.tobytes() for m in many}) == 40
    # textured photo crops are the majority; flat colours exist too
    stds = np.array([m.std(axis=(0, 1)).max() for m in many])
    assert (stds > 0.02).mean() > 0.5 and (stds < 1e-4).any()


# ---------------------------------------------------------------------------------------------
# dataset format and determinism


@pytest.mark.parametrize("kind,channels", [("depth", 1), ("flow", 2)])
def test_item_format(kind, channels):
    ds = SyntheticUpsampling(5, (48, 80), kind=kind, seed=2)
    assert len(ds) == 5
    for i in range(len(ds)):
        item = ds[i]
        assert set(item) == {"image", "target", "valid", "name"}
        assert item["name"] == f"synthetic-{kind}-2-{i}"
        img, tgt, val = item["image"], item["target"], item["valid"]
        assert img.shape == (3, 48, 80) and img.dtype == torch.float32
        assert tgt.shape == (channels, 48, 80) and tgt.dtype == torch.float32
        assert val.shape == (1, 48, 80) and val.dtype == torch.bool
        assert 0.0 <= img.min() and img.max() <= 1.0
        assert torch.isfinite(tgt).all()
    assert ds[np.int64(1)]["name"] == f"synthetic-{kind}-2-1"


def test_determinism_any_order():
    ds = SyntheticUpsampling(50, (64, 64), seed=7)
    a = ds[13]
    ds[2], ds[40]
    b = SyntheticUpsampling(50, (64, 64), seed=7)[13]
    for key in ("image", "target", "valid"):
        assert torch.equal(a[key], b[key])
    assert not torch.equal(a["image"], ds[14]["image"])
    assert not torch.equal(a["target"], ds[14]["target"])
    assert not torch.equal(a["image"], SyntheticUpsampling(50, (64, 64), seed=8)[13]["image"])
    f1 = SyntheticUpsampling(3, (64, 64), kind="flow", seed=7)[1]
    f2 = SyntheticUpsampling(3, (64, 64), kind="flow", seed=7)[1]
    assert torch.equal(f1["target"], f2["target"]) and torch.equal(f1["image"], f2["image"])


def test_argument_errors():
    with pytest.raises(ValueError, match="length"):
        SyntheticUpsampling(0)
    for size in [(8, 256), (256,), (256, 256, 3), (256.0, 256), 256, "ab"]:
        with pytest.raises(ValueError, match="size"):
            SyntheticUpsampling(4, size)
    with pytest.raises(ValueError, match="kind"):
        SyntheticUpsampling(4, kind="normals")
    for f in (0.5, -0.01, 1.0, "x"):
        with pytest.raises(ValueError, match="invalid_fraction"):
            SyntheticUpsampling(4, invalid_fraction=f)
    ds = SyntheticUpsampling(4, (32, 32))
    for i in (-1, 4, 100):
        with pytest.raises(IndexError):
            ds[i]


# ---------------------------------------------------------------------------------------------
# depth scenes


def _pairs(a, axis):
    lo = [slice(None)] * a.ndim
    hi = [slice(None)] * a.ndim
    lo[axis], hi[axis] = slice(0, -1), slice(1, None)
    return a[tuple(lo)], a[tuple(hi)]


def test_depth_positive_with_realistic_range():
    ds = SyntheticUpsampling(12, (96, 96), seed=1)
    ratios = []
    for i in range(len(ds)):
        item = ds[i]
        d = item["target"][item["valid"]]
        assert (d > 0).all()
        ratios.append(float(d.max() / d.min()))
    assert 1.8 < min(ratios) and max(ratios) < 9.0
    assert max(ratios) / min(ratios) > 1.5  # the depth range varies between scenes


@pytest.mark.parametrize("kind", ["depth", "flow"])
def test_invalid_fraction_and_zero_target(kind):
    for frac in (0.02, 0.1):
        ds = SyntheticUpsampling(6, (128, 128), kind=kind, seed=4, invalid_fraction=frac)
        fractions = []
        for i in range(len(ds)):
            item = ds[i]
            inv = ~item["valid"][0]
            fractions.append(inv.float().mean().item())
            assert (item["target"][:, inv] == 0).all()
        assert all(0.7 * frac <= f <= 1.3 * frac for f in fractions), fractions
    item = SyntheticUpsampling(3, (64, 64), kind=kind, invalid_fraction=0.0)[2]
    assert item["valid"].all()


def test_invalid_pixels_sit_on_the_far_side_of_discontinuities():
    ds = SyntheticUpsampling(8, (128, 128), seed=5, invalid_fraction=0.03)
    near_far_side = total = 0
    for i in range(len(ds)):
        s = ds.scene(i)
        L, inv = s["layer_index"], ~s["valid"]
        # a nearer layer within 6 px to the right (stereo occlusions are left of near objects)
        nearer = np.zeros_like(inv)
        for k in range(1, 7):
            nearer[:, :-k] |= L[:, k:] > L[:, :-k]
        near_far_side += np.count_nonzero(inv & nearer)
        total += np.count_nonzero(inv)
    assert near_far_side / total > 0.6


def test_depth_discontinuities_coincide_with_image_edges():
    ds = SyntheticUpsampling(8, (128, 128), seed=3)
    hits = edges = 0
    for i in range(len(ds)):
        item = ds[i]
        img, d, v = item["image"].numpy(), item["target"][0].numpy(), item["valid"][0].numpy()
        for axis in (0, 1):
            (ia, ib), (da, db), (va, vb) = _pairs(img, axis + 1), _pairs(d, axis), _pairs(v, axis)
            jump = va & vb & (np.abs(da - db) > 0.05 * np.minimum(da, db))
            grad = ndimage.maximum_filter(np.abs(ia - ib).max(axis=0), size=3)
            edges += np.count_nonzero(jump)
            hits += np.count_nonzero(jump & (grad > 0.04))
    assert edges > 500
    assert hits / edges > 0.85


def test_colour_edges_that_are_not_depth_edges():
    ds = SyntheticUpsampling(10, (128, 128), seed=6)
    strong_far = strong = 0
    decal_grad = []
    for i in range(len(ds)):
        s = ds.scene(i)
        img, d, v = s["image"], s["target"][0], s["valid"]
        rel = np.zeros(d.shape, bool)
        for axis in (0, 1):
            da, db = _pairs(d, axis)
            jump = np.abs(da - db) > 0.02 * np.maximum(np.minimum(da, db), 1e-6)
            lo = [slice(None)] * 2
            lo[axis] = slice(0, -1)
            hi = [slice(None)] * 2
            hi[axis] = slice(1, None)
            rel[tuple(lo)] |= jump
            rel[tuple(hi)] |= jump
        near_depth_edge = ndimage.binary_dilation(rel | ~v, iterations=3)
        g = np.zeros(d.shape, np.float32)
        g[:, :-1] = np.abs(np.diff(img, axis=2)).max(axis=0)
        g[:-1, :] = np.maximum(g[:-1, :], np.abs(np.diff(img, axis=1)).max(axis=0))
        strong += np.count_nonzero(g > 0.1)
        strong_far += np.count_nonzero((g > 0.1) & ~near_depth_edge)
        # decal borders: colour changes on a surface whose depth is smooth
        dec = s["decal"]
        border = (ndimage.maximum_filter(dec, 3) - ndimage.minimum_filter(dec, 3) > 0.3) & ~near_depth_edge
        decal_grad.append(ndimage.maximum_filter(g, 3)[border])
    assert strong_far / strong > 0.3
    decal_grad = np.concatenate(decal_grad)
    assert decal_grad.size > 200
    assert np.median(decal_grad) > 0.05


def test_occlusion_order_nearest_layer_wins():
    ds = SyntheticUpsampling(6, (96, 96), seed=9, invalid_fraction=0.0)
    for i in range(len(ds)):
        s = ds.scene(i)
        masks = np.stack([layer["mask"] for layer in s["layers"]])
        depths = np.stack([layer["target"][0] for layer in s["layers"]])
        assert masks[0].all() and len(masks) >= 4  # background everywhere + foreground layers
        # painter's order: the visible layer is the last one painted over the pixel ...
        last = len(masks) - 1 - np.argmax(masks[::-1], axis=0)
        assert np.array_equal(s["layer_index"], last)
        # ... and it is also the nearest (largest disparity) of all layers covering the pixel
        covered = np.where(masks, depths, -np.inf)
        assert np.array_equal(np.argmax(covered, axis=0), last)
        visible = np.take_along_axis(depths, last[None], 0)[0]
        others = np.where(np.arange(len(masks))[:, None, None] == last[None], -np.inf, covered).max(0)
        assert (visible[np.isfinite(others)] > others[np.isfinite(others)]).all()
        # the target is that layer's depth (up to the small depth noise)
        np.testing.assert_allclose(s["target"][0], visible, rtol=0.03)


# ---------------------------------------------------------------------------------------------
# flow scenes


def test_flow_discontinuities_follow_layer_boundaries():
    ds = SyntheticUpsampling(10, (128, 128), kind="flow", seed=1)
    boundary, inside = [], []
    big = 0.0
    for i in range(len(ds)):
        s = ds.scene(i)
        f, v, L = s["target"], s["valid"], s["layer_index"]
        assert f.shape == (2, 128, 128)
        big = max(big, float(np.abs(f).max()))
        for axis in (0, 1):
            fa, fb = _pairs(f, axis + 1)
            diff = np.hypot(*(fa - fb))
            (va, vb), (la, lb) = _pairs(v, axis), _pairs(L, axis)
            boundary.append(diff[va & vb & (la != lb)])
            inside.append(diff[va & vb & (la == lb)])
    boundary, inside = np.concatenate(boundary), np.concatenate(inside)
    assert boundary.size > 1000
    assert (boundary > 0.5).mean() > 0.8  # independent motions: flow jumps at layer boundaries
    assert np.percentile(inside, 99.5) < 0.2  # affine motion: smooth inside each layer
    assert 3.0 < big < 0.25 * 128  # translations up to ~10 % of the side (plus rotation/zoom)


# ---------------------------------------------------------------------------------------------
# speed (reported, not asserted)


def test_generation_speed_report(capsys):
    textures.photo_bank()  # load once outside the timing
    lines = []
    for kind in ("depth", "flow"):
        ds = SyntheticUpsampling(40, (256, 256), kind=kind, seed=0)
        ds[0]
        t = time.perf_counter()
        for i in range(1, 21):
            ds[i]
        ms = (time.perf_counter() - t) / 20 * 1e3
        lines.append(f"synthetic {kind} 256x256: {ms:.1f} ms/item")
    with capsys.disabled():
        print("\n" + "; ".join(lines))


def test_render_scene_matches_dataset():
    r = render_scene(3, 5, (64, 64), "depth", 0.02)
    item = SyntheticUpsampling(10, (64, 64), seed=3)[5]
    assert np.array_equal(r["image"], item["image"].numpy())
    assert np.array_equal(r["target"], item["target"].numpy())
    assert np.array_equal(r["valid"], item["valid"][0].numpy())
