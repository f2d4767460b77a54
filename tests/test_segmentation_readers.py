"""Semantic-segmentation readers (VOC 2012 / SBD, Cityscapes) and the random scale-crop wrapper
(pixelwise.data.datasets.voc_segmentation, .cityscapes, .crops)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from pixelwise.data.datasets.cityscapes import (
    CITYSCAPES_CLASSES,
    CITYSCAPES_PALETTE,
    LABEL_ID_TO_TRAIN_ID,
    CityscapesSegmentation,
    find_cityscapes,
    read_cityscapes_label,
)
from pixelwise.data.datasets.voc_segmentation import VOC_CLASSES, VocSegmentation, find_voc_segmentation, read_voc_label
from pixelwise.data.io.files import FormatError
from pixelwise.data.io.palette_png import write_palette_png
from pixelwise.data.transforms.crops import RandomScaleCrop

H, W = 12, 16


def _label() -> np.ndarray:
    """Background, a person (15) and a dog (12), a void outline (255) around the person."""
    sem = np.zeros((H, W), np.uint8)
    sem[2:7, 2:8] = 15
    sem[6:11, 9:15] = 12
    sem[1, 1:9] = 255
    return sem


def _image(path: Path, h: int = H, w: int = W, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = (np.random.default_rng(0).random((h, w, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).convert(mode).save(path)


def _cls_mat(path: Path, seg: np.ndarray) -> None:
    s = np.empty((1, 1), dtype=[("Segmentation", object), ("Boundaries", object)])
    s[0, 0]["Segmentation"] = seg
    s[0, 0]["Boundaries"] = np.zeros((1, 1), object)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"GTcls": s})


def _voc_root(tmp_path: Path, names=("2007_000032", "2007_000033")) -> Path:
    root = tmp_path / "VOCdevkit" / "VOC2012"  # no SegmentationObject/: not needed here
    for name in names:
        _image(root / "JPEGImages" / f"{name}.jpg")
        write_palette_png(root / "SegmentationClass" / f"{name}.png", _label())
    split = root / "ImageSets" / "Segmentation" / "val.txt"
    split.parent.mkdir(parents=True)
    split.write_text("\n".join(names) + "\n")
    return root


def _sbd_root(tmp_path: Path, names=("2008_000002",)) -> Path:
    folder = tmp_path / "benchmark_RELEASE" / "dataset"
    for name in names:
        _image(folder / "img" / f"{name}.jpg")
        _cls_mat(folder / "cls" / f"{name}.mat", np.where(_label() == 255, 0, _label()))
    (folder / "train.txt").write_text("\n".join(names) + "\n")
    return folder


# --- VOC / SBD ----------------------------------------------------------------------------


def test_read_voc_label_png_and_mat(tmp_path):
    write_palette_png(tmp_path / "a.png", _label())
    label = read_voc_label(tmp_path / "a.png")
    assert label.dtype == np.uint8
    np.testing.assert_array_equal(label, _label())
    sbd = np.where(_label() == 255, 0, _label())
    _cls_mat(tmp_path / "a.mat", sbd.astype(np.uint8))
    np.testing.assert_array_equal(read_voc_label(tmp_path / "a.mat"), sbd)
    assert VOC_CLASSES[15] == "person"


def test_read_voc_label_errors(tmp_path):
    bad = _label()
    bad[0, 0] = 21
    write_palette_png(tmp_path / "bad.png", bad)
    with pytest.raises(FormatError, match=r"bad\.png.*\[21\]"):
        read_voc_label(tmp_path / "bad.png")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(FormatError, match=r"rgb\.png"):
        read_voc_label(tmp_path / "rgb.png")
    _cls_mat(tmp_path / "void.mat", _label())  # SBD has no void: 255 is out of range
    with pytest.raises(FormatError, match=r"void\.mat.*0\.\.20"):
        read_voc_label(tmp_path / "void.mat")
    scipy.io.savemat(tmp_path / "other.mat", {"GTinst": np.zeros((2, 2))})
    with pytest.raises(FormatError, match=r"other\.mat.*GTcls"):
        read_voc_label(tmp_path / "other.mat")
    with pytest.raises(FileNotFoundError):
        read_voc_label(tmp_path / "missing.png")


@pytest.mark.parametrize("level", [(), ("VOCdevkit",), ("VOCdevkit", "VOC2012")])
def test_find_voc_segmentation(tmp_path, level):
    _voc_root(tmp_path)
    pairs = find_voc_segmentation(tmp_path.joinpath(*level), "val")
    assert [(i.name, lab.name) for i, lab in pairs] == [("2007_000032.jpg", "2007_000032.png"),
                                                       ("2007_000033.jpg", "2007_000033.png")]
    assert pairs[0][1].parent.name == "SegmentationClass"


def test_find_sbd_segmentation(tmp_path):
    folder = _sbd_root(tmp_path)
    for root in (tmp_path, tmp_path / "benchmark_RELEASE", folder):
        pairs = find_voc_segmentation(root, "train")
        assert [(i.name, lab.name) for i, lab in pairs] == [("2008_000002.jpg", "2008_000002.mat")]


def test_find_voc_segmentation_errors(tmp_path):
    root = _voc_root(tmp_path)
    with pytest.raises(FileNotFoundError, match="neither a VOC2012 folder"):
        find_voc_segmentation(tmp_path / "VOCdevkit" / "VOC2012" / "JPEGImages")
    with pytest.raises(FileNotFoundError, match=r"train\.txt"):
        find_voc_segmentation(root, "train")
    with pytest.raises(FileNotFoundError, match="not found"):
        find_voc_segmentation(tmp_path / "nope")
    (root / "JPEGImages" / "2007_000033.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"VOC2012.*1 file\(s\) of split 'val'.*2007_000033\.jpg"):
        find_voc_segmentation(root, "val")
    with pytest.raises(ValueError, match="split"):
        find_voc_segmentation(root, "../val")


def test_voc_segmentation_dataset(tmp_path):
    root = _voc_root(tmp_path)
    ds = VocSegmentation(root, "val")
    assert len(ds) == 2
    item = ds[1]
    assert set(item) == {"image", "label", "name"} and item["name"] == "2007_000033"
    assert item["image"].shape == (3, H, W) and item["image"].dtype == torch.float32
    assert 0 <= item["image"].min() and item["image"].max() <= 1
    assert item["label"].dtype == torch.int64
    np.testing.assert_array_equal(item["label"].numpy(), _label())
    # a grayscale JPEG is repeated over three channels
    _image(root / "JPEGImages" / "2007_000033.jpg", mode="L")
    gray = ds[1]["image"]
    assert gray.shape == (3, H, W) and torch.equal(gray[0], gray[2])
    _image(root / "JPEGImages" / "2007_000032.jpg", h=H + 1)
    with pytest.raises(FormatError, match=r"2007_000032\.jpg.*2007_000032\.png"):
        ds[0]


def test_sbd_segmentation_dataset(tmp_path):
    item = VocSegmentation(_sbd_root(tmp_path), "train")[0]
    assert item["name"] == "2008_000002" and int(item["label"].max()) == 15
    assert not (item["label"] == 255).any()


# --- Cityscapes ---------------------------------------------------------------------------


def test_cityscapes_constants():
    assert len(CITYSCAPES_CLASSES) == 19 and CITYSCAPES_CLASSES[0] == "road" and CITYSCAPES_CLASSES[-1] == "bicycle"
    assert LABEL_ID_TO_TRAIN_ID.shape == (256,) and LABEL_ID_TO_TRAIN_ID.dtype == np.uint8
    ids = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]
    np.testing.assert_array_equal(LABEL_ID_TO_TRAIN_ID[ids], np.arange(19))
    others = np.setdiff1d(np.arange(256), ids)
    assert (LABEL_ID_TO_TRAIN_ID[others] == 255).all()
    assert CITYSCAPES_PALETTE.shape == (256, 3) and CITYSCAPES_PALETTE.dtype == np.uint8
    assert CITYSCAPES_PALETTE[0].tolist() == [128, 64, 128] and CITYSCAPES_PALETTE[13].tolist() == [0, 0, 142]
    assert len({tuple(c) for c in CITYSCAPES_PALETTE[:19].tolist()}) == 19 and not CITYSCAPES_PALETTE[19:].any()
    assert not LABEL_ID_TO_TRAIN_ID.flags.writeable and not CITYSCAPES_PALETTE.flags.writeable


def _gray_png(path: Path, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values.astype(np.uint8)).save(path)


def test_read_cityscapes_label(tmp_path):
    ids = np.array([[0, 7, 8, 26], [33, 4, 31, 24]])
    train = np.array([[255, 0, 1, 13], [18, 255, 16, 11]])
    _gray_png(tmp_path / "x_gtFine_labelIds.png", ids)
    _gray_png(tmp_path / "x_gtFine_labelTrainIds.png", train)
    _gray_png(tmp_path / "plain.png", ids)
    for path, kind in (("x_gtFine_labelIds.png", "auto"), ("x_gtFine_labelTrainIds.png", "auto"),
                       ("plain.png", "labelIds")):
        out = read_cityscapes_label(tmp_path / path, kind)
        assert out.dtype == np.uint8
        np.testing.assert_array_equal(out, train)
    np.testing.assert_array_equal(read_cityscapes_label(tmp_path / "x_gtFine_labelTrainIds.png", "trainIds"), train)
    with pytest.raises(ValueError, match=r"plain\.png.*kind="):
        read_cityscapes_label(tmp_path / "plain.png")
    with pytest.raises(ValueError, match="kind"):
        read_cityscapes_label(tmp_path / "plain.png", "colour")
    _gray_png(tmp_path / "big_labelIds.png", np.array([[34, 0]]))
    with pytest.raises(FormatError, match=r"big_labelIds\.png.*0\.\.33.*\[34\]"):
        read_cityscapes_label(tmp_path / "big_labelIds.png")
    _gray_png(tmp_path / "big_labelTrainIds.png", np.array([[19, 255]]))
    with pytest.raises(FormatError, match=r"big_labelTrainIds\.png.*\[19\]"):
        read_cityscapes_label(tmp_path / "big_labelTrainIds.png")


def _cityscapes_root(tmp_path: Path) -> Path:
    root = tmp_path / "cityscapes"
    ids = np.full((H, W), 7)
    ids[:4] = 23
    for city, frame in (("lindau", "lindau_000001_000019"), ("frankfurt", "frankfurt_000000_000294")):
        _image(root / "leftImg8bit" / "val" / city / f"{frame}_leftImg8bit.png")
        _gray_png(root / "gtFine" / "val" / city / f"{frame}_gtFine_labelIds.png", ids)
    _gray_png(root / "gtFine" / "val" / "lindau" / "lindau_000001_000019_gtFine_labelTrainIds.png",
              LABEL_ID_TO_TRAIN_ID[ids])
    return root


def test_find_cityscapes(tmp_path):
    root = _cityscapes_root(tmp_path)
    pairs = find_cityscapes(root, "val")
    assert [(i.parent.name, lab.name) for i, lab in pairs] == [
        ("frankfurt", "frankfurt_000000_000294_gtFine_labelIds.png"),
        ("lindau", "lindau_000001_000019_gtFine_labelTrainIds.png"),  # precomputed train ids preferred
    ]
    with pytest.raises(FileNotFoundError, match=r"leftImg8bit/train.*'train'"):
        find_cityscapes(root, "train")
    (root / "gtFine" / "val" / "frankfurt" / "frankfurt_000000_000294_gtFine_labelIds.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 file\(s\) of split 'val'.*frankfurt_000000_000294_gtFine_labelIds"):
        find_cityscapes(root, "val")
    (root / "leftImg8bit" / "test").mkdir()
    (root / "gtFine" / "test").mkdir()
    with pytest.raises(FileNotFoundError, match="no <city>"):
        find_cityscapes(root, "test")


def test_cityscapes_dataset(tmp_path):
    ds = CityscapesSegmentation(_cityscapes_root(tmp_path), "val")
    assert len(ds) == 2
    for item in (ds[0], ds[1]):
        assert item["image"].shape == (3, H, W) and item["label"].dtype == torch.int64
        assert item["label"][:4].eq(10).all() and item["label"][4:].eq(0).all()  # sky, road
    assert ds[0]["name"] == "frankfurt_000000_000294"


# --- RandomScaleCrop ----------------------------------------------------------------------


class _Sized(torch.utils.data.Dataset):
    def __init__(self, h: int, w: int) -> None:
        self.h, self.w = h, w

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> dict:
        label = torch.arange(self.h * self.w).reshape(self.h, self.w) % 7
        return {"image": torch.rand(3, self.h, self.w, generator=torch.Generator().manual_seed(i)),
                "label": label, "name": f"img{i}"}


def test_random_scale_crop():
    crops = RandomScaleCrop(_Sized(20, 30), 48, seed=1)
    a = crops[2]
    assert list(a) == ["image", "label", "name"] and a["name"] == "img2"
    assert a["image"].shape == (3, 48, 48) and a["label"].shape == (48, 48) and a["label"].dtype == torch.int64
    assert (a["label"] == 255).any()  # a 20x30 image scaled <= 1.5x cannot fill 48x48
    # padded image pixels are 0 exactly where labels are padded (bottom / right)
    assert (a["image"][:, a["label"] == 255] == 0).all()
    # labels are resampled by nearest neighbour: no new values
    assert set(a["label"].unique().tolist()) <= set(range(7)) | {255}
    b = RandomScaleCrop(_Sized(20, 30), 48, seed=1)[2]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    assert torch.equal(crops[-2]["label"], a["label"])
    assert not torch.equal(RandomScaleCrop(_Sized(20, 30), 48, seed=2)[2]["label"], a["label"])
    # big images are cropped, never padded; scale (1, 1) keeps the pixels, up to a flip
    big = RandomScaleCrop(_Sized(100, 120), 32, seed=0, scale=(1.0, 1.0), ignore_index=0)
    item = big[0]
    assert item["image"].shape == (3, 32, 32) and not (item["label"] == 255).any()
    full = _Sized(100, 120)[0]["label"]
    windows = full.unfold(0, 32, 1).unfold(1, 32, 1)
    flipped = full.flip(-1).unfold(0, 32, 1).unfold(1, 32, 1)
    assert (windows == item["label"]).flatten(2).all(-1).any() or (flipped == item["label"]).flatten(2).all(-1).any()


def test_random_scale_crop_draws_new_crops_every_epoch():
    crops = RandomScaleCrop(_Sized(60, 70), 32, seed=3)
    first = crops[1]["image"]
    crops.set_epoch(0)
    assert torch.equal(crops[1]["image"], first)  # epoch 0: the draws of (seed, index) as before
    seen = []
    for epoch in (1, 2, 3):
        crops.set_epoch(epoch)
        seen.append(crops[1]["image"])
        assert torch.equal(crops[1]["image"], seen[-1])  # deterministic within an epoch (resume)
    assert not all(torch.equal(s, first) for s in seen)  # was the same crop in every epoch
    with pytest.raises(ValueError, match="epoch"):
        crops.set_epoch(-1)


def test_random_scale_crop_errors():
    base = _Sized(20, 30)
    with pytest.raises(ValueError, match="size"):
        RandomScaleCrop(base, 0)
    with pytest.raises(ValueError, match="seed"):
        RandomScaleCrop(base, 8, seed=-1)
    for scale in ((0.0, 1.0), (2.0, 1.0), (1.0,), "ab", (1.0, float("inf"))):
        with pytest.raises(ValueError, match="scale"):
            RandomScaleCrop(base, 8, scale=scale)
    with pytest.raises(TypeError, match="label_keys"):
        RandomScaleCrop(base, 8, label_keys="label")
    with pytest.raises(ValueError, match="label_keys"):
        RandomScaleCrop(base, 8, label_keys=("image",))
    with pytest.raises(TypeError, match="ignore_index"):
        RandomScaleCrop(base, 8, ignore_index=None)
    with pytest.raises(KeyError, match="semantic"):
        RandomScaleCrop(base, 8, label_keys=("label", "semantic"))[0]
