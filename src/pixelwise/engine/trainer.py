"""The shared training loop: one function, :func:`train`, used by every task.

What it guarantees, and why:

* **Exact resume.** A checkpoint holds the model, optimizer, scheduler, every RNG state (per
  rank), the epoch and the position inside it, and the partly filled log window. Training N
  steps and training k steps, stopping, then resuming to N give bitwise identical weights on
  CPU (tested), so an interrupted run loses nothing but time.
* **Pre-emption safe.** The first SIGINT or SIGTERM only sets a flag; the loop stops at the next
  step boundary (all DDP ranks agree on which), saves a checkpoint and returns
  ``TrainResult(interrupted=True, signal=...)``. A second signal while that checkpoint is written
  waits for the write; at any other time it (or a ``KeyboardInterrupt`` raised by user code) stops
  at once, and the last completed step is still saved unless it hit the middle of an update.
* **One run per folder.** The run folder is locked (:mod:`.run_lock`) while a run owns it.
* **Any step shape.** ``step`` is a loss function (one optimizer) or a :class:`~.steps.Step` of
  several alternating updates, each with its own optimizer and schedule (GANs); all resume
  bitwise. ``frozen`` names modules that keep their weights and BatchNorm statistics (a stage
  of a :func:`~.stages.train_stages` run).
* **DDP = single process.** The sampler gives each rank a contiguous slice of the same global
  batch; with a loss that averages over the batch, a DDP run follows the single-process run
  with the same global batch (up to float summation order).
* **Loud failures.** A non-finite loss (or gradient norm) stops training with
  :class:`NonFiniteLossError` naming the step and how to resume, rather than silently training
  on NaNs.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.utils.data import DataLoader

from .checkpoint import latest_checkpoint, load_checkpoint, load_weights, restore_training_state, save_checkpoint
from .config import OptimizerConfig, ScheduleConfig, TrainConfig, config_to_dict, save_config
from .distributed import (
    DistInfo,
    all_reduce_max,
    all_reduce_mean,
    barrier,
    broadcast_object,
    gather_objects,
    init_distributed,
    is_main,
)
from .rng import capture_rng, preserved_rng, restore_rng, seed_all
from .run_lock import run_lock
from .runlog import RunLog, format_values, make_progress, to_float
from .sampler import ResumableBatchSampler, epoch_seed
from .signals import StopSignals
from .steps import LossFn, Step, as_step

__all__ = ["NonFiniteLossError", "TrainResult", "train", "build_optimizer", "build_scheduler", "freeze",
           "move_to_device"]

RESERVED_LOG_KEYS = ("step", "split", "loss", "lr", "time_s")


@dataclass
class TrainResult:
    step: int  # optimizer steps completed
    metrics: dict  # {"train_loss": ..., **last validation metrics}
    checkpoint: Path | None  # final model.safetensors, or the interrupt checkpoint
    interrupted: bool
    signal: str | None = None  # "SIGINT" / "SIGTERM" when a signal stopped the run


class NonFiniteLossError(FloatingPointError):
    """A NaN or infinite loss or gradient norm; the message gives the step and how to resume."""


# --------------------------------------------------------------------------- building blocks


def build_optimizer(params, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD (with momentum) from the config."""
    params = list(params)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise ValueError(f"optimizer.name must be one of adam, adamw, sgd, got {cfg.name!r}")


class _StepFactor:
    """``LambdaLR`` factor for 0-based scheduler epoch ``e`` (= 1-based step ``e + 1``); a class,
    not a closure, so its settings travel in the scheduler's ``state_dict``."""

    def __init__(self, cfg: ScheduleConfig) -> None:
        self.milestones, self.gamma = list(cfg.milestones), cfg.gamma
        self.warmup_steps, self.decay_rate, self.decay_every = cfg.warmup_steps, cfg.decay_rate, cfg.decay_every

    def __call__(self, epoch: int) -> float:
        return ScheduleConfig(self.milestones, self.gamma, self.warmup_steps, self.decay_rate,
                              self.decay_every).factor(epoch + 1)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: ScheduleConfig):
    """A scheduler stepped once per optimizer step that applies :meth:`ScheduleConfig.factor`.

    Plain step decay stays a ``MultiStepLR`` (so checkpoints of such runs resume as before);
    warm-up or exponential decay use a ``LambdaLR``.
    """
    if cfg.warmup_steps == 0 and cfg.decay_rate == 1.0:
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(cfg.milestones), gamma=cfg.gamma)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, _StepFactor(cfg))


