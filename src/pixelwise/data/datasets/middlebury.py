"""Middlebury stereo scenes (2014 layout) and the bundled motorcycle scene.

Layout::

    root/<scene>/im0.png          left view (RGB)
    root/<scene>/disp0GT.pfm      left disparity in pixels, inf = unknown  (or disp0.pfm)

``root`` may also be a single scene folder. The target is the left disparity, C = 1;
non-finite disparities are invalid.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from ..io.files import FormatError, check_within_root
from ..io.formats import image_size, read_pfm, read_pfm_header, read_rgb
from .folder import make_item, valid_mask

__all__ = ["Middlebury", "load_motorcycle", "DISPARITY_NAMES"]

DISPARITY_NAMES = ("disp0GT.pfm", "disp0.pfm")  # first one present wins
_LAYOUT = "expected <root>/<scene>/im0.png with <root>/<scene>/disp0GT.pfm (or disp0.pfm)"


def _scene_files(scene: Path, root: Path, follow_symlinks: bool) -> tuple[Path, Path] | None:
    """(im0, disparity) of a scene folder, None if it is not a scene; error if half a scene."""
    im0 = scene / "im0.png"
    for path in (scene, im0, *(scene / n for n in DISPARITY_NAMES)):
        check_within_root(path, root, follow_symlinks=follow_symlinks)
    disp = next((scene / n for n in DISPARITY_NAMES if (scene / n).is_file()), None)
    if im0.is_file() and disp is not None:
        return im0, disp
    if im0.is_file():
        raise ValueError(
            f"{scene}: has im0.png but no disparity; expected {' or '.join(DISPARITY_NAMES)}"
        )
    if disp is not None:
        raise ValueError(f"{scene}: has {disp.name} but no left image; expected {im0}")
    return None


class Middlebury(Dataset):
    """Middlebury stereo scenes; each item is the left view and its disparity (kind "depth").

    Args:
        root: a folder of scene folders, or one scene folder.
        follow_symlinks: accept scene folders and files that are symbolic links leading outside
            ``root``; by default such a link is an
            :class:`~pixelwise.data.io.files.OutsideRootError` naming the link and its target
            (links inside ``root`` are fine).
    """

    kind = "depth"

    def __init__(self, root: str | os.PathLike, *, follow_symlinks: bool = False):
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"dataset folder {self.root} does not exist; {_LAYOUT}")
        own = _scene_files(self.root, self.root, follow_symlinks)
        if own is not None:
            scenes = [(self.root.name, *own)]
        else:
            scenes = []
            for sub in sorted(p for p in self.root.iterdir() if p.is_dir()):
                files = _scene_files(sub, self.root, follow_symlinks)
                if files is not None:
                    scenes.append((sub.name, *files))
        if not scenes:
            raise ValueError(f"dataset folder {self.root} contains no samples; {_LAYOUT}")
        for _, im0, disp in scenes:
            ih, iw = image_size(im0)
            dh, dw, dc = read_pfm_header(disp)
            if dc != 1:
                raise FormatError(f"{disp}: expected a 1-channel ('Pf') disparity, found {dc} channels")
            if (ih, iw) != (dh, dw):
                raise FormatError(
                    f"size mismatch: {im0} is {ih}x{iw} (HxW) but {disp} is {dh}x{dw}"
                )
        self.scenes = scenes
        self.names = [s[0] for s in scenes]

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, index: int) -> dict:
        name, im0, disp_path = self.scenes[index]
        image = read_rgb(im0)
        disp = read_pfm(disp_path)
        if disp.ndim != 2:
            raise FormatError(f"{disp_path}: expected a 1-channel ('Pf') disparity, found {disp.shape}")
        if image.shape[:2] != disp.shape:
            raise FormatError(
                f"size mismatch: {im0} is {image.shape[0]}x{image.shape[1]} (HxW) but "
                f"{disp_path} is {disp.shape[0]}x{disp.shape[1]}"
            )
        return make_item(image, disp, valid_mask(disp, "depth"), name)

    def __repr__(self) -> str:
        return f"Middlebury(root={str(self.root)!r}, scenes={self.names})"


def load_motorcycle() -> dict:
    """The Middlebury 2014 "Motorcycle" left view and disparity bundled with scikit-image.

    Returns the standard item dict (name "motorcycle"): image [3, 500, 741], target
    [1, 500, 741] disparity in pixels, valid = finite disparity (27226 pixels are invalid).
    Nothing is downloaded: the data ships with scikit-image.
    """
    from skimage import data

    left, _right, disp = data.stereo_motorcycle()
    image = np.asarray(left, dtype=np.float32) / 255.0
    disp = np.asarray(disp, dtype=np.float32)
    return make_item(image, disp, valid_mask(disp, "depth"), "motorcycle")
