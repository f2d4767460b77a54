"""The data of the segmentation task: synthetic material scenes, a VOC2012 / SBD folder or
``cityscapes:<folder>``; class names and label colours for each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from ...data.datasets.cityscapes import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, CityscapesSegmentation
from ...data.datasets.voc_segmentation import VOC_CLASSES, VocSegmentation
from ...data.io.palette_png import VOC_PALETTE
from ...data.synthetic.segmentation import CLASS_NAMES, SegSceneConfig, SyntheticSegmentation
from ...data.transforms.crops import RandomScaleCrop
from ..base import Splits
from .config import IGNORE_LABEL, SegmentConfig

__all__ = ["class_names", "evaluation_dataset", "load_splits", "palette", "real_dataset"]

SYNTHETIC_VAL_SEED, SYNTHETIC_TEST_SEED = 7919, 104729  # offsets: no held-out scene repeats a training one
CITYSCAPES = "cityscapes:"


def real_dataset(data: str, split: str, *, follow_symlinks: bool = False) -> Dataset:
    """A split of a VOC2012 / SBD folder or of ``cityscapes:<folder>``."""
    if data.startswith(CITYSCAPES):
        root = Path(data[len(CITYSCAPES):])
        if not root.exists():
            raise FileNotFoundError(f"data: {root} does not exist")
        return CityscapesSegmentation(root, split, follow_symlinks=follow_symlinks)
    root = Path(data)
    if not root.exists():
        raise FileNotFoundError(f"data: {root} does not exist")
    return VocSegmentation(root, split, follow_symlinks=follow_symlinks)


def class_names(data: str) -> tuple[str, ...]:
    if data == "synthetic":
        return tuple(CLASS_NAMES)
    return tuple(CITYSCAPES_CLASSES) if data.startswith(CITYSCAPES) else tuple(VOC_CLASSES)


def palette(data: str) -> np.ndarray:
    """Colours for the label PNGs: the VOC palette, or Cityscapes' for Cityscapes."""
    return CITYSCAPES_PALETTE if data.startswith(CITYSCAPES) else VOC_PALETTE


def synthetic_scenes(cfg: SegmentConfig, count: int, seed_offset: int, augment: bool = False) -> Dataset:
    scene = SegSceneConfig(height=cfg.image_size, width=cfg.image_size)
    return SyntheticSegmentation(count, seed=cfg.synthetic_seed + seed_offset, cfg=scene, augment=augment)


def load_splits(cfg: SegmentConfig) -> Splits:
    """Training data (random crops for real data) and the validation images; ``info["class_names"]``."""
    if cfg.data == "synthetic":
        return Splits(synthetic_scenes(cfg, cfg.synthetic_train, 0, augment=True),
                      synthetic_scenes(cfg, cfg.val_images or 48, SYNTHETIC_VAL_SEED),
                      {"class_names": class_names(cfg.data)})
    train_set = RandomScaleCrop(real_dataset(cfg.data, cfg.train_split), cfg.image_size, seed=cfg.train.seed,
                                label_keys=("label",), ignore_index=IGNORE_LABEL)
    return Splits(train_set, real_dataset(cfg.data, cfg.val_split), {"class_names": class_names(cfg.data)})


def evaluation_dataset(cfg: SegmentConfig, data: str, split: str = "test", *, follow_symlinks: bool = False):
    """Held-out data: synthetic ``val`` (the validation / grid-search scenes) or ``test`` scenes,
    or a split of a real dataset folder."""
    if data == "synthetic":
        if split not in ("val", "test"):
            raise ValueError(f"--split for synthetic data must be 'val' or 'test', got {split!r}")
        if split == "val":
            return synthetic_scenes(cfg, cfg.val_images or 48, SYNTHETIC_VAL_SEED)
        return synthetic_scenes(cfg, cfg.test_images or 100, SYNTHETIC_TEST_SEED)
    return real_dataset(data, split, follow_symlinks=follow_symlinks)
