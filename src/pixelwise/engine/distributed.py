"""Thin helpers around ``torch.distributed`` for runs started by ``torchrun``.

Why a wrapper: the same training code must run unchanged as one plain process (no process
group, no collectives -- every helper degrades to a no-op) and as N processes under
``torchrun --nproc_per_node N``, which only sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` and the
rendezvous address in the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = [
    "DeviceError",
    "DistInfo",
    "init_distributed",
    "resolve_device",
    "is_main",
    "barrier",
    "all_reduce_mean",
    "all_reduce_max",
    "broadcast_object",
    "gather_objects",
    "cleanup",
]


@dataclass
class DistInfo:
    """Where this process sits: its rank among ``world_size``, its device and the backend
    (``None`` when running as a single process without a process group)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None

    @property
    def distributed(self) -> bool:
        return self.world_size > 1 and self.backend is not None


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


class DeviceError(ValueError):
    """A device that does not exist on this machine or is not a device name at all."""


def resolve_device(device: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` -> ``cuda:<local_rank>`` when CUDA is available, else ``cpu``; ``cpu``, ``cuda``
    and ``cuda:N`` as given. Anything else, or CUDA on a machine without it, is a
    :class:`DeviceError` whose message says what this machine has."""
    if not isinstance(device, str):
        raise DeviceError(f"device must be a string such as 'cpu' or 'cuda', got {type(device).__name__}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise DeviceError(f"device {device!r}: CUDA is not available on this machine ({why}, torch "
                              f"{torch.__version__}); use --device cpu (or train.device=cpu)")
        index = int(device[5:]) if ":" in device else local_rank
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                              f"numbered from 0")
        return torch.device("cuda", index)
    raise DeviceError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group torchrun describes in the environment (gloo on CPU, nccl on CUDA).

    With ``WORLD_SIZE`` unset or 1 no process group is created. Calling it again (or after the
    caller created the group) returns the existing group's description.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, dev, dist.get_backend())
    if world_size <= 1:
        return DistInfo(0, 1, 0, dev, None)
    if not dist.is_available():
        raise RuntimeError(f"WORLD_SIZE={world_size} but this torch build has no torch.distributed")
    backend = "nccl" if dev.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world_size)
    return DistInfo(rank, world_size, local_rank, dev, backend)


def is_main(info: DistInfo) -> bool:
    """Rank 0 is the one that writes files and prints."""
    return info.rank == 0


def barrier(info: DistInfo) -> None:
    if info.distributed:
        if info.backend == "nccl":
            dist.barrier(device_ids=[info.device.index])
        else:
            dist.barrier()


def all_reduce_mean(info: DistInfo, values: dict[str, float]) -> dict[str, float]:
    """Mean of each value over ranks. Every rank must pass the same keys (sorted to align them)."""
    if not info.distributed or not values:
        return {k: float(v) for k, v in values.items()}
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    t /= info.world_size
    return dict(zip(keys, t.tolist()))


def all_reduce_max(info: DistInfo, value: float) -> float:
    """Max over ranks; used so every rank agrees to stop at the same step."""
    if not info.distributed:
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64, device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def broadcast_object(info: DistInfo, obj, src: int = 0):
    """Rank ``src``'s ``obj`` on every rank (picklable objects, in memory only)."""
    if not info.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src, device=info.device if info.backend == "nccl" else None)
    return box[0]


def gather_objects(info: DistInfo, obj) -> list:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not info.distributed:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def cleanup(info: DistInfo) -> None:
    """Leave the process group (a no-op for single-process runs)."""
    if info.backend is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
