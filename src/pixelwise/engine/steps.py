"""What one training step does: the Step protocol of the training loop.

A :class:`Step` is an ordered tuple of :class:`Update` s. Each update owns an optimizer (and a
learning-rate schedule) over a subset of the model's parameters and a loss; in every step the
loop runs the updates in order on the same batch: clear gradients, loss, backward, clip, optimizer
step, schedule step. That one shape covers

* the plain single-optimizer step (:func:`single_step`, one update over every parameter), and
* alternating multi-optimizer steps (:func:`alternating_step`), e.g. a GAN's discriminator then
  generator/encoder update, each with its own loss, optimizer, schedule, clipping and cadence
  (``every``: update only on steps divisible by it).

Every optimizer and schedule is checkpointed under its update's name, so both kinds resume
bitwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch
from torch import nn

from .config import OptimizerConfig, ScheduleConfig

__all__ = ["LossFn", "Step", "Update", "alternating_step", "as_step", "single_step"]

LossFn = Callable[[nn.Module, Any], "tuple[torch.Tensor, dict]"]

SINGLE = "model"  # the name of the one update of a single-optimizer step


@dataclass(frozen=True)
class Update:
    """One optimizer's turn inside a training step.

    ``loss(model, batch) -> (scalar tensor, {name: float})``. ``parameters(model)`` selects what
    this optimizer moves (default: every parameter of the model); ``optimizer`` / ``schedule`` /
    ``grad_clip`` default to the run's ``TrainConfig`` values.
    """

    name: str
    loss: LossFn
    parameters: Callable[[nn.Module], Iterable[torch.nn.Parameter]] | None = None
    optimizer: OptimizerConfig | None = None
    schedule: ScheduleConfig | None = None
    grad_clip: float | None = None
    every: int = 1

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str) or "." in self.name:
            raise ValueError(f"Update.name must be a non-empty string without '.', got {self.name!r}")
        if not callable(self.loss):
            raise TypeError(f"Update.loss must be callable, got {type(self.loss).__name__}")
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ValueError(f"Update.every must be a positive int, got {self.every!r}")

    def params(self, model: nn.Module) -> list[torch.nn.Parameter]:
        return list(model.parameters() if self.parameters is None else self.parameters(model))


@dataclass(frozen=True)
class Step:
    """The updates of one training step, run in order on the same batch."""

    updates: tuple[Update, ...]

    def __post_init__(self) -> None:
        if not self.updates:
            raise ValueError("Step needs at least one Update")
        names = [u.name for u in self.updates]
        if len(set(names)) != len(names):
            raise ValueError(f"Step: update names must be unique, got {names}")

    @property
    def single(self) -> bool:
        return len(self.updates) == 1


def single_step(loss: LossFn) -> Step:
    """Today's step: one optimizer over every parameter, one loss."""
    return Step((Update(SINGLE, loss),))


def alternating_step(*updates: Update) -> Step:
    """Several optimizers taking turns on each batch, in the order given."""
    return Step(tuple(updates))


def as_step(step_or_loss: Step | LossFn) -> Step:
    """A :class:`Step` as it is, or a plain loss function as a single-optimizer step."""
    if isinstance(step_or_loss, Step):
        return step_or_loss
    if callable(step_or_loss):
        return single_step(step_or_loss)
    raise TypeError(f"expected a Step or a loss function, got {type(step_or_loss).__name__}")
