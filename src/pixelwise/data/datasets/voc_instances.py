"""PASCAL VOC 2012 and SBD instance annotations: the folder layouts and the annotation pairs.

Two layouts are read (:func:`find_voc` detects which)::

    VOCdevkit/VOC2012/JPEGImages/<name>.jpg
                     /SegmentationObject/<name>.png    instance index per pixel (palette PNG)
                     /SegmentationClass/<name>.png     class index per pixel (palette PNG)
                     /ImageSets/Segmentation/<split>.txt

    benchmark_RELEASE/dataset/img/<name>.jpg              (SBD, Hariharan et al. 2011)
                             /inst/<name>.mat          struct GTinst: Segmentation, Categories
                             /cls/<name>.mat           struct GTcls: Segmentation
                             /<split>.txt

Label conventions: 0 = background, instances ``1..K``, classes ``1..20`` (:data:`VOC_CLASSES`);
VOC marks object outlines and difficult regions with :data:`IGNORE_LABEL` (255, "void") in both
PNGs. SBD has *no* void label: its ``.mat`` segmentations hold only 0..K / 0..20, object
boundaries included, so nothing is ignored in SBD items.

The files are read by :mod:`pixelwise.data.io.palette_png` (VOC PNGs) and
:mod:`pixelwise.data.io.matlab` (SBD ``.mat``). Readers raise
:class:`~pixelwise.data.io.files.FormatError` naming the file for unreadable, truncated or
inconsistent files, and :class:`FileNotFoundError` naming the missing paths. Folder scans refuse
files and folders that are symbolic links leading outside the dataset root, unless
``follow_symlinks=True`` (:class:`~pixelwise.data.io.files.OutsideRootError`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..io.files import FormatError, PathLike, as_path, check_within_root, read_regular_file
from ..io.formats import read_rgb
from ..io.matlab import label_image, load_mat, mat_variable, struct_field
from ..io.palette_png import read_palette_png

__all__ = [
    "IGNORE_LABEL",
    "VOC_CLASSES",
    "VocInstances",
    "VocRecord",
    "find_voc",
    "instance_masks",
    "read_record",
    "read_sbd_instances",
    "read_voc_instances",
]

VOC_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)
IGNORE_LABEL = 255
_MAX_SPLIT_BYTES = 64 << 20  # a split file lists image names, one a line


# ------------------------------------------------------------------------------------ readers


def _check_classes(path: Path, semantic: np.ndarray, allow_void: bool) -> None:
    bad = (semantic >= len(VOC_CLASSES)) & ~(allow_void & (semantic == IGNORE_LABEL))
    if bad.any():
        values = np.unique(semantic[bad])[:10].tolist()
        void = f" or {IGNORE_LABEL}" if allow_void else ""
        raise FormatError(f"{path}: class labels must be in 0..{len(VOC_CLASSES) - 1}{void}, found {values}")


def read_voc_instances(object_png: PathLike, class_png: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a VOC 2012 instance annotation (SegmentationObject + SegmentationClass PNGs).

    Args:
        object_png: ``SegmentationObject/<name>.png``: 0 background, ``1..K`` instances, 255 void.
        class_png: ``SegmentationClass/<name>.png``: 0 background, ``1..20`` classes, 255 void.

    Returns:
        ``(instances int32 (H, W), semantic uint8 (H, W))``, 255 kept in both.

    Raises:
        FormatError: a PNG is unreadable or of the wrong mode, the two sizes differ (names both
            files) or a class label is outside 0..20 and not 255.
    """
    object_png, class_png = as_path(object_png, "object_png"), as_path(class_png, "class_png")
    instances = read_palette_png(object_png)
    semantic = read_palette_png(class_png)
    if instances.shape != semantic.shape:
        raise FormatError(
            f"size mismatch: {object_png} is {instances.shape[1]}x{instances.shape[0]} but "
            f"{class_png} is {semantic.shape[1]}x{semantic.shape[0]} (width x height)"
        )
    _check_classes(class_png, semantic, allow_void=True)
    return instances.astype(np.int32), semantic


