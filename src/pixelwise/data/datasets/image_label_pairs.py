"""A dataset of (image file, label file) pairs: the shared item format of the semantic readers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..io.files import FormatError
from ..io.formats import read_rgb


class ImageLabelPairs(Dataset):
    """Items ``{"image": float32 (3, H, W) in [0, 1], "label": int64 (H, W), "name": str}``.

    ``read_label(path) -> (H, W) integer array`` decodes one label file (palette PNG, SBD
    ``.mat``, Cityscapes ids ...); ``name(image_path)`` gives the item's id. An image whose size
    differs from its label raises :class:`~pixelwise.data.io.files.FormatError` naming both files.
    """

    def __init__(self, pairs: Sequence[tuple[Path, Path]], read_label: Callable[[Path], np.ndarray],
                 name: Callable[[Path], str] = lambda p: p.stem) -> None:
        self.pairs, self.read_label, self.name = list(pairs), read_label, name

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        image_path, label_path = self.pairs[index]
        image = read_rgb(image_path)
        label = self.read_label(label_path)
        if image.shape[:2] != label.shape:
            raise FormatError(
                f"size mismatch: {image_path} is {image.shape[1]}x{image.shape[0]} but "
                f"{label_path} is {label.shape[1]}x{label.shape[0]} (width x height)"
            )
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "label": torch.from_numpy(label.astype(np.int64)),
            "name": self.name(image_path),
        }
