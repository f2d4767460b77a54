"""The Task contract: what one pixel-level prediction system provides to the rest of pixelwise.

A task is one package ``tasks/<name>/`` whose ``task.py`` defines a :class:`Task` subclass and
registers it with :func:`register_task`. Everything user-facing is generated from that class:
``pixelwise <name> train|eval|predict`` (+ the task's own :class:`Verb` s), its part of
``pixelwise demo``, its ``pixelwise bench`` suite and its line in ``pixelwise tasks``. Nothing about
a task lives in the CLI, the demo or bench runners or the Makefile.

A subclass declares
  * ``name``, ``summary``, ``doc`` (its ``docs/<name>.md``), ``config_class`` (a dataclass with a
    ``train: TrainConfig`` field and a ``check()`` method), ``data_sources`` (named sources such as
    ``synthetic``, ``motorcycle``, ``nyu:<file>``),
  * the options of each verb as :class:`Option` s (train options set config keys),
and implements
  * :meth:`build_model`, :meth:`datasets` and :meth:`step` -- the pieces the default
    :meth:`train` wires into the engine (staged tasks override :meth:`train` with
    :func:`pixelwise.engine.train_stages`),
  * :meth:`evaluate` -> :class:`Evaluation` (metrics dict + report sections; the runner writes
    ``metrics.json`` and ``report.html``), :meth:`predict` (files in, files out),
  * :meth:`demo` (its part of the main job, with a time budget) and :meth:`bench`.
Trained models come back through :func:`pixelwise.tasks.load_run` as one :class:`LoadedRun` type;
a task adds what it needs at load time in :meth:`attach`, and may accept models in a format of its
own through :meth:`load_foreign`.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Protocol

import torch
from torch import nn

from ..engine import Step, TrainResult, config_to_dict, train
from ..models import create_model, list_models
from ..options import Option
from ..report import Report

__all__ = ["BenchReport", "DemoResult", "Evaluation", "LoadedRun", "Option", "Splits", "Task", "Verb"]

Log = Callable[[str], Any]


@dataclass(frozen=True)
class Verb:
    """An extra subcommand of a task (``lidar synth``, ``instances margin``):
    ``run(options, log) -> exit code``."""

    name: str
    help: str
    options: tuple[Option, ...]
    run: Callable[[argparse.Namespace, Log], int]


@dataclass
class Splits:
    """The datasets of a training run; ``info`` carries what the model needs to know of the data
    (class names, class weights, ...)."""

    train: Any
    val: Any = None
    info: dict = field(default_factory=dict)


@dataclass
class Evaluation:
    """What ``<task> eval`` produced: the metrics (written to ``metrics.json``), the report
    (written to ``report.html``) and the lines printed on the console."""

    metrics: dict
    report: Report
    lines: list[str] = field(default_factory=list)


@dataclass
class DemoResult:
    """A task's part of ``pixelwise demo``: its summary (``<out>/<task>/metrics.json``), the
    reports it wrote and one headline line."""

    summary: dict
    reports: list[Path]
    headline: str


class BenchReport(Protocol):
    """What a benchmark run returns: ``table()`` for people, ``to_json()`` for files (ratios
    measured in one run)."""

    def table(self) -> str: ...

    def to_json(self) -> str: ...


@dataclass
class LoadedRun:
    """A trained model as every task loads it (run folder, checkpoint file or zoo name).

    ``config`` is the task's config dataclass the model was trained with; ``extras`` holds what
    the task attaches at load time (a fitted scorer, CRF parameters, projection settings...)."""

    task: str
    model: nn.Module
    model_name: str
    config: Any
    source: str
    run_dir: Path | None
    meta: dict
    extras: dict = field(default_factory=dict)


class Task:
    """Base class of every task; see the module docstring for what a subclass provides."""

    name: ClassVar[str]
    summary: ClassVar[str]
    doc: ClassVar[str]
    config_class: ClassVar[type]
    data_sources: ClassVar[tuple[str, ...]] = ("synthetic",)
    headline: ClassVar[str] = ""
    train_options: ClassVar[tuple[Option, ...]] = ()
    eval_options: ClassVar[tuple[Option, ...]] = ()
    predict_options: ClassVar[tuple[Option, ...]] = ()
    demo_options: ClassVar[tuple[Option, ...]] = ()
    bench_options: ClassVar[tuple[Option, ...]] = ()
    verbs: ClassVar[tuple[Verb, ...]] = ()
    model_help: ClassVar[str] = "a trained run folder, checkpoint or zoo name"  # what --model accepts
    eval_help: ClassVar[str] = "evaluate a trained model: metrics.json and report.html"
    predict_help: ClassVar[str] = "predict files with a trained model"
    demo_budget_s: ClassVar[int] = 300  # the demo part's time budget on 2 CPU cores
    multiple_eval_models: ClassVar[bool] = False  # eval compares several --model side by side

    # ------------------------------------------------------------------ training pieces

    def models(self) -> list[str]:
        """The registered models this task trains and loads."""
        return list_models(task=self.name)

    def model_config(self, cfg, splits: Splits) -> dict:
        """Keyword arguments of ``create_model(cfg.model, ...)`` (stored in checkpoints)."""
        raise NotImplementedError

    def build_model(self, cfg, splits: Splits) -> nn.Module:
        return create_model(cfg.model, **self.model_config(cfg, splits))

    def datasets(self, cfg, run_dir: Path, log: Log) -> Splits:
        """Training (and validation) data for ``cfg.data``."""
        raise NotImplementedError

    def step(self, cfg, splits: Splits) -> Step | Callable:
        """The training step: a loss function ``(model, batch) -> (loss, logs)`` or an engine Step."""
        raise NotImplementedError

    def validator(self, cfg, splits: Splits) -> Callable[[nn.Module], dict] | None:
        """``validate(model) -> {name: float}`` run by the engine, or None."""
        return None

    def train(self, cfg, run_dir: Path, *, resume: bool = False, log: Log = print) -> TrainResult | None:
        """Data, then the model from ``cfg.train.seed``, then the engine's loop into ``run_dir``."""
        cfg.check()
        run_dir = Path(run_dir)
        splits = self.datasets(cfg, run_dir, log)
        torch.manual_seed(cfg.train.seed)
        model = self.build_model(cfg, splits)
        return train(model, splits.train, self.step(cfg, splits), cfg.train, run_dir, model_name=cfg.model,
                     model_config=self.model_config(cfg, splits), validate=self.validator(cfg, splits),
                     full_config=config_to_dict(cfg), resume=resume, log=log)

    # ------------------------------------------------------------------ using trained models

    def load_foreign(self, spec: str, log: Log) -> LoadedRun | None:
        """The model ``--model spec`` names when ``spec`` is in a format of this task's own (e.g.
        lidar's ``official:<folder>``, another code base's checkpoint converted on the fly), on the
        CPU; None (the default) when it is not. :func:`~pixelwise.tasks.load_run` asks before it
        looks for run folders, checkpoints and zoo names, then moves the model to the device, sets
        eval mode and runs :meth:`attach`."""
        return None

    def attach(self, loaded: LoadedRun, options: argparse.Namespace | None, log: Log) -> LoadedRun:
        """Add what evaluation / prediction need beyond the network (default: nothing)."""
        return loaded

    def evaluate(self, options: argparse.Namespace, log: Log) -> Evaluation:
        raise NotImplementedError

    def predict(self, options: argparse.Namespace, log: Log) -> str:
        """Write predictions under ``options.out``; returns the line the CLI prints."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the product's main job and benchmarks

    def demo(self, out: Path, options: argparse.Namespace, *, seed: int, quiet: bool, log: Log) -> DemoResult:
        raise NotImplementedError

    def bench(self, options: argparse.Namespace, log: Log) -> BenchReport:
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers for subclasses

    def default_config(self):
        return self.config_class()

    def config_default(self, key: str) -> Any:
        """The default of a dotted config key (shown in the help of the train options)."""
        value: Any = self.default_config()
        for part in key.split("."):
            value = getattr(value, part)
        return config_to_dict(value) if dataclasses.is_dataclass(value) else value
