"""The training loop: learning, schedule, clipping, validation, logs, exact resume, Ctrl-C, errors."""

from __future__ import annotations

import collections
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pixelwise.engine import (
    OptimizerConfig,
    ScheduleConfig,
    TrainConfig,
    latest_checkpoint,
    load_checkpoint,
    load_config,
    load_model,
    move_to_device,
    train,
)
from pixelwise.engine import runlog as runlog_mod

SCRIPTS = Path(__file__).parent / "engine_scripts"
sys.path.insert(0, str(SCRIPTS))
import engine_toy as toy  # noqa: E402
import sigint_train  # noqa: E402


def cfg(**kw) -> TrainConfig:
    opt = kw.pop("optimizer", OptimizerConfig(lr=1e-2))
    base = dict(steps=10, batch_size=8, log_every=1, ckpt_every=0, device="cpu", quiet=True)
    base.update(kw)
    return TrainConfig(optimizer=opt, **base)


def run(run_dir, config, *, model=None, data=None, loss_fn=toy.loss_fn, **kw):
    model = model if model is not None else toy.make_model()
    data = data if data is not None else toy.ToyRegression()
    kw.setdefault("log", lambda m: None)
    return train(model, data, loss_fn, config, run_dir, model_name="toy", model_config={}, **kw)


def read_log(run_dir, split=None, drop_time=False):
    lines = [json.loads(line) for line in (Path(run_dir) / "log.jsonl").read_text().splitlines()]
    if split:
        lines = [r for r in lines if r["split"] == split]
    if drop_time:
        for r in lines:
            r.pop("time_s", None)
    return lines


def weights(path):
    return load_file(path)


def test_loss_decreases_and_run_dir_layout(tmp_path):
    run_dir = tmp_path / "run"
    full = {"task": "toy", "train": {"steps": 60}}
    res = run(run_dir, cfg(steps=60, log_every=5, ckpt_every=10, keep_checkpoints=2), full_config=full)
    assert res.step == 60 and not res.interrupted and res.checkpoint == run_dir / "model.safetensors"
    lines = read_log(run_dir)
    assert [r["step"] for r in lines] == list(range(5, 61, 5))
    for r in lines:
        assert list(r) == ["step", "split", "loss", "lr", "mae", "time_s"] and r["split"] == "train"
        assert all(isinstance(r[k], float) for k in ("loss", "lr", "mae", "time_s"))
    assert all(a["time_s"] <= b["time_s"] for a, b in zip(lines, lines[1:]))
    assert lines[-1]["loss"] < 0.3 * lines[0]["loss"]
    assert res.metrics == {"train_loss": lines[-1]["loss"]}
    # layout: config, rotated checkpoints (keep 2), final model + sidecar
    import yaml

    assert yaml.safe_load((run_dir / "config.yaml").read_text()) == full
    ckpts = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert ckpts == ["step-0000050.json", "step-0000050.safetensors", "step-0000060.json", "step-0000060.safetensors"]
    model, ck = load_model(run_dir / "model", lambda name, **kw: toy.make_model())
    assert ck.step == 60 and ck.metrics["train_loss"] == lines[-1]["loss"] and ck.meta["optimizer"] is None
    assert not any(".tmp" in p.name for p in run_dir.rglob("*"))


def test_train_config_saved_when_no_full_config(tmp_path):
    config = cfg(steps=2, seed=5)
    run(tmp_path / "r", config)
    assert load_config(TrainConfig, tmp_path / "r" / "config.yaml") == config


def test_lr_schedule_milestones(tmp_path):
    config = cfg(steps=8, optimizer=OptimizerConfig(name="sgd", lr=0.1), schedule=ScheduleConfig(milestones=[3, 6], gamma=0.5))
    run(tmp_path / "r", config)
    lrs = [r["lr"] for r in read_log(tmp_path / "r")]
    assert lrs == pytest.approx([0.1] * 3 + [0.05] * 3 + [0.025] * 2, rel=1e-12)


def test_lr_warmup_and_exponential_decay_resume_exactly(tmp_path):
    schedule = ScheduleConfig(milestones=[6], gamma=0.1, warmup_steps=3, decay_rate=0.5, decay_every=2)
    want = [0.1 / 3, 0.2 / 3, 0.05, 0.05, 0.025, 0.025, 0.00125, 0.00125]
    assert [0.1 * schedule.factor(n) for n in range(1, 9)] == pytest.approx(want, rel=1e-12)
    config = cfg(steps=8, ckpt_every=4, optimizer=OptimizerConfig(name="sgd", lr=0.1), schedule=schedule)
    run(tmp_path / "ref", config)
    assert [r["lr"] for r in read_log(tmp_path / "ref")] == pytest.approx(want, rel=1e-12)
    run(tmp_path / "cut", cfg(**{**config.__dict__, "steps": 4}))
    run(tmp_path / "cut", config, resume=True)
    assert [r["lr"] for r in read_log(tmp_path / "cut")] == pytest.approx(want, rel=1e-12)
    toy.assert_same_weights(tmp_path / "ref" / "model.safetensors", tmp_path / "cut" / "model.safetensors")


