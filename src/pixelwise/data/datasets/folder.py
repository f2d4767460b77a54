"""A generic image/target folder dataset, and the item builder shared by every reader.

Layout::

    root/images/<name>.png|jpg|jpeg
    root/targets/<name>.png|npy|pfm|flo

Images and targets are paired by file stem. 16-bit PNG targets hold ``value * target_scale``
with 0 meaning invalid; NaN / inf in .npy / .pfm targets are invalid; |u| or |v| > 1e9 in
flow targets is invalid (the .flo "unknown" convention).

Every depth / flow dataset in :mod:`pixelwise.data.datasets` yields items of the form::

    {"image": float32 [3, H, W] in [0, 1], "target": float32 [C, H, W],
     "valid": bool [1, H, W], "name": str}

with invalid target pixels set to 0.0.

Files and folders found in ``root`` that are symbolic links leading outside it are an error
unless ``follow_symlinks=True``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..io.files import FormatError, check_within_root
from ..io.formats import (
    FLO_UNKNOWN_THRESHOLD,
    IMAGE_SUFFIXES,
    TARGET_SUFFIXES,
    image_size,
    read_rgb,
    read_target,
    target_shape,
)

__all__ = ["FolderDataset", "make_item", "valid_mask", "KINDS"]

KINDS = ("depth", "flow")
_CHANNELS = {"depth": 1, "flow": 2}


def valid_mask(target: np.ndarray, kind: str, *, positive: bool = False) -> np.ndarray:
    """Bool (H, W) mask of valid pixels of a (H, W, C) or (H, W) target.

    A pixel is valid when every channel is finite; for ``kind="flow"`` also when |u| and |v|
    are at most 1e9; with ``positive=True`` also when every channel is > 0.
    """
    t = target if target.ndim == 3 else target[:, :, None]
    ok = np.isfinite(t)
    if kind == "flow":
        with np.errstate(invalid="ignore"):
            ok &= np.abs(t) <= FLO_UNKNOWN_THRESHOLD
    if positive:
        with np.errstate(invalid="ignore"):
            ok &= t > 0
    return ok.all(axis=2)


def make_item(image: np.ndarray, target: np.ndarray, valid: np.ndarray, name: str) -> dict:
    """Build the standard item dict from numpy arrays.

    image: (H, W, 3) in [0, 1]; target: (H, W) or (H, W, C); valid: (H, W) bool. Invalid target
    pixels (and any remaining non-finite value) are set to 0.0.
    """
    if target.ndim == 2:
        target = target[:, :, None]
    valid = np.asarray(valid, dtype=bool) & np.isfinite(target).all(axis=2)
    target = np.where(valid[:, :, None], target, 0.0).astype(np.float32)
    img = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    return {
        "image": torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))),
        "target": torch.from_numpy(np.ascontiguousarray(target.transpose(2, 0, 1))),
        "valid": torch.from_numpy(np.ascontiguousarray(valid[None])),
        "name": str(name),
    }


def _list_by_stem(folder: Path, suffixes: tuple[str, ...], what: str, root: Path,
                  follow_symlinks: bool) -> dict[str, Path]:
    by_stem: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.suffix.lower() not in suffixes:
            continue
        check_within_root(p, root, follow_symlinks=follow_symlinks)
        if not p.is_file():
            continue
        if p.stem in by_stem:
            raise ValueError(
                f"{folder}: two {what} files share the name {p.stem!r}: "
                f"{by_stem[p.stem].name} and {p.name}; expected one per name"
            )
        by_stem[p.stem] = p
    return by_stem


def _short_list(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


class FolderDataset(Dataset):
    """Images paired with dense targets by file stem (see the module docstring).

    Args:
        root: the folder holding ``images/`` and ``targets/``.
        kind: ``"depth"`` (1 channel) or ``"flow"`` (2 channels).
        target_scale: 16-bit PNG targets hold ``value * target_scale``.
        follow_symlinks: accept folders and files that are symbolic links leading outside
            ``root``; by default such a link is an
            :class:`~pixelwise.data.io.files.OutsideRootError` naming the link and its target
            (links inside ``root`` are fine).
    """

    def __init__(self, root: str | os.PathLike, kind: str = "depth", target_scale: float = 1000.0, *,
                 follow_symlinks: bool = False):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        target_scale = float(target_scale)
        if not (np.isfinite(target_scale) and target_scale > 0):
            raise ValueError(f"target_scale must be a finite positive number, got {target_scale}")
        self.root = Path(root)
        self.kind = kind
        self.target_scale = target_scale
        layout = (
            f"expected {self.root}/images/<name>{{{','.join(IMAGE_SUFFIXES)}}} and "
            f"{self.root}/targets/<name>{{{','.join(TARGET_SUFFIXES)}}}"
        )
        images_dir, targets_dir = self.root / "images", self.root / "targets"
        if not self.root.is_dir():
            raise ValueError(f"dataset folder {self.root} does not exist; {layout}")
        for d in (images_dir, targets_dir):
            if not d.is_dir():
                raise ValueError(f"dataset folder {self.root} has no {d.name}/ folder; {layout}")
        for d in (images_dir, targets_dir):
            check_within_root(d, self.root, follow_symlinks=follow_symlinks)
        images = _list_by_stem(images_dir, IMAGE_SUFFIXES, "image", self.root, follow_symlinks)
        targets = _list_by_stem(targets_dir, TARGET_SUFFIXES, "target", self.root, follow_symlinks)
        if not images and not targets:
            raise ValueError(f"dataset folder {self.root} contains no samples; {layout}")
        no_target = sorted(set(images) - set(targets))
        no_image = sorted(set(targets) - set(images))
        if no_target or no_image:
            parts = []
            if no_target:
                parts.append(f"images without a target: {_short_list(no_target)}")
            if no_image:
                parts.append(f"targets without an image: {_short_list(no_image)}")
            raise ValueError(f"{self.root}: unpaired files ({'; '.join(parts)}); {layout}")
        self.names = sorted(images)
        self.samples = [(images[n], targets[n]) for n in self.names]
        want = _CHANNELS[kind]
        for img_path, tgt_path in self.samples:
            h, w, c = target_shape(tgt_path)
            self._check_channels(tgt_path, c, want)
            ih, iw = image_size(img_path)
            if (ih, iw) != (h, w):
                raise FormatError(
                    f"size mismatch: image {img_path} is {ih}x{iw} (HxW) but target {tgt_path} "
                    f"is {h}x{w}"
                )

    def _check_channels(self, path: Path, found: int, want: int) -> None:
        if found != want:
            accepted = ".npy (H, W, 2) or .flo" if self.kind == "flow" else (
                ".png (16-bit), .pfm ('Pf') or .npy (H, W) / (H, W, 1)")
            raise FormatError(
                f"{path}: a {self.kind} target must have {want} channel(s) ({accepted}), "
                f"found {found}"
            )

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        img_path, tgt_path = self.samples[index]
        image = read_rgb(img_path)
        target = read_target(tgt_path, scale=self.target_scale)
        if target.ndim == 2:
            target = target[:, :, None]
        if target.ndim != 3:
            raise FormatError(
                f"{tgt_path}: expected a (H, W) or (H, W, C) target, found shape {target.shape}"
            )
        self._check_channels(tgt_path, target.shape[2], _CHANNELS[self.kind])
        if image.shape[:2] != target.shape[:2]:
            raise FormatError(
                f"size mismatch: image {img_path} is {image.shape[0]}x{image.shape[1]} (HxW) "
                f"but target {tgt_path} is {target.shape[0]}x{target.shape[1]}"
            )
        valid = valid_mask(target, self.kind)
        return make_item(image, target, valid, self.names[index])

    def __repr__(self) -> str:
        return f"FolderDataset(root={str(self.root)!r}, kind={self.kind!r}, n={len(self)})"
