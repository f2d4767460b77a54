"""Models registered by name, built with ``create_model(name, **overrides)`` (the timm pattern).

The registry is what lets a checkpoint's JSON sidecar (model name + keyword arguments) rebuild
the network without pickling any Python object.
"""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
    """Decorator: make ``fn(**kwargs) -> nn.Module`` available as ``create_model(name)``."""

    def wrap(fn):
        if name in _REGISTRY:
            raise ValueError(f"register_model: a model named {name!r} is already registered")
        _REGISTRY[name] = fn
        return fn

    return wrap


def create_model(name: str, **kwargs) -> nn.Module:
    """Build the registered model ``name`` (for example ``create_model("pac_upsampler", factor=8)``)."""
    _load_builtin_models()
    if name not in _REGISTRY:
        raise ValueError(f"create_model: unknown model {name!r}; available: {', '.join(list_models())}")
    return _REGISTRY[name](**kwargs)


def list_models() -> list[str]:
    _load_builtin_models()
    return sorted(_REGISTRY)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _load_builtin_models() -> None:
    # Importing the model modules runs their @register_model decorators.
    from . import pixel_embedding  # noqa: F401
    from . import segmentation  # noqa: F401
    from . import squeezeseg  # noqa: F401
    from . import upsampling  # noqa: F401
