"""Figures for instance grouping: embeddings as RGB, instance maps as colours and overlays."""

from __future__ import annotations

import colorsys

import numpy as np
import torch

__all__ = ["embedding_to_rgb", "instance_colors", "instance_image", "instance_overlay"]


def embedding_to_rgb(embedding, seed: int = 0) -> np.ndarray:
    """``(D, H, W)`` unit embeddings -> ``(H, W, 3)`` uint8 through a random projection.

    As in the paper's Figure 1: a random ``3 x D`` matrix with orthonormal rows (so projected
    unit vectors stay inside the unit ball) maps each pixel to ``(P x + 1) / 2``. ``D = 3`` uses
    the identity, so a 3-D embedding shows as itself. The seed fixes the projection: one seed
    colours every image of a run the same way.
    """
    e = torch.as_tensor(embedding).detach().float().cpu()
    if e.dim() != 3:
        raise ValueError(f"embedding must be (D, H, W), got shape {tuple(e.shape)}")
    d = e.shape[0]
    if d < 3:
        raise ValueError(f"embedding must have at least 3 channels to show as RGB, got {d}")
    e = torch.nn.functional.normalize(e, dim=0)
    if d == 3:
        proj = torch.eye(3)
    else:
        q, _ = torch.linalg.qr(torch.randn(d, 3, generator=torch.Generator().manual_seed(seed)))
        proj = q.T  # (3, D), orthonormal rows
    rgb = torch.einsum("cd,dhw->hwc", proj, e)
    return ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def instance_colors(count: int, seed: int = 0) -> np.ndarray:
    """``(count, 3)`` uint8 distinct-ish colours (golden-ratio hues); id 0 is black."""
    colors = np.zeros((max(count, 1), 3), np.uint8)
    offset = np.random.default_rng(seed).random()
    for i in range(1, count):
        h = (offset + i * 0.618033988749895) % 1.0
        s, v = (0.65, 0.95) if i % 2 else (0.9, 0.75)
        colors[i] = np.round(np.array(colorsys.hsv_to_rgb(h, s, v)) * 255)
    return colors


def instance_image(labels: np.ndarray, ignore: int | None = 255) -> np.ndarray:
    """An instance-id map ``(H, W)`` as colours; ``ignore`` pixels white, 0 black."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be (H, W), got shape {labels.shape}")
    top = int(labels[labels != ignore].max(initial=0)) if ignore is not None else int(labels.max(initial=0))
    colors = instance_colors(top + 1)
    out = colors[np.clip(labels, 0, top)]
    if ignore is not None:
        out[labels == ignore] = 255
    return out


def instance_overlay(image: np.ndarray, labels: np.ndarray, opacity: float = 0.55) -> np.ndarray:
    """The image with each instance tinted in its colour and instance borders drawn in white.

    ``image`` is ``(H, W, 3)`` float in [0, 1] or uint8; ``labels`` ``(H, W)`` (0 is left untinted).
    """
    img = np.asarray(image)
    img = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
    labels = np.asarray(labels)
    if img.shape[:2] != labels.shape:
        raise ValueError(f"image {img.shape[:2]} and labels {labels.shape} must have the same size")
    colors = instance_image(labels, ignore=None).astype(np.float32) / 255.0
    tint = (labels > 0)[..., None]
    out = np.where(tint, (1 - opacity) * img + opacity * colors, img)
    border = np.zeros(labels.shape, bool)
    border[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    border[1:, :] |= labels[1:, :] != labels[:-1, :]
    out[border] = 1.0
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)
