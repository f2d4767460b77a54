"""The settings of an upsampling run (``pixelwise upsample train --print-config``) and the method
names the task knows."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...checks import check_choice, check_positive_int
from ...engine import OptimizerConfig, ScheduleConfig, TrainConfig
from ...models.upsampling_base import KINDS

__all__ = ["INTERPOLATION", "LEARNED", "PARAMETER_FREE", "UpsampleConfig"]

LEARNED = ("pac_upsampler", "pac_upsampler_lite", "djf")
PARAMETER_FREE = ("bicubic", "bilinear", "jbu")
INTERPOLATION = ("bicubic", "bilinear")  # nothing to train, not even a search


def _paper_schedule() -> TrainConfig:
    # Su et al. 2019: Adam, lr 1e-4 for 3.5k steps, 1e-5 for 1.5k, 1e-6 for 0.5k, 256x256 crops.
    return TrainConfig(steps=5500, batch_size=8, val_every=500, ckpt_every=500,
                       optimizer=OptimizerConfig(name="adam", lr=1e-4),
                       schedule=ScheduleConfig(milestones=[3500, 5000], gamma=0.1))


@dataclass
class UpsampleConfig:
    model: str = "pac_upsampler_lite"
    factor: int = 8
    kind: str = "depth"
    data: str = "synthetic"
    synthetic_length: int = 20000   # scenes per epoch when data = synthetic
    crop: int = 256
    val_size: int = 8               # held-out synthetic scenes for validation
    target_scale: float = 1000.0    # 16-bit PNG targets: value = png / target_scale
    follow_symlinks: bool = False   # read data through symbolic links that lead outside its folder
    train: TrainConfig = field(default_factory=_paper_schedule)

    def check(self) -> None:
        check_choice(self.model, "model", LEARNED + PARAMETER_FREE)
        check_choice(self.kind, "kind", tuple(KINDS))
        check_positive_int(self.factor, "factor")
        if self.factor not in (2, 4, 8, 16) and self.model in LEARNED:
            raise ValueError(f"factor: the learned upsamplers support 4, 8 and 16, got {self.factor}")
        if self.crop % self.factor:
            raise ValueError(f"crop: {self.crop} is not a multiple of factor {self.factor}")
