"""Checkpoints as a ``.safetensors`` file of tensors plus a ``.json`` sidecar -- never pickle.

Why this format: loading a pickle runs arbitrary code, so a checkpoint downloaded from anyone
would be a security hole; safetensors holds tensors only, and everything else (model name and
config, training config, optimizer hyper-parameters, scheduler state, RNG states, metrics) is
plain JSON anyone can read.

A checkpoint ``<stem>`` is the pair ``<stem>.safetensors`` + ``<stem>.json``. Both are written
atomically, the tensors first and the JSON last, so *the presence of the JSON marks a complete
checkpoint*. The JSON records the SHA-256 of the tensor file, which catches a pair mixed from
two saves and bit rot.

Nested training state (optimizer/scheduler ``state_dict``, RNG states) is stored by
:func:`_encode`: every tensor goes into the safetensors file under a flat key (``optim.state.0.
exp_avg``) and is replaced in the JSON by ``{"__tensor__": key}``; tuples, non-string dict keys
(Adam's integer parameter ids, MultiStepLR's ``Counter`` of milestones), non-finite floats,
bytes and numpy arrays are tagged so they come back as the same Python types. That is what makes
a resumed run bitwise identical to an uninterrupted one.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import hashlib
import json
import math
import os
import platform
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from .. import __version__
from ..atomic import write_bytes_atomic, write_text_atomic

from .config import config_to_dict

__all__ = [
    "FORMAT_VERSION",
    "Checkpoint",
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "load_weights",
    "restore_training_state",
    "load_model",
    "latest_checkpoint",
    "checkpoint_files",
    "unwrap_model",
]

# 2: the sidecar carries the SHA-256 of its own content ("sidecar_sha256"); optimizer and
#    scheduler state may be a dict of named states (alternating multi-optimizer steps).
FORMAT_VERSION = 2
FORMAT_NAME = "pixelwise-checkpoint"
_SUFFIXES = (".safetensors", ".json")
_STEP_RE = re.compile(r"^step-(\d+)\.json$")
_MAX_LISTED = 20


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and what is wrong."""


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside DistributedDataParallel / DataParallel wrappers (their keys carry a
    ``module.`` prefix that a plain model would not match)."""
    while isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        model = model.module
    return model


def checkpoint_files(path: str | os.PathLike) -> tuple[Path, Path]:
    """``(tensor_file, json_file)`` for a stem, a ``.json`` or a ``.safetensors`` path."""
    path = Path(path)
    if path.suffix in _SUFFIXES:
        path = path.with_name(path.name[: -len(path.suffix)])
    return path.with_name(path.name + ".safetensors"), path.with_name(path.name + ".json")


# --------------------------------------------------------------------------- nested state <-> JSON


def _encode(obj: Any, key: str, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON-able form of ``obj``; tensors are moved into ``tensors`` under ``key``-derived names."""
    if isinstance(obj, torch.Tensor):
        if key in tensors:
            raise ValueError(f"two tensors would be stored under the same key '{key}'")
        tensors[key] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": key}
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"__float__": repr(obj)}
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": [str(obj.dtype), list(obj.shape), base64.b64encode(obj.tobytes()).decode()]}
    if isinstance(obj, np.generic):
        return _encode(obj.item(), key, tensors)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, bytes):
        return {"__bytes__": base64.b64encode(obj).decode()}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, f"{key}.{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{key}.{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        items = [[_encode(k, f"{key}.key", {}), _encode(v, f"{key}.{k}", tensors)] for k, v in obj.items()]
        if isinstance(obj, collections.Counter):
            return {"__counter__": items}
        plain = all(isinstance(k, str) for k in obj) and not (len(obj) == 1 and next(iter(obj)).startswith("__"))
        return {k: v for (k, _), (_, v) in zip(obj.items(), items)} if plain else {"__dict__": items}
    raise TypeError(f"cannot store {type(obj).__name__} at '{key}' in a checkpoint (JSON or tensors only)")


