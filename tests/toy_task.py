"""A minimal task, registered by the tests only (never shipped): the whole contract in ~100 lines.

It learns a 3x3 box blur of random 8x8 images with one small conv net -- enough to drive every
generated command (train, resume, eval, predict, demo, bench) through the real CLI.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pixelwise.bench.timing import interleaved_medians
from pixelwise.engine import OptimizerConfig, TrainConfig
from pixelwise.models import register_model
from pixelwise.report import Report
from pixelwise.tasks import DemoResult, Evaluation, Option, Splits, Task, load_run, register_task


@register_model("toy_blur", task="toy")
def toy_blur(width: int = 4) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.Tanh(), nn.Conv2d(width, 1, 3, padding=1))


class BlurPairs(torch.utils.data.Dataset):
    def __init__(self, count: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.rand(count, 1, 8, 8, generator=g)
        self.y = F.avg_pool2d(F.pad(self.x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "y": self.y[i]}


def _train_config() -> TrainConfig:
    return TrainConfig(steps=6, batch_size=4, ckpt_every=2, log_every=1, seed=0, device="cpu",
                       optimizer=OptimizerConfig(name="adam", lr=1e-2))


@dataclass
class ToyConfig:
    model: str = "toy_blur"
    width: int = 4
    samples: int = 32
    train: TrainConfig = field(default_factory=_train_config)

    def check(self) -> None:
        if self.width < 1:
            raise ValueError(f"width: must be >= 1, got {self.width}")


def mse_loss(model, batch):
    if os.environ.get("TOY_STEP_SLEEP"):  # lets a test signal a run that is surely mid-way
        time.sleep(float(os.environ["TOY_STEP_SLEEP"]))
    return F.mse_loss(model(batch["x"]), batch["y"]), {}


@register_task
class ToyTask(Task):
    name = "toy"
    summary = "toy: learn a box blur (test only)"
    doc = "docs/toy.md"
    config_class = ToyConfig
    train_options = (Option("--width", "hidden channels", type=int, key="width"),)
    eval_options = (Option("--samples", "held-out images", type=int, default=16),)
    predict_options = (Option("--inputs", "folder of .npy images", required=True),
                       Option("--out", "folder for .npy predictions", required=True))
    demo_options = (Option("--steps", "training steps", type=int, default=4),)
    bench_options = (Option("--repeats", "timed runs", type=int, default=3),)
    demo_budget_s = 60

    def model_config(self, cfg, splits):
        return {"width": cfg.width}

    def datasets(self, cfg, run_dir, log):
        return Splits(BlurPairs(cfg.samples, cfg.train.seed), BlurPairs(8, 999))

    def step(self, cfg, splits):
        return mse_loss

    def validator(self, cfg, splits):
        def validate(model):
            device = next(model.parameters()).device
            return {"val_mse": float(mse_loss(model, {"x": splits.val.x.to(device), "y": splits.val.y.to(device)})[0])}

        return validate

    def evaluate(self, options, log):
        loaded = load_run(options.model, task=self.name, device=options.device, log=log)
        data = BlurPairs(options.samples, 12345)
        device = next(loaded.model.parameters()).device
        with torch.no_grad():
            mse = float(mse_loss(loaded.model, {"x": data.x.to(device), "y": data.y.to(device)})[0])
        report = Report(f"toy eval of {options.model}", tables=[("error", ["metric", "value"], [["mse", mse]])])
        return Evaluation({"mse": mse, "images": len(data)}, report, [f"mse {mse:.6f} on {len(data)} images"])

    def predict(self, options, log):
        loaded = load_run(options.model, task=self.name, device=options.device, log=log)
        out = Path(options.out)
        out.mkdir(parents=True, exist_ok=True)
        files = sorted(Path(options.inputs).glob("*.npy"))
        for f in files:
            x = torch.from_numpy(np.load(f, allow_pickle=False)).float()[None, None]
            with torch.no_grad():
                np.save(out / f.name, loaded.model(x)[0, 0].numpy())
        return f"wrote {len(files)} prediction(s) under {out}"

    def demo(self, out, options, *, seed, quiet, log):
        cfg = ToyConfig(train=TrainConfig(steps=options.steps, batch_size=4, seed=seed, device="cpu", quiet=quiet))
        if not (out / "run" / "model.json").exists():
            self.train(cfg, out / "run", log=log)
        loaded = load_run(out / "run", task=self.name)
        data = BlurPairs(16, 12345)
        with torch.no_grad():
            mse = float(mse_loss(loaded.model, {"x": data.x, "y": data.y})[0])
        report = Report("toy demo", tables=[("error", ["metric", "value"], [["mse", mse]])]).write(out / "report.html")
        return DemoResult({"mse": mse}, [report], f"held-out mse {mse:.5f}")

    def bench(self, options, log):
        model, conv = toy_blur().eval(), nn.Conv2d(1, 1, 3, padding=1).eval()
        x = torch.rand(1, 1, 64, 64)
        with torch.no_grad():
            ms = interleaved_medians([lambda: model(x), lambda: conv(x)], options.repeats)

        class Result:
            def table(self):
                return f"toy_blur {ms[0]:.3f} ms, conv {ms[1]:.3f} ms, ratio {ms[0] / ms[1]:.2f}x"

            def to_json(self):
                return json.dumps({"toy_ms": ms[0], "conv_ms": ms[1], "ratio": ms[0] / ms[1]})

        return Result()
