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

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import torch
from torch.utils.data import Dataset

from pixelwise.data.formats import FormatError, read_rgb
from pixelwise.data.voc_instances import (  # shared MATLAB-file and argument helpers
    _check_path,
    _check_split,
    _label_image,
    _load_mat,
    _mat_variable,
    _struct_field,
)

PathLike = Union[str, "os.PathLike[str]"]

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
    path = _check_path(mat_path, "mat_path")
    cells = _mat_variable(path, _load_mat(path), "groundTruth")
    if not isinstance(cells, np.ndarray) or cells.dtype != object or cells.size == 0:
        raise FormatError(f"{path}: groundTruth must be a non-empty cell array of structs")
    annotations = []
    for i, struct in enumerate(cells.reshape(-1, order="F")):  # MATLAB cell order
        where = f"groundTruth{{{i + 1}}}"
        seg = _label_image(path, _struct_field(path, struct, where, "Segmentation"),
                           f"{where}.Segmentation", _MAX_SEGMENT)
        bnd = _label_image(path, _struct_field(path, struct, where, "Boundaries"), f"{where}.Boundaries", 1)
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


def find_bsds(root: PathLike, split: str = "test") -> list[BsdsRecord]:
    """List the images of a BSDS500 split with their ground truth.

    Args:
        root: the ``BSR`` folder, its ``BSDS500`` folder or ``BSDS500/data``.
        split: ``"train"``, ``"val"`` or ``"test"`` (any sub-folder name of ``images/``).

    Returns:
        :class:`BsdsRecord` per ``.jpg``, sorted by name.

    Raises:
        FileNotFoundError: unrecognised layout, a missing split folder, an empty split, or an
            image without ground truth / ground truth without image (named).
    """
    root = _check_path(root, "root")
    split = _check_split(split)
    folder = _data_folder(root)
    image_dir, gt_dir = folder / "images" / split, folder / "groundTruth" / split
    for d in (image_dir, gt_dir):
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: split folder not found")
    images = {p.stem: p for p in image_dir.glob("*.jpg")}
    truths = {p.stem: p for p in gt_dir.glob("*.mat")}
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

    Raises:
        FormatError (on access): unreadable files, or an image whose size differs from its
            ground truth (names both files).
    """

    def __init__(self, root: PathLike, split: str = "test") -> None:
        self.records = find_bsds(root, split)

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
