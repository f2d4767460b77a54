"""VOC 2012 / SBD instance readers and BSDS500 ground truth (pixelwise.data.datasets.voc_instances, .bsds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from pixelwise.data.datasets.bsds import BsdsAnnotation, BsdsBoundaries, BsdsRecord, find_bsds, read_bsds_ground_truth
from pixelwise.data.io.files import FormatError
from pixelwise.data.datasets.voc_instances import (
    IGNORE_LABEL,
    VOC_CLASSES,
    VocInstances,
    VocRecord,
    find_voc,
    instance_masks,
    read_sbd_instances,
    read_voc_instances,
)
from pixelwise.data.io.palette_png import VOC_PALETTE, read_palette_png, write_palette_png

H, W = 12, 16


def _labels() -> tuple[np.ndarray, np.ndarray]:
    """Two instances (a person and a dog), a void outline around the first one (VOC style)."""
    inst = np.zeros((H, W), np.uint8)
    sem = np.zeros((H, W), np.uint8)
    inst[2:7, 2:8], sem[2:7, 2:8] = 1, 15
    inst[6:11, 9:15], sem[6:11, 9:15] = 2, 12
    inst[1, 1:9], sem[1, 1:9] = IGNORE_LABEL, IGNORE_LABEL
    return inst, sem


def _jpeg(path: Path, h: int = H, w: int = W) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = (np.random.default_rng(0).random((h, w, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(path, quality=95)


def _struct(**fields) -> np.ndarray:
    """A 1x1 MATLAB struct as savemat writes it (and loadmat reads it back)."""
    s = np.empty((1, 1), dtype=[(k, object) for k in fields])
    for k, v in fields.items():
        s[0, 0][k] = v
    return s


def _cell(items) -> np.ndarray:
    c = np.empty((1, len(items)), dtype=object)
    for i, item in enumerate(items):
        c[0, i] = item
    return c


def _voc_root(tmp_path: Path, names=("2007_000032", "2007_000033")) -> Path:
    root = tmp_path / "VOCdevkit" / "VOC2012"
    inst, sem = _labels()
    for name in names:
        _jpeg(root / "JPEGImages" / f"{name}.jpg")
        write_palette_png(root / "SegmentationObject" / f"{name}.png", inst)
        write_palette_png(root / "SegmentationClass" / f"{name}.png", sem)
    split = root / "ImageSets" / "Segmentation" / "val.txt"
    split.parent.mkdir(parents=True)
    split.write_text("\n".join(names) + "\n\n")
    return root


def _sbd_files(folder: Path, name: str, inst=None, sem=None) -> None:
    i, s = _labels()
    i, s = np.where(i == IGNORE_LABEL, 0, i), np.where(s == IGNORE_LABEL, 0, s)  # SBD: no void
    inst = i if inst is None else inst
    sem = s if sem is None else sem
    (folder / "inst").mkdir(parents=True, exist_ok=True)
    (folder / "cls").mkdir(parents=True, exist_ok=True)
    boundaries = _cell([np.zeros((H, W), bool)] * len(VOC_CLASSES[1:]))
    scipy.io.savemat(folder / "inst" / f"{name}.mat", {"GTinst": _struct(
        Segmentation=inst, Boundaries=boundaries, Categories=np.array([[15], [12]], np.uint8))})
    scipy.io.savemat(folder / "cls" / f"{name}.mat", {"GTcls": _struct(
        Segmentation=sem, Boundaries=boundaries, CategoriesPresent=np.array([[12], [15]], np.uint8))})


def _sbd_root(tmp_path: Path, names=("2008_000002",)) -> Path:
    folder = tmp_path / "benchmark_RELEASE" / "dataset"
    for name in names:
        _jpeg(folder / "img" / f"{name}.jpg")
        _sbd_files(folder, name)
    (folder / "train.txt").write_text("\n".join(names) + "\n")
    return folder


def _bsds_gt(path: Path, n: int = 3, h: int = H, w: int = W) -> list[np.ndarray]:
    """n annotators; annotator a draws a vertical border at column 4 + a."""
    bnds = []
    cells = []
    for a in range(n):
        seg = np.ones((h, w), np.uint16)
        seg[:, 4 + a:] = 2
        bnd = np.zeros((h, w), bool)
        bnd[:, 4 + a] = True
        bnds.append(bnd)
        cells.append(_struct(Segmentation=seg, Boundaries=bnd))
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"groundTruth": _cell(cells)})
    return bnds


def _bsds_root(tmp_path: Path, split="test", names=("100007", "100039")) -> Path:
    data = tmp_path / "BSR" / "BSDS500" / "data"
    for name in names:
        _jpeg(data / "images" / split / f"{name}.jpg")
        _bsds_gt(data / "groundTruth" / split / f"{name}.mat")
    (data / "images" / split / "Thumbs.db").write_bytes(b"\0")  # shipped with BSDS: not an image
    return tmp_path / "BSR"


# --- palette ----------------------------------------------------------------------------


def test_voc_constants():
    assert len(VOC_CLASSES) == 21 and VOC_CLASSES[0] == "background" and VOC_CLASSES[15] == "person"
    assert VOC_PALETTE.shape == (256, 3) and VOC_PALETTE.dtype == np.uint8
    assert VOC_PALETTE[:4].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    assert VOC_PALETTE[15].tolist() == [192, 128, 128]  # person
    assert VOC_PALETTE[255].tolist() == [224, 224, 192]  # void
    assert len({tuple(c) for c in VOC_PALETTE.tolist()}) == 256
    assert not VOC_PALETTE.flags.writeable


def test_palette_round_trip(tmp_path):
    idx = np.random.default_rng(1).integers(0, 256, size=(7, 9)).astype(np.uint8)
    p = tmp_path / "a" / "labels.png"
    write_palette_png(p, idx)
    np.testing.assert_array_equal(read_palette_png(p), idx)
    with Image.open(p) as img:
        assert img.mode == "P"
        colours = np.array(img.convert("RGB"))
    np.testing.assert_array_equal(colours, VOC_PALETTE[idx])
    assert [q.name for q in p.parent.iterdir()] == ["labels.png"]  # no temporary left over
    # a grayscale PNG of indices is accepted too; int64 input and a short palette are fine
    Image.fromarray(idx).save(tmp_path / "gray.png")
    np.testing.assert_array_equal(read_palette_png(tmp_path / "gray.png"), idx)
    write_palette_png(tmp_path / "short.png", np.array([[0, 1]], np.int64), palette=np.array([[0, 0, 0], [9, 9, 9]]))
    np.testing.assert_array_equal(read_palette_png(tmp_path / "short.png"), [[0, 1]])


def test_palette_errors(tmp_path):
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(rgb)
    with pytest.raises(FormatError, match=r"rgb\.png.*'RGB'"):
        read_palette_png(rgb)
    jpg = tmp_path / "x.jpg"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(jpg)
    with pytest.raises(FormatError, match=r"x\.jpg.*JPEG"):
        read_palette_png(jpg)
    good = tmp_path / "good.png"
    write_palette_png(good, np.random.default_rng(0).integers(0, 21, size=(64, 64)))
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(FormatError, match=r"truncated\.png"):
        read_palette_png(truncated)
    with pytest.raises(FileNotFoundError):
        read_palette_png(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="0..255"):
        write_palette_png(tmp_path / "o.png", np.array([[256]]))
    with pytest.raises(TypeError, match="integers"):
        write_palette_png(tmp_path / "o.png", np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        write_palette_png(tmp_path / "o.png", np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="palette"):
        write_palette_png(tmp_path / "o.png", np.zeros((2, 2), np.uint8), palette=np.zeros((2, 4), np.uint8))
    assert not (tmp_path / "o.png").exists()


# --- VOC / SBD readers --------------------------------------------------------------------


def test_read_voc_instances(tmp_path):
    inst, sem = _labels()
    write_palette_png(tmp_path / "obj.png", inst)
    write_palette_png(tmp_path / "cls.png", sem)
    i, s = read_voc_instances(tmp_path / "obj.png", tmp_path / "cls.png")
    assert i.dtype == np.int32 and s.dtype == np.uint8
    np.testing.assert_array_equal(i, inst)
    np.testing.assert_array_equal(s, sem)


def test_read_voc_errors(tmp_path):
    inst, sem = _labels()
    write_palette_png(tmp_path / "obj.png", inst)
    write_palette_png(tmp_path / "small.png", sem[:-1])
    with pytest.raises(FormatError, match=r"obj\.png.*small\.png"):
        read_voc_instances(tmp_path / "obj.png", tmp_path / "small.png")
    bad = sem.copy()
    bad[0, 0] = 40
    write_palette_png(tmp_path / "bad.png", bad)
    with pytest.raises(FormatError, match=r"bad\.png.*\[40\]"):
        read_voc_instances(tmp_path / "obj.png", tmp_path / "bad.png")


def test_read_sbd_instances(tmp_path):
    _sbd_files(tmp_path, "a")
    i, s = read_sbd_instances(tmp_path / "inst" / "a.mat", tmp_path / "cls" / "a.mat")
    inst, sem = _labels()
    np.testing.assert_array_equal(i, np.where(inst == IGNORE_LABEL, 0, inst))
    np.testing.assert_array_equal(s, np.where(sem == IGNORE_LABEL, 0, sem))
    assert i.dtype == np.int32 and s.dtype == np.uint8
    assert IGNORE_LABEL not in s  # SBD has no void label


def test_read_sbd_errors(tmp_path):
    _sbd_files(tmp_path, "a")
    cls = tmp_path / "cls" / "a.mat"
    # missing variable / field
    scipy.io.savemat(tmp_path / "novar.mat", {"other": np.zeros(3)})
    with pytest.raises(FormatError, match=r"novar\.mat.*GTinst"):
        read_sbd_instances(tmp_path / "novar.mat", cls)
    scipy.io.savemat(tmp_path / "nofield.mat", {"GTinst": _struct(Segmentation=np.zeros((H, W), np.uint8))})
    with pytest.raises(FormatError, match=r"nofield\.mat.*Categories"):
        read_sbd_instances(tmp_path / "nofield.mat", cls)
    # instance ids beyond the categories
    scipy.io.savemat(tmp_path / "ids.mat", {"GTinst": _struct(
        Segmentation=np.full((H, W), 3, np.uint8), Categories=np.array([[15], [12]], np.uint8))})
    with pytest.raises(FormatError, match=r"ids\.mat.*0\.\.2"):
        read_sbd_instances(tmp_path / "ids.mat", cls)
    # size mismatch names both files
    _sbd_files(tmp_path / "s", "b", sem=np.zeros((H + 1, W), np.uint8))
    with pytest.raises(FormatError, match=r"inst/a\.mat.*cls/b\.mat"):
        read_sbd_instances(tmp_path / "inst" / "a.mat", tmp_path / "s" / "cls" / "b.mat")
    # truncated / not a .mat file
    data = (tmp_path / "inst" / "a.mat").read_bytes()
    for cut in (len(data) // 2, 10):
        (tmp_path / "cut.mat").write_bytes(data[:cut])
        with pytest.raises(FormatError, match=r"cut\.mat"):
            read_sbd_instances(tmp_path / "cut.mat", cls)
    (tmp_path / "text.mat").write_text("not a mat file" * 20)
    with pytest.raises(FormatError, match=r"text\.mat"):
        read_sbd_instances(tmp_path / "text.mat", cls)
    with pytest.raises(FileNotFoundError):
        read_sbd_instances(tmp_path / "missing.mat", cls)


def test_instance_masks():
    inst, sem = _labels()
    masks, classes, ignore = instance_masks(inst, sem)
    assert masks.shape == (2, H, W) and masks.dtype == bool
    np.testing.assert_array_equal(masks[0], inst == 1)
    np.testing.assert_array_equal(masks[1], inst == 2)
    assert classes.tolist() == [15, 12] and classes.dtype == np.int64
    np.testing.assert_array_equal(ignore, inst == IGNORE_LABEL)
    # majority vote, void semantic pixels ignored, gaps in ids kept
    inst2 = np.array([[5, 5, 5, 0], [5, 7, 7, 255]])
    sem2 = np.array([[3, 3, 255, 0], [4, 9, 255, 0]])
    masks, classes, ignore = instance_masks(inst2, sem2)
    assert classes.tolist() == [3, 9] and masks.shape == (2, 2, 4)
    assert ignore.tolist() == [[False, False, True, False], [False, False, True, True]]
    # no instance
    masks, classes, ignore = instance_masks(np.zeros((3, 3), int), np.zeros((3, 3), int))
    assert masks.shape == (0, 3, 3) and classes.shape == (0,)
    with pytest.raises(ValueError, match="no non-void"):
        instance_masks(np.array([[1, 1]]), np.array([[255, 255]]))
    with pytest.raises(ValueError, match="shape"):
        instance_masks(inst, sem[:-1])
    with pytest.raises(TypeError, match="semantic"):
        instance_masks(inst, sem.astype(float))
    with pytest.raises(TypeError, match="instances"):
        instance_masks(inst.tolist(), sem)


# --- layouts and datasets ------------------------------------------------------------------


def test_find_voc(tmp_path):
    root = _voc_root(tmp_path)
    for where in (root, root.parent, tmp_path):  # VOC2012, VOCdevkit or its parent
        records = find_voc(where, "val")
        assert [r.name for r in records] == ["2007_000032", "2007_000033"]
    r = records[0]
    assert isinstance(r, VocRecord)
    assert r.image == root / "JPEGImages" / "2007_000032.jpg"
    assert r.instances == root / "SegmentationObject" / "2007_000032.png"
    assert r.semantic == root / "SegmentationClass" / "2007_000032.png"


def test_find_voc_errors(tmp_path):
    root = _voc_root(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"Segmentation/train\.txt"):
        find_voc(root, "train")
    (root / "SegmentationClass" / "2007_000033.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 file.*SegmentationClass/2007_000033\.png"):
        find_voc(root, "val")
    (root / "ImageSets" / "Segmentation" / "bad.txt").write_text("2007_000032 1\n")
    with pytest.raises(FormatError, match=r"bad\.txt:1"):
        find_voc(root, "bad")
    (root / "ImageSets" / "Segmentation" / "empty.txt").write_text("\n")
    with pytest.raises(FormatError, match=r"empty\.txt.*no images"):
        find_voc(root, "empty")
    with pytest.raises(ValueError, match="split"):
        find_voc(root, "../val")
    with pytest.raises(FileNotFoundError, match="neither a VOC2012"):
        find_voc(tmp_path / "VOCdevkit" / "VOC2012" / "JPEGImages")
    with pytest.raises(FileNotFoundError, match="not found"):
        find_voc(tmp_path / "nowhere")


def test_voc_dataset(tmp_path):
    ds = VocInstances(_voc_root(tmp_path), "val")
    assert len(ds) == 2
    item = ds[0]
    assert set(item) == {"image", "instances", "semantic"}
    assert item["image"].shape == (3, H, W) and item["image"].dtype == torch.float32
    assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
    inst, sem = _labels()
    assert item["instances"].dtype == torch.int64 and item["semantic"].dtype == torch.int64
    np.testing.assert_array_equal(item["instances"].numpy(), inst)  # 255 kept as ignore
    np.testing.assert_array_equal(item["semantic"].numpy(), sem)


def test_voc_dataset_image_size_mismatch(tmp_path):
    root = _voc_root(tmp_path, names=("a",))
    _jpeg(root / "JPEGImages" / "a.jpg", h=H + 2)
    with pytest.raises(FormatError, match=r"a\.jpg.*SegmentationObject/a\.png"):
        VocInstances(root)[0]


def test_sbd_dataset(tmp_path):
    folder = _sbd_root(tmp_path)
    for where in (folder, folder.parent):
        records = find_voc(where, "train")
        assert records[0].instances == folder / "inst" / "2008_000002.mat"
        assert records[0].image == folder / "img" / "2008_000002.jpg"
    item = VocInstances(folder.parent, "train")[0]
    assert item["image"].shape == (3, H, W)
    masks, classes, ignore = instance_masks(item["instances"].numpy(), item["semantic"].numpy())
    assert classes.tolist() == [15, 12] and not ignore.any()
    with pytest.raises(FileNotFoundError, match=r"dataset/val\.txt"):
        find_voc(folder, "val")
    (folder / "cls" / "2008_000002.mat").unlink()
    with pytest.raises(FileNotFoundError, match=r"cls/2008_000002\.mat"):
        find_voc(folder, "train")


# --- BSDS ------------------------------------------------------------------------------


def test_read_bsds_ground_truth(tmp_path):
    bnds = _bsds_gt(tmp_path / "gt.mat", n=3)
    gt = read_bsds_ground_truth(tmp_path / "gt.mat")
    assert len(gt) == 3 and all(isinstance(a, BsdsAnnotation) for a in gt)
    for a, bnd in zip(gt, bnds):
        assert a.segmentation.dtype == np.int32 and a.boundaries.dtype == bool
        assert a.segmentation.shape == (H, W)
        np.testing.assert_array_equal(a.boundaries, bnd)
    assert gt[1].segmentation[0, 4] == 1 and gt[1].segmentation[0, 5] == 2


def test_read_bsds_errors(tmp_path):
    scipy.io.savemat(tmp_path / "novar.mat", {"gt": np.zeros(2)})
    with pytest.raises(FormatError, match=r"novar\.mat.*groundTruth"):
        read_bsds_ground_truth(tmp_path / "novar.mat")
    scipy.io.savemat(tmp_path / "nofield.mat", {"groundTruth": _cell([
        _struct(Segmentation=np.ones((H, W), np.uint16), Boundaries=np.zeros((H, W), bool)),
        _struct(Segmentation=np.ones((H, W), np.uint16))])})
    with pytest.raises(FormatError, match=r"nofield\.mat.*groundTruth\{2\}.*Boundaries"):
        read_bsds_ground_truth(tmp_path / "nofield.mat")
    scipy.io.savemat(tmp_path / "notcell.mat", {"groundTruth": np.zeros((H, W))})
    with pytest.raises(FormatError, match=r"notcell\.mat.*cell array"):
        read_bsds_ground_truth(tmp_path / "notcell.mat")
    scipy.io.savemat(tmp_path / "sizes.mat", {"groundTruth": _cell([
        _struct(Segmentation=np.ones((H, W), np.uint16), Boundaries=np.zeros((H, W), bool)),
        _struct(Segmentation=np.ones((H, W + 1), np.uint16), Boundaries=np.zeros((H, W + 1), bool))])})
    with pytest.raises(FormatError, match=r"sizes\.mat.*groundTruth\{2\}"):
        read_bsds_ground_truth(tmp_path / "sizes.mat")
    scipy.io.savemat(tmp_path / "bnd.mat", {"groundTruth": _cell([
        _struct(Segmentation=np.ones((H, W), np.uint16), Boundaries=np.full((H, W), 2, np.uint8))])})
    with pytest.raises(FormatError, match=r"bnd\.mat.*Boundaries values must be in 0\.\.1"):
        read_bsds_ground_truth(tmp_path / "bnd.mat")
    _bsds_gt(tmp_path / "good.mat")
    (tmp_path / "cut.mat").write_bytes((tmp_path / "good.mat").read_bytes()[:200])
    with pytest.raises(FormatError, match=r"cut\.mat"):
        read_bsds_ground_truth(tmp_path / "cut.mat")


def test_find_bsds(tmp_path):
    bsr = _bsds_root(tmp_path)
    for where in (bsr, bsr / "BSDS500", bsr / "BSDS500" / "data"):
        records = find_bsds(where, "test")
        assert [r.name for r in records] == ["100007", "100039"]
    data = bsr / "BSDS500" / "data"
    assert records[0] == BsdsRecord(data / "images" / "test" / "100007.jpg",
                                    data / "groundTruth" / "test" / "100007.mat", "100007")
    with pytest.raises(FileNotFoundError, match=r"images/train"):
        find_bsds(bsr, "train")
    with pytest.raises(FileNotFoundError, match="not a BSDS500 folder"):
        find_bsds(tmp_path / "BSR" / "BSDS500" / "data" / "images")
    (data / "groundTruth" / "test" / "100039.mat").unlink()
    with pytest.raises(FileNotFoundError, match=r"100039\.mat"):
        find_bsds(bsr)
    _bsds_gt(data / "groundTruth" / "test" / "100039.mat")
    (data / "images" / "test" / "100007.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"100007\.jpg"):
        find_bsds(bsr)


def test_bsds_dataset(tmp_path):
    ds = BsdsBoundaries(_bsds_root(tmp_path))
    assert len(ds) == 2
    item = ds[1]
    assert set(item) == {"image", "boundaries", "segmentation"}
    assert item["image"].shape == (3, H, W) and item["image"].dtype == torch.float32
    b = item["boundaries"]
    assert b.dtype == torch.float32 and b.shape == (H, W)
    expected = np.zeros((H, W), np.float32)
    expected[:, 4:7] = 1.0 / 3.0  # each of the 3 annotators marks one column
    np.testing.assert_allclose(b.numpy(), expected, rtol=1e-6)
    seg = item["segmentation"]
    assert seg.dtype == torch.int64 and seg[0, 3] == 1 and seg[0, 4] == 2
