"""Guided (joint) upsampling of depth and flow: the task (Su et al. 2019, Sec. 4).

Wires the models of :mod:`pixelwise.models.upsampling`, the pairs of
:mod:`pixelwise.data.transforms.upsampling_pairs` and the shared engine. Learned models train on
procedurally generated scenes by default and are validated on held-out generated scenes; real
scenes (the Middlebury motorcycle, NYU, Sintel, user folders) are for evaluation or for training
when the user has them. JBU "trains" by a grid search of its two bandwidths; bicubic and bilinear
have nothing to train and are evaluated by name.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from pathlib import Path
from typing import NamedTuple

from torch import nn

from ...atomic import write_text_atomic
from ...checks import parse_positive_int
from ...data.datasets.upsampling_sources import SPECS, open_dataset
from ...data.transforms.upsampling_pairs import UpsamplingPairs
from ...engine import resolve_device, save_checkpoint
from ...losses import masked_mse
from ...models import create_model
from ...models.upsampling_base import KINDS, normalization_stats
from ..base import Evaluation, LoadedRun, Option, Splits, Task
from ..loading import load_run
from ..registry import register_task
from .bench import run as run_bench
from .config import INTERPOLATION, LEARNED, PARAMETER_FREE, UpsampleConfig
from .demo import DemoBudget, run_demo
from .evaluation import evaluate_methods, evaluation_pairs, normalised_error, validation_pairs
from .prediction import predict_map, read_prediction_inputs, write_prediction
from .report import upsampling_report

__all__ = ["Method", "UpsampleTask", "jbu_grid", "load_method", "search_jbu", "upsampling_loss"]


# ----------------------------------------------------------------------------------- training

def upsampling_loss(model, batch):
    pred = model(batch["target_lr"], batch["image"])
    _, scale = normalization_stats(batch["target_lr"])
    loss = masked_mse(pred, batch["target"], batch["valid"], scale)
    return loss, {}


def jbu_grid() -> list[tuple[int, float, float]]:
    """(kernel_size, sigma_space, sigma_color) candidates; the window covers +-2 sigma_space."""
    grid = []
    for sigma_space, sigma_color in itertools.product((0.5, 0.75, 1.0, 1.5), (0.02, 0.04, 0.08, 0.16, 0.32)):
        grid.append((2 * math.ceil(2 * sigma_space) + 1, sigma_space, sigma_color))
    return grid


def search_jbu(cfg: UpsampleConfig, run_dir: Path, val: list[dict] | None = None, *, log=print) -> nn.Module:
    """Pick JBU's bandwidths by grid search on held-out synthetic scenes; save them as a model
    (its checkpoint carries ``cfg``) and every candidate's score in ``run_dir/jbu_grid.json``."""
    val = val if val is not None else validation_pairs(cfg.kind, cfg.factor, cfg.val_size, cfg.crop)
    geometry = {"factor": cfg.factor, "kind": cfg.kind}
    scores = []
    for kernel_size, sigma_space, sigma_color in jbu_grid():
        model = create_model("jbu", **geometry, kernel_size=kernel_size, sigma_space=sigma_space,
                             sigma_color=sigma_color)
        scores.append((normalised_error(model, val), kernel_size, sigma_space, sigma_color))
    best = min(scores)
    options = {"kernel_size": best[1], "sigma_space": best[2], "sigma_color": best[3]}
    model = create_model("jbu", **geometry, **options)
    run_dir = Path(run_dir)
    write_text_atomic(run_dir / "jbu_grid.json", json.dumps(
        {"validation_scenes": len(val), "columns": ["val_nrmse", "kernel_size", "sigma_space", "sigma_color"],
         "rows": [list(s) for s in scores]}, indent=2) + "\n")
    save_checkpoint(run_dir / "model", model, model_name="jbu", model_config={**geometry, **options},
                    metrics={"val_nrmse": best[0]}, config=cfg)
    log(f"jbu: best of {len(scores)} settings on {len(val)} validation scenes: kernel_size={best[1]} "
        f"sigma_space={best[2]} sigma_color={best[3]} (normalised RMSE {best[0]:.4f})")
    return model


# ----------------------------------------------------------------------------------- methods

class Method(NamedTuple):
    """A method ready to upsample: its label, the model (eval mode, on its device) and the factor
    and kind it upsamples."""

    label: str
    model: nn.Module
    factor: int
    kind: str


