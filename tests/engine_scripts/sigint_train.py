"""Train the toy model in a subprocess so the test can send it SIGINT (Ctrl-C) or SIGTERM.

usage: sigint_train.py RUN_DIR [--slow] [--resume]
Exits 130 / 143 when stopped by SIGINT / SIGTERM (like the CLI), 0 when finished; the last stdout line is the result.
"""

from __future__ import annotations

import json
import sys
import time

import engine_toy as toy

from pixelwise.engine import EXIT_CODES, OptimizerConfig, TrainConfig, train

STEPS = 80


def config() -> TrainConfig:
    return TrainConfig(steps=STEPS, batch_size=8, log_every=5, ckpt_every=5, seed=3, device="cpu",
                       optimizer=OptimizerConfig(lr=1e-2))


def run(run_dir: str, *, slow: bool = False, resume: bool = False):
    data = toy.ToyRegression(n=36, jitter=0.1)
    model = toy.make_model(seed=1, dropout=0.2)

    def loss_fn(model, batch):
        if slow:
            time.sleep(0.05)
        return toy.loss_fn(model, batch)

    return train(model, data, loss_fn, config(), run_dir, model_name="toy", model_config={}, resume=resume,
                 log=lambda m: print(m, flush=True))


if __name__ == "__main__":
    args = sys.argv[1:]
    result = run(args[0], slow="--slow" in args, resume="--resume" in args)
    print(json.dumps({"step": result.step, "interrupted": result.interrupted, "checkpoint": str(result.checkpoint)}), flush=True)
    sys.exit(EXIT_CODES[result.signal] if result.interrupted else 0)
