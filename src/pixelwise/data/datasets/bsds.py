"""BSDS500 (Berkeley Segmentation Data Set): human segmentations and boundaries.

Layout (as unpacked from ``BSR_bsds500.tgz``)::

    BSR/BSDS500/data/images/<split>/<name>.jpg
                    /groundTruth/<split>/<name>.mat    cell array groundTruth{1..n}, one struct
                                                       per annotator: Segmentation, Boundaries

with splits ``train`` (200), ``val`` (100) and ``test`` (200). ``Segmentation`` labels segments
``1..S`` (no background, no void); ``Boundaries`` is a logical map of the segment borders.
Boundary benchmarks use the *fraction* of annotators marking a pixel as the soft target.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..io.files import FormatError, PathLike, as_path
from ..io.formats import read_rgb
from ..io.matlab import label_image, load_mat, mat_variable, struct_field
from .voc_instances import _check_inside, _check_split  # shared argument and scan helpers

__all__ = ["BsdsAnnotation", "BsdsBoundaries", "BsdsRecord", "find_bsds", "read_bsds_ground_truth"]

_MAX_SEGMENT = np.iinfo(np.int32).max


@dataclass
class BsdsAnnotation:
    """One annotator's ground truth: ``segmentation`` int32 (H, W) segment ids (from 1) and
    ``boundaries`` bool (H, W)."""

    segmentation: np.ndarray
    boundaries: np.ndarray


@dataclass(frozen=True)
class BsdsRecord:
    """One image of a split: the ``.jpg``, its ground-truth ``.mat`` and its name (file stem)."""

    image: Path
    ground_truth: Path
    name: str


def read_bsds_ground_truth(mat_path: PathLike) -> list[BsdsAnnotation]:
    """Read a BSDS500 ground-truth file.

    Args:
        mat_path: ``groundTruth/<split>/<name>.mat``.

    Returns:
        One :class:`BsdsAnnotation` per annotator (cell order), all of one size.

    Raises:
        FormatError: unreadable or truncated file; no ``groundTruth`` variable, an empty cell
            array, a cell that is not a struct or lacks ``Segmentation`` / ``Boundaries``,
            non-integer or negative segments, boundaries not 0/1, or sizes that differ; the
            message names the file (and the 1-based cell).
        FileNotFoundError: the file does not exist.
    """
    path = as_path(mat_path, "mat_path")
    cells = mat_variable(path, load_mat(path), "groundTruth")
    if not isinstance(cells, np.ndarray) or cells.dtype != object or cells.size == 0:
        raise FormatError(f"{path}: groundTruth must be a non-empty cell array of structs")
    annotations = []
    for i, struct in enumerate(cells.reshape(-1, order="F")):  # MATLAB cell order
        where = f"groundTruth{{{i + 1}}}"
        seg = label_image(path, struct_field(path, struct, where, "Segmentation"),
                           f"{where}.Segmentation", _MAX_SEGMENT)
        bnd = label_image(path, struct_field(path, struct, where, "Boundaries"), f"{where}.Boundaries", 1)
        if bnd.shape != seg.shape:
            raise FormatError(f"{path}: {where}.Boundaries is {bnd.shape} but its Segmentation is {seg.shape}")
        if annotations and seg.shape != annotations[0].segmentation.shape:
            raise FormatError(
                f"{path}: {where} is {seg.shape} but groundTruth{{1}} is {annotations[0].segmentation.shape}"
            )
        annotations.append(BsdsAnnotation(segmentation=seg.astype(np.int32), boundaries=bnd.astype(bool)))
    return annotations


def _data_folder(root: Path) -> Path:
    for folder in (root, root / "data", root / "BSDS500" / "data"):
        if (folder / "images").is_dir() and (folder / "groundTruth").is_dir():
            return folder
    raise FileNotFoundError(
        f"{root}: not a BSDS500 folder: expected images/ and groundTruth/ in it, in data/ or in BSDS500/data/"
    )


def find_bsds(root: PathLike, split: str = "test", *, follow_symlinks: bool = False) -> list[BsdsRecord]:
    """List the images of a BSDS500 split with their ground truth.

    Args:
        root: the ``BSR`` folder, its ``BSDS500`` folder or ``BSDS500/data``.
        split: ``"train"``, ``"val"`` or ``"test"`` (any sub-folder name of ``images/``).
        follow_symlinks: accept folders and files that are symbolic links leading outside
            ``root``; by default such a link is an error (links inside ``root`` are fine).

    Returns:
        :class:`BsdsRecord` per ``.jpg``, sorted by name.

    Raises:
        FileNotFoundError: unrecognised layout, a missing split folder, an empty split, or an
            image without ground truth / ground truth without image (named).
        OutsideRootError: a folder or file found is a symbolic link leading outside ``root``
            and ``follow_symlinks`` is False (names the link and its target).
    """
    root = as_path(root, "root")
    split = _check_split(split)
    folder = _data_folder(root)
    image_dir, gt_dir = folder / "images" / split, folder / "groundTruth" / split
    for d in (image_dir, gt_dir):
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: split folder not found")
    _check_inside(root, [folder, folder / "images", folder / "groundTruth", image_dir, gt_dir], follow_symlinks)
    images = {p.stem: p for p in image_dir.glob("*.jpg")}
    truths = {p.stem: p for p in gt_dir.glob("*.mat")}
    _check_inside(root, [*images.values(), *truths.values()], follow_symlinks)
    if not images:
        raise FileNotFoundError(f"{image_dir}: no .jpg images")
    unpaired = [str(gt_dir / f"{n}.mat") for n in sorted(images.keys() - truths.keys())]
    unpaired += [str(image_dir / f"{n}.jpg") for n in sorted(truths.keys() - images.keys())]
    if unpaired:
        more = f" and {len(unpaired) - 5} more" if len(unpaired) > 5 else ""
        raise FileNotFoundError(
            f"{folder}: split {split!r} has {len(unpaired)} unpaired file(s); missing: {', '.join(unpaired[:5])}{more}"
        )
    return [BsdsRecord(image=images[n], ground_truth=truths[n], name=n) for n in sorted(images)]


class BsdsBoundaries(Dataset):
    """BSDS500 images with soft boundary targets (see :func:`find_bsds`).

    Items are dicts: ``"image"`` float32 ``(3, H, W)`` in [0, 1], ``"boundaries"`` float32
    ``(H, W)`` = fraction of annotators marking the pixel, ``"segmentation"`` int64 ``(H, W)``
    of the first annotator.

    Args:
        root: the ``BSR`` folder, its ``BSDS500`` folder or ``BSDS500/data``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        follow_symlinks: accept symbolic links leading outside ``root`` (see :func:`find_bsds`).

    Raises:
        FormatError (on access): unreadable files, or an image whose size differs from its
            ground truth (names both files).
    """

    def __init__(self, root: PathLike, split: str = "test", *, follow_symlinks: bool = False) -> None:
        self.records = find_bsds(root, split, follow_symlinks=follow_symlinks)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        record = self.records[index]
        image = read_rgb(record.image)
        annotations = read_bsds_ground_truth(record.ground_truth)
        first = annotations[0].segmentation
        if image.shape[:2] != first.shape:
            raise FormatError(
                f"size mismatch: {record.image} is {image.shape[1]}x{image.shape[0]} but "
                f"{record.ground_truth} is {first.shape[1]}x{first.shape[0]} (width x height)"
            )
        boundaries = np.mean([a.boundaries for a in annotations], axis=0, dtype=np.float32)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "boundaries": torch.from_numpy(boundaries),
            "segmentation": torch.from_numpy(first.astype(np.int64)),
        }
