"""The training engine: configs, checkpoints, run folders, the training loop and its step shapes.

Every task trains through :func:`train` (or :func:`train_stages`) with a :class:`TrainConfig`
nested in its own config dataclass, and saves/loads models through the safetensors + JSON
checkpoints of :mod:`pixelwise.engine.checkpoint`. What the loop guarantees (bitwise resume,
SIGINT/SIGTERM, one run per folder) is in :mod:`pixelwise.engine.trainer`.
"""

from .checkpoint import (
    Checkpoint,
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    load_model,
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
from .distributed import (DeviceError, DistInfo, all_reduce_mean, barrier, cleanup, init_distributed, is_main,
                          resolve_device)
from .run_lock import RunLockedError, run_lock
from .signals import EXIT_CODES, StopSignals
from .stages import Stage, publish_model, train_stages
from .steps import Step, Update, alternating_step, as_step, single_step
from .trainer import NonFiniteLossError, TrainResult, build_optimizer, build_scheduler, freeze, move_to_device, train

__all__ = [
    "EXIT_CODES",
    "Checkpoint",
    "CheckpointError",
    "DeviceError",
    "DistInfo",
    "NonFiniteLossError",
    "OptimizerConfig",
    "RunLockedError",
    "ScheduleConfig",
    "Stage",
    "Step",
    "StopSignals",
    "TrainConfig",
    "TrainResult",
    "Update",
    "all_reduce_mean",
    "alternating_step",
    "as_step",
    "barrier",
    "build_optimizer",
    "build_scheduler",
    "cleanup",
    "config_from_dict",
    "config_to_dict",
    "freeze",
    "init_distributed",
    "is_main",
    "latest_checkpoint",
    "load_checkpoint",
    "load_config",
    "load_model",
    "load_weights",
    "move_to_device",
    "publish_model",
    "resolve_device",
    "restore_training_state",
    "run_lock",
    "save_checkpoint",
    "save_config",
    "single_step",
    "train",
    "train_stages",
    "unwrap_model",
]
