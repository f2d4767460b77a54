"""The shared training engine: configs, checkpoints, distributed helpers and the training loop.

Every task (upsampling, depth, segmentation, ...) trains through :func:`train` with a
:class:`TrainConfig` nested in its own config dataclass, and saves/loads models through the
safetensors + JSON checkpoints of :mod:`pixelwise.engine.checkpoint`.
"""

from .checkpoint import (
    Checkpoint,
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    load_model,
    load_trained_model,
    load_weights,
    restore_training_state,
    save_checkpoint,
    unwrap_model,
)
from .config import (
    OptimizerConfig,
    ScheduleConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)
from .distributed import DistInfo, all_reduce_mean, barrier, cleanup, init_distributed, is_main
from .trainer import TrainResult, build_optimizer, build_scheduler, move_to_device, train

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "DistInfo",
    "OptimizerConfig",
    "ScheduleConfig",
    "TrainConfig",
    "TrainResult",
    "all_reduce_mean",
    "barrier",
    "build_optimizer",
    "build_scheduler",
    "cleanup",
    "config_from_dict",
    "config_to_dict",
    "init_distributed",
    "is_main",
    "latest_checkpoint",
    "load_checkpoint",
    "load_config",
    "load_model",
    "load_trained_model",
    "load_weights",
    "move_to_device",
    "restore_training_state",
    "save_checkpoint",
    "save_config",
    "train",
    "unwrap_model",
]
