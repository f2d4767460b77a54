"""PASCAL VOC 2012 and SBD *semantic* segmentation: class labels only, no instances.

Two layouts are read (:func:`find_voc_segmentation` detects which)::

    VOCdevkit/VOC2012/JPEGImages/<id>.jpg
                     /SegmentationClass/<id>.png      class per pixel (palette PNG), 255 = void
                     /ImageSets/Segmentation/<split>.txt

    benchmark_RELEASE/dataset/img/<id>.jpg              (SBD, Hariharan et al. 2011)
                             /cls/<id>.mat             struct GTcls: Segmentation (0..20)
                             /<split>.txt              train / val

Labels: 0 = background, ``1..20`` = :data:`VOC_CLASSES`, :data:`IGNORE_LABEL` (255) = void (VOC
marks object outlines and difficult regions with it; SBD has no void label). Unlike the instance
readers of :mod:`pixelwise.data.datasets.voc_instances`, a VOC folder needs no ``SegmentationObject/`` and an
SBD folder no ``inst/``: semantic splits are listed from the class annotations alone.

Images are read with :func:`pixelwise.data.io.formats.read_rgb`: a grayscale JPEG (VOC has a few)
is repeated over the three channels, a palette image is expanded to its colours and an alpha
channel (RGBA / LA PNGs) is dropped, so every item has three channels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.files import PathLike, as_path
from ..io.matlab import label_image, load_mat, mat_variable, struct_field
from ..io.palette_png import read_palette_png
from .image_label_pairs import ImageLabelPairs
from .voc_instances import (
    IGNORE_LABEL,
    VOC_CLASSES,
    _check_classes,
    _check_inside,
    _check_split,
    _missing_error,
    _read_split_file,
    detect_voc_layout,
)

__all__ = ["IGNORE_LABEL", "VOC_CLASSES", "VocSegmentation", "find_voc_segmentation", "read_voc_label"]

# (marker folder, image folder + suffix, label folder + suffix, split folder)
_VOC = ("SegmentationClass", ("JPEGImages", ".jpg"), ("SegmentationClass", ".png"), Path("ImageSets") / "Segmentation")
_SBD = ("cls", ("img", ".jpg"), ("cls", ".mat"), Path("."))


def _detect_layout(root: Path):
    return detect_voc_layout(root, _VOC, _SBD, "neither a VOC2012 folder (with SegmentationClass/, JPEGImages/, "
                             "ImageSets/Segmentation/) nor an SBD dataset folder (with cls/, img/, <split>.txt)")


def find_voc_segmentation(root: PathLike, split: str = "val", *,
                          follow_symlinks: bool = False) -> list[tuple[Path, Path]]:
    """List the (image, label) files of a split of VOC 2012 segmentation or SBD.

    Args:
        root: a ``VOC2012`` folder (or a ``VOCdevkit`` folder / its parent holding it),
            detected by ``SegmentationClass/``; or an SBD ``dataset`` folder (or
            ``benchmark_RELEASE`` holding it), detected by ``cls/``.
        split: split file name without ``.txt`` (VOC: ``train``, ``val``, ``trainval``; SBD:
            ``train``, ``val``).
        follow_symlinks: accept folders and files that are symbolic links leading outside
            ``root``; by default such a link is an error (links inside ``root`` are fine).

    Returns:
        ``(image_path, label_path)`` per line of the split file, in file order; labels are
        ``.png`` (VOC) or ``.mat`` (SBD) files for :func:`read_voc_label`.

    Raises:
        FileNotFoundError: ``root`` does not exist or has neither layout, or the split file or
            any listed image / label is missing (named, with the root and split).
        FormatError: the split file is empty, malformed or not a regular file.
        OutsideRootError: a folder or file found is a symbolic link leading outside ``root``
            and ``follow_symlinks`` is False (names the link and its target).
    """
    root = as_path(root, "root")
    split = _check_split(split)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset folder not found")
    folder, (_, (img_dir, img_ext), (lab_dir, lab_ext), split_dir) = _detect_layout(root)
    split_file = folder / split_dir / f"{split}.txt"
    _check_inside(root, [folder, folder / img_dir, folder / lab_dir, folder / split_dir, split_file], follow_symlinks)
    names = _read_split_file(split_file)
    pairs = [(folder / img_dir / f"{n}{img_ext}", folder / lab_dir / f"{n}{lab_ext}") for n in names]
    _check_inside(root, [p for pair in pairs for p in pair], follow_symlinks)
    missing = [p for pair in pairs for p in pair if not p.is_file()]
    if missing:
        raise _missing_error(folder, split, missing)
    return pairs


def read_voc_label(path: PathLike) -> np.ndarray:
    """Read a VOC ``SegmentationClass`` palette PNG or an SBD ``cls/<id>.mat`` file.

    Returns:
        ``uint8 (H, W)`` class ids 0..20, and 255 (void) in VOC PNGs.

    Raises:
        FormatError: unreadable or truncated file, a PNG that is not a palette / grayscale PNG,
            a ``.mat`` file without ``GTcls.Segmentation``, or labels outside 0..20 (and 255
            for PNGs); the message names the file.
        FileNotFoundError: the file does not exist.
    """
    path = as_path(path, "path")
    if path.suffix.lower() == ".mat":
        gt = mat_variable(path, load_mat(path), "GTcls")
        seg = struct_field(path, gt, "GTcls", "Segmentation")
        return label_image(path, seg, "GTcls.Segmentation", len(VOC_CLASSES) - 1).astype(np.uint8)
    label = read_palette_png(path)
    _check_classes(path, label, allow_void=True)
    return label


class VocSegmentation(ImageLabelPairs):
    """PASCAL VOC 2012 / SBD semantic segmentation as a dataset (see :func:`find_voc_segmentation`).

    Items are dicts: ``"image"`` float32 ``(3, H, W)`` in [0, 1] (gray images repeated over the
    channels, alpha dropped: see the module docstring), ``"label"`` int64 ``(H, W)`` (0..20,
    255 = ignore), ``"name"`` the image id. Image sizes vary: batch with size 1, a custom
    collate or :class:`pixelwise.data.transforms.crops.RandomScaleCrop`.

    Args:
        root: dataset folder (VOC2012 or SBD ``dataset``).
        split: split name.
        follow_symlinks: accept symbolic links leading outside ``root`` (see
            :func:`find_voc_segmentation`).

    Raises:
        FormatError (on access): unreadable files, or an image whose size differs from its
            label (names both files).
    """

    def __init__(self, root: PathLike, split: str = "val", *, follow_symlinks: bool = False) -> None:
        super().__init__(find_voc_segmentation(root, split, follow_symlinks=follow_symlinks), read_voc_label)