def read_sbd_instances(inst_mat: PathLike, cls_mat: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read an SBD instance annotation (``inst/<name>.mat`` + ``cls/<name>.mat``).

    SBD has no void label: every pixel is background, an instance or a class, object
    boundaries included (unlike VOC, where they are 255).

    Args:
        inst_mat: file with struct ``GTinst``: ``Segmentation`` (instance index per pixel,
            ``0..K``) and ``Categories`` (K classes, one per instance).
        cls_mat: file with struct ``GTcls``: ``Segmentation`` (class per pixel, 0..20).

    Returns:
        ``(instances int32 (H, W), semantic uint8 (H, W))``.

    Raises:
        FormatError: unreadable/truncated file, missing variable or field (named), instance ids
            beyond ``len(Categories)``, classes outside 0..20, or different sizes (names both).
    """
    inst_mat, cls_mat = as_path(inst_mat, "inst_mat"), as_path(cls_mat, "cls_mat")
    gt_inst = mat_variable(inst_mat, load_mat(inst_mat), "GTinst")
    seg = struct_field(inst_mat, gt_inst, "GTinst", "Segmentation")
    categories = struct_field(inst_mat, gt_inst, "GTinst", "Categories").reshape(-1)
    instances = label_image(inst_mat, seg, "GTinst.Segmentation", len(categories))
    if categories.size and (categories.min() < 1 or categories.max() >= len(VOC_CLASSES)):
        raise FormatError(
            f"{inst_mat}: GTinst.Categories must be classes 1..{len(VOC_CLASSES) - 1}, got {categories.tolist()}"
        )
    gt_cls = mat_variable(cls_mat, load_mat(cls_mat), "GTcls")
    semantic = label_image(cls_mat, struct_field(cls_mat, gt_cls, "GTcls", "Segmentation"),
                            "GTcls.Segmentation", len(VOC_CLASSES) - 1)
    if instances.shape != semantic.shape:
        raise FormatError(
            f"size mismatch: {inst_mat} is {instances.shape[1]}x{instances.shape[0]} but "
            f"{cls_mat} is {semantic.shape[1]}x{semantic.shape[0]} (width x height)"
        )
    return instances.astype(np.int32), semantic.astype(np.uint8)


def instance_masks(
    instances: np.ndarray, semantic: np.ndarray, ignore_label: int = IGNORE_LABEL
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split an instance map into per-instance masks with their classes.

    Args:
        instances: ``(H, W)`` integer instance ids (0 background, ``ignore_label`` void).
        semantic: ``(H, W)`` integer class ids (``ignore_label`` void).
        ignore_label: the void label of both maps.

    Returns:
        ``(masks bool (K, H, W), classes int64 (K,), ignore bool (H, W))``: one mask per
        instance id present (ascending, 0 and ``ignore_label`` excluded); the class of an
        instance is the most frequent non-void semantic label over its pixels (ties: the
        smaller label); ``ignore`` marks pixels void in either map.

    Raises:
        TypeError / ValueError: bad arguments (named).
        ValueError: an instance has no non-void semantic pixel (its class is undefined).
    """
    for name, arr in (("instances", instances), ("semantic", semantic)):
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"{name}: expected a numpy array, got {type(arr).__name__}")
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"{name}: expected an integer dtype, got {arr.dtype}")
        if arr.ndim != 2:
            raise ValueError(f"{name}: expected an (H, W) array, got shape {arr.shape}")
    if instances.shape != semantic.shape:
        raise ValueError(f"instances {instances.shape} and semantic {semantic.shape} differ in shape")
    if isinstance(ignore_label, bool) or not isinstance(ignore_label, (int, np.integer)):
        raise TypeError(f"ignore_label: expected an int, got {ignore_label!r}")
    if semantic.size and semantic.min() < 0:
        raise ValueError(f"semantic: class ids must be non-negative, got {semantic.min()}")
    ids = np.unique(instances)
    ids = ids[(ids != 0) & (ids != ignore_label)]
    masks = instances[None] == ids[:, None, None]
    ignore = (instances == ignore_label) | (semantic == ignore_label)

    # majority vote: count (instance index, class) pairs over non-void pixels in one bincount
    index = np.searchsorted(ids, instances)
    valid = (semantic != ignore_label) & (instances != 0) & (instances != ignore_label)
    num_labels = int(semantic.max()) + 1 if semantic.size else 1
    counts = np.bincount(
        index[valid].astype(np.int64) * num_labels + semantic[valid].astype(np.int64),
        minlength=len(ids) * num_labels,
    ).reshape(len(ids), num_labels)
    empty = counts.sum(axis=1) == 0
    if empty.any():
        raise ValueError(f"instances {ids[empty].tolist()} have no non-void semantic pixel: class undefined")
    return masks, counts.argmax(axis=1).astype(np.int64), ignore


