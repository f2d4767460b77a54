"""The task contract end to end: a toy task registered by the test (not shipped) is driven through
the generated CLI -- train, SIGTERM + resume (bitwise), eval, predict, demo, bench, tasks -- and the
CLI's named errors (locked folder, wrong task, unfinished run, unknown model, devices)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import toy_task  # noqa: F401  (registers the toy task and its model)
from pixelwise.cli import build_parser, main
from pixelwise.engine import run_lock
from pixelwise.tasks import get_task, list_tasks

TESTS = Path(__file__).parent
RUNNER = """
import sys
sys.path.insert(0, sys.argv[1])
import toy_task
from pixelwise.cli import main
sys.exit(main(sys.argv[2:]))
"""


def cli(*argv) -> int:
    return main([str(a) for a in argv])


def weights(path: Path) -> dict:
    return load_file(str(path))


def test_the_toy_task_is_registered_and_listed(capsys):
    assert "toy" in list_tasks() and get_task("toy").models() == ["toy_blur"]
    assert cli("tasks") == 0
    out = capsys.readouterr().out
    assert "toy: toy: learn a box blur" in out and "pixelwise toy {train, eval, predict}" in out
    assert "docs/toy.md" in out


def test_train_eval_predict_through_the_generated_cli(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli("toy", "train", "--out", run, "--width", 3, "--quiet") == 0
    assert (run / "model.json").exists() and (run / "config.yaml").exists()
    assert "width: 3" in (run / "config.yaml").read_text()
    # a second fresh run into the same folder is refused, naming the folder
    assert cli("toy", "train", "--out", run) == 2
    assert f"--out {run}: already holds a run" in capsys.readouterr().err

    assert cli("toy", "eval", "--model", run, "--out", tmp_path / "eval", "--samples", 4) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["images"] == 4 and metrics["mse"] > 0
    assert (tmp_path / "eval" / "report.html").exists()
    assert "mse" in capsys.readouterr().out

    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(2):
        np.save(inputs / f"{i}.npy", np.random.default_rng(i).random((8, 8)))
    assert cli("toy", "predict", "--model", run / "model.json", "--inputs", inputs, "--out", tmp_path / "pred") == 0
    assert sorted(p.name for p in (tmp_path / "pred").iterdir()) == ["0.npy", "1.npy"]


def sigterm_then_resume(tmp_path, *extra) -> Path:
    """Train the toy task in a subprocess, SIGTERM it after its first checkpoint, resume it here;
    its weights must equal an uninterrupted run's bit for bit. Returns the run folder."""
    run, ref = tmp_path / "run", tmp_path / "ref"
    steps = ["--steps", "40", "--set", "train.ckpt_every=2", "--set", "train.batch_size=2", "--quiet", *extra]
    env = dict(os.environ, PYTHONUNBUFFERED="1", TOY_STEP_SLEEP="0.02")
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, str(TESTS), "toy", "train", "--out", str(run), *steps],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not list((run / "checkpoints").glob("step-*.json")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert f"interrupted by SIGTERM; continue with: pixelwise toy train --out {run} --resume" in err
    assert not (run / "model.json").exists()
    assert cli("toy", "train", "--out", run, "--resume", "--quiet") == 0
    assert cli("toy", *["train", "--out", ref], *steps) == 0
    a, b = weights(run / "model.safetensors"), weights(ref / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    return run


def test_sigterm_mid_run_then_resume_is_bitwise_through_the_cli(tmp_path):
    sigterm_then_resume(tmp_path)


def test_demo_and_bench_parts_come_from_the_registry(tmp_path, capsys):
    assert cli("demo", "toy", "--out", tmp_path / "demo", "--toy-steps", 2, "--quiet") == 0
    out = capsys.readouterr().out
    assert "toy: held-out mse" in out and "report:" in out
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["toy"]["budget_s"] == 60 and summary["toy"]["seconds"] >= 0
    assert json.loads((tmp_path / "demo" / "toy" / "metrics.json").read_text())["mse"] > 0
    assert cli("bench", "toy", "--toy-repeats", 2, "--json", tmp_path / "b.json") == 0
    assert "ratio" in capsys.readouterr().out
    assert json.loads((tmp_path / "b.json").read_text())["ratio"] > 0


def test_every_option_has_help_and_shows_its_default():
    parser = build_parser()

    def walk(p, path):
        for action in p._actions:
            if action.dest in ("help", "version"):
                continue
            if getattr(action, "choices", None) and isinstance(action.choices, dict):  # subcommands
                for name, child in action.choices.items():
                    yield from walk(child, path + [name])
                continue
            yield path, action

    seen = 0
    for path, action in walk(parser, []):
        seen += 1
        where = f"pixelwise {' '.join(path)} {action.option_strings or action.dest}"
        assert action.help, f"{where}: no help text"
        default = action.default
        if default not in (None, False, [], ()) and not action.required and action.option_strings:
            assert "default" in action.help, f"{where}: default {default!r} not shown"
    assert seen > 50


def test_named_errors_of_the_cli(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli("toy", "train", "--out", run, "--quiet") == 0
    capsys.readouterr()
    # a model name that is neither a file nor registered: did you mean ...
    assert cli("toy", "eval", "--model", "toy_blr", "--out", tmp_path / "e") == 2
    err = capsys.readouterr().err
    assert "--model toy_blr: neither a run folder, a checkpoint file nor a zoo name; did you mean 'toy_blur'" in err
    # a registered name without shipped weights
    assert cli("toy", "eval", "--model", "toy_blur", "--out", tmp_path / "e") == 2
    assert "no trained weights for it are shipped" in capsys.readouterr().err
    # a run folder with no finished model
    unfinished = tmp_path / "unfinished"
    (unfinished / "checkpoints").mkdir(parents=True)
    (unfinished / "log.jsonl").write_text("")
    assert cli("toy", "eval", "--model", unfinished, "--out", tmp_path / "e") == 2
    assert "is a run folder with no finished model" in capsys.readouterr().err
    # CUDA on a machine without it, and an unknown device
    if not torch.cuda.is_available():
        assert cli("toy", "eval", "--model", run, "--out", tmp_path / "e", "--device", "cuda") == 2
        assert "CUDA is not available on this machine" in capsys.readouterr().err
        assert cli("toy", "train", "--out", tmp_path / "c", "--device", "cuda") == 2
        assert "CUDA is not available on this machine" in capsys.readouterr().err
    assert cli("toy", "eval", "--model", run, "--out", tmp_path / "e", "--device", "gpu") == 2
    assert "device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'" in capsys.readouterr().err
    # a locked folder names the folder and the owning process
    with run_lock(tmp_path / "locked"):
        code = subprocess.run([sys.executable, "-c", RUNNER, str(TESTS), "toy", "train", "--out",
                               str(tmp_path / "locked")], capture_output=True, text=True, timeout=120)
    assert code.returncode == 2
    assert f"{tmp_path / 'locked'}: this run folder is in use by process {os.getpid()}" in code.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_run_stopped_by_sigterm_resumes_bitwise_and_evaluates_on_the_gpu(tmp_path, capsys):
    run = sigterm_then_resume(tmp_path, "--device", "cuda")
    assert cli("toy", "eval", "--model", run, "--out", tmp_path / "e", "--device", "cuda") == 0
    assert cli("toy", "eval", "--model", run, "--out", tmp_path / "e", "--device", "cuda:99") == 2
    assert "this machine has 1 CUDA device" in capsys.readouterr().err or torch.cuda.device_count() > 1
