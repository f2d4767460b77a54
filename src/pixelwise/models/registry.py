"""Models registered by name, built with ``create_model(name, pretrained=False, **overrides)`` (timm).

The registry is what lets a checkpoint's JSON sidecar (model name + keyword arguments) rebuild
the network without pickling any Python object. It imports no model module:
``pixelwise.models`` imports them, and their ``@register_model`` decorators fill it. Each model
names the task it serves, so ``list_models(task=...)`` and a checkpoint's task are known.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable

import torch.nn as nn

from ..zoo import ZooError, read_card, read_weights

__all__ = ["count_parameters", "create_model", "list_models", "model_task", "register_model", "suggest"]


@dataclass(frozen=True)
class _Entry:
    build: Callable[..., nn.Module]
    task: str


_REGISTRY: dict[str, _Entry] = {}


def register_model(name: str, *, task: str):
    """Decorator: make ``fn(**kwargs) -> nn.Module`` available as ``create_model(name)``."""

    def wrap(fn):
        if name in _REGISTRY:
            raise ValueError(f"register_model: a model named {name!r} is already registered")
        _REGISTRY[name] = _Entry(fn, task)
        return fn

    return wrap


def suggest(name: str, candidates) -> str:
    """``"; did you mean 'x'?"`` for a near miss, else ``""``."""
    close = difflib.get_close_matches(str(name), list(candidates), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def create_model(name: str, pretrained: bool = False, **overrides) -> nn.Module:
    """Build the registered model ``name`` (``create_model("pac_upsampler", factor=8)``).

    ``pretrained=True`` loads the weights shipped in ``pixelwise/zoo/`` under ``name`` (their card's
    model settings, then ``overrides``); a clear error names the model when none are shipped.
    """
    if name not in _REGISTRY:
        raise ValueError(f"create_model: unknown model {name!r}{suggest(name, _REGISTRY)}; available: "
                         f"{', '.join(list_models())}")
    if not pretrained:
        return _REGISTRY[name].build(**overrides)
    try:
        entry = read_card(name)
    except ZooError as exc:
        raise ZooError(f"create_model({name!r}, pretrained=True): {exc}; train one with "
                       f"`pixelwise {_REGISTRY[name].task} train` and load its run folder instead") from None
    model = _REGISTRY[entry.card["model"]].build(**{**entry.card["model_config"], **overrides})
    state = {k.removeprefix("model."): v for k, v in read_weights(entry).items()}
    model.load_state_dict(state, strict=True)
    return model.eval()


def list_models(task: str | None = None) -> list[str]:
    """Registered model names (of one task's when ``task`` is given)."""
    return sorted(n for n, e in _REGISTRY.items() if task is None or e.task == task)


def model_task(name: str) -> str | None:
    """The task a registered model serves (None for unknown names)."""
    entry = _REGISTRY.get(name)
    return entry.task if entry else None


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
