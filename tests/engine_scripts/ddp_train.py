"""Run under ``torchrun --nproc_per_node 2`` (or as one plain process) by test_engine_distributed.

usage: ddp_train.py OUT_DIR
Writes OUT_DIR/rank<r>.safetensors (final weights of this rank), OUT_DIR/rank<r>.json (result,
files written by this rank through the engine) and, per rank, the weights of an exact-resume
experiment (12 steps straight vs 7 steps + resume to 12, with dropout).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import engine_toy as toy
from safetensors.torch import save_file

import pixelwise.engine.checkpoint as ckmod
import pixelwise.engine.config as cfgmod
import pixelwise.engine.runlog as logmod
from pixelwise.engine import OptimizerConfig, TrainConfig, cleanup, init_distributed, train

WRITES: list[str] = []


def spy_on_writes() -> None:
    """Record every file the engine writes from this process."""
    for mod in (ckmod, cfgmod, logmod):
        for name in ("write_bytes_atomic", "write_text_atomic"):
            real = getattr(mod, name, None)
            if real is not None:
                setattr(mod, name, lambda p, d, _real=real: (WRITES.append(str(p)), _real(p, d))[1])
    real_write = logmod.RunLog.write

    def write(self, record):
        if self.enabled:
            WRITES.append(str(self.path))
        return real_write(self, record)

    logmod.RunLog.write = write


def config(steps: int) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=8, log_every=1, ckpt_every=5, val_every=6, quiet=True, device="cpu",
                       optimizer=OptimizerConfig(lr=1e-2))


def main(out_dir: str, *, spy: bool = False) -> None:
    out = Path(out_dir)
    info = init_distributed("cpu")
    if spy:  # only in the torchrun processes: the patches would outlive a call from pytest
        spy_on_writes()
    data = toy.ToyRegression(n=64)
    model = toy.make_model(seed=0)
    res = train(model, data, toy.loss_fn, config(12), out / "run", model_name="toy", model_config={},
                validate=toy.make_validate(data), log=lambda m: None)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / f"rank{info.rank}.safetensors")

    # Exact resume under DDP: per-rank RNG states (dropout masks differ per rank) must come back.
    weights = {}
    for name, plan in (("straight", [(12, False)]), ("resumed", [(7, False), (12, True)])):
        m = toy.make_model(seed=0, dropout=0.3)
        jittered = toy.ToyRegression(n=64, jitter=0.1)
        for steps, resume in plan:
            train(m, jittered, toy.loss_fn, config(steps), out / name, model_name="toy", model_config={},
                  resume=resume, log=lambda m: None)
        for k, v in m.state_dict().items():
            weights[f"{name}.{k}"] = v.contiguous()
    save_file(weights, out / f"resume-rank{info.rank}.safetensors")
    (out / f"rank{info.rank}.json").write_text(json.dumps({
        "rank": info.rank, "world_size": info.world_size, "step": res.step, "metrics": res.metrics,
        "checkpoint": str(res.checkpoint), "writes": WRITES,
    }))
    cleanup(info)


if __name__ == "__main__":
    main(sys.argv[1], spy=True)
