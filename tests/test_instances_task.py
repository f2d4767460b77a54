"""The instance-grouping task end to end through the CLI: train (and resume), eval, predict,
the margin verb, the demo part and the bench suite, plus the crop wrapper for real data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pixelwise.cli import main
from pixelwise.data.datasets.voc_instances import IGNORE_LABEL
from pixelwise.data.io.formats import read_rgb, write_png
from pixelwise.data.io.palette_png import read_palette_png, write_palette_png
from pixelwise.data.transforms.crops import RandomScaleCrop
from pixelwise.tasks import RunLoadError, get_task, load_run
from pixelwise.tasks.instances.demo import InstancesDemoBudget, run_demo

TINY = ["--width", "0.125", "--set", "image_size=64", "--set", "train.batch_size=2", "--set", "train.log_every=1",
        "--set", "train.val_every=2", "--set", "val_images=2", "--set", "max_pixels=128",
        "--set", "scorer_images=3", "--set", "extraction.max_pixels=64", "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("instances-run") / "run"
    args = ["instances", "train", "--out", str(run), "--iterations", "2", "--embedding-dim", "8", *TINY]
    assert main([*args, "--steps", "2"]) == 0
    assert main([*args, "--steps", "3", "--resume"]) == 0  # extend the finished run by one step
    return run


def test_train_writes_a_resumable_run_with_a_fitted_scorer(trained):
    meta = json.loads((trained / "model.json").read_text())
    assert meta["step"] == 3 and meta["model_name"] == "embedding_drn"
    assert meta["model_config"] == {"embedding_dim": 8, "num_classes": 6, "width": 0.125, "blocks": 2}
    log = [json.loads(line) for line in (trained / "log.jsonl").read_text().splitlines()]
    train = [r for r in log if r["split"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3]
    # The loss after every mean-shift iteration is logged, first and last.
    assert all(np.isfinite(r["loss"]) and "embed_0" in r and "embed_2" in r and "ce" in r for r in train)
    val = [r for r in log if r["split"] == "val"]
    assert val and all(0 <= r["val_ar_at_10"] <= 1 and 0 <= r["val_map"] <= 1 for r in val)
    scorer = json.loads((trained / "scorer.json").read_text())
    # Fitted on training images after training: one finite weight per proposal feature.
    assert len(scorer["weights"]) == len(scorer["feature_names"]) == 7
    assert all(np.isfinite(scorer["weights"]))


def test_eval_writes_metrics_and_report(trained, tmp_path):
    out = tmp_path / "eval"
    assert main(["instances", "eval", "--model", str(trained), "--out", str(out), "--max-images", "2",
                 "--examples", "1"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    s = metrics["summary"]
    assert s["images"] == 2 and metrics["scorer"] == "fitted"
    for k in (10, 60):
        assert 0 <= s[f"ar@{k}"] <= s[f"recall50@{k}"] <= 1
    assert 0 <= s["map"] <= 1
    html = (out / "report.html").read_text()
    assert "AP^r" in html and "embedding" in html and html.count("<img") >= 4


def test_predict_writes_instance_pngs_overlays_and_embeddings(trained, tmp_path):
    images = tmp_path / "images"
    rng = np.random.default_rng(0)
    write_png(images / "a.png", (rng.random((48, 40, 3)) * 255).astype(np.uint8))
    write_png(images / "b.png", (rng.random((32, 32, 3)) * 255).astype(np.uint8))
    out = tmp_path / "pred"
    assert main(["instances", "predict", "--model", str(trained), "--images", str(images), "--out", str(out)]) == 0
    ids = read_palette_png(out / "instances" / "a.png")
    assert ids.shape == (48, 40)
    assert read_rgb(out / "overlays" / "a.png").shape == (48, 40, 3)
    assert read_rgb(out / "embeddings" / "b.png").shape == (32, 32, 3)
    assert read_palette_png(out / "semantic" / "b.png").max() < 6


def test_predict_missing_images_is_a_clear_error(trained, tmp_path, capsys):
    assert main(["instances", "predict", "--model", str(trained), "--images", str(tmp_path / "nope"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "--images" in capsys.readouterr().err


def _voc_with_linked_images(tmp_path):
    """A VOC2012 folder of two 64 x 64 images whose JPEGImages/ is a symbolic link leading outside it."""
    root, outside = tmp_path / "VOC2012", tmp_path / "elsewhere"
    inst, sem = np.zeros((64, 64), np.uint8), np.zeros((64, 64), np.uint8)
    inst[8:40, 8:40], sem[8:40, 8:40] = 1, 15
    inst[30:60, 36:62], sem[30:60, 36:62] = 2, 12
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        write_png(outside / f"{name}.jpg", (rng.random((64, 64, 3)) * 255).astype(np.uint8))
        write_palette_png(root / "SegmentationObject" / f"{name}.png", inst)
        write_palette_png(root / "SegmentationClass" / f"{name}.png", sem)
    (root / "JPEGImages").symlink_to(outside, target_is_directory=True)
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("a\nb\n")
    return root


def test_eval_on_a_voc_folder_follows_symlinks_only_when_asked(trained, tmp_path, capsys):
    root = _voc_with_linked_images(tmp_path)
    args = ["instances", "eval", "--model", str(trained), "--data", str(root), "--examples", "0"]
    assert main([*args, "--out", str(tmp_path / "refused")]) == 2
    assert "JPEGImages" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "e"), "--follow-symlinks"]) == 0
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["split"] == "val" and metrics["summary"]["images"] == 2


def test_train_follow_symlinks_sets_the_config_key(tmp_path, capsys):
    assert main(["instances", "train", "--out", str(tmp_path / "r"), "--follow-symlinks", "--print-config"]) == 0
    assert "follow_symlinks: true" in capsys.readouterr().out


def test_train_refuses_a_bad_setting(tmp_path, capsys):
    assert main(["instances", "train", "--out", str(tmp_path / "r"), "--set", "image_size=60", "--steps", "1"]) == 2
    assert "image_size" in capsys.readouterr().err


def test_load_run_attaches_the_fitted_scorer_and_class_names(trained):
    loaded = load_run(trained, task="instances")
    assert loaded.model_name == "embedding_drn" and not loaded.model.training
    assert loaded.config.embedding_dim == 8 and loaded.config.iterations == 2
    assert loaded.extras["scorer"] is not None and len(loaded.extras["scorer"].weights) == 7
    assert loaded.extras["class_names"] == ("background", "disk", "box", "triangle", "ellipse", "star")


def test_margin_verb_prints_the_paper_bounds(capsys):
    assert main(["instances", "margin", "--dim", "3", "--instances", "4", "5", "6", "7", "--restarts", "2"]) == 0
    text = capsys.readouterr().out
    for value in ("0.093", "0.274", "0.395", "0.482"):
        assert value in text


def test_margin_verb_prints_table_and_writes_json(tmp_path, capsys):
    path = tmp_path / "out" / "margin.json"
    assert main(["instances", "margin", "--instances", "4", "7", "--restarts", "2", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "0.093" in out and "0.482" in out and "109.47" in out
    data = json.loads(path.read_text())
    assert data["dim"] == 3 and [r["n"] for r in data["rows"]] == [4, 7]


def test_instance_crops_pad_with_ignore_and_are_deterministic():
    class Base:
        def __len__(self):
            return 1

        def __getitem__(self, i):
            inst = torch.zeros(20, 30, dtype=torch.int64)
            inst[5:10, 5:10] = 1
            return {"image": torch.rand(3, 20, 30), "instances": inst, "semantic": inst.clone()}

    crops = RandomScaleCrop(Base(), 48, seed=1, label_keys=("instances", "semantic"), ignore_index=IGNORE_LABEL)
    a, b = crops[0], crops[0]
    assert a["image"].shape == (3, 48, 48) and a["instances"].shape == (48, 48)
    assert torch.equal(a["instances"], b["instances"])
    assert (a["instances"] == IGNORE_LABEL).any()  # a 20x30 image scaled <= 1.5x cannot fill 48x48


def test_demo_instances_part_trains_evaluates_and_predicts_a_real_photo(tmp_path):
    budget = InstancesDemoBudget(steps=2, width=0.125, image_size=64, iterations=1, max_pixels=128, val_images=2)
    result = run_demo(get_task("instances"), tmp_path, budget=budget, quiet=True, log=lambda m: None)
    assert result.summary["summary"]["images"] == 2 and result.reports == [tmp_path / "report.html"]
    assert (tmp_path / "report.html").exists() and "AR@10" in result.headline
    assert read_palette_png(tmp_path / "predictions" / "instances" / "coins.png").shape == (303, 384)
    assert result.summary["budget"]["steps"] == 2 and result.summary["scorer"] == "fitted"


def test_bench_suite_reports_gbms_and_extraction_against_sklearn(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert main(["bench", "instances", "--json", str(path), "--instances-sizes", "64", "--instances-iterations", "2",
                 "--instances-images", "1", "--instances-image-size", "64", "--instances-repeats", "1",
                 "--instances-threads", "1", "--quiet"]) == 0
    assert "time ratio sklearn / pixelwise" in capsys.readouterr().out
    data = json.loads(path.read_text())
    assert [r["n"] for r in data["gbms"]] == [64] and data["gbms"][0]["iterations"] == 2
    assert data["extraction"]["images"] == 1 and 0 <= data["extraction"]["pixelwise"]["recall50@10"] <= 1


def test_bench_refuses_a_negative_image_count(capsys):
    assert main(["bench", "instances", "--instances-images", "-1", "--quiet"]) == 2
    assert "--instances-images" in capsys.readouterr().err


def test_eval_refuses_a_missing_or_foreign_model(trained, tmp_path, capsys):
    assert main(["instances", "eval", "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "e")]) == 2
    assert "--model" in capsys.readouterr().err
    with pytest.raises(RunLoadError, match="holds a instances model \\(embedding_drn\\), not a lidar one"):
        load_run(trained, task="lidar")
