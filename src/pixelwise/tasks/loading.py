"""``load_run``: one way to load any task's trained model -- a run folder, a checkpoint file or a
zoo name -- into one :class:`~.base.LoadedRun` type, with named errors for every way it can fail."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

from ..engine import config_from_dict, latest_checkpoint, load_checkpoint, load_weights, resolve_device
from ..models import create_model, list_models, model_task, suggest
from ..zoo import list_zoo, read_card
from .base import LoadedRun
from .registry import get_task, list_tasks

__all__ = ["RunLoadError", "load_run", "resolve_run_path"]


class RunLoadError(ValueError):
    """A ``--model`` that cannot be loaded for this task; the message says why and what to do."""


def _unfinished(folder: Path, task: str | None) -> str | None:
    """Why ``folder`` is a run folder without a finished model, or None when it is no run folder."""
    steps = [latest_checkpoint(d) for d in [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]]
    steps = [p for p in steps if p is not None]
    if not steps and not (folder / "log.jsonl").exists() and not (folder / "config.yaml").exists():
        return None
    where = f" (last checkpoint: {max(steps, key=lambda p: p.stat().st_mtime)})" if steps else ""
    command = f"pixelwise {task} train --out {folder} --resume" if task else "the train command with --resume"
    return f"{folder} is a run folder with no finished model (no model.json){where}; finish it with: {command}"


def resolve_run_path(spec: str, task: str | None = None) -> Path | str:
    """The checkpoint stem ``spec`` names, or the zoo name itself; raises :class:`RunLoadError`."""
    path = Path(spec)
    if path.is_dir():
        if (path / "model.json").exists():
            return path / "model"
        why = _unfinished(path, task)
        raise RunLoadError(f"--model {spec}: " + (why or "a folder that holds no run (no model.json, checkpoints "
                                                          "or log.jsonl)"))
    if path.suffix in (".json", ".safetensors") and (path.exists() or path.with_suffix(".json").exists()):
        return path
    if path.exists() or path.with_suffix(path.suffix + ".json").exists() or Path(f"{spec}.json").exists():
        return path
    if spec in list_zoo():
        return spec
    if spec in list_models():
        raise RunLoadError(f"--model {spec}: {spec!r} is a model name, but no trained weights for it are shipped "
                           f"in pixelwise/zoo; pass a run folder or checkpoint of your own")
    names = [*list_zoo(), *list_models(task=task)]
    raise RunLoadError(f"--model {spec}: neither a run folder, a checkpoint file nor a zoo name{suggest(spec, names)}")


def load_run(spec: str | Path, *, task: str | None = None, device: str = "cpu",
             options: argparse.Namespace | None = None, log: Callable[[str], Any] = print) -> LoadedRun:
    """Load a trained model for ``task`` (any task when None) from a run folder, a checkpoint
    (stem, ``.json`` or ``.safetensors``), a zoo name or a format the task reads itself
    (:meth:`~.base.Task.load_foreign`), on ``device``, in eval mode; the task then attaches what
    evaluation and prediction need (:meth:`~.base.Task.attach`)."""
    spec = str(spec)
    dev = resolve_device(device)
    for handler in [get_task(name) for name in list_tasks() if task is None or name == task]:
        foreign = handler.load_foreign(spec, log)  # a task's own format (Task.load_foreign)
        if foreign is not None:
            foreign.model = foreign.model.to(dev).eval()
            return handler.attach(foreign, options, log)
    where = resolve_run_path(spec, task)
    if isinstance(where, str):  # a zoo entry
        card = read_card(where).card
        model_name, meta = card["model"], {"model_name": card["model"], "model_config": card["model_config"],
                                           "config": card.get("config"), "metrics": card["metrics"]}
        model, run_dir = create_model(where, pretrained=True), None
    else:
        ckpt = load_checkpoint(where)
        model_name, meta = ckpt.model_name, ckpt.meta
        if model_task(model_name) is None:
            raise RunLoadError(f"--model {spec}: {ckpt.path} holds a model named {model_name!r}, which this "
                               f"pixelwise does not know{suggest(model_name, list_models())}")
        model = create_model(model_name, **ckpt.model_config)
        load_weights(model, ckpt, strict=True)
        run_dir = ckpt.path.parent
    owner = model_task(model_name)
    if task is not None and owner != task:
        raise RunLoadError(f"--model {spec}: holds a {owner} model ({model_name}), not a {task} one; use it with "
                           f"`pixelwise {owner} ...`")
    handler = get_task(owner)
    saved = meta.get("config")
    config = (config_from_dict(handler.config_class, saved, source=f"--model {spec}") if saved
              else handler.default_config())
    loaded = LoadedRun(owner, model.to(dev).eval(), model_name, config, spec, run_dir, meta)
    return handler.attach(loaded, options, log)
