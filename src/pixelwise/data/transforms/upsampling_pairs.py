"""Turning (image, target, valid) samples into joint-upsampling training/evaluation pairs.

Low-resolution input, as in Su et al. 2019: nearest-neighbour downsampling for depth (sample
``q`` taken from high-res pixel ``s*q + (s-1)//2``, the geometry of
:func:`pixelwise.ops.joint_bilateral_upsample`) and bilinear (antialiased, like an image resize)
for flow. Flow values are not rescaled: low-res and high-res flow share pixel units of the
high-resolution image.

Invalid pixels: a low-res sample is invalid when its high-res source is (depth), or when less
than half the bilinear footprint is valid (flow; valid-weighted otherwise). Invalid low-res
samples are filled with the nearest valid one before any method sees them, so no NaN or
arbitrary value ever reaches a network; the high-res ``valid`` mask keeps them out of the loss
and the metrics.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage


def downsample_target(target: torch.Tensor, valid: torch.Tensor, factor: int, kind: str):
    """``(C,H,W)`` target + ``(1,H,W)`` mask -> low-res ``(C,H/s,W/s)`` target and mask."""
    c, h, w = target.shape
    if h % factor or w % factor:
        raise ValueError(f"target: size {h}x{w} is not a multiple of the factor {factor}")
    target = torch.where(valid, target, torch.zeros_like(target))
    if kind == "depth":
        o = (factor - 1) // 2
        return target[:, o::factor, o::factor].clone(), valid[:, o::factor, o::factor].clone()
    if kind == "flow":
        size = (h // factor, w // factor)
        weight = F.interpolate(valid[None].float(), size=size, mode="bilinear", antialias=True, align_corners=False)[0]
        summed = F.interpolate((target * valid)[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
        lr_valid = weight >= 0.5
        return torch.where(lr_valid, summed / weight.clamp(min=1e-6), torch.zeros_like(summed)), lr_valid
    raise ValueError(f"kind: expected 'depth' or 'flow', got {kind!r}")


def fill_invalid(target: torch.Tensor, valid: torch.Tensor, *, name: str = "target") -> torch.Tensor:
    """Replace invalid samples of a ``(C,h,w)`` map by their nearest valid neighbour."""
    if valid.all():
        return target
    if not valid.any():
        raise ValueError(f"{name}: every low-resolution sample is invalid; nothing to upsample")
    _, idx = ndimage.distance_transform_edt(~valid[0].numpy(), return_indices=True)
    rows, cols = torch.from_numpy(idx[0]), torch.from_numpy(idx[1])
    return target[:, rows, cols]


def crop_to_multiple(item: dict, factor: int) -> dict:
    """Centre-crop an evaluation sample so both sides are multiples of ``factor``."""
    h, w = item["target"].shape[1:]
    nh, nw = h - h % factor, w - w % factor
    if nh == 0 or nw == 0:
        raise ValueError(f"{item.get('name', 'sample')}: size {h}x{w} is smaller than the factor {factor}")
    top, left = (h - nh) // 2, (w - nw) // 2
    return _crop(item, top, left, nh, nw)


def _crop(item: dict, top: int, left: int, h: int, w: int) -> dict:
    out = dict(item)
    for key in ("image", "target", "valid"):
        out[key] = item[key][:, top:top + h, left:left + w]
    return out


def make_pair(item: dict, factor: int, kind: str) -> dict:
    """Add ``target_lr`` (filled) and ``valid_lr`` to a sample whose size is a multiple of ``factor``."""
    name = item.get("name", "sample")
    if not item["valid"].any():
        raise ValueError(f"{name}: the target has no valid pixel")
    lr, lr_valid = downsample_target(item["target"], item["valid"], factor, kind)
    out = dict(item)
    out["target_lr"] = fill_invalid(lr, lr_valid, name=f"{name}: low-resolution target")
    out["valid_lr"] = lr_valid
    return out


class UpsamplingPairs(torch.utils.data.Dataset):
    """Training pairs: a random ``crop`` (multiple of ``factor``) with random flips, then
    :func:`make_pair`. Randomness is a pure function of ``(seed, epoch, index)`` so a resumed run
    sees exactly the batches it would have seen."""

    def __init__(self, base, factor: int, kind: str, crop: int | None, *, seed: int = 0, augment: bool = True,
                 max_tries: int = 10):
        if crop is not None and (crop < factor or crop % factor):
            raise ValueError(f"crop: must be a positive multiple of the factor {factor}, got {crop}")
        self.base, self.factor, self.kind, self.crop = base, factor, kind, crop
        self.seed, self.augment, self.max_tries = seed, augment, max_tries
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict:
        item = self.base[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        h, w = item["target"].shape[1:]
        for _ in range(self.max_tries):
            if self.crop is None:
                sample = crop_to_multiple(item, self.factor)
            else:
                if h < self.crop or w < self.crop:
                    raise ValueError(f"crop: {self.crop} is larger than the data allows: {item.get('name', index)} is "
                                     f"{h}x{w}; use a crop of at most {min(h, w) // self.factor * self.factor} "
                                     f"(e.g. --set crop=...)")
                top, left = int(rng.integers(0, h - self.crop + 1)), int(rng.integers(0, w - self.crop + 1))
                sample = _crop(item, top, left, self.crop, self.crop)
            if self.augment and rng.random() < 0.5:
                sample = _flip(sample, self.kind)
            if sample["valid"].float().mean() > 0.05:
                return make_pair(sample, self.factor, self.kind)
        raise ValueError(f"{item.get('name', index)}: no crop with enough valid target pixels in {self.max_tries} tries")


def _flip(item: dict, kind: str) -> dict:
    out = dict(item)
    for key in ("image", "target", "valid"):
        out[key] = item[key].flip(-1)
    if kind == "flow":  # a horizontal mirror reverses horizontal motion
        out["target"] = out["target"] * torch.tensor([-1.0, 1.0]).view(2, 1, 1)
    return out