# ------------------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class VocRecord:
    """One annotated image: the image file, its instance and class annotation files
    (``.png`` for VOC, ``.mat`` for SBD) and its name (the file stem)."""

    image: Path
    instances: Path
    semantic: Path
    name: str


# (marker folder, image folder + suffix, instance folder + suffix, class folder + suffix, split file)
_VOC_LAYOUT = ("SegmentationObject", ("JPEGImages", ".jpg"), ("SegmentationObject", ".png"),
               ("SegmentationClass", ".png"), Path("ImageSets") / "Segmentation")
_SBD_LAYOUT = ("inst", ("img", ".jpg"), ("inst", ".mat"), ("cls", ".mat"), Path("."))


def detect_voc_layout(root: Path, voc_layout: tuple, sbd_layout: tuple, expected: str):
    """``(folder, layout)``: the VOC2012 or SBD folder at or under ``root``, recognised by the
    marker folder (``layout[0]``) of ``voc_layout`` or ``sbd_layout``; ``expected`` describes
    both layouts in the error."""
    for folder in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (folder / voc_layout[0]).is_dir():
            return folder, voc_layout
    for folder in (root, root / "dataset", root / "benchmark_RELEASE" / "dataset"):
        if (folder / sbd_layout[0]).is_dir():
            return folder, sbd_layout
    raise FileNotFoundError(f"{root}: {expected}")


def _detect_layout(root: Path):
    return detect_voc_layout(root, _VOC_LAYOUT, _SBD_LAYOUT,
                             "neither a VOC2012 folder (with SegmentationObject/, SegmentationClass/, JPEGImages/, "
                             "ImageSets/Segmentation/) nor an SBD dataset folder (with inst/, cls/, img/, <split>.txt)")


def _check_split(split) -> str:
    if not isinstance(split, str):
        raise TypeError(f"split: expected a str, got {type(split).__name__}")
    if not split or split in (".", "..") or "/" in split or "\\" in split:
        raise ValueError(f"split: expected a split name such as 'train' or 'val', got {split!r}")
    return split


def _check_inside(root: Path, paths: Iterable[Path], follow_symlinks: bool) -> None:
    """:func:`~pixelwise.data.io.files.check_within_root` for every path a scan found."""
    for path in paths:
        check_within_root(path, root, follow_symlinks=follow_symlinks)


