"""Dataclass configs: defaults in code, a YAML file on top, ``key=value`` overrides on top of that.

Why dataclasses and a strict loader: a typo such as ``optimizer.lrr: 1e-3`` in a YAML file would
otherwise be ignored silently and a run would train with the default. Every unknown key and
every value of the wrong type is an error that names the dotted key and where it came from.

The loader is generic: task configs nest :class:`TrainConfig` in their own dataclasses, and
``config_from_dict`` / ``load_config`` work on any tree of dataclasses whose fields are built
from ``bool``, ``int``, ``float``, ``str``, ``Path``, ``Enum``, ``Literal``, ``Optional``/unions,
``list``, ``tuple``, ``dict`` and other dataclasses.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, TypeVar

import yaml

from pixelwise.atomic import write_text_atomic

__all__ = [
    "OptimizerConfig",
    "ScheduleConfig",
    "TrainConfig",
    "config_to_dict",
    "config_from_dict",
    "load_config",
    "save_config",
]

T = TypeVar("T")

OPTIMIZERS = ("adam", "adamw", "sgd")


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ValueError(f"{key}: {message}")


@dataclass
class OptimizerConfig:
    """Which optimizer and its hyper-parameters (``momentum`` is used by SGD only)."""

    name: str = "adam"  # "adam" | "adamw" | "sgd"
    lr: float = 1e-4
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    betas: tuple[float, float] = (0.9, 0.999)

    def __post_init__(self) -> None:
        _check(self.name in OPTIMIZERS, "name", f"must be one of {', '.join(OPTIMIZERS)}, got {self.name!r}")
        _check(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        _check(self.weight_decay >= 0, "weight_decay", f"must be >= 0, got {self.weight_decay}")
        _check(self.momentum >= 0, "momentum", f"must be >= 0, got {self.momentum}")


@dataclass
class ScheduleConfig:
    """Learning-rate schedule, as a factor on ``optimizer.lr`` for optimizer step ``n`` (1-based):

    * step decay: after step ``m`` (for each m in ``milestones``) the rate is multiplied by
      ``gamma``; step ``m + 1`` is the first to use it;
    * linear warm-up: steps ``1 .. warmup_steps`` use ``n / warmup_steps`` of the rate;
    * exponential decay: ``decay_rate ** ((n - 1) // decay_every)`` (e.g. SqueezeSegV3's 0.99 per
      epoch with ``decay_every`` = steps per epoch).
    """

    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    warmup_steps: int = 0
    decay_rate: float = 1.0
    decay_every: int = 1

    def __post_init__(self) -> None:
        _check(all(m > 0 for m in self.milestones), "milestones", f"must be positive steps, got {self.milestones}")
        _check(self.gamma > 0, "gamma", f"must be > 0, got {self.gamma}")
        _check(self.warmup_steps >= 0, "warmup_steps", f"must be >= 0, got {self.warmup_steps}")
        _check(0 < self.decay_rate <= 1, "decay_rate", f"must be in (0, 1], got {self.decay_rate}")
        _check(self.decay_every >= 1, "decay_every", f"must be >= 1, got {self.decay_every}")

    def factor(self, step: int) -> float:
        """The learning-rate factor of 1-based optimizer step ``step``."""
        f = self.gamma ** sum(step > m for m in self.milestones)
        if self.warmup_steps and step <= self.warmup_steps:
            f *= step / self.warmup_steps
        return f * self.decay_rate ** ((step - 1) // self.decay_every)


@dataclass
class TrainConfig:
    """Everything the shared training loop needs; task configs nest it as their ``train`` field."""

    steps: int = 1000  # optimizer steps in total
    batch_size: int = 8  # GLOBAL batch, divided evenly among DDP ranks
    seed: int = 0
    grad_clip: float | None = None  # max global L2 grad norm; None = off
    val_every: int = 0  # 0 = validate only at the end
    log_every: int = 10
    ckpt_every: int = 100  # 0 = only at the end
    keep_checkpoints: int = 2  # older step checkpoints are deleted
    num_workers: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    quiet: bool = False
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)

    def __post_init__(self) -> None:
        _check(self.steps >= 1, "steps", f"must be >= 1, got {self.steps}")
        _check(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        _check(self.grad_clip is None or self.grad_clip > 0, "grad_clip", f"must be > 0 or null, got {self.grad_clip}")
        for name in ("val_every", "ckpt_every", "num_workers"):
            _check(getattr(self, name) >= 0, name, f"must be >= 0, got {getattr(self, name)}")
        _check(self.log_every >= 1, "log_every", f"must be >= 1, got {self.log_every}")
        _check(self.keep_checkpoints >= 1, "keep_checkpoints", f"must be >= 1, got {self.keep_checkpoints}")
        ok = self.device in ("auto", "cpu", "cuda") or (
            self.device.startswith("cuda:") and self.device[5:].isdigit()
        )
        _check(ok, "device", f"must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")


# --------------------------------------------------------------------------- to / from dicts


def config_to_dict(cfg: Any) -> Any:
    """A nested plain dict (lists, not tuples; str, not Path) that YAML and JSON can both hold."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: config_to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, dict):
        return {str(k): config_to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [config_to_dict(v) for v in cfg]
    if isinstance(cfg, enum.Enum):
        return cfg.value
    if isinstance(cfg, os.PathLike):
        return os.fspath(cfg)
    return cfg


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _field_types(cls: type) -> dict[str, Any]:
    # get_type_hints resolves string annotations (``from __future__ import annotations``).
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    """Check ``value`` against annotation ``tp`` and convert it (int -> float, list -> tuple,
    mapping -> dataclass). Raises ValueError naming ``source``, the key, the type and the value."""

    def bad(extra: str = "") -> ValueError:
        return ValueError(
            f"{source}: {key or '<root>'} must be {_type_name(tp)}, got {value!r}"
            f" ({type(value).__name__}){extra}"
        )

    if tp is Any or tp is object:
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise bad(" (expected a mapping)")
        return config_from_dict(tp, value, source=source, _prefix=key)
    if _is_union(tp):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise bad()
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key, source)
            except ValueError as e:
                errors.append(e)
        if len(errors) == 1 and isinstance(value, (dict, list, tuple)):
            raise errors[0]  # Optional[Section]: the error from inside the section is the helpful one
        raise bad()
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        if value in typing.get_args(tp):
            return value
        raise bad()
    if tp is type(None):
        if value is None:
            return None
        raise bad()
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad()
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad()
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            # YAML 1.1 reads "3e-4" (no dot) as a string; accept what Python reads as a number.
            try:
                return float(value)
            except ValueError:
                pass
        raise bad()
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad()
    if tp is Path or (isinstance(tp, type) and issubclass(tp, os.PathLike)):
        if isinstance(value, (str, os.PathLike)):
            return Path(value)
        raise bad()
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if isinstance(value, tp):
            return value
        try:
            return tp(value)
        except ValueError:
            raise bad(f" (choices: {', '.join(repr(m.value) for m in tp)})") from None
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise bad()
        args = typing.get_args(tp)
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise bad(f" (expected {len(args)} items)")
            items = [_coerce(v, a, f"{key}[{i}]", source) for i, (v, a) in enumerate(zip(value, args))]
        else:
            item_tp = args[0] if args else Any
            items = [_coerce(v, item_tp, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items) if (origin or tp) is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise bad()
        args = typing.get_args(tp) or (Any, Any)
        return {
            _coerce(k, args[0], f"{key}.{k}", source): _coerce(v, args[1], f"{key}.{k}", source)
            for k, v in value.items()
        }
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise bad()
    return value  # an annotation this loader does not understand: pass it through unchecked


def config_from_dict(cls: type[T], data: dict, *, source: str = "config", _prefix: str = "") -> T:
    """Build dataclass ``cls`` from a nested dict; keys not given keep their defaults.

    Strict: an unknown key or a value of the wrong type raises ValueError naming ``source``,
    the dotted key, the expected type and the value.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{source}: {_prefix or 'the config'} must be a mapping, got {data!r}")
    types_ = _field_types(cls)
    kwargs = {}
    for name, value in data.items():
        key = f"{_prefix}.{name}" if _prefix else str(name)
        if name not in types_:
            known = ", ".join(types_)
            raise ValueError(f"{source}: unknown key '{key}' (known keys{' of ' + _prefix if _prefix else ''}: {known})")
        kwargs[name] = _coerce(value, types_[name], key, source)
    try:
        return cls(**kwargs)
    except ValueError as e:
        # __post_init__ checks name the field; add where it came from and the section.
        raise ValueError(f"{source}: {_prefix + '.' if _prefix else ''}{e}") from None
    except TypeError as e:  # a required field without default was not given
        raise ValueError(f"{source}: {_prefix or cls.__name__}: {e}") from None


# --------------------------------------------------------------------------- files and overrides


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ValueError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"config file {path} is not valid YAML: {e}") from None
    if data is None:  # an empty file means "all defaults"
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping at the top level, got {type(data).__name__}")
    return data


def _apply_override(cfg: Any, override: str) -> Any:
    """Apply one ``dotted.key=value`` to a dataclass tree; returns the (new) root."""
    where = f"override '{override}'"
    if "=" not in override:
        raise ValueError(f"{where}: expected key=value, e.g. optimizer.lr=3e-4")
    key, text = (s.strip() for s in override.split("=", 1))
    if not key:
        raise ValueError(f"{where}: empty key")
    try:
        value = yaml.safe_load(text) if text else None
    except yaml.YAMLError as e:
        raise ValueError(f"{where}: value is not valid YAML: {e}") from None
    parts = key.split(".")
    node, types_ = cfg, _field_types(type(cfg))
    for depth, part in enumerate(parts):
        dotted = ".".join(parts[: depth + 1])
        if part not in types_:
            raise ValueError(f"{where}: unknown key '{dotted}' (known: {', '.join(types_)})")
        tp = types_[part]
        if depth == len(parts) - 1:
            setattr(node, part, _coerce(value, tp, dotted, where))
            break
        child = getattr(node, part)
        if child is None and _is_union(tp):  # Optional[Section] currently None: start from defaults
            inner = [a for a in typing.get_args(tp) if dataclasses.is_dataclass(a)]
            if inner:
                child = inner[0]()
                setattr(node, part, child)
        if not (dataclasses.is_dataclass(child) and not isinstance(child, type)):
            raise ValueError(f"{where}: '{dotted}' is not a section, cannot set '{key}'")
        node, types_ = child, _field_types(type(child))
    # Re-run the dataclass checks of the whole tree on the final values.
    return config_from_dict(type(cfg), config_to_dict(cfg), source=where)


def load_config(cls: type[T], path: str | os.PathLike | None = None, overrides: Iterable[str] = ()) -> T:
    """Defaults of ``cls``, then the YAML mapping in ``path`` (if given), then each override
    ``"a.b=value"`` in order (value parsed as YAML: ``3e-4``, ``[100, 200]``, ``null``)."""
    data = _read_yaml(Path(path)) if path is not None else {}
    cfg = config_from_dict(cls, data, source=str(path) if path is not None else "config")
    if isinstance(overrides, str):
        overrides = [overrides]
    for override in overrides:
        cfg = _apply_override(cfg, override)
    return cfg


def save_config(cfg: Any, path: str | os.PathLike) -> None:
    """Write ``cfg`` (a dataclass or a plain dict) as YAML, atomically, in field order."""
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=None)
    write_text_atomic(path, text)
