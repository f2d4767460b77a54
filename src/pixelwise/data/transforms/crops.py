"""Fixed-size random training crops of variable-size labelled images.

Real segmentation datasets (VOC, SBD, Cityscapes) have images of varying size, which a batch
cannot hold; the usual augmentation of the segmentation papers (random scale in [0.5, 1.5],
horizontal flip, pad with "ignore" and crop) makes them a fixed size.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

__all__ = ["RandomScaleCrop"]

_MIN_SIDE = 8  # scaled images are at least this many pixels on each side


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


class RandomScaleCrop(Dataset):
    """Wrap a dataset of dict items into random ``size x size`` crops.

    Per item: a random scale ``s`` (uniform in ``scale``) -- bilinear for ``"image"``, nearest
    for every key in ``label_keys`` --, a horizontal flip with probability 1/2, padding at the
    bottom and right up to ``size`` (the image with 0, labels with ``ignore_index``) and a
    uniformly random ``size x size`` crop. Deterministic in ``(seed, epoch, index)``, whatever
    the base dataset or worker: the draws come from ``np.random.default_rng((seed, index))`` in
    epoch 0 and ``np.random.default_rng((seed, index, epoch))`` after it; the training engine
    calls :meth:`set_epoch`, so every epoch sees new crops and a resumed run the same ones.

    Args:
        base: dataset whose items are dicts holding ``"image"`` (float ``(C, H, W)`` tensor)
            and each key of ``label_keys`` (integer ``(H, W)`` tensors of the same size); other
            keys (a ``"name"``, say) are passed through unchanged.
        size: crop side in pixels (>= 1).
        seed: non-negative int.
        scale: ``(low, high)`` with ``0 < low <= high``.
        label_keys: the label maps of an item.
        ignore_index: value of padded label pixels.

    Raises:
        TypeError / ValueError: bad arguments (named).
        KeyError / TypeError / ValueError (on access): an item lacks a key, holds no tensor or
            its label size differs from the image's.
    """

    def __init__(self, base, size: int, seed: int = 0, scale: tuple[float, float] = (0.5, 1.5),
                 label_keys: tuple[str, ...] = ("label",), ignore_index: int = 255) -> None:
        if not _is_int(size) or size < 1:
            raise ValueError(f"size: expected an int >= 1, got {size!r}")
        if not _is_int(seed) or seed < 0:
            raise ValueError(f"seed: expected an int >= 0, got {seed!r}")
        try:
            lo, hi = (float(v) for v in scale)
        except (TypeError, ValueError):
            lo = hi = math.nan
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
            raise ValueError(f"scale: expected (low, high) with 0 < low <= high, got {scale!r}")
        if isinstance(label_keys, str) or not all(isinstance(k, str) for k in label_keys):
            raise TypeError(f"label_keys: expected a sequence of str, got {label_keys!r}")
        if "image" in label_keys:
            raise ValueError("label_keys: 'image' is interpolated bilinearly, it cannot be a label key")
        if not _is_int(ignore_index):
            raise TypeError(f"ignore_index: expected an int, got {ignore_index!r}")
        self.base, self.size, self.seed = base, int(size), int(seed)
        self.scale, self.label_keys, self.ignore_index = (lo, hi), tuple(label_keys), int(ignore_index)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the crops of ``epoch`` (called by the engine before every epoch)."""
        if not _is_int(epoch) or epoch < 0:
            raise ValueError(f"epoch: expected an int >= 0, got {epoch!r}")
        self.epoch = int(epoch)
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.base)

    def _fetch(self, item: dict, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        for key in ("image", *self.label_keys):
            if key not in item:
                raise KeyError(f"RandomScaleCrop: item {index} has no {key!r} (keys: {', '.join(map(str, item))})")
            if not isinstance(item[key], torch.Tensor):
                raise TypeError(f"RandomScaleCrop: item {index}[{key!r}] must be a tensor, "
                                f"got {type(item[key]).__name__}")
        image = item["image"]
        if image.dim() != 3:
            raise ValueError(f"RandomScaleCrop: item {index}['image'] must be (C, H, W), got {tuple(image.shape)}")
        labels = {k: item[k] for k in self.label_keys}
        for key, lab in labels.items():
            if tuple(lab.shape) != tuple(image.shape[-2:]):
                raise ValueError(f"RandomScaleCrop: item {index}[{key!r}] is {tuple(lab.shape)}, "
                                 f"the image is {tuple(image.shape[-2:])}")
        return image, labels

    def __getitem__(self, index: int) -> dict:
        if not _is_int(index):
            raise TypeError(f"index: expected an int, got {type(index).__name__}")
        if index < 0:  # the seed needs the non-negative index
            index += len(self)
        item = self.base[index]
        image, labels = self._fetch(item, index)
        rng = np.random.default_rng((self.seed, index) if self.epoch == 0 else (self.seed, index, self.epoch))
        s = rng.uniform(*self.scale)
        h, w = image.shape[-2:]
        nh, nw = max(_MIN_SIDE, round(h * s)), max(_MIN_SIDE, round(w * s))
        image = F.interpolate(image[None], size=(nh, nw), mode="bilinear", align_corners=False)[0]
        # nearest on float: exact for label values below 2**24
        labels = {k: F.interpolate(v[None, None].float(), size=(nh, nw), mode="nearest")[0, 0].to(v.dtype)
                  for k, v in labels.items()}
        if rng.random() < 0.5:
            image = image.flip(-1)
            labels = {k: v.flip(-1) for k, v in labels.items()}
        size = self.size
        ph, pw = max(0, size - nh), max(0, size - nw)
        if ph or pw:
            image = F.pad(image, (0, pw, 0, ph))
            labels = {k: F.pad(v, (0, pw, 0, ph), value=self.ignore_index) for k, v in labels.items()}
        y = int(rng.integers(0, image.shape[-2] - size + 1))
        x = int(rng.integers(0, image.shape[-1] - size + 1))
        out = dict(item)
        out["image"] = image[:, y:y + size, x:x + size]
        out.update({k: v[y:y + size, x:x + size] for k, v in labels.items()})
        return out
