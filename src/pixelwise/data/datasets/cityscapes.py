"""Cityscapes semantic segmentation: label PNGs, the 19 training classes, the folder layout.

Layout (Cordts et al. 2016)::

    <root>/leftImg8bit/<split>/<city>/<x>_leftImg8bit.png
    <root>/gtFine/<split>/<city>/<x>_gtFine_labelIds.png        label ids 0..33
                                /<x>_gtFine_labelTrainIds.png   train ids 0..18, 255 (optional)

Label PNGs are 8-bit grayscale. ``labelIds`` files hold the 34 dataset label ids; training and
evaluation use 19 of them, mapped to train ids 0..18 by :data:`LABEL_ID_TO_TRAIN_ID` (every other
id -- void, ground, parking, rail track, guard rail, bridge, tunnel, pole group, caravan, trailer,
... -- becomes :data:`IGNORE_LABEL`). ``labelTrainIds`` files are that mapping precomputed by the
official ``createTrainIdLabelImgs`` script; they are used when present.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.files import FormatError, PathLike, as_path
from ..io.palette_png import read_palette_png
from .image_label_pairs import ImageLabelPairs
from .voc_instances import _check_inside, _check_split, _missing_error

__all__ = [
    "CITYSCAPES_CLASSES",
    "CITYSCAPES_PALETTE",
    "IGNORE_LABEL",
    "LABEL_ID_TO_TRAIN_ID",
    "CityscapesSegmentation",
    "find_cityscapes",
    "read_cityscapes_label",
]

IGNORE_LABEL = 255
MAX_LABEL_ID = 33  # the largest label id in labelIds files (bicycle)

# (train id order) name, label id, colour
_CLASSES: tuple[tuple[str, int, tuple[int, int, int]], ...] = (
    ("road", 7, (128, 64, 128)),
    ("sidewalk", 8, (244, 35, 232)),
    ("building", 11, (70, 70, 70)),
    ("wall", 12, (102, 102, 156)),
    ("fence", 13, (190, 153, 153)),
    ("pole", 17, (153, 153, 153)),
    ("traffic light", 19, (250, 170, 30)),
    ("traffic sign", 20, (220, 220, 0)),
    ("vegetation", 21, (107, 142, 35)),
    ("terrain", 22, (152, 251, 152)),
    ("sky", 23, (70, 130, 180)),
    ("person", 24, (220, 20, 60)),
    ("rider", 25, (255, 0, 0)),
    ("car", 26, (0, 0, 142)),
    ("truck", 27, (0, 0, 70)),
    ("bus", 28, (0, 60, 100)),
    ("train", 31, (0, 80, 100)),
    ("motorcycle", 32, (0, 0, 230)),
    ("bicycle", 33, (119, 11, 32)),
)

CITYSCAPES_CLASSES: tuple[str, ...] = tuple(c[0] for c in _CLASSES)


LABEL_ID_TO_TRAIN_ID: np.ndarray = np.full(256, IGNORE_LABEL, np.uint8)  # uint8 (256,), read-only
LABEL_ID_TO_TRAIN_ID[[c[1] for c in _CLASSES]] = np.arange(len(_CLASSES))
LABEL_ID_TO_TRAIN_ID.flags.writeable = False

# uint8 (256, 3), read-only: the official colour of each train id, black elsewhere (255 included),
# for writing colour-coded predictions with pixelwise.data.io.palette_png.write_palette_png
CITYSCAPES_PALETTE: np.ndarray = np.zeros((256, 3), np.uint8)
CITYSCAPES_PALETTE[: len(_CLASSES)] = [c[2] for c in _CLASSES]
CITYSCAPES_PALETTE.flags.writeable = False

_KINDS = ("auto", "labelIds", "trainIds")
_SUFFIXES = {"_labelIds.png": "labelIds", "_labelTrainIds.png": "trainIds"}


def read_cityscapes_label(path: PathLike, kind: str = "auto") -> np.ndarray:
    """Read a Cityscapes label PNG as train ids.

    Args:
        path: an 8-bit grayscale (or palette) PNG.
        kind: ``"labelIds"`` (ids 0..33, mapped through :data:`LABEL_ID_TO_TRAIN_ID`),
            ``"trainIds"`` (0..18 or 255, returned as is), or ``"auto"``: decided by the file
            name, ``*_labelIds.png`` or ``*_labelTrainIds.png``.

    Returns:
        ``uint8 (H, W)`` train ids 0..18, 255 = ignore.

    Raises:
        ValueError: bad ``kind``, or ``"auto"`` with a file name that tells neither kind.
        FormatError: unreadable file, wrong PNG mode, or values outside the kind's range; the
            message names the file.
        FileNotFoundError: the file does not exist.
    """
    path = as_path(path, "path")
    if kind not in _KINDS:
        raise ValueError(f"kind: expected one of {', '.join(map(repr, _KINDS))}, got {kind!r}")
    if kind == "auto":
        kinds = [k for suffix, k in _SUFFIXES.items() if path.name.endswith(suffix)]
        if not kinds:
            raise ValueError(
                f"{path}: cannot tell label ids from train ids by the file name (expected *_labelIds.png "
                "or *_labelTrainIds.png); pass kind='labelIds' or kind='trainIds'"
            )
        kind = kinds[0]
    label = read_palette_png(path)
    if kind == "labelIds":
        if label.size and label.max() > MAX_LABEL_ID:
            bad = np.unique(label[label > MAX_LABEL_ID])[:10].tolist()
            raise FormatError(f"{path}: label ids must be in 0..{MAX_LABEL_ID}, found {bad}")
        return LABEL_ID_TO_TRAIN_ID[label]
    bad = (label >= len(CITYSCAPES_CLASSES)) & (label != IGNORE_LABEL)
    if bad.any():
        values = np.unique(label[bad])[:10].tolist()
        raise FormatError(f"{path}: train ids must be in 0..{len(CITYSCAPES_CLASSES) - 1} or {IGNORE_LABEL}, "
                          f"found {values}")
    return label


_IMAGE_SUFFIX = "_leftImg8bit.png"


def find_cityscapes(root: PathLike, split: str = "val", *, follow_symlinks: bool = False) -> list[tuple[Path, Path]]:
    """List the (image, label) files of a Cityscapes split, sorted by city and name.

    Args:
        root: the folder holding ``leftImg8bit/`` and ``gtFine/``.
        split: ``train``, ``val`` or ``test`` (any folder name under ``leftImg8bit/``).
        follow_symlinks: accept folders and files that are symbolic links leading outside
            ``root``; by default such a link is an error (links inside ``root`` are fine).

    Returns:
        ``(image_path, label_path)`` pairs; the label is ``<x>_gtFine_labelTrainIds.png`` when
        that file exists, else ``<x>_gtFine_labelIds.png``.

    Raises:
        FileNotFoundError: ``root``, ``leftImg8bit/<split>`` or ``gtFine/<split>`` is missing,
            the split holds no ``*_leftImg8bit.png`` image, or images lack a label (named).
        OutsideRootError: a folder or file found is a symbolic link leading outside ``root``
            and ``follow_symlinks`` is False (names the link and its target).
    """
    root = as_path(root, "root")
    split = _check_split(split)
    images_dir, labels_dir = root / "leftImg8bit" / split, root / "gtFine" / split
    for folder in (images_dir, labels_dir):
        if not folder.is_dir():
            raise FileNotFoundError(f"{root}: no folder {folder.relative_to(root)} for split {split!r}")
    _check_inside(root, [root / "leftImg8bit", images_dir, root / "gtFine", labels_dir], follow_symlinks)
    _check_inside(root, [d for d in images_dir.iterdir() if d.is_dir()], follow_symlinks)
    images = sorted(p for p in images_dir.glob(f"*/*{_IMAGE_SUFFIX}") if p.is_file())
    _check_inside(root, images, follow_symlinks)
    if not images:
        raise FileNotFoundError(f"{images_dir}: no <city>/*{_IMAGE_SUFFIX} images for split {split!r}")
    pairs, missing = [], []
    for image in images:
        stem = image.name[: -len(_IMAGE_SUFFIX)] + "_gtFine"
        train_ids = labels_dir / image.parent.name / f"{stem}_labelTrainIds.png"
        label_ids = labels_dir / image.parent.name / f"{stem}_labelIds.png"
        _check_inside(root, [labels_dir / image.parent.name, train_ids, label_ids], follow_symlinks)
        if train_ids.is_file():
            pairs.append((image, train_ids))
        elif label_ids.is_file():
            pairs.append((image, label_ids))
        else:
            missing.append(label_ids)
    if missing:
        raise _missing_error(root, split, missing)
    return pairs


class CityscapesSegmentation(ImageLabelPairs):
    """Cityscapes semantic segmentation (19 classes) as a dataset (see :func:`find_cityscapes`).

    Items are dicts: ``"image"`` float32 ``(3, H, W)`` in [0, 1], ``"label"`` int64 ``(H, W)``
    train ids (0..18, 255 = ignore), ``"name"`` the ``<city>_<seq>_<frame>`` id.

    Args:
        root: the folder holding ``leftImg8bit/`` and ``gtFine/``.
        split: split name.
        follow_symlinks: accept symbolic links leading outside ``root`` (see :func:`find_cityscapes`).

    Raises:
        FormatError (on access): unreadable files, or an image whose size differs from its
            label (names both files).
    """

    def __init__(self, root: PathLike, split: str = "val", *, follow_symlinks: bool = False) -> None:
        super().__init__(find_cityscapes(root, split, follow_symlinks=follow_symlinks), read_cityscapes_label,
                         lambda p: p.name[: -len(_IMAGE_SUFFIX)])