def _decode(obj: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors, where) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if len(obj) == 1:
        (tag, value), = obj.items()
        if tag == "__tensor__":
            if value not in tensors:
                raise CheckpointError(f"{where}: tensor '{value}' named in the JSON is not in the tensor file")
            return tensors[value]
        if tag == "__float__":
            return float(value)
        if tag == "__tuple__":
            return tuple(_decode(v, tensors, where) for v in value)
        if tag == "__bytes__":
            return base64.b64decode(value)
        if tag == "__ndarray__":
            dtype, shape, data = value
            return np.frombuffer(base64.b64decode(data), dtype=dtype).reshape(shape).copy()
        if tag in ("__dict__", "__counter__"):
            pairs = [(_decode(k, tensors, where), _decode(v, tensors, where)) for k, v in value]
            return collections.Counter(dict(pairs)) if tag == "__counter__" else dict(pairs)
    return {k: _decode(v, tensors, where) for k, v in obj.items()}


# --------------------------------------------------------------------------- save


def _versions() -> dict[str, str]:
    return {"pixelwise": __version__, "torch": torch.__version__, "python": platform.python_version()}


SIDECAR_HASH = "sidecar_sha256"
NAMED = "__named__"  # tag of a dict of optimizer / scheduler states by update name


def _sidecar_hash(meta: dict) -> str:
    """SHA-256 of the sidecar's content without its own hash field (canonical JSON)."""
    body = {k: v for k, v in meta.items() if k != SIDECAR_HASH}
    return hashlib.sha256(json.dumps(body, sort_keys=True, allow_nan=False).encode()).hexdigest()


