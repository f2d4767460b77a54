"""Two-process DDP on CPU (gloo) through torchrun: the ranks stay identical, follow the
single-process run with the same global batch, resume exactly, and only rank 0 writes files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file

from pixelwise.engine import DeviceError, DistInfo, all_reduce_mean, barrier, cleanup, init_distributed, is_main

SCRIPTS = Path(__file__).parent / "engine_scripts"
sys.path.insert(0, str(SCRIPTS))
import ddp_train  # noqa: E402


def read_log(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_single_process_helpers(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    info = init_distributed("cpu")
    assert info == DistInfo(0, 1, 0, torch.device("cpu"), None) and is_main(info)
    assert init_distributed("cpu") == info  # idempotent
    assert all_reduce_mean(info, {"a": 1, "b": 2.5}) == {"a": 1.0, "b": 2.5}
    barrier(info)
    cleanup(info)
    with pytest.raises(ValueError, match="device must be"):
        init_distributed("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            init_distributed("cuda")


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available in this torch build")
def test_two_rank_ddp_matches_single_process(tmp_path):
    out = tmp_path / "ddp"
    out.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo", PYTHONUNBUFFERED="1")
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(SCRIPTS / "ddp_train.py"), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=SCRIPTS, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2] and [r["step"] for r in ranks] == [12, 12]
    assert ranks[0]["metrics"] == ranks[1]["metrics"] and "val_mse" in ranks[0]["metrics"]
    # only rank 0 writes: config, log lines, checkpoints, final model
    assert ranks[1]["writes"] == []
    assert any(w.endswith("log.jsonl") for w in ranks[0]["writes"])
    assert any(w.endswith("step-0000005.safetensors") for w in ranks[0]["writes"])

    # both ranks hold bitwise the same weights
    w0, w1 = load_file(out / "rank0.safetensors"), load_file(out / "rank1.safetensors")
    assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0)

    # a single process with the same global batch follows the same losses
    single = tmp_path / "single"
    ddp_train.main(str(single))
    ddp_log, one_log = read_log(out / "run" / "log.jsonl"), read_log(single / "run" / "log.jsonl")
    assert [(r["step"], r["split"]) for r in ddp_log] == [(r["step"], r["split"]) for r in one_log]
    assert len([r for r in ddp_log if r["split"] == "train"]) == 12  # one line per step, not one per rank
    ddp_loss = torch.tensor([r.get("loss", r.get("val_mse")) for r in ddp_log], dtype=torch.float64)
    one_loss = torch.tensor([r.get("loss", r.get("val_mse")) for r in one_log], dtype=torch.float64)
    torch.testing.assert_close(ddp_loss, one_loss, rtol=1e-4, atol=1e-6)
    ws = load_file(single / "rank0.safetensors")
    for k in ws:
        torch.testing.assert_close(w0[k], ws[k], rtol=1e-4, atol=1e-5)
    names = sorted(p.name for p in (out / "run" / "checkpoints").iterdir())
    assert names == ["step-0000010.json", "step-0000010.safetensors", "step-0000012.json", "step-0000012.safetensors"]

    # exact resume under DDP: 7 steps + resume to 12 == 12 straight, on each rank (dropout per rank)
    for r in (0, 1):
        w = load_file(out / f"resume-rank{r}.safetensors")
        straight = {k.split(".", 1)[1]: v for k, v in w.items() if k.startswith("straight.")}
        resumed = {k.split(".", 1)[1]: v for k, v in w.items() if k.startswith("resumed.")}
        assert straight.keys() == resumed.keys() and all(torch.equal(straight[k], resumed[k]) for k in straight)
