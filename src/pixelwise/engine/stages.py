"""Staged runs: a list of stages, each with its own steps, optimizer, step shape and frozen modules.

Fine-tuning recipes train in stages (PAC-CRF: the CRF alone on a frozen network, then everything
jointly). Each stage is an ordinary run of :func:`~.trainer.train` in ``<run>/<stage name>/``, so
each is resumable bitwise on its own; a finished stage (its ``model.json`` exists) is skipped by
loading its weights, so a staged run interrupted inside its second stage resumes there.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from torch import nn

from .checkpoint import latest_checkpoint, load_weights
from .config import TrainConfig
from .run_lock import run_lock
from .steps import LossFn, Step
from .trainer import TrainResult, train

__all__ = ["Stage", "publish_model", "train_stages"]


@dataclass(frozen=True)
class Stage:
    """One stage: its folder name, training settings, step and the submodules it keeps frozen."""

    name: str
    config: TrainConfig
    step: Step | LossFn
    frozen: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"Stage.name must be a plain folder name, got {self.name!r}")
        if not isinstance(self.config, TrainConfig):
            raise TypeError(f"Stage.config must be a TrainConfig, got {type(self.config).__name__}")


def train_stages(model: nn.Module, train_set, stages: list[Stage], run_dir: str | os.PathLike, *, model_name: str,
                 model_config: dict, validate: Callable | None = None, full_config: Any = None, resume: bool = False,
                 log: Callable[[str], Any] = print) -> TrainResult | None:
    """Train ``stages`` in order into ``run_dir/<stage>``; returns the last stage's result (an
    interrupted one as soon as a stage is interrupted), or None when every stage was done already.
    Frozen modules are frozen for their stage only: each stage starts from the model's own
    ``requires_grad`` flags."""
    run_dir = Path(run_dir)
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise ValueError(f"stages: names must be unique, got {names}")
    trainable = {name: p.requires_grad for name, p in model.named_parameters()}
    result = None
    with run_lock(run_dir, on_stale=log):
        for stage in stages:
            stage_dir = run_dir / stage.name
            for name, p in model.named_parameters():
                p.requires_grad_(trainable[name])
            if (stage_dir / "model.json").exists():
                load_weights(model, stage_dir / "model", strict=True)
                log(f"stage {stage.name}: already trained, weights loaded")
                continue
            log(f"stage {stage.name}: {stage.config.steps} steps, lr {stage.config.optimizer.lr:g}"
                + (f", frozen: {', '.join(stage.frozen)}" if stage.frozen else ""))
            result = train(model, train_set, stage.step, stage.config, stage_dir, model_name=model_name,
                           model_config=model_config, validate=validate, full_config=full_config,
                           resume=resume and latest_checkpoint(stage_dir) is not None, frozen=stage.frozen, log=log)
            if result.interrupted:
                return result
        for name, p in model.named_parameters():
            p.requires_grad_(trainable[name])
        model.train(False)
    return result


def publish_model(stage_dir: str | os.PathLike, run_dir: str | os.PathLike) -> None:
    """Copy a stage's final ``model`` pair to the run folder: tensors first, so a ``model.json``
    in the run folder always means a complete pair."""
    stage_dir, run_dir = Path(stage_dir), Path(run_dir)
    for suffix in (".safetensors", ".json"):
        tmp = run_dir / f".model{suffix}.tmp"
        shutil.copyfile(stage_dir / f"model{suffix}", tmp)
        tmp.replace(run_dir / f"model{suffix}")
