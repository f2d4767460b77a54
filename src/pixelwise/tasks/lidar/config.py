"""The settings of a LiDAR segmentation run: network, data, range-image projection, kNN
refinement and the paper's training recipe."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...data.datasets.semantic_kitti import SPLITS
from ...data.transforms.spherical_projection import SENSOR_MEANS, SENSOR_STDS, ProjectionConfig
from ...checks import check_choice
from ...engine import OptimizerConfig, TrainConfig
from ...models.squeezeseg_ablation import BLOCK_TYPES
from ...ops.range_knn import KNN_MODES

__all__ = ["ABLATION_BLOCKS", "ABLATION_MODELS", "MODELS", "OFFICIAL_MODELS", "KnnConfig", "LidarConfig"]

OFFICIAL_MODELS = ("ssgv3_21", "ssgv3_53")                    # the released network (SAC blocks)
ABLATION_MODELS = ("ssgv3_ablation_21", "ssgv3_ablation_53")  # the Table-3 network, block swappable
MODELS = OFFICIAL_MODELS + ABLATION_MODELS
ABLATION_BLOCKS = BLOCK_TYPES


def _paper_training() -> TrainConfig:
    # Xu et al. 2020: SGD, lr 0.01 (SSGV3-21), momentum 0.9, weight decay 1e-4, 1 warm-up epoch,
    # then a per-epoch decay (the warm-up and decay are set from warmup_epochs / epoch_decay).
    return TrainConfig(steps=20000, batch_size=8, val_every=1000, ckpt_every=500, grad_clip=10.0,
                       optimizer=OptimizerConfig(name="sgd", lr=0.01, momentum=0.9, weight_decay=1e-4))


@dataclass
class KnnConfig:
    """RangeNet++ kNN refinement settings (the paper's defaults)."""

    enabled: bool = True
    window: int = 7
    k: int = 7
    sigma: float = 1.0
    cutoff: float = 1.0  # metres
    mode: str = "default"  # or "reference": RangeNet++'s KNN.py point for point (see pixelwise.ops.range_knn)

    def options(self) -> dict:
        return {"window": self.window, "k": self.k, "sigma": self.sigma, "cutoff": self.cutoff, "mode": self.mode}


@dataclass
class LidarConfig:
    model: str = "ssgv3_21"
    block: str | None = None        # ablation models only: plain, S, IS, SK, ISK (default), PAC, SE, CBAM, CAM
    width: float = 1.0              # channel multiplier of the whole network
    data: str = "synthetic"         # "synthetic" or a SemanticKITTI folder
    train_sequences: list[str] = field(default_factory=lambda: [f"{s:02d}" for s in SPLITS["train"]])
    val_sequences: list[str] = field(default_factory=lambda: [f"{s:02d}" for s in SPLITS["valid"]])
    val_scans: int = 0              # validate on the first N validation scans (0 = all)
    synthetic_scans: int = 400      # training scans generated when data = synthetic
    synthetic_val_scans: int = 16
    synthetic_seed: int = 0
    height: int = 64
    image_width: int = 2048
    fov_up: float = 3.0
    fov_down: float = -25.0
    sensor_means: list[float] = field(default_factory=lambda: list(SENSOR_MEANS))  # range, x, y, z, remission
    sensor_stds: list[float] = field(default_factory=lambda: list(SENSOR_STDS))
    augment: bool = True
    class_weight_eps: float = 1e-3
    warmup_epochs: float = 1.0      # linear warm-up (0 = none)
    epoch_decay: float = 0.99       # learning rate x this per epoch (1 = constant)
    knn: KnnConfig = field(default_factory=KnnConfig)
    train: TrainConfig = field(default_factory=_paper_training)

    def check(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model: expected one of {', '.join(MODELS)}, got {self.model!r}")
        if self.block is not None:
            if self.model not in ABLATION_MODELS:
                raise ValueError(f"block: {self.model} is the released network (SAC blocks throughout); block "
                                 f"variants are for the ablation network, {' or '.join(ABLATION_MODELS)}")
            if self.block not in ABLATION_BLOCKS:
                raise ValueError(f"block: expected one of {', '.join(ABLATION_BLOCKS)}, got {self.block!r}")
        if self.image_width % 8:
            raise ValueError(f"image_width: must be a multiple of 8 (the network's width stride), got {self.image_width}")
        if self.data == "synthetic" and (self.synthetic_scans < 1 or self.synthetic_val_scans < 1):
            raise ValueError("synthetic_scans and synthetic_val_scans must be >= 1")
        if self.warmup_epochs < 0 or not 0 < self.epoch_decay <= 1:
            raise ValueError(f"warmup_epochs must be >= 0 and epoch_decay in (0, 1], got {self.warmup_epochs}, "
                             f"{self.epoch_decay}")
        check_choice(self.knn.mode, "knn.mode", KNN_MODES)
        self.projection()

    def projection(self) -> ProjectionConfig:
        return ProjectionConfig(self.height, self.image_width, self.fov_up, self.fov_down, tuple(self.sensor_means),
                                tuple(self.sensor_stds))
