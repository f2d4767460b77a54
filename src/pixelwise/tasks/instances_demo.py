"""The instance-grouping part of ``pixelwise demo``: the embedding network trained for a few
minutes on synthetic scenes of overlapping textured shapes with the recurrent mean-shift loss,
then evaluated on held-out scenes (proposal recall, AP^r) with a report, and instance maps
predicted for a real photo that ships with scikit-image.

The network is small (a quarter of the channels) and the budget short, so the numbers show the
pipeline working end to end, not the paper's accuracy.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_text_atomic
from ..engine import OptimizerConfig, TrainConfig, latest_checkpoint
from .instances import InstancesConfig, run_evaluation, train_instances


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


def run_instances_demo(out: Path, *, budget: InstancesDemoBudget | None = None, seed: int = 0, quiet: bool = False,
                       log=print) -> dict:
    """Train (or reuse) the demo model in ``out/run``, evaluate, predict a real photo; returns a summary."""
    from ..data.formats import write_png
    from .instances import load_instances_model, predict_folder

    budget = budget or InstancesDemoBudget()
    out = Path(out)
    run_dir = out / "run"
    started = time.perf_counter()
    if (run_dir / "model.json").exists():
        log(f"instances: reusing {run_dir}")
    else:
        log(f"instances: training the embedding network (x{budget.width} channels, T = {budget.iterations}) for "
            f"{budget.steps} steps on synthetic scenes")
        result = train_instances(budget.config(seed, quiet), run_dir, resume=latest_checkpoint(run_dir) is not None,
                                 log=log)
        if result.interrupted:
            raise KeyboardInterrupt
    train_s = round(time.perf_counter() - started, 1)
    summary, report = run_evaluation(str(run_dir), "synthetic", out, examples=6, log=lambda m: None)
    # A real photo the model never saw (scikit-image's coins: many touching instances).
    import skimage.data
    import numpy as np

    coins = skimage.data.coins()
    photo = np.repeat(coins[:, :, None], 3, axis=2)
    write_png(out / "photos" / "coins.png", photo)
    predict_folder(load_instances_model(run_dir), out / "photos", out / "predictions", log=log)
    s = summary["summary"]
    summary.update({"train_seconds": train_s, "budget": {"steps": budget.steps, "width": budget.width,
                                                         "image_size": budget.image_size,
                                                         "iterations": budget.iterations}})
    write_text_atomic(out / "metrics.json", json.dumps(summary, indent=2, default=float))
    log(f"instances on {s['images']} held-out synthetic scenes: recall at IoU 0.5 of the top 10 proposals "
        f"{s['recall50@10']:.3f}, AR@10 {s['ar@10']:.3f}, AP^r {100 * s['map']:.1f}")
    return summary
