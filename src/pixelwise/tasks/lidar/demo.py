"""The LiDAR part of ``pixelwise demo``: the released SqueezeSegV3-21 trained for a few minutes on
synthetic 64-beam scans, then evaluated per point (with and without kNN) on real SemanticKITTI
scans when a folder of them is given, else on held-out synthetic scans.

The network is the paper's at a quarter of its channels and on 64 x 512 range images (the
paper's ablation resolution), so a CPU can train it in minutes; the numbers show the pipeline
working end to end, not the paper's accuracy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ...data.datasets.semantic_kitti import CLASS_NAMES, find_scans
from ...engine import OptimizerConfig, TrainConfig, latest_checkpoint
from ..base import DemoResult, Task
from ..loading import load_run
from .config import KnnConfig, LidarConfig
from .inference import evaluate_scans, predict_scans, scores_json
from .report import lidar_report
from .scans import SYNTHETIC_VAL_SEQUENCE

__all__ = ["LidarDemoBudget", "run_lidar_demo"]


@dataclass
class LidarDemoBudget:
    steps: int = 60
    batch_size: int = 4
    width: float = 0.25        # channel multiplier
    image_width: int = 512
    train_scans: int = 96
    val_scans: int = 8
    lr: float = 0.02

    def config(self, seed: int, quiet: bool) -> LidarConfig:
        return LidarConfig(width=self.width, image_width=self.image_width, synthetic_scans=self.train_scans,
                           synthetic_val_scans=self.val_scans, synthetic_seed=seed, warmup_epochs=0.2,
                           epoch_decay=1.0, knn=KnnConfig(),
                           train=TrainConfig(steps=self.steps, batch_size=self.batch_size, seed=seed, val_every=0,
                                             ckpt_every=max(1, self.steps // 3), log_every=max(1, self.steps // 6),
                                             grad_clip=10.0, quiet=quiet,
                                             optimizer=OptimizerConfig(name="sgd", lr=self.lr, momentum=0.9,
                                                                       weight_decay=1e-4)))


def _stale(run_dir: Path, task: Task, log) -> bool:
    """A finished demo run this version cannot load (e.g. one trained before ``ssgv3_21`` became the
    released network) is moved aside to ``run.stale-<time>`` and retrained, not reused."""
    try:
        load_run(run_dir, task=task.name, log=lambda message: None)
        return False
    except ValueError as err:
        aside = run_dir.with_name(f"{run_dir.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}")
        run_dir.rename(aside)
        log(f"lidar: {run_dir} cannot be reused ({str(err).splitlines()[0]}); moved to {aside}, retraining")
        return True


def run_lidar_demo(task: Task, out: Path, *, scans: str | Path | None = None, budget: LidarDemoBudget | None = None,
                   seed: int = 0, quiet: bool = False, log=print) -> DemoResult:
    """Train (or reuse) the demo model in ``out/run`` with ``task.train``, evaluate on ``scans``
    (labelled SemanticKITTI scans; default: the held-out synthetic ones), predict the first scan;
    writes ``out/report.html`` and ``out/predictions/``."""
    budget = budget or LidarDemoBudget()
    out = Path(out)
    if scans is not None and not Path(scans).exists():
        raise FileNotFoundError(f"--lidar-scans {scans}: no such file or folder")
    run_dir = out / "run"
    started = time.perf_counter()
    if (run_dir / "model.json").exists() and not _stale(run_dir, task, log):
        log(f"lidar: reusing {run_dir}")
    else:
        log(f"lidar: training the released SSGV3-21 (width x{budget.width}) for {budget.steps} steps on synthetic scans")
        result = task.train(budget.config(seed, quiet), run_dir, resume=latest_checkpoint(run_dir) is not None,
                            log=log)
        if result.interrupted:
            raise KeyboardInterrupt
    train_s = round(time.perf_counter() - started, 1)
    loaded = load_run(run_dir, task=task.name, log=log)
    if scans is not None:
        records = find_scans(scans, require_labels=True)
        data = f"real SemanticKITTI scans ({scans})"
    else:
        records = find_scans(run_dir / "scans", sequences=[SYNTHETIC_VAL_SEQUENCE], require_labels=True)
        data = "held-out synthetic scans"
    result = evaluate_scans(loaded, records, log=log)
    predict_scans(loaded, records[:1], out / "predictions", ply=True, log=log)
    summary = {**scores_json(result, CLASS_NAMES), "data": data, "train_seconds": train_s,
               "budget": {"steps": budget.steps, "batch_size": budget.batch_size, "width": budget.width,
                          "image_width": budget.image_width, "train_scans": budget.train_scans}}
    report = lidar_report(result, title="pixelwise demo: LiDAR segmentation (SqueezeSegV3-21)",
                          description=f"the released SSGV3-21 at x{budget.width} channels, trained {budget.steps} "
                                      f"steps on {budget.train_scans} synthetic scans, evaluated on {len(records)} "
                                      f"{data}").write(out / "report.html")
    scores = result["scores"]
    headline = (f"on {data}: point mIoU {100 * scores['point'].miou:.1f}, with kNN "
                f"{100 * scores['point_knn'].miou:.1f} (19 classes); accuracy {100 * scores['point_knn'].accuracy:.1f}")
    return DemoResult(summary, [report], headline)
