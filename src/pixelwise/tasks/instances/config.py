"""The settings of an instance-grouping run (``pixelwise instances train --print-config``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...engine import OptimizerConfig, TrainConfig
from ...grouping import ExtractionConfig
from ...models import list_models

__all__ = ["InstancesConfig"]


def _default_training() -> TrainConfig:
    # From scratch on CPU-sized scenes: Adam rather than the paper's SGD "poly" schedule, which was
    # tuned for fine-tuning an ImageNet ResNet; the rate drops 10x for the last quarter.
    return TrainConfig(steps=2000, batch_size=8, val_every=500, ckpt_every=250, grad_clip=10.0,
                       optimizer=OptimizerConfig(name="adam", lr=1e-3, weight_decay=1e-5))


@dataclass
class InstancesConfig:
    model: str = "embedding_drn"
    embedding_dim: int = 64
    width: float = 0.5              # channel multiplier of the network
    blocks: int = 2                 # residual blocks per stage
    semantic: bool = True           # train a semantic head (labels instances by majority vote)
    data: str = "synthetic"         # "synthetic" or a VOC2012 / SBD folder
    follow_symlinks: bool = False   # VOC / SBD folder: accept symbolic links that lead outside it
    train_split: str = "train"
    val_split: str = "val"
    val_images: int = 32            # validate on the first N validation images (0 = all)
    synthetic_train: int = 20000    # distinct training scenes (generated on the fly)
    synthetic_seed: int = 0
    image_size: int = 160           # synthetic scene side; training crop side for real data
    scene_max_objects: int = 7      # synthetic scenes: most objects per scene
    scene_clutter: int = 6          # synthetic scenes: background clutter items
    alpha: float = 0.5              # margin of the pairwise loss
    kappa: float = 6.0              # mean-shift concentration: 3 / (1 - alpha) (main text; 36 = supplement)
    eta: float = 1.0                # mean-shift step (1 = GBMS)
    iterations: int = 5             # T unrolled mean-shift iterations in the loss (0 = embedding loss only)
    loss_at_every_iteration: bool = True
    max_pixels: int = 1024          # pixels sampled per image for the N x N pairwise loss
    semantic_weight: float = 1.0
    scorer_images: int = 64         # training images used to fit the proposal scorer after training
    extraction: ExtractionConfig = field(default_factory=ExtractionConfig)
    train: TrainConfig = field(default_factory=_default_training)

    def check(self) -> None:
        models = list_models(task="instances")
        if self.model not in models:
            raise ValueError(f"model: expected one of {', '.join(models)}, got {self.model!r}")
        if self.image_size < 32 or self.image_size % 8:
            raise ValueError(f"image_size: must be a multiple of 8 and >= 32, got {self.image_size}")
        if not 0 <= self.alpha < 1:
            raise ValueError(f"alpha: must be in [0, 1), got {self.alpha}")
        if self.iterations < 0 or self.max_pixels < 2:
            raise ValueError(f"iterations must be >= 0 and max_pixels >= 2, got {self.iterations}, {self.max_pixels}")