def test_grad_clipping_limits_the_update(tmp_path):
    def displacement(clip, sub):
        model = toy.make_model()
        before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
        config = cfg(steps=5, grad_clip=clip, optimizer=OptimizerConfig(name="sgd", lr=1.0, momentum=0.0))
        run(tmp_path / sub, config, model=model)
        after = torch.cat([p.detach().flatten() for p in model.parameters()])
        return float((after - before).norm())

    assert displacement(1e-3, "clipped") <= 5 * 1e-3 * (1 + 1e-4)
    assert displacement(None, "free") > 0.05
    norms = [r["grad_norm"] for r in read_log(tmp_path / "clipped")]
    assert len(norms) == 5 and all(n > 1e-3 for n in norms)  # the norm before clipping is logged


def test_validation_schedule_mode_and_rng_isolation(tmp_path):
    data = toy.ToyRegression()
    calls = []

    def validate(model):
        calls.append((model.training, torch.is_grad_enabled()))
        torch.rand(100)  # must not change the training run
        return {"val_mse": toy.make_validate(data)(model)["val_mse"], "n": torch.tensor(3)}

    model = toy.make_model(dropout=0.3)
    res = run(tmp_path / "v", cfg(steps=10, val_every=4), model=model, data=data, validate=validate)
    assert calls == [(False, False)] * 3 and model.training
    val = read_log(tmp_path / "v", "val")
    assert [r["step"] for r in val] == [4, 8, 10] and list(val[0]) == ["step", "split", "val_mse", "n"]
    assert val[0]["n"] == 3.0 and res.metrics["val_mse"] == val[-1]["val_mse"]
    # only at the end when val_every = 0
    calls.clear()
    run(tmp_path / "end", cfg(steps=6), data=toy.ToyRegression(), validate=validate)
    assert len(calls) == 1 and [r["step"] for r in read_log(tmp_path / "end", "val")] == [6]
    # validating (and drawing random numbers there) does not change training
    run(tmp_path / "noval", cfg(steps=10), model=toy.make_model(dropout=0.3), data=toy.ToyRegression())
    toy.assert_same_weights(tmp_path / "v" / "model.safetensors", tmp_path / "noval" / "model.safetensors")


def resume_config(steps=14):
    # 36 samples, batch 8 -> 4 batches per epoch: 14 steps cross 3 epoch boundaries
    return cfg(steps=steps, log_every=4, ckpt_every=5, val_every=5, seed=7)


def resume_parts():
    data = toy.ToyRegression(n=36, jitter=0.1)
    return toy.make_model(seed=1, dropout=0.2), data, toy.make_validate(data)


def test_exact_resume_is_bitwise(tmp_path):
    model, data, validate = resume_parts()
    ref = run(tmp_path / "ref", resume_config(), model=model, data=data, validate=validate)
    assert data.epochs == [0, 1, 2, 3]

    # Interrupt inside the 7th step (KeyboardInterrupt from user code), then resume.
    calls = collections.Counter()

    def flaky_loss(model, batch):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return toy.loss_fn(model, batch)

    model, data, validate = resume_parts()
    res = run(tmp_path / "cut", resume_config(), model=model, data=data, validate=validate, loss_fn=flaky_loss)
    assert res.interrupted and res.step == 6 and res.checkpoint == tmp_path / "cut" / "checkpoints" / "step-0000006.safetensors"
    assert load_checkpoint(res.checkpoint).step == 6
    assert [r["step"] for r in read_log(tmp_path / "cut")] == [4, 5]  # train at 4, val at 5
    model, data, validate = resume_parts()
    res = run(tmp_path / "cut", resume_config(), model=model, data=data, validate=validate, resume=True)
    assert res.step == 14 and not res.interrupted and data.epochs == [1, 2, 3]
    toy.assert_same_weights(tmp_path / "ref" / "model.safetensors", tmp_path / "cut" / "model.safetensors")
    # the log continues exactly, including the half-filled averaging window of steps 5-6
    assert read_log(tmp_path / "cut", drop_time=True) == read_log(tmp_path / "ref", drop_time=True)
    assert res.metrics == ref.metrics

    # Finish at 9 steps, then extend the same run to 14: same weights as never stopping.
    model, data, validate = resume_parts()
    run(tmp_path / "ext", resume_config(9), model=model, data=data, validate=validate)
    model, data, validate = resume_parts()
    run(tmp_path / "ext", resume_config(14), model=model, data=data, validate=validate, resume=True)
    toy.assert_same_weights(tmp_path / "ref" / "model.safetensors", tmp_path / "ext" / "model.safetensors")

    # Resuming a finished run only reports it (and rewrites final files lost after the last checkpoint).
    (tmp_path / "ref" / "model.json").unlink()
    messages = []
    model, data, validate = resume_parts()
    again = run(tmp_path / "ref", resume_config(), model=model, data=data, resume=True, log=messages.append)
    assert again.step == 14 and not again.interrupted and again.metrics == ref.metrics
    assert any("already finished at step 14" in m for m in messages) and data.epochs == []
    assert load_checkpoint(tmp_path / "ref" / "model").metrics == ref.metrics