def load_method(spec: str, *, factor: int | None = None, kind: str | None = None, device: str = "cpu",
                log=print) -> Method:
    """A parameter-free model name (at ``factor`` / ``kind``, default x8 depth) or a trained run
    folder, checkpoint or zoo name (its own factor and kind, which must match those given)."""
    if spec in PARAMETER_FREE:
        factor, kind = factor or 8, kind or "depth"
        return Method(spec, create_model(spec, factor=factor, kind=kind).to(resolve_device(device)).eval(),
                      factor, kind)
    loaded = load_run(spec, task=UpsampleTask.name, device=device,
                      options=argparse.Namespace(factor=factor, kind=kind), log=log)
    return Method(loaded.model_name, loaded.model, loaded.extras["factor"], loaded.extras["kind"])


# ----------------------------------------------------------------------------------- the task

KIND_HELP = "depth (1 channel) or flow (2 channels)"
TARGET_SCALE = Option("--target-scale", "16-bit PNG targets: value = png / scale", type=float, default=1000.0)


@register_task
class UpsampleTask(Task):
    name = "upsample"
    summary = "guided (joint) upsampling of depth or flow with an RGB guide"
    doc = "docs/upsample.md"
    config_class = UpsampleConfig
    data_sources = SPECS
    headline = ("x8 depth RMSE (disparity px) on the held-out Middlebury motorcycle after 3000 steps on generated "
                "scenes: PAC (lite) 2.69, DJF 2.92, JBU 3.08, bicubic 3.46")
    train_options = (
        Option("--model", f"{', '.join(LEARNED)} or jbu (grid-searches its bandwidths)", key="model"),
        Option("--factor", "upsampling factor", type=parse_positive_int, key="factor"),
        Option("--kind", KIND_HELP, choices=tuple(KINDS), key="kind"),
        Option("--data", "training data: " + ", ".join(SPECS), key="data"),
        Option("--follow-symlinks", "read data through symbolic links that lead outside its folder",
               action="store_true", key="follow_symlinks"),
    )
    eval_options = (
        Option("--factor", "upsampling factor", type=parse_positive_int, default=8),
        Option("--kind", KIND_HELP, choices=tuple(KINDS), default="depth"),
        Option("--data", "test data: " + ", ".join(SPECS) + " (default: motorcycle for depth, synthetic for flow)"),
        TARGET_SCALE,
        Option("--follow-symlinks", "read --data through symbolic links that lead outside its folder",
               action="store_true"),
    )
    predict_options = (
        Option("--factor", "upsampling factor (default: the checkpoint's; 8 for a model name)",
               type=parse_positive_int),
        Option("--kind", KIND_HELP + " (default: the checkpoint's; depth for a model name)",
               choices=tuple(KINDS)),
        Option("--image", "high-resolution guide image", required=True),
        Option("--target", "low-resolution map: .npy, .pfm, .flo or 16-bit .png", required=True),
        TARGET_SCALE,
        Option("--out", "output map: .npy, .pfm, .flo or 16-bit .png (by suffix), plus <stem>_color.png",
               required=True),
    )
    demo_options = (Option("--steps", "training steps per learned model", type=parse_positive_int,
                           default=DemoBudget.steps),)
    bench_options = (
        Option("--size", "square guide side (a multiple of the factor)", type=parse_positive_int, default=512),
        Option("--factor", "upsampling factor", type=parse_positive_int, default=8),
        Option("--repeats", "timed runs per model (median)", type=parse_positive_int, default=5),
        Option("--threads", "torch threads", type=parse_positive_int, default=2),
    )
    eval_help = ("compare methods side by side (bicubic, bilinear, jbu by name; trained run folders, checkpoints, "
                 "zoo names): metrics.json and report.html")
    predict_help = "upsample one low-res map with its guide image"
    model_help = "bicubic, bilinear or jbu by name, or a trained run folder, checkpoint or zoo name"
    demo_budget_s = 330
    multiple_eval_models = True

    # ------------------------------------------------------------------ training pieces

    def model_config(self, cfg: UpsampleConfig, splits: Splits) -> dict:
        return {"factor": cfg.factor, "kind": cfg.kind}

    def datasets(self, cfg: UpsampleConfig, run_dir: Path, log) -> Splits:
        val = validation_pairs(cfg.kind, cfg.factor, cfg.val_size, cfg.crop)
        base = open_dataset(cfg.data, cfg.kind, synthetic_length=cfg.synthetic_length, synthetic_size=cfg.crop,
                            seed=cfg.train.seed, target_scale=cfg.target_scale, follow_symlinks=cfg.follow_symlinks)
        pairs = UpsamplingPairs(base, cfg.factor, cfg.kind, None if cfg.data == "synthetic" else cfg.crop,
                                seed=cfg.train.seed)
        return Splits(pairs, val)

    def step(self, cfg: UpsampleConfig, splits: Splits):
        return upsampling_loss

    def validator(self, cfg: UpsampleConfig, splits: Splits):
        return lambda model: {"val_nrmse": normalised_error(model, splits.val)}

    def train(self, cfg: UpsampleConfig, run_dir: Path, *, resume: bool = False, log=print):
        """Learned models through the engine; JBU by grid search (returns None)."""
        cfg.check()
        if cfg.model in INTERPOLATION:
            raise ValueError(f"--model {cfg.model}: interpolation has nothing to train; use it directly in eval")
        if cfg.model == "jbu":
            search_jbu(cfg, run_dir, log=log)
            return None
        return super().train(cfg, run_dir, resume=resume, log=log)

    # ------------------------------------------------------------------ using trained models

    def attach(self, loaded: LoadedRun, options: argparse.Namespace | None, log) -> LoadedRun:
        """Record the factor and kind the model upsamples; refuse a factor or kind asked for in
        ``options`` that the model was not trained for."""
        factor, kind = loaded.model.factor, loaded.model.kind
        asked_factor, asked_kind = getattr(options, "factor", None), getattr(options, "kind", None)
        if (asked_factor or factor) != factor or (asked_kind or kind) != kind:
            raise ValueError(f"--model {loaded.source}: was trained for factor {factor} {kind}, but factor "
                             f"{asked_factor or factor} {asked_kind or kind} was asked for")
        loaded.extras.update(factor=factor, kind=kind)
        return loaded

    def evaluate(self, options: argparse.Namespace, log) -> Evaluation:
        factor, kind = options.factor, options.kind
        data = options.data or ("motorcycle" if kind == "depth" else "synthetic")
        methods = [load_method(spec, factor=factor, kind=kind, device=options.device, log=log)
                   for spec in options.model]
        labels = [m.label for m in methods]
        named = [(m.label if labels.count(m.label) == 1 else f"{m.label} ({spec})", m.model)
                 for m, spec in zip(methods, options.model)]
        pairs = evaluation_pairs(data, factor, kind, options.target_scale, follow_symlinks=options.follow_symlinks)
        results, predictions = evaluate_methods(named, pairs, kind, device=resolve_device(options.device))
        report = upsampling_report(title=f"pixelwise upsample eval: x{factor} {kind}",
                                   summary=f"{len(pairs)} image(s) from {data}; metrics on valid pixels only.",
                                   blocks=[{"factor": factor, "results": results, "pair": pairs[0],
                                            "predictions": predictions}], kind=kind)
        key = "epe" if kind == "flow" else "rmse"
        lines = [f"{label:24s} {key} {r[key]:.4f}" for label, r in results.items()]
        return Evaluation({"data": data, "factor": factor, "kind": kind, "metrics": results}, report, lines)

    def predict(self, options: argparse.Namespace, log) -> str:
        method = load_method(options.model, factor=options.factor, kind=options.kind, device=options.device, log=log)
        image, target_lr = read_prediction_inputs(options.image, options.target, factor=method.factor,
                                                  kind=method.kind, target_scale=options.target_scale)
        prediction = predict_map(method.model, image, target_lr, resolve_device(options.device))
        array, colour_path = write_prediction(options.out, prediction, method.kind, target_scale=options.target_scale)
        return f"wrote {options.out} ({array.shape[0]}x{array.shape[1]}) and {colour_path}"

    # ------------------------------------------------------------------ demo and benchmark

    def demo(self, out: Path, options: argparse.Namespace, *, seed: int, quiet: bool, log):
        return run_demo(self, out, budget=DemoBudget(steps=options.steps), seed=seed, quiet=quiet, log=log)

    def bench(self, options: argparse.Namespace, log):
        return run_bench(size=options.size, factor=options.factor, repeats=options.repeats, threads=options.threads)