def _encode_states(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return {NAMED: {name: _encode(o.state_dict(), f"{prefix}.{name}", tensors) for name, o in obj.items()}}
    return _encode(obj.state_dict(), prefix, tensors)


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    model_name: str,
    model_config: dict,
    step: int = 0,
    metrics: dict | None = None,
    config: dict | Any = None,
    optimizer: torch.optim.Optimizer | dict[str, torch.optim.Optimizer] | None = None,
    scheduler: Any = None,
    train_state: dict | None = None,
) -> Path:
    """Write ``<stem>.safetensors`` then ``<stem>.json``; returns the ``.safetensors`` path.

    ``path`` is the stem (a ``.safetensors``/``.json`` suffix is stripped). Model tensors are
    stored as ``model.<name>``, optimizer tensors as ``optim.<...>``, scheduler tensors as
    ``sched.<...>`` and tensors inside ``train_state`` (e.g. RNG states) as ``state.<...>``.
    ``config`` may be a dict or a config dataclass (stored as its plain dict). ``optimizer`` and
    ``scheduler`` may each be one object or a dict of them by name (one per update of an
    alternating step). The sidecar records the SHA-256 of the tensor file and of its own
    content, so an edited or damaged sidecar is refused on load.
    An existing ``.json`` of the same stem is removed first, so a crash half-way leaves an
    incomplete checkpoint rather than an old JSON paired with new tensors.
    """
    tensor_file, json_file = checkpoint_files(path)
    model = unwrap_model(model)
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = config_to_dict(config)
    tensors: dict[str, torch.Tensor] = {}
    for name, value in model.state_dict().items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"model state '{name}' is a {type(value).__name__}, not a tensor; cannot save it")
        # A copy per tensor: tied weights share storage, which safetensors refuses to write.
        tensors[f"model.{name}"] = value.detach().to("cpu", copy=True).contiguous()
    meta: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "model_name": model_name,
        "model_config": _encode(dict(model_config), "model_config", {}),
        "config": _encode(config, "config", {}) if config is not None else None,
        "step": int(step),
        "metrics": _encode(dict(metrics or {}), "metrics", {}),
        "versions": _versions(),
        "created_unix": time.time(),
        "optimizer": _encode_states(optimizer, "optim", tensors),
        "scheduler": _encode_states(scheduler, "sched", tensors),
        "train_state": _encode(train_state, "state", tensors) if train_state is not None else None,
    }
    data = st_save(tensors, metadata={"format": FORMAT_NAME})
    meta["tensor_file"] = {"name": tensor_file.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    meta["tensors"] = {k: {"dtype": str(v.dtype).removeprefix("torch."), "shape": list(v.shape)} for k, v in tensors.items()}
    meta[SIDECAR_HASH] = _sidecar_hash(meta)
    text = json.dumps(meta, indent=1, allow_nan=False)
    json_file.unlink(missing_ok=True)
    write_bytes_atomic(tensor_file, data)
    write_text_atomic(json_file, text + "\n")
    return tensor_file


# --------------------------------------------------------------------------- load


@dataclass
class Checkpoint:
    """A loaded checkpoint: the JSON sidecar as ``meta`` and the tensors, already decoded."""

    path: Path  # the .safetensors file
    meta: dict
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict | None = None
    scheduler_state: dict | None = None
    train_state: dict | None = None
    tensors: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    @property
    def step(self) -> int:
        return int(self.meta.get("step", 0))

    @property
    def model_name(self) -> str:
        return self.meta.get("model_name", "")

    @property
    def model_config(self) -> dict:
        return self.meta.get("model_config") or {}

    @property
    def metrics(self) -> dict:
        return self.meta.get("metrics") or {}

    @property
    def config(self) -> dict | None:
        return self.meta.get("config")


def _read_meta(json_file: Path) -> dict:
    if not json_file.is_file():
        raise CheckpointError(
            f"{json_file}: checkpoint metadata file is missing (the checkpoint is incomplete, or this is "
            "not a pixelwise checkpoint)"
        )
    try:
        meta = json.loads(json_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{json_file}: invalid JSON ({e})") from None
    except OSError as e:
        raise CheckpointError(f"{json_file}: cannot read the checkpoint sidecar ({e.strerror or e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME or "format_version" not in meta:
        raise CheckpointError(f"{json_file}: not a pixelwise checkpoint sidecar (no '{FORMAT_NAME}' format tag)")
    version = meta["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{json_file}: checkpoint format version {version!r} is newer than this pixelwise supports "
            f"({FORMAT_VERSION}); upgrade pixelwise to read it"
        )
    if version >= 2:
        recorded = meta.get(SIDECAR_HASH)
        try:
            actual = _sidecar_hash(meta)
        except ValueError:  # non-finite numbers the writer never produces
            actual = None
        if recorded != actual:
            raise CheckpointError(
                f"{json_file}: the sidecar was edited or damaged after it was written (its content no longer "
                f"matches the SHA-256 it records); restore the original file or use another checkpoint"
            )
    return meta


def _read_tensors(tensor_file: Path, meta: dict) -> dict[str, torch.Tensor]:
    if not tensor_file.is_file():
        raise CheckpointError(f"{tensor_file}: tensor file is missing (its .json sidecar exists)")
    try:
        data = tensor_file.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{tensor_file}: cannot read the tensor file ({e.strerror or e})") from None
    try:
        tensors = st_load(data)
    except Exception as e:  # safetensors raises its own SafetensorError (and others) on bad bytes
        raise CheckpointError(f"{tensor_file}: corrupt or truncated safetensors file ({type(e).__name__}: {e})") from None
    expected = (meta.get("tensor_file") or {}).get("sha256")
    if expected and hashlib.sha256(data).hexdigest() != expected:
        raise CheckpointError(
            f"{tensor_file}: contents do not match the SHA-256 recorded in its .json "
            "(corrupted, or the two files come from different saves)"
        )
    return tensors


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Load a checkpoint given its stem, its ``.json`` or its ``.safetensors`` path."""
    tensor_file, json_file = checkpoint_files(path)
    meta = _read_meta(json_file)
    tensors = _read_tensors(tensor_file, meta)
    where = str(json_file)
    # safetensors sorts names; the JSON summary keeps the model's own (state_dict) order.
    order = [k for k in meta.get("tensors") or {} if k in tensors]
    order += [k for k in tensors if k not in set(order)]
    model_state = {k[len("model."):]: tensors[k] for k in order if k.startswith("model.")}
    decoded = {name: _decode(meta.get(name), tensors, where) for name in ("optimizer", "scheduler", "train_state")}
    meta = dict(meta)
    for name in ("model_config", "config", "metrics"):
        meta[name] = _decode(meta.get(name), {}, where)
    return Checkpoint(
        path=tensor_file,
        meta=meta,
        model_state=model_state,
        optimizer_state=decoded["optimizer"],
        scheduler_state=decoded["scheduler"],
        train_state=decoded["train_state"],
        tensors=tensors,
    )


def _as_checkpoint(checkpoint_or_path: Checkpoint | str | os.PathLike) -> Checkpoint:
    if isinstance(checkpoint_or_path, Checkpoint):
        return checkpoint_or_path
    return load_checkpoint(checkpoint_or_path)


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f", ... and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else "")


def _shape(shape: torch.Size) -> str:
    return "(" + ",".join(str(s) for s in shape) + ")"


class LoadResult(NamedTuple):
    missing: list[str]
    unexpected: list[str]


def load_weights(model: nn.Module, checkpoint_or_path: Checkpoint | str | os.PathLike, *, strict: bool = True) -> LoadResult:
    """Copy the checkpoint's weights into ``model`` (DDP is unwrapped).

    With ``strict`` every tensor must match by name and shape; otherwise only the names both
    have are loaded (shapes must still agree). The error lists each missing, unexpected and
    mis-shaped tensor by name, so a wrong ``model_config`` is obvious from the message.
    """
    ckpt = _as_checkpoint(checkpoint_or_path)
    target = unwrap_model(model)
    own = target.state_dict()
    theirs = ckpt.model_state
    missing = [k for k in own if k not in theirs]
    unexpected = [k for k in theirs if k not in own]
    mis_shaped = [k for k in own if k in theirs and own[k].shape != theirs[k].shape]
    problems = []
    if strict and missing:
        problems.append(f"missing {len(missing)} tensor{'s' * (len(missing) != 1)} ({_names(missing)})")
    if strict and unexpected:
        problems.append(f"unexpected {len(unexpected)} tensor{'s' * (len(unexpected) != 1)} ({_names(unexpected)})")
    for k in mis_shaped[:_MAX_LISTED]:
        problems.append(f"shape of {k} is {_shape(theirs[k].shape)} in the file, {_shape(own[k].shape)} in the model")
    if len(mis_shaped) > _MAX_LISTED:
        problems.append(f"... and {len(mis_shaped) - _MAX_LISTED} more shape mismatches")
    if problems:
        raise CheckpointError(
            f"{ckpt.path} does not match model '{ckpt.model_name or type(target).__name__}': " + "; ".join(problems)
        )
    target.load_state_dict({k: v for k, v in theirs.items() if k in own}, strict=strict)
    return LoadResult(missing, unexpected)


def restore_training_state(checkpoint: Checkpoint | str | os.PathLike, optimizer: Any, scheduler: Any) -> dict:
    """Load optimizer and scheduler state (either may be None, or a dict of them by update name,
    as saved); returns the saved ``train_state``."""
    ckpt = _as_checkpoint(checkpoint)
    for obj, state, what in ((optimizer, ckpt.optimizer_state, "optimizer"), (scheduler, ckpt.scheduler_state, "scheduler")):
        if obj is None:
            continue
        if state is None:
            raise CheckpointError(f"{ckpt.path}: has no {what} state (saved for inference only?)")
        named = isinstance(state, dict) and set(state) == {NAMED}
        if isinstance(obj, dict) != named:
            raise CheckpointError(f"{ckpt.path}: {what} state was saved for "
                                  f"{'several named' if named else 'one'} {what}(s), but this run has "
                                  f"{'several' if isinstance(obj, dict) else 'one'}")
        pairs = [(name, o, state[NAMED].get(name)) for name, o in obj.items()] if named else [(what, obj, state)]
        for name, target, saved in pairs:
            if saved is None:
                raise CheckpointError(f"{ckpt.path}: has no {what} state for update {name!r} "
                                      f"(saved: {', '.join(state[NAMED])})")
            try:
                target.load_state_dict(saved)
            except (ValueError, KeyError, RuntimeError) as e:
                whose = f"{what} state of {name!r}" if named else f"{what} state"
                raise CheckpointError(f"{ckpt.path}: {whose} does not fit this {type(target).__name__}: {e}") from None
    return dict(ckpt.train_state or {})


def load_model(path: str | os.PathLike, factory: Callable[..., nn.Module]) -> tuple[nn.Module, Checkpoint]:
    """Rebuild the model with ``factory(model_name, **model_config)`` and load its weights
    strictly. The model is returned in eval mode (call ``.train()`` to fine-tune)."""
    ckpt = load_checkpoint(path)
    model = factory(ckpt.model_name, **ckpt.model_config)
    load_weights(model, ckpt, strict=True)
    return model.eval(), ckpt


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The ``.safetensors`` path of the highest-step complete checkpoint in ``run_dir/checkpoints``
    (a step file without its ``.json`` is an interrupted save and is skipped)."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return None
    best: tuple[int, Path] | None = None
    for entry in folder.iterdir():
        m = _STEP_RE.match(entry.name)
        if not m:
            continue
        tensor_file = entry.with_name(entry.name[: -len(".json")] + ".safetensors")
        if tensor_file.is_file() and (best is None or int(m.group(1)) > best[0]):
            best = (int(m.group(1)), tensor_file)
    return best[1] if best else None
