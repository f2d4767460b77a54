"""Dataset readers on tiny fake datasets written in tmp_path (plus the bundled motorcycle)."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from pixelwise.data.datasets.folder import FolderDataset
from pixelwise.data.datasets.middlebury import Middlebury, load_motorcycle
from pixelwise.data.datasets.nyu import NYUDepthV2
from pixelwise.data.datasets.sintel import Sintel
from pixelwise.data.io.files import FormatError
from pixelwise.data.io.formats import write_flo, write_npy, write_pfm, write_png, write_target

RNG = np.random.default_rng(1)


def check_item(item, *, c, h, w, name=None):
    assert set(item) == {"image", "target", "valid", "name"}
    img, tgt, val = item["image"], item["target"], item["valid"]
    assert img.dtype == torch.float32 and img.shape == (3, h, w)
    assert tgt.dtype == torch.float32 and tgt.shape == (c, h, w)
    assert val.dtype == torch.bool and val.shape == (1, h, w)
    assert 0.0 <= img.min() and img.max() <= 1.0
    assert torch.isfinite(tgt).all()
    assert (tgt[:, ~val[0]] == 0).all()  # invalid -> 0
    assert isinstance(item["name"], str)
    if name is not None:
        assert item["name"] == name


def rgb(h, w):
    a = RNG.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    a[0, 0] = (255, 0, 0)  # red top-left marker
    return a


# ------------------------------------------------------------------------------------- NYU

N, H, W = 3, 6, 8


def write_fake_nyu(path, *, n=N, h=H, w=W, userblock=True, images=True, depths=True, dn=None, dsize=None):
    """Same layout as nyu_depth_v2_labeled.mat seen through h5py: images (N,3,W,H), depths (N,W,H)."""
    img = RNG.integers(0, 200, size=(n, 3, w, h), dtype=np.uint8)
    dep = RNG.uniform(0.5, 9.0, size=(dn or n, *(dsize or (w, h)))).astype(np.float32)
    # Asymmetric markers, stated in picture coordinates (row y, column x):
    img[:, 0, w - 1, 0] = 255  # red maximal at the top-right pixel (y=0, x=w-1)
    img[:, 2, 0, h - 1] = 255  # blue maximal at the bottom-left pixel (y=h-1, x=0)
    dep[0, 1, 0] = 42.0  # depth 42 at (y=0, x=1) of the first image
    dep[0, 0, 2] = 0.0  # invalid: (y=2, x=0)
    dep[0, 3, 3] = -1.0  # invalid: (y=3, x=3)
    dep[0, 2, 4] = np.nan  # invalid: (y=4, x=2)
    kw = {"userblock_size": 512} if userblock else {}
    with h5py.File(path, "w", **kw) as f:
        if images:
            f.create_dataset("images", data=img)
        if depths:
            f.create_dataset("depths", data=dep)
    if userblock:  # what MATLAB puts in front of a v7.3 file
        with open(path, "r+b") as fh:
            fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64")
    return img, dep


def test_nyu_orientation_values_and_validity(tmp_path):
    p = tmp_path / "nyu.mat"
    img, dep = write_fake_nyu(p)
    ds = NYUDepthV2(p, split="all")
    assert ds.kind == "depth" and len(ds) == N
    assert ds._file is None  # opened lazily
    item = ds[0]
    check_item(item, c=1, h=H, w=W, name="nyu_0000")
    im, t, v = item["image"], item["target"][0], item["valid"][0]
    assert im[0, 0, W - 1] == 1.0 and im[2, H - 1, 0] == 1.0  # markers where they belong
    np.testing.assert_allclose(im.numpy(), img[0].transpose(0, 2, 1) / 255.0, atol=1e-7)
    assert t[0, 1] == 42.0
    for y, x in [(2, 0), (3, 3), (4, 2)]:
        assert not v[y, x] and t[y, x] == 0.0
    assert int((~v).sum()) == 3
    np.testing.assert_allclose(t[v].numpy(), dep[0].T[v.numpy()], rtol=0)
    assert [ds[i]["name"] for i in range(N)] == ["nyu_0000", "nyu_0001", "nyu_0002"]


def test_nyu_splits(tmp_path):
    p = tmp_path / "nyu.mat"
    write_fake_nyu(p, userblock=False)
    train = NYUDepthV2(p, split="train", n_train=2)
    test = NYUDepthV2(p, split="test", n_train=2)
    assert len(train) == 2 and len(test) == 1
    assert test[0]["name"] == "nyu_0002"
    assert len(NYUDepthV2(p, split="train")) == N  # fewer than 1000 images: all are train
    with pytest.raises(ValueError, match="no samples"):
        NYUDepthV2(p)  # default split "test" = images 1000.. : none here
    with pytest.raises(ValueError, match="split"):
        NYUDepthV2(p, split="val")


def test_nyu_pickle_and_workers(tmp_path):
    p = tmp_path / "nyu.mat"
    write_fake_nyu(p)
    ds = NYUDepthV2(p, split="all")
    ds[0]
    assert ds._file is not None
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._file is None
    torch.testing.assert_close(clone[1]["target"], ds[1]["target"])
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2)
    batch = next(iter(loader))
    assert batch["image"].shape == (3, 3, H, W)
    torch.testing.assert_close(batch["target"][2], ds[2]["target"])
    ds.close()


def test_nyu_errors(tmp_path):
    with pytest.raises(ValueError, match="missing.mat"):
        NYUDepthV2(tmp_path / "missing.mat")
    junk = tmp_path / "junk.mat"
    junk.write_bytes(RNG.bytes(2000))
    with pytest.raises(FormatError, match="junk.mat.*not an HDF5"):
        NYUDepthV2(junk)
    old = tmp_path / "old.mat"
    old.write_bytes(b"MATLAB 5.0 MAT-file, Platform: PCWIN" + bytes(200))
    with pytest.raises(FormatError, match="old.mat.*v5"):
        NYUDepthV2(old)
    cases = {
        "noimages.mat": ({"images": False}, "images"),
        "nodepths.mat": ({"depths": False}, "depths"),
        "badn.mat": ({"dn": N + 1}, "mismatched N"),
        "badsize.mat": ({"dsize": (W, H + 1)}, "mismatched sizes"),
    }
    for fname, (kw, match) in cases.items():
        write_fake_nyu(tmp_path / fname, **kw)
        with pytest.raises(FormatError) as info:
            NYUDepthV2(tmp_path / fname, split="all")
        assert fname in str(info.value) and match in str(info.value), str(info.value)


# ------------------------------------------------------------------------------ Middlebury


def make_scene(folder, h, w, *, disp_name="disp0GT.pfm", dh=None):
    folder.mkdir(parents=True)
    write_png(folder / "im0.png", rgb(h, w))
    d = RNG.uniform(5, 50, size=(dh or h, w)).astype(np.float32)
    d[0, 0] = 99.0
    d[1, 2] = np.inf
    write_pfm(folder / disp_name, d)
    return d


def test_middlebury(tmp_path):
    root = tmp_path / "mb"
    d_a = make_scene(root / "Adirondack", 5, 7)
    d_b = make_scene(root / "Bicycle", 4, 6, disp_name="disp0.pfm")
    (root / "notes").mkdir()  # a folder that is not a scene is ignored
    ds = Middlebury(root)
    assert ds.kind == "depth" and len(ds) == 2
    a, b = ds[0], ds[1]
    check_item(a, c=1, h=5, w=7, name="Adirondack")
    check_item(b, c=1, h=4, w=6, name="Bicycle")
    assert a["image"][:, 0, 0].tolist() == [1.0, 0.0, 0.0]
    assert a["target"][0, 0, 0] == 99.0
    assert not a["valid"][0, 1, 2] and a["target"][0, 1, 2] == 0.0
    assert int((~a["valid"]).sum()) == 1
    np.testing.assert_allclose(b["target"][0].numpy()[np.isfinite(d_b)], d_b[np.isfinite(d_b)])
    single = Middlebury(root / "Adirondack")  # a scene folder itself
    assert len(single) == 1 and single[0]["name"] == "Adirondack"
    np.testing.assert_allclose(single[0]["target"][0, 0].numpy()[3:], d_a[0, 3:])


def test_middlebury_errors(tmp_path):
    with pytest.raises(ValueError, match="nowhere.*does not exist.*im0.png"):
        Middlebury(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty.*no samples"):
        Middlebury(tmp_path / "empty")
    make_scene(tmp_path / "bad" / "Sz", 5, 7, dh=6)
    with pytest.raises(FormatError) as info:
        Middlebury(tmp_path / "bad")
    assert "im0.png" in str(info.value) and "disp0GT.pfm" in str(info.value)
    (tmp_path / "half" / "S").mkdir(parents=True)
    write_png(tmp_path / "half" / "S" / "im0.png", rgb(3, 3))
    with pytest.raises(ValueError, match="disp0GT.pfm"):
        Middlebury(tmp_path / "half")


def test_load_motorcycle():
    item = load_motorcycle()
    check_item(item, c=1, h=500, w=741, name="motorcycle")
    v = item["valid"]
    assert int((~v).sum()) == 27226
    d = item["target"][v]
    assert 7.1 < float(d.min()) < 7.3 and 59.8 < float(d.max()) < 60.0


# ---------------------------------------------------------------------------------- Sintel


def make_sintel(root, scenes, *, h=4, w=5, split="training", passes=("clean",)):
    flows = {}
    for scene, n in scenes.items():
        for i in range(1, n + 1):
            for pass_ in passes:
                write_png(root / split / pass_ / scene / f"frame_{i:04d}.png", rgb(h, w))
            if i < n:
                f = RNG.uniform(-4, 4, size=(h, w, 2)).astype(np.float32)
                f[0, 0] = (1.5, -2.5)
                f[1, 1, 0] = 1e10  # unknown
                f[2, 3, 1] = np.nan
                write_flo(root / split / "flow" / scene / f"frame_{i:04d}.flo", f)
                flows[(scene, i)] = f
    return flows


def test_sintel(tmp_path):
    flows = make_sintel(tmp_path, {"alley_1": 3, "bamboo_2": 2})
    ds = Sintel(tmp_path)
    assert ds.kind == "flow" and len(ds) == 3  # the last frame of each scene is not a sample
    names = [ds[i]["name"] for i in range(len(ds))]
    assert names == ["alley_1/frame_0001", "alley_1/frame_0002", "bamboo_2/frame_0001"]
    item = ds[1]
    check_item(item, c=2, h=4, w=5)
    t, v = item["target"], item["valid"][0]
    assert t[:, 0, 0].tolist() == [1.5, -2.5]
    assert not v[1, 1] and not v[2, 3] and int((~v).sum()) == 2
    assert (t[:, 1, 1] == 0).all() and (t[:, 2, 3] == 0).all()
    f = flows[("alley_1", 2)]
    np.testing.assert_array_equal(t.numpy().transpose(1, 2, 0)[v.numpy()], f[v.numpy()])


def test_sintel_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        Sintel(tmp_path / "nope")
    make_sintel(tmp_path / "a", {"s": 3})
    with pytest.raises(ValueError, match="final"):
        Sintel(tmp_path / "a", pass_="final")
    with pytest.raises(ValueError, match="pass_"):
        Sintel(tmp_path / "a", pass_="albedo")
    (tmp_path / "a" / "training" / "flow" / "s" / "frame_0001.flo").unlink()
    with pytest.raises(ValueError, match="frame_0001.flo"):
        Sintel(tmp_path / "a")
    make_sintel(tmp_path / "b", {"s": 3})
    write_flo(tmp_path / "b" / "training" / "flow" / "s" / "frame_0002.flo", np.zeros((4, 6, 2), np.float32))
    with pytest.raises(FormatError) as info:
        Sintel(tmp_path / "b")
    assert "frame_0002.png" in str(info.value) and "frame_0002.flo" in str(info.value)
    (tmp_path / "c" / "training" / "clean").mkdir(parents=True)
    (tmp_path / "c" / "training" / "flow").mkdir(parents=True)
    with pytest.raises(ValueError, match="no samples"):
        Sintel(tmp_path / "c")
    make_sintel(tmp_path / "d", {"s": 2}, split="test")
    (tmp_path / "d" / "test" / "flow").rename(tmp_path / "d" / "test" / "gone")
    with pytest.raises(ValueError, match="flow"):
        Sintel(tmp_path / "d", split="test")


# ---------------------------------------------------------------------------------- Folder


def test_folder_depth_png_npy_pfm(tmp_path):
    root = tmp_path / "ds"
    d = RNG.uniform(0.5, 20, size=(5, 6)).astype(np.float32)
    d[0, 0] = 12.345
    d[1, 1] = 0.0  # invalid in PNG
    write_png(root / "images" / "a.png", rgb(5, 6))
    write_target(root / "targets" / "a.png", d, scale=1000.0)
    Image.fromarray(rgb(5, 6)).save(root / "images" / "b.jpg", format="JPEG")  # a real JPEG
    e = d.copy()
    e[2, 2] = np.nan
    e[3, 3] = np.inf
    write_npy(root / "targets" / "b.npy", e[:, :, None])
    write_png(root / "images" / "c.jpeg", rgb(5, 6))
    write_pfm(root / "targets" / "c.pfm", d)
    ds = FolderDataset(root, kind="depth", target_scale=1000.0)
    assert ds.kind == "depth" and len(ds) == 3
    a, b, c = ds[0], ds[1], ds[2]
    for it, n in zip((a, b, c), "abc"):
        check_item(it, c=1, h=5, w=6, name=n)
    assert abs(float(a["target"][0, 0, 0]) - 12.345) < 1e-6
    assert not a["valid"][0, 1, 1] and int((~a["valid"]).sum()) == 1
    assert not b["valid"][0, 2, 2] and not b["valid"][0, 3, 3] and int((~b["valid"]).sum()) == 2
    assert b["valid"][0, 1, 1]  # npy: 0 is a value, only NaN/inf are invalid
    np.testing.assert_array_equal(c["target"][0].numpy(), d)
    assert a["image"][:, 0, 0].tolist() == [1.0, 0.0, 0.0]
    # a different scale divides differently
    ds2 = FolderDataset(root, kind="depth", target_scale=100.0)
    assert abs(float(ds2[0]["target"][0, 0, 0]) - 123.45) < 1e-4


def test_folder_flow(tmp_path):
    root = tmp_path / "ds"
    f = RNG.uniform(-3, 3, size=(4, 5, 2)).astype(np.float32)
    f[0, 0] = (np.nan, 1.0)
    write_png(root / "images" / "x.png", rgb(4, 5))
    write_flo(root / "targets" / "x.flo", f)
    write_png(root / "images" / "y.png", rgb(4, 5))
    write_npy(root / "targets" / "y.npy", f)
    ds = FolderDataset(root, kind="flow")
    assert ds.kind == "flow" and len(ds) == 2
    for i in range(2):
        item = ds[i]
        check_item(item, c=2, h=4, w=5)
        assert not item["valid"][0, 0, 0] and int((~item["valid"]).sum()) == 1
        np.testing.assert_array_equal(item["target"][:, 1, 1].numpy(), f[1, 1])


def test_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="nope.*does not exist.*images"):
        FolderDataset(tmp_path / "nope")
    (tmp_path / "empty" / "images").mkdir(parents=True)
    (tmp_path / "empty" / "targets").mkdir(parents=True)
    with pytest.raises(ValueError, match="no samples"):
        FolderDataset(tmp_path / "empty")
    (tmp_path / "notargets" / "images").mkdir(parents=True)
    with pytest.raises(ValueError, match="targets"):
        FolderDataset(tmp_path / "notargets")

    un = tmp_path / "unpaired"
    for n in ("a", "b", "c"):
        write_png(un / "images" / f"{n}.png", rgb(3, 3))
    write_target(un / "targets" / "a.png", np.ones((3, 3)))
    write_target(un / "targets" / "z.npy", np.ones((3, 3)))
    with pytest.raises(ValueError) as info:
        FolderDataset(un)
    msg = str(info.value)
    assert "b, c" in msg and "z" in msg and "unpaired" in msg

    ch = tmp_path / "channels"
    write_png(ch / "images" / "a.png", rgb(3, 3))
    write_npy(ch / "targets" / "a.npy", np.ones((3, 3, 2), np.float32))
    with pytest.raises(FormatError, match="a.npy.*1 channel"):
        FolderDataset(ch, kind="depth")
    ch2 = tmp_path / "channels2"
    write_png(ch2 / "images" / "a.png", rgb(3, 3))
    write_target(ch2 / "targets" / "a.png", np.ones((3, 3)))
    with pytest.raises(FormatError, match="a.png.*2 channel"):
        FolderDataset(ch2, kind="flow")

    sz = tmp_path / "size"
    write_png(sz / "images" / "a.png", rgb(3, 4))
    write_npy(sz / "targets" / "a.npy", np.ones((3, 5), np.float32))
    with pytest.raises(FormatError) as info:
        FolderDataset(sz)
    assert "a.png" in str(info.value) and "a.npy" in str(info.value)

    dup = tmp_path / "dup"
    write_png(dup / "images" / "a.png", rgb(3, 3))
    write_png(dup / "images" / "a.jpg", rgb(3, 3))
    write_npy(dup / "targets" / "a.npy", np.ones((3, 3), np.float32))
    with pytest.raises(ValueError, match="a.jpg"):
        FolderDataset(dup)
    with pytest.raises(ValueError, match="kind"):
        FolderDataset(dup, kind="segmentation")
