"""The LiDAR task end to end through the CLI: synth, train (and resume), eval, predict, demo,
bench, plus the library API (load_run + predict_points), the dataset wrapper and the PLY writer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixelwise.cli import main
from pixelwise.data.datasets.lidar_scans import LidarScans
from pixelwise.data.datasets.semantic_kitti import LabelMap, find_scans
from pixelwise.data.io.ply import read_ply, write_ply
from pixelwise.data.io.semantic_kitti import read_label, read_scan, write_scan
from pixelwise.data.transforms.range_samples import Augmentation
from pixelwise.data.transforms.spherical_projection import ProjectionConfig, project
from pixelwise.tasks import LoadedRun, get_task, load_run
from pixelwise.tasks.lidar import KnnConfig, LidarConfig, predict_points, predict_scans, prepare_synthetic
from pixelwise.tasks.lidar import bench as lidar_bench
from pixelwise.tasks.lidar.demo import LidarDemoBudget, run_lidar_demo

KITTI = Path(__file__).resolve().parents[2] / "shared" / "data" / "semantic-kitti"
needs_kitti = pytest.mark.skipif(not KITTI.exists(), reason="SemanticKITTI sample not present")
TINY = ["--width", "0.125", "--image-width", "64", "--set", "train.batch_size=2", "--set", "train.log_every=1",
        "--set", "train.val_every=2", "--quiet"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("lidar") / "scans"
    assert main(["lidar", "synth", "--out", str(root), "--scans", "4", "--val-scans", "2"]) == 0
    return root


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    run = tmp_path_factory.mktemp("lidar-run") / "run"
    args = ["lidar", "train", "--out", str(run), "--data", str(dataset), "--set", 'train_sequences=["00"]', *TINY]
    assert main([*args, "--steps", "2"]) == 0
    assert main([*args, "--steps", "3", "--resume"]) == 0  # extend the finished run by one step
    return run


def test_synth_writes_the_semantic_kitti_layout(dataset):
    train, val = find_scans(dataset, sequences=["00"], require_labels=True), find_scans(dataset, sequences=["08"])
    assert len(train) == 4 and len(val) == 2
    points = read_scan(train[0].scan_path)
    semantic, _ = read_label(train[0].label_path, num_points=len(points))
    assert len(points) > 10_000 and set(np.unique(semantic)) <= set(LabelMap.default().learning_map)
    with pytest.raises(ValueError, match="holds synthetic scans made with"):
        prepare_synthetic(dataset, 5, 2, 0, log=lambda m: None)


def test_train_writes_a_resumable_run(trained):
    meta = json.loads((trained / "model.json").read_text())
    assert meta["step"] == 3 and meta["model_name"] == "ssgv3_21"
    assert meta["model_config"] == {"num_classes": 20, "width": 0.125}
    log = [json.loads(line) for line in (trained / "log.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in log if r["split"] == "train"]
    assert train_steps == [1, 2, 3]
    assert all(np.isfinite(r["loss"]) and r["loss"] > 0 for r in log if r["split"] == "train")
    assert {"loss_head0", "loss_head4"} <= set(log[0])  # the five heads of the multi-layer loss
    val = [r for r in log if r["split"] == "val"]
    assert val and 0 <= val[-1]["val_miou"] <= 1 and 0 <= val[-1]["val_acc"] <= 1


def test_train_refuses_bad_settings(dataset, tmp_path, capsys):
    assert main(["lidar", "train", "--out", str(tmp_path / "r"), "--data", str(dataset), "--block", "XYZ", *TINY]) == 2
    assert "block" in capsys.readouterr().err
    assert main(["lidar", "train", "--out", str(tmp_path / "r"), "--image-width", "100", "--quiet"]) == 2
    assert "image_width" in capsys.readouterr().err
    assert main(["lidar", "train", "--out", str(tmp_path / "r"), "--data", str(tmp_path / "nowhere"), "--quiet"]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_print_config_shows_the_paper_optimiser(capsys, tmp_path):
    assert main(["lidar", "train", "--out", str(tmp_path / "r"), "--print-config"]) == 0
    text = capsys.readouterr().out
    assert "name: sgd" in text and "lr: 0.01" in text and "model: ssgv3_21" in text and "weight_decay: 0.0001" in text


def test_eval_on_synthetic_scans_writes_metrics_and_report(trained, dataset, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["lidar", "eval", "--model", str(trained), "--data", str(dataset), "--sequences", "08",
                 "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["scans"] == 2 and metrics["points"] > 20_000
    for key in ("point", "point_knn", "pixel"):
        s = metrics[key]
        assert 0 <= s["miou"] <= 1 and 0 <= s["accuracy"] <= 1
        assert len(s["iou"]) == 20 and s["iou"]["unlabeled"] is None
    html = (out / "report.html").read_text()
    assert "points + kNN" in html and "vegetation" in html and "data:image/png;base64" in html


@needs_kitti
def test_predict_real_scans_writes_submission_files(trained, tmp_path):
    out = tmp_path / "pred"
    assert main(["lidar", "predict", "--model", str(trained), "--scans", str(KITTI / "sequences" / "00"),
                 "--out", str(out), "--ply"]) == 0
    label_map = LabelMap.default()
    for record in find_scans(KITTI):
        points = read_scan(record.scan_path)
        semantic, instance = read_label(out / "sequences" / "00" / "predictions" / f"{record.frame}.label",
                                        num_points=len(points))
        # submission ids are raw SemanticKITTI ids of the 19 classes (never 0: kNN ignores it)
        assert set(np.unique(semantic)) <= set(label_map.learning_map_inv.values()) and not instance.any()
        xyz, rgb = read_ply(out / "ply" / "00" / f"{record.frame}.ply")
        np.testing.assert_array_equal(xyz, points[:, :3])
        np.testing.assert_array_equal(rgb, label_map.colors[label_map.to_train(semantic)])
        assert Image.open(out / "images" / "00" / f"{record.frame}.png").size == (64, 64)


@needs_kitti
def test_eval_on_real_scans_maps_every_point(trained, tmp_path):
    out = tmp_path / "eval"
    assert main(["lidar", "eval", "--model", str(trained), "--data", str(KITTI), "--max-scans", "1",
                 "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    n = len(read_scan(KITTI / "sequences" / "00" / "velodyne" / "000000.bin"))
    assert metrics["points"] == n
    semantic, _ = read_label(KITTI / "sequences" / "00" / "labels" / "000000.label")
    labelled = int((LabelMap.default().to_train(semantic) != 0).sum())
    # every point is scored (rows = ground truth; row 0 is ignored by the protocol), including
    # those that lost their 64x64 pixel; the range image holds far fewer
    point, pixel = np.array(metrics["point"]["confusion"]), np.array(metrics["pixel"]["confusion"])
    assert point.sum() == n and point[1:].sum() == labelled
    assert pixel[1:].sum() < labelled / 10


def test_load_run_attaches_projection_and_knn_for_predict_points(trained, dataset):
    loaded = load_run(trained, task="lidar")
    assert loaded.model_name == "ssgv3_21" and loaded.config.width == 0.125
    projection = loaded.extras["projection"]
    assert (projection.height, projection.width) == (64, 64) and loaded.extras["knn"] == KnnConfig()
    points = read_scan(find_scans(dataset, sequences=["08"])[0].scan_path)
    pred = predict_points(loaded, points)
    assert pred.pixel_labels.shape == (64, 64) and pred.point_labels.shape == pred.knn_labels.shape == (len(points),)
    assert predict_points(loaded, points, knn=False).knn_labels is None


def test_symlinked_scans_need_follow_symlinks(trained, dataset, tmp_path, capsys):
    outside = tmp_path / "linked" / "sequences"
    outside.mkdir(parents=True)
    (outside / "08").symlink_to(dataset / "sequences" / "08", target_is_directory=True)
    args = ["--model", str(trained), "--device", "cpu"]
    assert main(["lidar", "eval", *args, "--data", str(tmp_path / "linked"), "--out", str(tmp_path / "e")]) == 2
    assert "follow_symlinks" in capsys.readouterr().err
    assert main(["lidar", "eval", *args, "--data", str(tmp_path / "linked"), "--out", str(tmp_path / "e"),
                 "--max-scans", "1", "--no-knn", "--follow-symlinks"]) == 0
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["scans"] == 1 and "point_knn" not in metrics and metrics["projection"] == {"height": 64, "width": 64}
    assert main(["lidar", "predict", *args, "--scans", str(tmp_path / "linked"), "--out", str(tmp_path / "p"),
                 "--no-png"]) == 2
    assert main(["lidar", "predict", *args, "--scans", str(tmp_path / "linked"), "--out", str(tmp_path / "p"),
                 "--no-png", "--follow-symlinks"]) == 0
    assert len(list((tmp_path / "p" / "sequences" / "08" / "predictions").glob("*.label"))) == 2
    assert not (tmp_path / "p" / "images").exists()


def test_bad_inputs_name_the_file(trained, tmp_path, capsys):
    bad = tmp_path / "bad" / "velodyne"
    bad.mkdir(parents=True)
    (bad / "000000.bin").write_bytes(b"\0" * 17)
    assert main(["lidar", "predict", "--model", str(trained), "--scans", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "000000.bin" in capsys.readouterr().err
    assert main(["lidar", "predict", "--model", str(tmp_path / "none"), "--scans", str(bad),
                 "--out", str(tmp_path / "o")]) == 2
    assert "none" in capsys.readouterr().err
    assert main(["lidar", "eval", "--model", str(trained), "--data", str(tmp_path / "bad"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "label" in capsys.readouterr().err


def test_predict_refuses_a_label_file_of_another_scan(tmp_path):
    # the .bin / .label count check is in the data layer, so predict gets it as well as eval;
    # it fails before the network runs, so no trained model is needed
    seq = tmp_path / "scans" / "sequences" / "00"
    write_scan(seq / "velodyne" / "000000.bin", np.ones((10, 4), np.float32))
    (seq / "labels").mkdir(parents=True)
    np.zeros(9, np.uint32).tofile(seq / "labels" / "000000.label")
    loaded = LoadedRun("lidar", torch.nn.Identity(), "none", LidarConfig(), "none", None, {},
                       extras={"projection": ProjectionConfig(8, 16), "knn": KnnConfig()})
    with pytest.raises(ValueError) as info:
        predict_scans(loaded, find_scans(seq), tmp_path / "o", log=lambda m: None)
    message = str(info.value)
    assert str(seq / "velodyne" / "000000.bin") in message and str(seq / "labels" / "000000.label") in message
    assert "10 points" in message and "9 labels" in message
    assert not (tmp_path / "o" / "sequences").exists()


def test_lidar_scans_are_deterministic_and_ignore_empty_pixels(dataset):
    records = find_scans(dataset, sequences=["00"])
    data = LidarScans(records, ProjectionConfig(64, 128), augment=Augmentation(), seed=3)
    a, b = data[1], data[1]
    torch.testing.assert_close(a["input"], b["input"])
    data.set_epoch(1)
    assert not torch.equal(data[1]["input"], a["input"])  # a new epoch draws new augmentations
    plain = LidarScans(records, ProjectionConfig(64, 128))[1]
    empty = plain["input"].abs().sum(0) == 0
    assert empty.any() and (plain["labels"][empty] == 0).all()
    points = read_scan(records[1].scan_path)
    assert int((~empty).sum()) == int(project(points, ProjectionConfig(64, 128)).mask.sum())


def test_ply_round_trip_and_errors(tmp_path):
    xyz = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    rgb = np.random.default_rng(1).integers(0, 256, (50, 3), dtype=np.uint8)
    write_ply(tmp_path / "p.ply", xyz, rgb)
    back = read_ply(tmp_path / "p.ply")
    np.testing.assert_array_equal(back[0], xyz)
    np.testing.assert_array_equal(back[1], rgb)
    with pytest.raises(ValueError, match="rgb"):
        write_ply(tmp_path / "q.ply", xyz, rgb[:10])
    (tmp_path / "r.ply").write_bytes((tmp_path / "p.ply").read_bytes()[:-3])
    with pytest.raises(ValueError, match="r.ply"):
        read_ply(tmp_path / "r.ply")


def test_lidar_demo_runs_and_reuses_its_model(tmp_path):
    budget = LidarDemoBudget(steps=2, batch_size=2, width=0.125, image_width=64, train_scans=2, val_scans=1)
    messages = []
    task = get_task("lidar")
    result = run_lidar_demo(task, tmp_path / "demo", budget=budget, quiet=True, log=messages.append)
    summary = result.summary
    assert summary["scans"] == 1 and 0 <= summary["point_knn"]["miou"] <= 1
    assert summary["data"] == "held-out synthetic scans" and "point mIoU" in result.headline
    assert result.reports == [tmp_path / "demo" / "report.html"] and result.reports[0].exists()
    assert any((tmp_path / "demo" / "predictions" / "ply").rglob("*.ply"))
    run_lidar_demo(task, tmp_path / "demo", budget=budget, quiet=True, log=messages.append)
    assert any("reusing" in m for m in messages)


def test_demo_refuses_missing_scans_before_training(tmp_path, capsys):
    assert main(["demo", "lidar", "--out", str(tmp_path / "demo"), "--lidar-scans", str(tmp_path / "none")]) == 2
    assert f"--lidar-scans {tmp_path / 'none'}: no such file or folder" in capsys.readouterr().err
    assert not (tmp_path / "demo" / "lidar" / "run").exists()


def test_bench_default_scan_comes_from_the_data_root(tmp_path):
    assert lidar_bench.default_scan(None) is None and lidar_bench.default_scan(tmp_path) is None
    scan = tmp_path / "semantic-kitti" / "sequences" / "00" / "velodyne" / "000000.bin"
    write_scan(scan, np.ones((10, 4), np.float32))
    assert lidar_bench.default_scan(tmp_path) == scan


def test_bench_lidar_reports_ratios():
    gen = np.random.default_rng(0)
    points = np.concatenate([gen.uniform(-30, 30, (20000, 2)), gen.uniform(-2, 1, (20000, 1)),
                             gen.uniform(0, 1, (20000, 1))], 1).astype(np.float32)
    report = lidar_bench.run(points, "random points", repeats=1, width=64, blocks=("plain", "ISK", "released"))
    rows = {r["block"]: r for r in report.blocks}
    assert rows["plain"]["ratio"] == 1.0 and rows["ISK"]["ratio"] > 0 and rows["released"]["ratio"] > 0
    assert rows["ISK"]["paper_ratio"] == pytest.approx(5.2 / 3.0) and rows["released"]["paper_ratio"] is None
    assert report.network["official_ratio"] > 0 and report.network["isk_ratio"] > 0
    assert report.knn["fraction"] > 0 and report.knn["reference_ms"] > 0 and report.projection["points_per_s"] > 0
    assert "ssgv3_21 (released)" in report.table() and json.loads(report.to_json())["points"] == 20000


@pytest.mark.slow
def test_lidar_train_under_torchrun(dataset, tmp_path):
    run = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "pixelwise", "lidar", "train", "--out", str(run), "--data", str(dataset), "--steps", "2",
           "--set", 'train_sequences=["00"]', *TINY]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((run / "model.json").read_text())["step"] == 2


def test_write_scan_then_train_labels_are_checked(tmp_path):
    # a label file that does not match its scan stops training with both names in the message
    seq = tmp_path / "sequences" / "00"
    write_scan(seq / "velodyne" / "000000.bin", np.ones((10, 4), np.float32))
    (seq / "labels").mkdir(parents=True)
    np.zeros(9, np.uint32).tofile(seq / "labels" / "000000.label")
    assert main(["lidar", "train", "--out", str(tmp_path / "r"), "--data", str(tmp_path),
                 "--set", 'train_sequences=["00"]', "--set", "val_sequences=[]", *TINY]) == 2


def test_config_rejects_blocks_on_the_released_network_and_bad_knn_modes():
    with pytest.raises(ValueError, match="ssgv3_ablation_21"):
        LidarConfig(block="plain").check()
    LidarConfig(model="ssgv3_ablation_21", block="plain").check()
    with pytest.raises(ValueError, match="block: expected one of"):
        LidarConfig(model="ssgv3_ablation_21", block="OISK").check()
    with pytest.raises(ValueError, match="knn.mode must be one of default, reference"):
        LidarConfig(knn=KnnConfig(mode="Reference")).check()
