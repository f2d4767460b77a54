"""Tasks: one package per pixel-level prediction system behind the :class:`Task` contract.

Importing this package registers the built-in tasks (the registry itself imports none of them).
"""

import importlib
import pkgutil

from .base import BenchReport, DemoResult, Evaluation, LoadedRun, Option, Splits, Task, Verb
from .loading import RunLoadError, load_run, resolve_run_path
from .registry import get_task, list_tasks, register_task, unregister_task

__all__ = ["BenchReport", "DemoResult", "Evaluation", "LoadedRun", "Option", "RunLoadError", "Splits", "Task", "Verb",
           "get_task", "list_tasks", "load_run", "register_task", "resolve_run_path", "unregister_task"]


def _register_builtin_tasks() -> None:
    """Import every ``tasks/<name>/`` package: its ``task.py`` registers the task. Discovered, not
    listed, so adding a task edits no file outside its folder."""
    for module in sorted(pkgutil.iter_modules(__path__)):
        if module.ispkg:
            importlib.import_module(f"{__name__}.{module.name}.task")


_register_builtin_tasks()
