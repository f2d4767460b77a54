"""The segmentation part of ``pixelwise demo``: a small dilated FCN trained briefly on synthetic
material scenes, then refined three ways from the same network -- PAC-CRF (CRF stage on the frozen
network, then jointly), the dense CRF (parameters grid-searched on validation scenes), and
nothing -- and evaluated on held-out test scenes (mIoU, boundary-band mIoU, timings), with label
maps predicted for a real scikit-image photo.

The budget is a few minutes, so the numbers show the pipeline end to end; the README's table
comes from the longer runs described there.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ...atomic import write_text_atomic
from ...data.io.formats import write_png
from ...engine import OptimizerConfig, TrainConfig, latest_checkpoint
from ..base import DemoResult, Task
from ..loading import load_run
from .config import SegmentConfig, StageConfig
from .inference import evaluate_run, predict_folder

__all__ = ["SegmentDemoBudget", "run_demo"]

STAGE_NAMES = ("unaries", "crf", "joint")


@dataclass
class SegmentDemoBudget:
    steps: int = 300            # unaries network
    crf_steps: int = 40         # PAC-CRF alone on the frozen network
    joint_steps: int = 20       # PAC-CRF and network together
    width: float = 0.25
    image_size: int = 128
    val_images: int = 12
    test_images: int = 24

    def config(self, seed: int, quiet: bool, **changes) -> SegmentConfig:
        train = TrainConfig(steps=self.steps, batch_size=8, seed=seed, val_every=0, ckpt_every=max(1, self.steps // 3),
                            log_every=max(1, self.steps // 6), grad_clip=10.0, quiet=quiet,
                            optimizer=OptimizerConfig(name="adam", lr=2e-3, weight_decay=1e-5))
        return SegmentConfig(width=self.width, blocks=1, image_size=self.image_size, synthetic_seed=seed,
                             val_images=self.val_images, test_images=self.test_images, train=train,
                             crf_stage=StageConfig(self.crf_steps, 5e-3, 4), joint_stage=StageConfig(self.joint_steps,
                                                                                                      1e-4, 4),
                             dense_grid={"appearance_weight": [3.0, 5.0], "appearance_rgb": [5.0, 15.0]}, **changes)


def _train(task: Task, cfg: SegmentConfig, run_dir: Path, log) -> None:
    if (run_dir / "model.json").exists():
        log(f"segment: reusing {run_dir}")
        return
    resume = any(latest_checkpoint(run_dir / s) is not None for s in STAGE_NAMES)
    result = task.train(cfg, run_dir, resume=resume, log=log)
    if result is not None and result.interrupted:
        raise KeyboardInterrupt


def _evaluate(run_dir: Path, out: Path) -> tuple[dict, Path]:
    """Score a demo run on the synthetic test scenes; ``out/metrics.json`` and ``out/report.html``."""
    summary, report = evaluate_run(load_run(run_dir, task="segment", log=lambda m: None), "synthetic")
    write_text_atomic(out / "metrics.json", json.dumps(summary, indent=2, default=float) + "\n")
    return summary, report.write(out / "report.html")


def run_demo(task: Task, out: str | Path, *, budget: SegmentDemoBudget | None = None, seed: int = 0,
             quiet: bool = False, log: Callable[[str], object] = print) -> DemoResult:
    """Train the three runs under ``out`` with ``task`` (the segment task), evaluate them on the
    test scenes, predict a real photo."""
    import skimage.data  # optional heavy dependency: only the demo's photo needs it

    budget = budget or SegmentDemoBudget()
    out = Path(out)
    started = time.perf_counter()
    unaries = out / "unaries"
    log(f"segment: training the unaries network (x{budget.width} channels) for {budget.steps} steps")
    _train(task, budget.config(seed, quiet), unaries, log)
    log(f"segment: PAC-CRF 5x5 at dilation 32, {budget.crf_steps} steps alone + {budget.joint_steps} jointly")
    _train(task, budget.config(seed, quiet, init=str(unaries), crf="pac", crf_kernels=[[5, 32]]), out / "pac_crf", log)
    log("segment: dense CRF parameters by grid search on validation scenes")
    _train(task, budget.config(seed, quiet, init=str(unaries), crf="dense"), out / "dense_crf", log)
    train_s = round(time.perf_counter() - started, 1)
    pac, pac_report = _evaluate(out / "pac_crf", out / "eval_pac_crf")
    dense, dense_report = _evaluate(out / "dense_crf", out / "eval_dense_crf")
    write_png(out / "photos" / "astronaut.png", np.ascontiguousarray(skimage.data.astronaut()))
    predict_folder(load_run(out / "pac_crf", task="segment", log=log), out / "photos", out / "predictions", log=log)
    methods = {"unaries": dense["methods"]["unaries"], "dense_crf": dense["methods"]["dense"],
               "pac_crf_32": pac["methods"]["pac"], "unaries_after_joint": pac["methods"]["unaries"]}
    summary = {"images": dense["images"], "methods": methods, "train_seconds": train_s,
               "median_ms": {**dense["median_ms"], **pac["median_ms"]},
               "budget": {"steps": budget.steps, "crf_steps": budget.crf_steps, "joint_steps": budget.joint_steps,
                          "width": budget.width, "image_size": budget.image_size}}
    headline = (f"mIoU on {dense['images']} held-out scenes: "
                + ", ".join(f"{k} {v['miou']:.3f}" for k, v in methods.items()))
    return DemoResult(summary, [pac_report, dense_report], headline)
