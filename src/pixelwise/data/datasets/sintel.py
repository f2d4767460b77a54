"""MPI Sintel optical flow.

Layout::

    root/<split>/<pass>/<scene>/frame_XXXX.png
    root/<split>/flow/<scene>/frame_XXXX.flo     flow from frame XXXX to the next frame

Each sample is frame i and the flow i -> i+1 (C = 2, (u, v) in pixels). The last frame of a
scene has no flow and is not a sample. Non-finite flow and |u| or |v| > 1e9 are invalid.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from torch.utils.data import Dataset

from ..io.files import FormatError, check_within_root
from ..io.formats import image_size, read_flo, read_flo_header, read_rgb
from .folder import make_item, valid_mask

__all__ = ["Sintel", "SINTEL_PASSES"]

SINTEL_PASSES = ("clean", "final")
_FRAME = re.compile(r"^frame_(\d+)\.png$")


class Sintel(Dataset):
    """MPI Sintel frames with ground-truth forward flow (kind "flow").

    Args:
        root: the Sintel folder (holding ``training/``).
        split: ``"training"`` (the test split has no flow).
        pass_: ``"clean"`` or ``"final"``.
        follow_symlinks: accept folders and files that are symbolic links leading outside
            ``root``; by default such a link is an
            :class:`~pixelwise.data.io.files.OutsideRootError` naming the link and its target
            (links inside ``root`` are fine).
    """

    kind = "flow"

    def __init__(self, root: str | os.PathLike, split: str = "training", pass_: str = "clean", *,
                 follow_symlinks: bool = False):
        if pass_ not in SINTEL_PASSES:
            raise ValueError(f"pass_ must be one of {SINTEL_PASSES}, got {pass_!r}")
        self.root = Path(root)
        self.split = split
        self.pass_ = pass_
        layout = (
            f"expected {self.root}/{split}/{pass_}/<scene>/frame_XXXX.png and "
            f"{self.root}/{split}/flow/<scene>/frame_XXXX.flo"
        )
        frames_dir = self.root / split / pass_
        flow_dir = self.root / split / "flow"
        if not self.root.is_dir():
            raise ValueError(f"dataset folder {self.root} does not exist; {layout}")
        if not frames_dir.is_dir():
            raise ValueError(f"dataset folder {frames_dir} does not exist; {layout}")
        if not flow_dir.is_dir():
            raise ValueError(
                f"dataset folder {flow_dir} does not exist (the Sintel test split has no "
                f"ground-truth flow); {layout}"
            )
        def check(path: Path) -> None:
            check_within_root(path, self.root, follow_symlinks=follow_symlinks)

        for d in (self.root / split, frames_dir, flow_dir):
            check(d)
        samples: list[tuple[str, Path, Path]] = []
        for scene_dir in sorted(p for p in frames_dir.iterdir() if p.is_dir()):
            check(scene_dir)
            check(flow_dir / scene_dir.name)
            frames = []
            for p in scene_dir.iterdir():
                if m := _FRAME.match(p.name):
                    check(p)
                    if p.is_file():
                        frames.append((int(m.group(1)), p))
            frames.sort()
            for _, frame in frames[:-1]:
                flo = flow_dir / scene_dir.name / (frame.stem + ".flo")
                check(flo)
                if not flo.is_file():
                    raise ValueError(
                        f"{flo}: missing flow for {frame} (only the last frame of a scene may "
                        f"lack flow); {layout}"
                    )
                samples.append((f"{scene_dir.name}/{frame.stem}", frame, flo))
        if not samples:
            raise ValueError(f"dataset folder {frames_dir} contains no samples; {layout}")
        for _, frame, flo in samples:
            ih, iw = image_size(frame)
            fh, fw = read_flo_header(flo)
            if (ih, iw) != (fh, fw):
                raise FormatError(f"size mismatch: {frame} is {ih}x{iw} (HxW) but {flo} is {fh}x{fw}")
        self.samples = samples
        self.names = [s[0] for s in samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        name, frame, flo = self.samples[index]
        image = read_rgb(frame)
        flow = read_flo(flo)
        if image.shape[:2] != flow.shape[:2]:
            raise FormatError(
                f"size mismatch: {frame} is {image.shape[0]}x{image.shape[1]} (HxW) but {flo} "
                f"is {flow.shape[0]}x{flow.shape[1]}"
            )
        return make_item(image, flow, valid_mask(flow, "flow"), name)

    def __repr__(self) -> str:
        return (
            f"Sintel(root={str(self.root)!r}, split={self.split!r}, pass_={self.pass_!r}, "
            f"n={len(self)})"
        )