def move_to_device(obj: Any, device: torch.device) -> Any:
    """Tensors inside (nested) dicts, lists and tuples moved to ``device``; other values kept."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: move_to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # namedtuple
        return type(obj)(*(move_to_device(v, device) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to_device(v, device) for v in obj)
    return obj


class _Stop(Exception):
    """All ranks agreed to stop after a Ctrl-C."""


class _Window:
    """Sums of the loss and the loss_fn logs since the last log line (per rank)."""

    def __init__(self, state: dict | None = None) -> None:
        self.sums: dict[str, float] = dict((state or {}).get("sums", {}))
        self.count: int = int((state or {}).get("count", 0))

    def add(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.count += 1

    def means(self) -> dict[str, float]:
        return {k: v / max(self.count, 1) for k, v in self.sums.items()}

    def state(self) -> dict:
        return {"sums": dict(self.sums), "count": self.count}


def _check_finite(value: float, what: str, step: int, lr: float, last_saved: int) -> None:
    if not math.isfinite(value):
        since = f"its last checkpoint (step {last_saved})" if last_saved > 0 else "step 0 (no checkpoint yet)"
        raise NonFiniteLossError(
            f"{what} is {value} at step {step} (lr {lr:g}); training stopped. Check the data, the learning rate "
            f"and the model, then continue the run from {since} with --resume (resume=True)"
        )


def freeze(model: nn.Module, names) -> None:
    """Freeze the named submodules: no gradients, and BatchNorm/dropout in eval mode whenever the
    model is put in train mode by the loop (call again after ``model.train()``)."""
    for name in names:
        try:
            module = model.get_submodule(name)
        except AttributeError:
            raise ValueError(f"frozen: the model has no submodule {name!r}") from None
        module.requires_grad_(False)
        module.eval()


def _rotate(ckpt_dir: Path, keep: int) -> None:
    """Keep the newest ``keep`` step checkpoints; remove older ones, incomplete saves and stale
    temporary files (only rank 0 writes here, and never two files at once)."""
    complete, files = [], {}
    for entry in ckpt_dir.iterdir():
        name = entry.name
        if name.startswith(".") and name.endswith((".tmp", ".tmp.safetensors", ".tmp.json")):
            entry.unlink(missing_ok=True)
            continue
        if name.startswith("step-") and name.endswith((".json", ".safetensors")):
            stem = name.rsplit(".", 1)[0]
            files.setdefault(stem, []).append(entry)
            if name.endswith(".json"):
                complete.append(stem)
    newest = set(sorted(complete, key=lambda s: int(s[5:]) if s[5:].isdigit() else -1)[-keep:])
    last = max((int(s[5:]) for s in complete if s[5:].isdigit()), default=-1)
    for stem, entries in files.items():
        step = int(stem[5:]) if stem[5:].isdigit() else -1
        if stem in newest or (stem not in complete and step > last):
            continue
        for entry in sorted(entries, key=lambda e: e.suffix != ".json"):  # the .json first
            entry.unlink(missing_ok=True)


# --------------------------------------------------------------------------- the loop


def train(
    model: nn.Module,
    train_set,
    step: Step | LossFn,
    config: TrainConfig,
    run_dir: str | os.PathLike,
    *,
    model_name: str,
    model_config: dict,
    validate: Callable[[nn.Module], dict] | None = None,
    full_config: Any = None,
    resume: bool = False,
    collate_fn: Callable | None = None,
    frozen: tuple[str, ...] = (),
    log: Callable[[str], Any] = print,
) -> TrainResult:
    """Train ``model`` for ``config.steps`` optimizer steps; see the module docstring.

    ``step`` is a :class:`~.steps.Step` or a loss function ``loss_fn(model, batch) -> (scalar
    loss, {name: float})`` (one optimizer over every parameter); losses get the batch already on
    the device (and the DDP wrapper under DDP); the log names ``step, split, loss, lr, time_s``
    are reserved. ``frozen`` names submodules kept frozen (no gradient, eval-mode BatchNorm). ``validate(model) -> {name: float}`` runs on rank 0 only, in eval mode under
    ``torch.no_grad()``, every ``config.val_every`` steps and at the end, without disturbing the
    training RNG streams. ``run_dir`` gets ``config.yaml``, ``log.jsonl``,
    ``checkpoints/step-XXXXXXX.{safetensors,json}`` and finally ``model.{safetensors,json}``.
    The caller owns the process group (``distributed.cleanup``); train only joins it.
    """
    return _Trainer(model, train_set, as_step(step), config, Path(run_dir), model_name, model_config, validate,
                    full_config, collate_fn, tuple(frozen), log).run(resume)


class _Trainer:
    def __init__(self, model, train_set, step_spec: Step, config, run_dir, model_name, model_config, validate,
                 full_config, collate_fn, frozen, log):
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.cfg = config
        self.run_dir = run_dir
        self.ckpt_dir = run_dir / "checkpoints"
        self.info: DistInfo = init_distributed(config.device)
        self.main = is_main(self.info)
        self.model = model
        self.train_set = train_set
        self.step_spec = step_spec
        self.frozen = frozen
        self.signals = StopSignals()
        self.validate_fn = validate
        self.model_name = model_name
        self.model_config = dict(model_config)
        self.config_dict = config_to_dict(full_config if full_config is not None else config)
        self.full_config = full_config if full_config is not None else config
        self.collate_fn = collate_fn
        self._log = log
        if config.batch_size % self.info.world_size:
            raise ValueError(
                f"batch_size {config.batch_size} (the global batch) is not divisible by the "
                f"world size {self.info.world_size}"
            )
        try:
            n = len(train_set)
        except TypeError:
            raise TypeError("train_set must be a map-style dataset with __len__ (IterableDataset is not supported)") from None
        self.sampler = ResumableBatchSampler(
            n, config.batch_size, world_size=self.info.world_size, rank=self.info.rank, seed=config.seed
        )
        self.runlog = RunLog(run_dir / "log.jsonl", enabled=self.main)
        # Training position, all "after the last completed step".
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.time_offset = 0.0
        self.window = _Window()
        self.metrics: dict[str, float] = {}
        self.last_val_step = -1
        self.last_saved_step = -1
        self.rank_snapshot: dict = {}
        self.in_update = False

    def say(self, message: str) -> None:
        if self.main:
            self._log(message)

    # ----------------------------------------------------------------- set-up

    def _prepare(self, resume: bool):
        cfg, info = self.cfg, self.info
        ckpt = None
        if resume:
            path = latest_checkpoint(self.run_dir)
            if path is not None:
                ckpt = load_checkpoint(path)
            elif not (self.run_dir / "log.jsonl").exists():
                raise FileNotFoundError(f"cannot resume {self.run_dir}: no run there (no log.jsonl and no complete "
                                        f"checkpoint in {self.ckpt_dir})")
            else:  # stopped before its first checkpoint (e.g. killed): nothing to lose, start over
                self.say(f"note: {self.ckpt_dir} holds no complete checkpoint yet; starting the run from step 0")
                if self.main:
                    self.runlog.truncate_after(0)
        elif latest_checkpoint(self.run_dir) is not None or (self.run_dir / "log.jsonl").exists():
            raise FileExistsError(
                f"{self.run_dir} already holds a run (log.jsonl or checkpoints); resume it or use another run directory"
            )
        self.model.to(info.device)
        if ckpt is not None:
            load_weights(self.model, ckpt, strict=True)
        freeze(self.model, self.frozen)
        self.updates = self.step_spec.updates
        self.optimizers = {u.name: build_optimizer(u.params(self.model), u.optimizer or cfg.optimizer)
                           for u in self.updates}
        self.schedulers = {u.name: build_scheduler(self.optimizers[u.name], u.schedule or cfg.schedule)
                           for u in self.updates}
        if ckpt is None:
            seed_all(cfg.seed + info.rank)
            return None
        state = restore_training_state(ckpt, *self._optimizer_state())
        self.step = ckpt.step
        self.metrics = dict(ckpt.metrics)
        self.last_saved_step = self.last_val_step = self.step
        self.epoch = int(state.get("epoch", 0))
        samples = int(state.get("samples_in_epoch", 0))
        self.batch_in_epoch = min(samples // cfg.batch_size, self.sampler.batches_per_epoch)
        self.time_offset = float(state.get("time_s", 0.0))
        ranks = state.get("ranks") or []
        if info.rank < len(ranks) and state.get("world_size") == info.world_size:
            restore_rng(ranks[info.rank]["rng"])
            self.window = _Window(ranks[info.rank].get("window"))
        else:
            seed_all(epoch_seed(cfg.seed + info.rank, self.step))
            self.say(f"note: no saved RNG state for rank {info.rank} of {info.world_size}; reseeded (resume is not bitwise exact)")
        if state.get("global_batch") != cfg.batch_size:
            self.say(f"note: global batch changed from {state.get('global_batch')} to {cfg.batch_size}; data position approximated")
        return ckpt

    # ----------------------------------------------------------------- pieces of a step

    def _optimizer_state(self) -> tuple:
        """What a checkpoint stores: a single step keeps the one-optimizer layout of earlier
        versions (their checkpoints resume); alternating steps store each update by name."""
        if self.step_spec.single:
            name = self.updates[0].name
            return self.optimizers[name], self.schedulers[name]
        return self.optimizers, self.schedulers

    def train_mode(self) -> None:
        self.model.train()
        freeze(self.model, self.frozen)

    def _train_state(self, ranks: list) -> dict:
        return {
            "epoch": self.epoch,
            "samples_in_epoch": self.batch_in_epoch * self.cfg.batch_size,
            "time_s": self.elapsed(),
            "world_size": self.info.world_size,
            "global_batch": self.cfg.batch_size,
            "ranks": ranks,
        }

    def elapsed(self) -> float:
        return self.time_offset + (time.perf_counter() - self.t0)

    def save_step_checkpoint(self, *, collective: bool = True) -> Path | None:
        ranks = gather_objects(self.info, self.rank_snapshot) if collective else [self.rank_snapshot]
        path = None
        if self.main:
            optimizer, scheduler = self._optimizer_state()
            with self.signals.saving():
                path = save_checkpoint(
                    self.ckpt_dir / f"step-{self.step:07d}", self.model, model_name=self.model_name,
                    model_config=self.model_config, step=self.step, metrics=self.metrics, config=self.config_dict,
                    optimizer=optimizer, scheduler=scheduler, train_state=self._train_state(ranks),
                )
                _rotate(self.ckpt_dir, self.cfg.keep_checkpoints)
        self.last_saved_step = self.step
        return path

    def run_validation(self) -> None:
        metrics = None
        if self.main:
            base = self.model
            with preserved_rng(), torch.no_grad():
                base.eval()
                try:
                    raw = self.validate_fn(base)
                finally:
                    self.train_mode()
            metrics = {str(k): to_float(v) for k, v in dict(raw or {}).items()}
            self.runlog.write({"step": self.step, "split": "val", **metrics})
            self.say(f"step {self.step}/{self.cfg.steps} val {format_values(metrics)}")
        metrics = broadcast_object(self.info, metrics)  # also holds the other ranks back until done
        self.metrics.update(metrics)
        self.last_val_step = self.step

    def write_train_log(self, lr: float) -> None:
        means = all_reduce_mean(self.info, self.window.means())
        self.window = _Window()
        record = {"step": self.step, "split": "train", "loss": means.pop("loss"), "lr": lr}
        record.update({k: v for k, v in means.items() if k not in RESERVED_LOG_KEYS})
        record["time_s"] = round(self.elapsed(), 3)
        self.runlog.write(record)
        self.metrics["train_loss"] = record["loss"]
        if self.pbar is None and not self.cfg.quiet:
            shown = {k: v for k, v in record.items() if k not in ("step", "split", "time_s")}
            self.say(f"step {self.step}/{self.cfg.steps} {format_values(shown)}")

    def one_step(self, batch) -> None:
        step = self.step + 1
        first = self.updates[0].name
        lr = float(self.optimizers[first].param_groups[0]["lr"])
        batch = move_to_device(batch, self.info.device)
        values: dict = {}
        total = 0.0
        due = [u for u in self.updates if step % u.every == 0]
        for update in due:
            optimizer = self.optimizers[update.name]
            for opt in self.optimizers.values():
                opt.zero_grad(set_to_none=True)
            loss, logs = update.loss(self.net, batch)
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                raise TypeError(f"the loss of update {update.name!r} must be (scalar tensor, dict), got loss "
                                f"{type(loss).__name__} at step {step}")
            loss_value = float(loss.detach())
            what = "the loss" if self.step_spec.single else f"the {update.name} loss"
            _check_finite(loss_value, what, step, lr, self.last_saved_step)
            loss.backward()
            total += loss_value
            prefix = "" if self.step_spec.single else f"{update.name}_"
            if prefix:
                values[f"{prefix}loss"] = loss_value
            values.update({str(k): to_float(v) for k, v in dict(logs or {}).items()})
            clip = update.grad_clip if update.grad_clip is not None else self.cfg.grad_clip
            if clip is not None:
                params = [p for group in optimizer.param_groups for p in group["params"]]
                norm = float(torch.nn.utils.clip_grad_norm_(params, clip))
                _check_finite(norm, f"the {prefix}gradient norm".replace("_gradient", " gradient"), step, lr,
                              self.last_saved_step)
                values[f"{prefix}grad_norm"] = norm
            self.in_update = True  # from the first optimizer step on, the state is mid-update
            optimizer.step()
            self.schedulers[update.name].step()
        values = {"loss": total, **values}
        loss_value = total
        self.step = step
        self.batch_in_epoch += 1
        if self.batch_in_epoch >= self.sampler.batches_per_epoch:
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        self.in_update = False
        self.window.add({k: v for k, v in values.items() if isinstance(v, float)})
        self.rank_snapshot = {"rng": capture_rng(), "window": self.window.state()}
        if self.pbar is not None:
            self.pbar.set_postfix(loss=f"{loss_value:.4g}", lr=f"{lr:.3g}", refresh=False)
            self.pbar.update(1)
        cfg = self.cfg
        if step % cfg.log_every == 0 or step == cfg.steps:
            self.write_train_log(lr)
            self.rank_snapshot["window"] = self.window.state()
        if self.validate_fn is not None and cfg.val_every and step % cfg.val_every == 0:
            self.run_validation()
        if cfg.ckpt_every and step % cfg.ckpt_every == 0 and step < cfg.steps:
            self.save_step_checkpoint()

    # ----------------------------------------------------------------- the run

    def run(self, resume: bool) -> TrainResult:
        self.pbar = None
        try:
            if self.main:
                with run_lock(self.run_dir, on_stale=self.say):
                    return self._run(resume)
            return self._run(resume)
        finally:
            if self.pbar is not None:
                self.pbar.close()
            self.runlog.close()

    def _run(self, resume: bool) -> TrainResult:
        cfg, info = self.cfg, self.info
        ckpt = self._prepare(resume)
        final = self.run_dir / "model.safetensors"
        self.t0 = time.perf_counter()
        if ckpt is not None and self.step >= cfg.steps:
            self.say(f"{self.run_dir}: already finished at step {self.step}; nothing to do")
            if self.main and not final.with_suffix(".json").exists():
                self._save_final()
            barrier(info)
            return TrainResult(self.step, self.metrics, final, False)
        if self.main:
            save_config(self.full_config, self.run_dir / "config.yaml")
            if ckpt is not None:
                self.runlog.truncate_after(self.step)
        self.rank_snapshot = {"rng": capture_rng(), "window": self.window.state()}
        self.net = self.model
        if info.distributed:
            device_ids = [info.device.index] if info.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids)
        generator = torch.Generator()  # private: DataLoader's worker seeds never touch global RNG
        loader = DataLoader(
            self.train_set, batch_sampler=self.sampler, num_workers=cfg.num_workers,
            collate_fn=self.collate_fn, pin_memory=info.device.type == "cuda", generator=generator,
        )
        what = f"resuming at step {self.step}:" if ckpt is not None else "training"
        self.say(
            f"{what} {self.model_name}, {cfg.steps} steps, global batch {cfg.batch_size} on "
            f"{info.world_size} x {info.device}, run dir {self.run_dir}"
        )
        self.pbar = make_progress(cfg.steps, self.step, enabled=self.main and not cfg.quiet)
        self.train_mode()
        hard_interrupt = False
        try:
            with self.signals as signals:
                while self.step < cfg.steps:
                    self.sampler.set_epoch(self.epoch, self.batch_in_epoch)
                    if hasattr(self.train_set, "set_epoch"):
                        self.train_set.set_epoch(self.epoch)
                    generator.manual_seed(epoch_seed(cfg.seed + 7919 * info.rank, self.epoch))
                    for batch in loader:
                        if all_reduce_max(info, float(signals.requested)) > 0:
                            raise _Stop
                        self.one_step(batch)
                        if self.step >= cfg.steps or self.batch_in_epoch == 0:
                            break
        except _Stop:
            pass
        except KeyboardInterrupt:
            hard_interrupt = True
            self.signals.received = self.signals.received or "SIGINT"
        if self.pbar is not None:
            self.pbar.close()
            self.pbar = None
        if self.step < cfg.steps or self.in_update:
            with self.signals:  # a signal during the interrupt checkpoint waits for the write
                return self._interrupted(collective=not hard_interrupt)
        if self.validate_fn is not None and self.last_val_step != self.step:
            self.run_validation()
        if self.last_saved_step != self.step:
            self.save_step_checkpoint()
        if self.main:
            with self.signals, self.signals.saving():
                self._save_final()
        barrier(info)
        self.say(
            f"finished {self.step} steps in {self.elapsed():.1f} s: {format_values(self.metrics)}; "
            f"model saved to {final}"
        )
        return TrainResult(self.step, dict(self.metrics), final, False)

    def _save_final(self) -> None:
        save_checkpoint(
            self.run_dir / "model", self.model, model_name=self.model_name, model_config=self.model_config,
            step=self.step, metrics=self.metrics, config=self.config_dict,
        )

    def _interrupted(self, *, collective: bool) -> TrainResult:
        by = f" by {self.signals.received}" if self.signals.received else ""
        where = f"interrupted{by} at step {self.step}/{self.cfg.steps}"
        if self.in_update:
            path = latest_checkpoint(self.run_dir)
            self.say(f"{where} during an optimizer update; that state is not saved. Resume continues from {path}")
        elif self.step == 0:
            path = None
            self.say(f"{where}: nothing to save yet")
        elif self.last_saved_step == self.step:
            path = latest_checkpoint(self.run_dir)
            self.say(f"{where}; checkpoint {path} is current. Resume to continue")
        else:
            path = self.save_step_checkpoint(collective=collective)
            if collective:
                path = broadcast_object(self.info, path)
            self.say(f"{where}; checkpoint saved to {path}. Resume to continue")
        return TrainResult(self.step, dict(self.metrics), path, True, self.signals.received or "SIGINT")
