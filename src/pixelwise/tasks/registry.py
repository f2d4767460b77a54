"""The task registry: tasks by name. It imports no task package (``pixelwise.tasks`` does), so a
test or a plug-in registers its own task the same way the built-in ones do."""

from __future__ import annotations

from ..models import suggest
from .base import Task

__all__ = ["get_task", "list_tasks", "register_task", "unregister_task"]

_TASKS: dict[str, Task] = {}

RESERVED = ("demo", "bench", "tasks", "ops")  # top-level commands a task name would shadow


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: register one instance of ``cls`` under ``cls.name``."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.isidentifier() or name in RESERVED:
        raise ValueError(f"register_task: {cls.__name__}.name must be an identifier other than "
                         f"{', '.join(RESERVED)}, got {name!r}")
    if name in _TASKS:
        raise ValueError(f"register_task: a task named {name!r} is already registered")
    _TASKS[name] = cls()
    return cls


def unregister_task(name: str) -> None:
    _TASKS.pop(name, None)


def get_task(name: str) -> Task:
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}{suggest(name, _TASKS)}; tasks: {', '.join(list_tasks())}")
    return _TASKS[name]


def list_tasks() -> list[str]:
    """Registered task names, in registration order."""
    return list(_TASKS)