def _read_split_file(path: Path) -> list[str]:
    """Image names, one a line; blank lines allowed, anything else with spaces is an error."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: split file not found")
    try:
        text = read_regular_file(path, "split", _MAX_SPLIT_BYTES).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: split file is not UTF-8 text ({exc})") from None
    names = []
    for number, line in enumerate(text.splitlines(), start=1):
        name = line.strip()
        if not name:
            continue
        if len(name.split()) != 1:
            raise FormatError(f"{path}:{number}: expected one image name per line, found {line!r}")
        names.append(name)
    if not names:
        raise FormatError(f"{path}: split file lists no images")
    return names


def _missing_error(root: Path, split: str, missing: list[Path]) -> FileNotFoundError:
    shown = ", ".join(str(p) for p in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    return FileNotFoundError(f"{root}: {len(missing)} file(s) of split {split!r} are missing: {shown}{more}")


def find_voc(root: PathLike, split: str = "val", *, follow_symlinks: bool = False) -> list[VocRecord]:
    """List the images of a split of VOC 2012 segmentation or SBD.

    Args:
        root: a ``VOC2012`` folder (or a ``VOCdevkit`` folder / its parent holding it), or an
            SBD ``dataset`` folder (or ``benchmark_RELEASE`` holding it). VOC is detected by
            ``SegmentationObject/``, SBD by ``inst/``.
        split: split file name without ``.txt`` (VOC: ``train``, ``val``, ``trainval``; SBD:
            ``train``, ``val``).
        follow_symlinks: accept folders and files that are symbolic links leading outside
            ``root``; by default such a link is an error (links inside ``root`` are fine).

    Returns:
        One :class:`VocRecord` per line of the split file, in file order.

    Raises:
        FileNotFoundError: the layout is not recognised, or the split file or any listed
            image / annotation file is missing (named).
        FormatError: the split file is empty, malformed or not a regular file.
        OutsideRootError: a folder or file found is a symbolic link leading outside ``root``
            and ``follow_symlinks`` is False (names the link and its target).
    """
    root = as_path(root, "root")
    split = _check_split(split)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset folder not found")
    folder, (_, (img_dir, img_ext), (inst_dir, inst_ext), (cls_dir, cls_ext), split_dir) = _detect_layout(root)
    split_file = folder / split_dir / f"{split}.txt"
    _check_inside(root, [folder, folder / img_dir, folder / inst_dir, folder / cls_dir, folder / split_dir,
                         split_file], follow_symlinks)
    names = _read_split_file(split_file)
    records = [
        VocRecord(
            image=folder / img_dir / f"{name}{img_ext}",
            instances=folder / inst_dir / f"{name}{inst_ext}",
            semantic=folder / cls_dir / f"{name}{cls_ext}",
            name=name,
        )
        for name in names
    ]
    _check_inside(root, [p for r in records for p in (r.image, r.instances, r.semantic)], follow_symlinks)
    missing = [p for r in records for p in (r.image, r.instances, r.semantic) if not p.is_file()]
    if missing:
        raise _missing_error(folder, split, missing)
    return records


def read_record(record: VocRecord) -> tuple[np.ndarray, np.ndarray]:
    """(instances int32, semantic uint8) of a :class:`VocRecord`, VOC PNGs or SBD ``.mat``."""
    if record.instances.suffix == ".mat":
        return read_sbd_instances(record.instances, record.semantic)
    return read_voc_instances(record.instances, record.semantic)


class VocInstances(Dataset):
    """PASCAL VOC 2012 / SBD instance segmentation as a dataset (see :func:`find_voc`).

    Items are dicts: ``"image"`` float32 ``(3, H, W)`` in [0, 1], ``"instances"`` int64
    ``(H, W)`` (0 background, ``1..K``, 255 void kept for VOC), ``"semantic"`` int64 ``(H, W)``
    (0..20, 255 void for VOC). Image sizes vary, so batch with size 1 or a custom collate.

    Args:
        root: dataset folder (VOC2012 or SBD ``dataset``).
        split: split name.
        follow_symlinks: accept symbolic links leading outside ``root`` (see :func:`find_voc`).

    Raises:
        FormatError (on access): unreadable files, or an image whose size differs from its
            annotation (names both files).
    """

    def __init__(self, root: PathLike, split: str = "val", *, follow_symlinks: bool = False) -> None:
        self.records = find_voc(root, split, follow_symlinks=follow_symlinks)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        record = self.records[index]
        image = read_rgb(record.image)
        instances, semantic = read_record(record)
        if image.shape[:2] != instances.shape:
            raise FormatError(
                f"size mismatch: {record.image} is {image.shape[1]}x{image.shape[0]} but "
                f"{record.instances} is {instances.shape[1]}x{instances.shape[0]} (width x height)"
            )
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "instances": torch.from_numpy(instances.astype(np.int64)),
            "semantic": torch.from_numpy(semantic.astype(np.int64)),
        }
