"""Upsampling one map from files: read and check the guide and the low-resolution target, run a
method, write the result (format by suffix) and a colour image of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...data.io import formats
from ...data.transforms.upsampling_pairs import fill_invalid
from ...models.upsampling_base import KINDS
from ...report import colorize_flow, colorize_scalar, save_png

__all__ = ["predict_map", "read_prediction_inputs", "write_prediction"]


def read_prediction_inputs(image_path, target_path, *, factor: int, kind: str, target_scale: float = 1000.0):
    """Guide image + low-res target from files, checked against each other and the factor."""
    image = torch.from_numpy(formats.read_rgb(image_path)).permute(2, 0, 1).contiguous()
    target = formats.read_target(target_path, scale=target_scale)
    target = np.asarray(target, dtype=np.float32)
    if target.ndim == 2:
        target = target[..., None]
    channels = KINDS[kind]
    if target.shape[-1] != channels:
        raise ValueError(f"{target_path}: a {kind} target needs {channels} channel(s), the file has {target.shape[-1]}")
    target = torch.from_numpy(np.ascontiguousarray(target)).permute(2, 0, 1)
    h, w = target.shape[1:]
    if h == 0 or w == 0:
        raise ValueError(f"{target_path}: empty map ({h}x{w})")
    if image.shape[1] != factor * h or image.shape[2] != factor * w:
        raise ValueError(f"{image_path}: guide is {image.shape[1]}x{image.shape[2]} but the target {target_path} is "
                         f"{h}x{w}; at factor {factor} the guide must be {factor * h}x{factor * w}")
    valid = torch.isfinite(target).all(0, keepdim=True)
    if kind == "depth":
        valid &= target[:1] > 0
    target = torch.where(valid, target, torch.zeros_like(target))
    if not valid.any():
        raise ValueError(f"{target_path}: no valid sample (all NaN, inf or zero)")
    return image, fill_invalid(target, valid, name=str(target_path))


def predict_map(model: nn.Module, image: torch.Tensor, target_lr: torch.Tensor,
                device: str | torch.device = "cpu") -> torch.Tensor:
    """The ``(C, H, W)`` upsampling of ``target_lr`` guided by ``image``, on the CPU."""
    with torch.no_grad():
        return model(target_lr[None].to(device), image[None].to(device))[0].cpu()


def write_prediction(path, prediction: torch.Tensor, kind: str, *,
                     target_scale: float = 1000.0) -> tuple[np.ndarray, Path]:
    """Write ``prediction`` to ``path`` (.npy, .pfm, .flo or 16-bit .png) and a colour image
    ``<stem>_color.png`` beside it; returns the array written and the colour image's path."""
    out = prediction.numpy()
    path = Path(path)
    array = out[0] if kind == "depth" else out.transpose(1, 2, 0)
    formats.write_target(path, array, scale=target_scale)
    colour = colorize_flow(array) if kind == "flow" else colorize_scalar(array)
    colour_path = path.with_name(path.stem + "_color.png")
    save_png(colour_path, colour)
    return array, colour_path
