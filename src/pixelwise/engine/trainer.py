"""The shared training loop: one function, :func:`train`, used by every task.

What it guarantees, and why:

* **Exact resume.** A checkpoint holds the model, optimizer, scheduler, every RNG state (per
  rank), the epoch and the position inside it, and the partly filled log window. Training N
  steps and training k steps, stopping, then resuming to N give bitwise identical weights on
  CPU (tested), so an interrupted run loses nothing but time.
* **Safe Ctrl-C.** The first SIGINT only sets a flag; the loop stops at the next step
  boundary (all DDP ranks agree on which), saves a checkpoint and returns
  ``TrainResult(interrupted=True)``. A second Ctrl-C, or a ``KeyboardInterrupt`` raised by user
  code, stops at once; the last completed step is still saved unless the interrupt hit the
  middle of an optimizer update.
* **DDP = single process.** The sampler gives each rank a contiguous slice of the same global
  batch; with a loss that averages over the batch, a DDP run follows the single-process run
  with the same global batch (up to float summation order).
* **Loud failures.** A non-finite loss (or gradient norm) stops training with the step number
  rather than silently training on NaNs.
"""

from __future__ import annotations

import math
import os
import signal
import threading
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
from .runlog import RunLog, format_values, make_progress, to_float
from .sampler import ResumableBatchSampler, epoch_seed

__all__ = ["TrainResult", "train", "build_optimizer", "build_scheduler", "move_to_device"]

RESERVED_LOG_KEYS = ("step", "split", "loss", "lr", "time_s")


@dataclass
class TrainResult:
    step: int  # optimizer steps completed
    metrics: dict  # {"train_loss": ..., **last validation metrics}
    checkpoint: Path | None  # final model.safetensors, or the interrupt checkpoint
    interrupted: bool


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


class _Sigint:
    """First Ctrl-C: request a stop at the next step boundary. Second: KeyboardInterrupt now.

    Installed only in the main thread and only over Python's default handler, so applications
    with their own SIGINT handling keep it (they then get the KeyboardInterrupt path)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> "_Sigint":
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


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


def _check_finite(value: float, what: str, step: int, lr: float) -> None:
    if not math.isfinite(value):
        raise FloatingPointError(
            f"{what} is {value} at step {step} (lr {lr:g}); training stopped. Check the data, the "
            "learning rate and the model; resume=True restarts from the last checkpoint"
        )


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
    loss_fn: Callable[[nn.Module, Any], tuple[torch.Tensor, dict]],
    config: TrainConfig,
    run_dir: str | os.PathLike,
    *,
    model_name: str,
    model_config: dict,
    validate: Callable[[nn.Module], dict] | None = None,
    full_config: Any = None,
    resume: bool = False,
    collate_fn: Callable | None = None,
    log: Callable[[str], Any] = print,
) -> TrainResult:
    """Train ``model`` for ``config.steps`` optimizer steps; see the module docstring.

    ``loss_fn(model, batch) -> (scalar loss, {name: float})`` gets the batch already on the
    device (and the DDP wrapper under DDP); the log names ``step, split, loss, lr, time_s`` are
    reserved. ``validate(model) -> {name: float}`` runs on rank 0 only, in eval mode under
    ``torch.no_grad()``, every ``config.val_every`` steps and at the end, without disturbing the
    training RNG streams. ``run_dir`` gets ``config.yaml``, ``log.jsonl``,
    ``checkpoints/step-XXXXXXX.{safetensors,json}`` and finally ``model.{safetensors,json}``.
    The caller owns the process group (``distributed.cleanup``); train only joins it.
    """
    return _Trainer(model, train_set, loss_fn, config, Path(run_dir), model_name, model_config, validate,
                    full_config, collate_fn, log).run(resume)


class _Trainer:
    def __init__(self, model, train_set, loss_fn, config, run_dir, model_name, model_config, validate,
                 full_config, collate_fn, log):
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.cfg = config
        self.run_dir = run_dir
        self.ckpt_dir = run_dir / "checkpoints"
        self.info: DistInfo = init_distributed(config.device)
        self.main = is_main(self.info)
        self.model = model
        self.train_set = train_set
        self.loss_fn = loss_fn
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
            if path is None:
                raise FileNotFoundError(f"cannot resume: no complete checkpoint in {self.ckpt_dir}")
            ckpt = load_checkpoint(path)
        elif latest_checkpoint(self.run_dir) is not None or (self.run_dir / "log.jsonl").exists():
            raise FileExistsError(
                f"{self.run_dir} already holds a run (log.jsonl or checkpoints); resume it or use another run directory"
            )
        self.model.to(info.device)
        if ckpt is not None:
            load_weights(self.model, ckpt, strict=True)
        self.optimizer = build_optimizer(self.model.parameters(), cfg.optimizer)
        self.scheduler = build_scheduler(self.optimizer, cfg.schedule)
        if ckpt is None:
            seed_all(cfg.seed + info.rank)
            return None
        state = restore_training_state(ckpt, self.optimizer, self.scheduler)
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
            path = save_checkpoint(
                self.ckpt_dir / f"step-{self.step:07d}", self.model, model_name=self.model_name,
                model_config=self.model_config, step=self.step, metrics=self.metrics, config=self.config_dict,
                optimizer=self.optimizer, scheduler=self.scheduler, train_state=self._train_state(ranks),
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
                    base.train()
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
        lr = float(self.optimizer.param_groups[0]["lr"])
        batch = move_to_device(batch, self.info.device)
        self.optimizer.zero_grad(set_to_none=True)
        loss, logs = self.loss_fn(self.net, batch)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise TypeError(f"loss_fn must return (scalar tensor, dict), got loss {type(loss).__name__} at step {step}")
        loss_value = float(loss.detach())
        _check_finite(loss_value, "the loss", step, lr)
        loss.backward()
        values = {"loss": loss_value, **{str(k): to_float(v) for k, v in dict(logs or {}).items()}}
        if self.cfg.grad_clip is not None:
            norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip))
            _check_finite(norm, "the gradient norm", step, lr)
            values["grad_norm"] = norm
        self.in_update = True
        self.optimizer.step()
        self.scheduler.step()
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
        self.model.train()
        hard_interrupt = False
        try:
            with _Sigint() as sigint:
                while self.step < cfg.steps:
                    self.sampler.set_epoch(self.epoch, self.batch_in_epoch)
                    if hasattr(self.train_set, "set_epoch"):
                        self.train_set.set_epoch(self.epoch)
                    generator.manual_seed(epoch_seed(cfg.seed + 7919 * info.rank, self.epoch))
                    for batch in loader:
                        if all_reduce_max(info, float(sigint.requested)) > 0:
                            raise _Stop
                        self.one_step(batch)
                        if self.step >= cfg.steps or self.batch_in_epoch == 0:
                            break
        except _Stop:
            pass
        except KeyboardInterrupt:
            hard_interrupt = True
        if self.pbar is not None:
            self.pbar.close()
            self.pbar = None
        if self.step < cfg.steps or self.in_update:
            return self._interrupted(collective=not hard_interrupt)
        if self.validate_fn is not None and self.last_val_step != self.step:
            self.run_validation()
        if self.last_saved_step != self.step:
            self.save_step_checkpoint()
        if self.main:
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
        where = f"interrupted at step {self.step}/{self.cfg.steps}"
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
        return TrainResult(self.step, dict(self.metrics), path, True)
