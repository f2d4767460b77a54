"""`pixelwise upsample train|eval|predict`, `pixelwise demo upsample` and `pixelwise bench upsample`
end to end on tiny budgets."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pixelwise.cli import main
from pixelwise.data.datasets.upsampling_sources import open_dataset
from pixelwise.data.io import formats
from pixelwise.tasks import load_run
from pixelwise.tasks.upsample import UpsampleConfig

TINY = ["--set", "crop=32", "--set", "synthetic_length=8", "--set", "val_size=2", "--set", "train.batch_size=2",
        "--set", "train.ckpt_every=2", "--set", "train.log_every=1", "--set", "train.val_every=0", "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "pac"
    assert main(["upsample", "train", "--model", "pac_upsampler_lite", "--factor", "4", "--steps", "3",
                 "--out", str(run), *TINY]) == 0
    return run


def test_train_writes_a_complete_run(trained):
    for name in ("config.yaml", "log.jsonl", "model.safetensors", "model.json"):
        assert (trained / name).exists(), name
    meta = json.loads((trained / "model.json").read_text())
    assert meta["model_name"] == "pac_upsampler_lite" and meta["model_config"] == {"factor": 4, "kind": "depth"}
    lines = [json.loads(line) for line in (trained / "log.jsonl").read_text().splitlines()]
    assert any(line.get("split") == "train" and np.isfinite(line["loss"]) for line in lines)


def test_train_refuses_to_overwrite_and_resumes(trained, capsys):
    assert main(["upsample", "train", "--out", str(trained), "--steps", "3", *TINY]) == 2
    assert "pass --resume" in capsys.readouterr().err
    # resume picks the run's own config; asking for more steps continues from the checkpoint
    assert main(["upsample", "train", "--out", str(trained), "--resume", "--set", "train.steps=4", "--quiet"]) == 0
    assert json.loads((trained / "model.json").read_text())["step"] == 4


def test_print_config_round_trips(capsys):
    assert main(["upsample", "train", "--out", "unused", "--print-config", "--set", "train.optimizer.lr=0.5"]) == 0
    out = capsys.readouterr().out
    assert "lr: 0.5" in out and "milestones:" in out


def test_train_rejects_bad_settings(tmp_path, capsys):
    assert main(["upsample", "train", "--out", str(tmp_path / "r"), "--set", "crop=30", "--factor", "4"]) == 2
    assert "crop: 30 is not a multiple of factor 4" in capsys.readouterr().err
    assert main(["upsample", "train", "--out", str(tmp_path / "r"), "--model", "bicubic"]) == 2
    assert "nothing to train" in capsys.readouterr().err


def test_jbu_search_saves_its_bandwidths(tmp_path):
    run = tmp_path / "jbu"
    assert main(["upsample", "train", "--model", "jbu", "--factor", "4", "--out", str(run), "--set", "crop=32",
                 "--set", "val_size=2", "--quiet"]) == 0
    meta = json.loads((run / "model.json").read_text())
    assert {"kernel_size", "sigma_space", "sigma_color"} <= set(meta["model_config"])
    grid = json.loads((run / "jbu_grid.json").read_text())
    assert len(grid["rows"]) == 20 and grid["columns"][0] == "val_nrmse"
    assert min(row[0] for row in grid["rows"]) == meta["metrics"]["val_nrmse"]
    # the checkpoint carries the whole config, so load_run rebuilds it
    loaded = load_run(run, task="upsample")
    assert isinstance(loaded.config, UpsampleConfig)
    assert (loaded.config.model, loaded.config.factor, loaded.config.crop) == ("jbu", 4, 32)
    assert loaded.extras == {"factor": 4, "kind": "depth"}
    out = tmp_path / "eval"
    assert main(["upsample", "eval", "--model", "jbu", "--model", str(run), "--factor", "4", "--data", "synthetic",
                 "--out", str(out)]) == 0
    assert set(json.loads((out / "metrics.json").read_text())["metrics"]) == {"jbu (jbu)", f"jbu ({run})"}


def test_eval_writes_metrics_and_report(trained, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["upsample", "eval", "--model", "bicubic", "--model", str(trained), "--factor", "4",
                 "--data", "synthetic", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert set(metrics) == {"bicubic", "pac_upsampler_lite"}
    assert all(np.isfinite(m["rmse"]) and m["images"] == 8 for m in metrics.values())
    html = (out / "report.html").read_text()
    assert "pac_upsampler_lite" in html and "<table" in html and "data:image/png;base64" in html


def test_eval_rejects_a_checkpoint_of_another_factor(trained, tmp_path, capsys):
    assert main(["upsample", "eval", "--model", str(trained), "--factor", "8", "--data", "synthetic",
                 "--out", str(tmp_path)]) == 2
    assert "trained for factor 4" in capsys.readouterr().err
    assert main(["upsample", "eval", "--model", str(trained), "--factor", "4", "--kind", "flow", "--data", "synthetic",
                 "--out", str(tmp_path)]) == 2
    assert "trained for factor 4 depth, but factor 4 flow" in capsys.readouterr().err


def _write_inputs(tmp_path, factor=4, h=6, w=5):
    rng = np.random.default_rng(0)
    image = (rng.random((h * factor, w * factor, 3)) * 255).astype(np.uint8)
    formats.write_png(tmp_path / "guide.png", image)
    target = (rng.random((h, w)) * 3 + 1).astype(np.float32)
    target[0, 0] = np.nan  # an invalid sample is filled, not propagated
    formats.write_npy(tmp_path / "low.npy", target)
    return tmp_path / "guide.png", tmp_path / "low.npy"


@pytest.mark.parametrize("suffix", [".npy", ".pfm", ".png"])
def test_predict_writes_map_and_colour_image(trained, tmp_path, suffix):
    guide, low = _write_inputs(tmp_path)
    out = tmp_path / f"up{suffix}"
    assert main(["upsample", "predict", "--model", str(trained), "--image", str(guide), "--target", str(low),
                 "--out", str(out)]) == 0
    result = formats.read_target(out, scale=1000.0)
    result = np.asarray(result, dtype=np.float64)
    assert result.shape in ((24, 20), (24, 20, 1))
    assert np.isfinite(result).all() and result.min() > 0.5  # targets were 1..4: no hole or zero
    assert (tmp_path / "up_color.png").exists()


def test_predict_bad_input_writes_nothing(trained, tmp_path, capsys):
    guide, low = _write_inputs(tmp_path, h=6, w=5)
    formats.write_npy(tmp_path / "wrong.npy", np.ones((7, 5), np.float32))
    out = tmp_path / "up.npy"
    assert main(["upsample", "predict", "--model", str(trained), "--image", str(guide),
                 "--target", str(tmp_path / "wrong.npy"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "guide.png" in err and "must be 28x20" in err
    formats.write_npy(tmp_path / "invalid.npy", np.full((6, 5), np.nan, np.float32))
    assert main(["upsample", "predict", "--model", str(trained), "--image", str(guide),
                 "--target", str(tmp_path / "invalid.npy"), "--out", str(out)]) == 2
    assert "no valid sample" in capsys.readouterr().err
    formats.write_npy(tmp_path / "flow.npy", np.ones((6, 5, 2), np.float32))
    assert main(["upsample", "predict", "--model", str(trained), "--image", str(guide),
                 "--target", str(tmp_path / "flow.npy"), "--out", str(out)]) == 2
    assert "needs 1 channel" in capsys.readouterr().err
    formats.write_npy(tmp_path / "empty.npy", np.ones((0, 5), np.float32))
    assert main(["upsample", "predict", "--model", str(trained), "--image", str(guide),
                 "--target", str(tmp_path / "empty.npy"), "--out", str(out)]) == 2
    assert "empty map (0x5)" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".up*"))


def test_predict_with_a_parameter_free_model(tmp_path):
    guide, low = _write_inputs(tmp_path)
    assert main(["upsample", "predict", "--model", "jbu", "--factor", "4", "--image", str(guide),
                 "--target", str(low), "--out", str(tmp_path / "jbu.pfm")]) == 0
    assert formats.read_pfm(tmp_path / "jbu.pfm").shape == (24, 20)


def test_demo_runs_end_to_end_on_a_tiny_budget(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "upsample", "--out", str(out), "--upsample-steps", "2", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "upsample: RMSE on the Middlebury motorcycle" in printed and "report:" in printed
    part = out / "upsample"
    metrics = json.loads((part / "metrics.json").read_text())
    for factor in ("x8", "x16"):
        assert set(metrics["metrics"][factor]) == {"Bicubic", "JBU", "DJF", "PAC (lite)"}
        assert all(np.isfinite(v["rmse"]) for v in metrics["metrics"][factor].values())
        assert (part / factor / "jbu" / "model.json").exists()
    assert metrics["budget"]["steps"] == 2
    assert (part / "report.html").stat().st_size > 10_000
    assert not (out / "report.html").exists() and not (out / "x8").exists()
    # a second run reuses the finished models instead of retraining
    stamp = (part / "x8" / "djf" / "model.safetensors").stat().st_mtime_ns
    assert main(["demo", "upsample", "--out", str(out), "--upsample-steps", "2", "--quiet"]) == 0
    assert (part / "x8" / "djf" / "model.safetensors").stat().st_mtime_ns == stamp
    assert json.loads((part / "metrics.json").read_text())["metrics"] == metrics["metrics"]


def test_flow_model_trains_and_reports_epe(tmp_path, capsys):
    run = tmp_path / "flow"
    assert main(["upsample", "train", "--model", "pac_upsampler_lite", "--kind", "flow", "--factor", "4",
                 "--steps", "2", "--out", str(run), *TINY]) == 0
    out = tmp_path / "eval"
    assert main(["upsample", "eval", "--kind", "flow", "--factor", "4", "--model", "bilinear", "--model", str(run),
                 "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert all(np.isfinite(m["epe"]) and m["epe"] > 0 for m in metrics.values())
    assert "epe" in capsys.readouterr().out


def test_data_spec_errors():
    with pytest.raises(ValueError, match="unknown source 'kitti'"):
        open_dataset("kitti:/x", "depth")
    with pytest.raises(ValueError, match="holds flow maps, but the task kind is 'depth'"):
        open_dataset("sintel:/x", "depth")
    with pytest.raises(ValueError, match="needs a path"):
        open_dataset("folder", "depth")


def _write_folder(root, count=3):
    rng = np.random.default_rng(1)
    for i in range(count):
        formats.write_png(root / "images" / f"s{i}.png", (rng.random((40, 40, 3)) * 255).astype(np.uint8))
        depth = (rng.random((40, 40)) * 2000 + 500).astype(np.uint16)
        depth[:3] = 0  # invalid rows
        formats.write_png16(root / "targets" / f"s{i}.png", depth)


def test_training_on_a_user_folder(tmp_path):
    root = tmp_path / "data"
    _write_folder(root)
    assert main(["upsample", "train", "--model", "djf", "--factor", "4", "--data", f"folder:{root}", "--steps", "2",
                 "--out", str(tmp_path / "run"), *TINY]) == 0
    assert (tmp_path / "run" / "model.safetensors").exists()


def test_follow_symlinks_reaches_the_folder_reader(tmp_path, capsys):
    """A user folder whose targets/ links outside it is refused unless --follow-symlinks (train:
    the config key follow_symlinks; eval: the option)."""
    elsewhere, root = tmp_path / "elsewhere", tmp_path / "data"
    _write_folder(elsewhere)
    root.mkdir()
    os.symlink(elsewhere / "images", root / "images")
    os.symlink(elsewhere / "targets", root / "targets")
    train = ["upsample", "train", "--model", "djf", "--factor", "4", "--data", f"folder:{root}", "--steps", "1", *TINY]
    assert main([*train, "--out", str(tmp_path / "refused")]) == 2
    assert "follow_symlinks" in capsys.readouterr().err
    assert main([*train, "--out", str(tmp_path / "run"), "--follow-symlinks"]) == 0
    assert load_run(tmp_path / "run", task="upsample").config.follow_symlinks is True
    evaluate = ["upsample", "eval", "--model", "bicubic", "--factor", "4", "--data", f"folder:{root}"]
    assert main([*evaluate, "--out", str(tmp_path / "e1")]) == 2
    assert "follow_symlinks" in capsys.readouterr().err
    assert main([*evaluate, "--out", str(tmp_path / "e2"), "--follow-symlinks"]) == 0
    assert json.loads((tmp_path / "e2" / "metrics.json").read_text())["metrics"]["bicubic"]["images"] == 3


def test_bench_upsample_reports_ratios_to_djf(tmp_path, capsys):
    target = tmp_path / "bench.json"
    assert main(["bench", "upsample", "--upsample-size", "32", "--upsample-factor", "4", "--upsample-repeats", "1",
                 "--json", str(target), "--quiet"]) == 0
    assert "vs DJF" in capsys.readouterr().out
    report = json.loads(target.read_text())
    assert (report["size"], report["factor"]) == (32, 4)
    assert [r["model"] for r in report["rows"]][0] == "djf" and report["rows"][0]["ratio_to_djf"] == 1.0
    assert main(["bench", "upsample", "--upsample-size", "30", "--upsample-factor", "4", "--quiet"]) == 2
    assert "must be a multiple of --factor 4" in capsys.readouterr().err


@pytest.mark.slow
def test_upsample_train_under_torchrun(tmp_path):
    """The same command under torchrun: two gloo ranks on loopback, rank 0 writes the run."""
    run = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "pixelwise", "upsample", "train", "--model", "pac_upsampler_lite", "--factor", "4", "--steps", "2",
           "--out", str(run), *TINY]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((run / "model.json").read_text())["step"] == 2
