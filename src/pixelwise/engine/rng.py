"""Seeding and snapshots of every global random number generator a training step may use.

Why snapshots: an exact resume must continue each RNG stream (Python ``random``, NumPy's legacy
global generator, torch CPU and CUDA) exactly where the interrupted run was at the end of the
checkpointed step. Validation runs inside :func:`preserved_rng`, so how often one validates
never changes the training run itself.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any, Iterator

import numpy as np
import torch

__all__ = ["seed_all", "capture_rng", "restore_rng", "preserved_rng"]


def seed_all(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) from one integer."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _cuda_active() -> bool:
    # Only touch CUDA generators when CUDA is already in use: querying them would initialise it.
    return torch.cuda.is_available() and torch.cuda.is_initialized()


def capture_rng() -> dict[str, Any]:
    """The state of every global generator (tensors, tuples and arrays; checkpoint-encodable)."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if _cuda_active():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng` (CUDA states are restored when CUDA is in use)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Run a block without disturbing the global generators' streams."""
    state = capture_rng()
    try:
        yield
    finally:
        restore_rng(state)