def test_resume_drops_log_lines_after_the_checkpoint(tmp_path):
    run(tmp_path / "r", cfg(steps=6, ckpt_every=4, log_every=1, keep_checkpoints=5))
    # pretend the run died at step 6 before its final files: remove the step-6 checkpoint
    for suffix in (".json", ".safetensors"):
        (tmp_path / "r" / "checkpoints" / f"step-0000006{suffix}").unlink()
    with open(tmp_path / "r" / "log.jsonl", "a") as fh:
        fh.write('{"step": 7, "spl')  # a torn last line
    assert latest_checkpoint(tmp_path / "r").name == "step-0000004.safetensors"
    run(tmp_path / "r", cfg(steps=6, ckpt_every=4, log_every=1, keep_checkpoints=5), resume=True)
    assert [r["step"] for r in read_log(tmp_path / "r")] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_in_subprocess_then_resume_is_bitwise(tmp_path, sig):
    """Ctrl-C and a scheduler's SIGTERM both save a checkpoint and exit non-zero; --resume then
    gives bitwise the weights of an uninterrupted run."""
    run_dir = tmp_path / "run"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "sigint_train.py"), str(run_dir), "--slow"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=SCRIPTS)
    try:
        deadline = time.monotonic() + 60
        while not list((run_dir / "checkpoints").glob("step-*.json")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.02)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, (out, err)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["interrupted"] and 5 <= result["step"] < sigint_train.STEPS
    assert f"interrupted by {sig.name} at step {result['step']}/{sigint_train.STEPS}" in out and result["checkpoint"] in out
    assert load_checkpoint(result["checkpoint"]).step == result["step"]
    assert latest_checkpoint(run_dir) == Path(result["checkpoint"])

    done = subprocess.run([sys.executable, str(SCRIPTS / "sigint_train.py"), str(run_dir), "--resume"],
                          capture_output=True, text=True, env=env, cwd=SCRIPTS, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"resuming at step {result['step']}" in done.stdout
    # never interrupted, in this process: the same weights bit for bit
    sigint_train.run(str(tmp_path / "ref"))
    toy.assert_same_weights(tmp_path / "ref" / "model.safetensors", run_dir / "model.safetensors")
    assert read_log(run_dir, drop_time=True) == read_log(tmp_path / "ref", drop_time=True)


def test_non_finite_loss_names_the_step(tmp_path):
    calls = collections.Counter()

    def bad_loss(model, batch):
        calls["n"] += 1
        loss, logs = toy.loss_fn(model, batch)
        return (loss * math.nan if calls["n"] == 3 else loss), logs

    with pytest.raises(FloatingPointError, match="the loss is nan at step 3"):
        run(tmp_path / "r", cfg(steps=5), loss_fn=bad_loss)
    assert not (tmp_path / "r" / "model.safetensors").exists()


def test_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="has 5 samples, fewer than one global batch of 8"):
        run(tmp_path / "a", cfg(), data=toy.ToyRegression(n=5))
    config = cfg()
    config.optimizer.name = "rmsprop"  # bypassing the config check
    with pytest.raises(ValueError, match="optimizer.name must be one of adam, adamw, sgd, got 'rmsprop'"):
        run(tmp_path / "b", config)
    with pytest.raises(FileNotFoundError, match=f"cannot resume {tmp_path / 'c'}: no run there"):
        run(tmp_path / "c", cfg(), resume=True)
    run(tmp_path / "d", cfg(steps=1))
    with pytest.raises(FileExistsError, match="already holds a run"):
        run(tmp_path / "d", cfg(steps=1))
    with pytest.raises(TypeError, match="scalar tensor"):
        run(tmp_path / "e", cfg(), loss_fn=lambda m, b: (m(b["x"]), {}))


def test_batches_reach_the_loss_on_the_device_with_names_kept(tmp_path):
    seen = []

    def loss_fn(model, batch):
        seen.append(batch)
        return toy.loss_fn(model, batch)

    run(tmp_path / "r", cfg(steps=2, num_workers=1), loss_fn=loss_fn)
    assert len(seen) == 2 and seen[0]["name"][0].startswith("sample") and seen[0]["x"].shape == (8, 4)
    Point = collections.namedtuple("Point", "a b")
    moved = move_to_device({"t": [torch.ones(1), (torch.zeros(1), "s")], "p": Point(torch.ones(1), 3), "n": None}, torch.device("cpu"))
    assert isinstance(moved["p"], Point) and moved["t"][1][1] == "s" and moved["n"] is None


def test_progress_bar_only_on_a_terminal(monkeypatch):
    assert runlog_mod.make_progress(10, 0, enabled=False) is None
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert runlog_mod.make_progress(10, 0, enabled=True) is None
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    bar = runlog_mod.make_progress(10, 3, enabled=True)
    assert bar is not None and bar.n == 3 and bar.total == 10
    bar.close()
