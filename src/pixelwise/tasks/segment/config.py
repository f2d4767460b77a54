"""The settings of a segmentation run: :class:`SegmentConfig` (saved in every checkpoint) and the
fine-tuning :class:`StageConfig` it nests."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...checks import check_choice, check_float, check_int
from ...engine import OptimizerConfig, ScheduleConfig, TrainConfig

__all__ = ["CRF_CHOICES", "IGNORE_LABEL", "MODELS", "SegmentConfig", "StageConfig"]

MODELS = ("seg_fcn",)
IGNORE_LABEL = 255
CRF_CHOICES = ("none", "pac", "pac-loose", "dense")
LEARNED_CRFS = ("pac", "pac-loose")
COMPAT_CHOICES = ("4d", "2d", "potts")


def _default_training() -> TrainConfig:
    return TrainConfig(steps=2000, batch_size=8, val_every=500, ckpt_every=250, grad_clip=10.0,
                       optimizer=OptimizerConfig(name="adam", lr=1e-3, weight_decay=1e-5),
                       schedule=ScheduleConfig(milestones=[1600], gamma=0.1))


@dataclass
class StageConfig:
    """Steps and learning rate of one fine-tuning stage (batch size and the rest come from ``train``)."""

    steps: int = 300
    lr: float = 1e-3
    batch_size: int = 0     # 0 = train.batch_size

    def __post_init__(self) -> None:
        check_int(self.steps, "stage steps", min=0)
        check_float(self.lr, "stage lr", low=0, low_open=True)
        check_int(self.batch_size, "stage batch_size", min=0)


@dataclass
class SegmentConfig:
    model: str = "seg_fcn"
    width: float = 0.5
    blocks: int = 2
    data: str = "synthetic"          # "synthetic", a VOC2012 / SBD folder, or cityscapes:<folder>
    train_split: str = "train"
    val_split: str = "val"
    image_size: int = 192            # synthetic scene side; training crop side for real data
    synthetic_train: int = 20000
    synthetic_seed: int = 0
    val_images: int = 48             # validation (and dense-CRF grid search) images; 0 = all
    test_images: int = 100           # held-out synthetic test scenes for `segment eval`
    init: str = ""                   # a trained run folder / checkpoint to start from ("" = train the backbone)
    crf: str = "none"                # none | pac | pac-loose | dense
    crf_kernels: list[list[int]] = field(default_factory=lambda: [[5, 32]])  # [kernel_size, dilation] each
    crf_compat: str = "4d"           # 4d | 2d | potts
    crf_steps: int = 5               # mean-field steps
    crf_blur: int = 1
    hot_swap: bool = False
    hot_swap_layers: list[str] = field(default_factory=list)  # [] = last conv of stages 2-4
    hot_swap_guide: str = "backbone.stem"
    hot_swap_scale: float = 1e-4
    unary_weight: float = 1.0        # cross-entropy on the unaries beside the CRF loss (keeps them from drifting)
    band_width: int = 5              # pixels each side of a boundary in the trimap score
    # CRF alone: its weights start at 1/24 per tap and must grow ~10x, hence a rate above the network's
    crf_stage: StageConfig = field(default_factory=lambda: StageConfig(steps=250, lr=5e-3, batch_size=4))
    joint_stage: StageConfig = field(default_factory=lambda: StageConfig(steps=250, lr=1e-4, batch_size=4))
    # grid searched for crf=dense (Kraehenbuehl & Koltun search w1, theta_alpha, theta_beta the same way)
    dense_grid: dict = field(default_factory=lambda: {
        "appearance_weight": [3.0, 10.0, 20.0, 40.0], "appearance_xy": [20.0, 50.0, 100.0],
        "appearance_rgb": [5.0, 10.0, 20.0]})
    train: TrainConfig = field(default_factory=_default_training)

    def check(self) -> None:
        check_choice(self.model, "model", MODELS)
        check_choice(self.crf, "crf", CRF_CHOICES)
        check_choice(self.crf_compat, "crf_compat", COMPAT_CHOICES)
        if self.image_size < 32 or self.image_size % 8:
            raise ValueError(f"image_size: must be a multiple of 8 and >= 32, got {self.image_size}")
        if self.crf in LEARNED_CRFS:
            check_int(self.crf_steps, "crf_steps (a PAC-CRF needs at least one mean-field step)", min=1)
        for k in self.crf_kernels:
            if len(k) != 2:
                raise ValueError(f"crf_kernels: each entry must be [kernel_size, dilation], got {k!r}")
