"""The instance-grouping part of ``pixelwise demo``: the embedding network trained for a few
minutes on synthetic scenes of overlapping textured shapes with the recurrent mean-shift loss,
then evaluated on held-out scenes (proposal recall, AP^r) with a report, and instance maps
predicted for a real photo that ships with scikit-image.

The network is small (a quarter of the channels) and the budget short, so the numbers show the
pipeline working end to end, not the paper's accuracy.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...data.io.formats import write_png
from ...engine import OptimizerConfig, TrainConfig, latest_checkpoint
from ..base import DemoResult, Task
from .config import InstancesConfig

__all__ = ["InstancesDemoBudget", "run_demo"]


@dataclass
class InstancesDemoBudget:
    steps: int = 150
    batch_size: int = 8
    width: float = 0.25
    image_size: int = 128
    iterations: int = 3        # T mean-shift iterations in the loss
    max_pixels: int = 512
    val_images: int = 24

    def config(self, seed: int, quiet: bool) -> InstancesConfig:
        return InstancesConfig(width=self.width, image_size=self.image_size, iterations=self.iterations,
                               max_pixels=self.max_pixels, val_images=self.val_images, synthetic_seed=seed,
                               scorer_images=32,
                               train=TrainConfig(steps=self.steps, batch_size=self.batch_size, seed=seed, val_every=0,
                                                 ckpt_every=max(1, self.steps // 3),
                                                 log_every=max(1, self.steps // 6), grad_clip=10.0, quiet=quiet,
                                                 optimizer=OptimizerConfig(name="adam", lr=2e-3)))


def run_demo(task: Task, out: Path, *, budget: InstancesDemoBudget | None = None, seed: int = 0, quiet: bool = False,
             log=print) -> DemoResult:
    """Train (or reuse) the demo model in ``out/run`` with ``task`` (the instances task), evaluate it
    into ``out/report.html`` and predict a real photo into ``out/predictions``."""
    budget = budget or InstancesDemoBudget()
    out = Path(out)
    run_dir = out / "run"
    started = time.perf_counter()
    if (run_dir / "model.json").exists():
        log(f"instances: reusing {run_dir}")
    else:
        log(f"instances: training the embedding network (x{budget.width} channels, T = {budget.iterations}) for "
            f"{budget.steps} steps on synthetic scenes")
        result = task.train(budget.config(seed, quiet), run_dir, resume=latest_checkpoint(run_dir) is not None,
                            log=log)
        if result.interrupted:
            raise KeyboardInterrupt
    train_s = round(time.perf_counter() - started, 1)
    # What `pixelwise instances eval --model <run>` and `predict` do, on the held-out synthetic scenes.
    evaluation = task.evaluate(argparse.Namespace(model=str(run_dir), data="synthetic", split="val", max_images=None,
                                                  examples=6, follow_symlinks=False, device="cpu"),
                               lambda m: None)
    report = evaluation.report.write(out / "report.html")
    # A real photo the model never saw (scikit-image's coins: many touching instances).
    import skimage.data  # heavy import (its dataset registry), needed only for this photo

    write_png(out / "photos" / "coins.png", np.repeat(skimage.data.coins()[:, :, None], 3, axis=2))
    task.predict(argparse.Namespace(model=str(run_dir), images=str(out / "photos"), out=str(out / "predictions"),
                                    device="cpu"), log)
    summary = {**evaluation.metrics, "train_seconds": train_s,
               "budget": {"steps": budget.steps, "width": budget.width, "image_size": budget.image_size,
                          "iterations": budget.iterations}}
    s = summary["summary"]
    headline = (f"on {s['images']} held-out synthetic scenes: recall at IoU 0.5 of the top 10 proposals "
                f"{s['recall50@10']:.3f}, AR@10 {s['ar@10']:.3f}, AP^r {100 * s['map']:.1f}")
    return DemoResult(summary, [report], headline)
