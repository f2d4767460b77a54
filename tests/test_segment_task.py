"""The semantic-segmentation task end to end through the CLI: train the unaries, add a PAC-CRF (with
an interrupted and resumed stage), fit the dense CRF, hot-swap; eval and predict; what the task
attaches to a loaded run; bad input."""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from pixelwise.cli import main
from pixelwise.data.datasets.voc_segmentation import VocSegmentation
from pixelwise.data.io.formats import read_rgb, write_png, write_png16
from pixelwise.data.io.palette_png import VOC_PALETTE, read_palette_png, write_palette_png
from pixelwise.engine import load_checkpoint, save_checkpoint
from pixelwise.models import create_model
from pixelwise.nn import PacCRF
from pixelwise.nn.dense_crf import DenseCRFParams
from pixelwise.nn.hot_swap import HotSwappedPac
from pixelwise.tasks import get_task, load_run
from pixelwise.tasks.segment import task as segment_task
from pixelwise.tasks.segment.config import SegmentConfig, StageConfig
from pixelwise.tasks.segment.inference import evaluate_dataset

TINY = ["--width", "0.25", "--set", "blocks=1", "--set", "image_size=32", "--set", "train.batch_size=2",
        "--set", "train.log_every=1", "--set", "val_images=2", "--set", "test_images=3",
        "--set", "synthetic_train=50", "--quiet"]
STAGES = ["--set", "crf_stage.batch_size=2", "--set", "joint_stage.batch_size=2", "--set", "joint_stage.steps=2"]


@pytest.fixture(scope="module")
def unaries_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("segment") / "unaries"
    assert main(["segment", "train", "--out", str(run), "--steps", "2", *TINY]) == 0
    return run


@pytest.fixture(scope="module")
def pac_run(unaries_run):
    """A PAC-CRF run whose CRF stage is interrupted after 2 of 3 steps (Ctrl-C), then resumed."""
    run = unaries_run.parent / "pac"
    real = segment_task.segmentation_loss

    def interrupting(cfg, use_crf):
        loss_fn, calls = real(cfg, use_crf), []

        def wrapped(model, batch):
            calls.append(1)
            if use_crf and len(calls) == 3:
                raise KeyboardInterrupt
            return loss_fn(model, batch)

        return wrapped

    args = ["segment", "train", "--out", str(run), "--init", str(unaries_run), "--crf", "pac", "--kernels", "3:2",
            "--set", "crf_stage.steps=3", *STAGES, *TINY]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(segment_task, "segmentation_loss", interrupting)
        assert main(args) == 130
    assert not (run / "crf" / "model.json").exists()
    assert main(["segment", "train", "--out", str(run), "--resume", "--quiet"]) == 0  # the run's own settings
    return run


@pytest.fixture(scope="module")
def dense_run(unaries_run):
    run = unaries_run.parent / "dense"
    assert main(["segment", "train", "--out", str(run), "--init", str(unaries_run), "--crf", "dense",
                 "--set", "joint_stage.steps=0", "--set", "dense_grid={appearance_weight: [3.0, 5.0]}", *TINY]) == 0
    return run


def test_unaries_run_from_scratch(unaries_run):
    meta = json.loads((unaries_run / "model.json").read_text())
    assert meta["model_name"] == "seg_fcn" and meta["step"] == 2
    assert meta["model_config"] == {"num_classes": 8, "width": 0.25, "blocks": 1}
    log = [json.loads(line) for line in (unaries_run / "unaries" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["split"] == "train"] == [1, 2]


def test_pac_run_resumes_its_interrupted_crf_stage_then_trains_jointly(pac_run):
    crf_log = [json.loads(line) for line in (pac_run / "crf" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in crf_log if r["split"] == "train"] == [1, 2, 3]
    assert all("crf_nll" in r for r in crf_log if r["split"] == "train")
    assert json.loads((pac_run / "crf" / "model.json").read_text())["step"] == 3
    meta = json.loads((pac_run / "model.json").read_text())
    assert meta["step"] == 2  # the joint stage's final weights are the run's
    assert meta["model_config"]["crf"]["kernels"] == [[3, 2]]
    assert meta["config"]["crf_kernels"] == [[3, 2]] and meta["config"]["image_size"] == 32


def test_eval_reports_unaries_and_pac_crf(pac_run, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["segment", "eval", "--model", str(pac_run), "--out", str(out), "--examples", "2"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["images"] == 3 and metrics["split"] == "test" and metrics["band_width"] == 5
    assert set(metrics["methods"]) == {"unaries", "pac"} and set(metrics["median_ms"]) == {"network", "pac_crf"}
    for scores in metrics["methods"].values():
        assert 0 <= scores["band_miou"] <= 1 and 0 <= scores["miou"] <= scores["pixel_accuracy"] + 1
        assert set(scores["per_class_iou"]) == {"grass", "gravel", "brick", "fur", "coffee", "astronaut", "rocket",
                                                "moon"}
    printed = capsys.readouterr().out
    assert "unaries" in printed and "pac" in printed and "band mIoU" in printed
    html = (out / "report.html").read_text()
    assert "PAC-CRF" in html and "band mIoU" in html and html.count("<img") == 2 * 4


def test_dense_run_is_evaluated_with_its_grid_searched_parameters(dense_run, tmp_path):
    fitted = json.loads((dense_run / "dense_crf.json").read_text())
    assert len(fitted["grid"]) == 2
    out = tmp_path / "eval"
    assert main(["segment", "eval", "--model", str(dense_run), "--out", str(out), "--examples", "1",
                 "--max-images", "2"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["methods"]) == {"unaries", "dense"} and metrics["images"] == 2
    assert metrics["dense_crf_params"] == fitted["params"]


def test_dense_crf_on_a_run_without_a_grid_search_warns_and_uses_defaults(unaries_run, tmp_path, capsys):
    loaded = load_run(unaries_run, task="segment", options=argparse.Namespace(crf="dense"), log=print)
    assert loaded.extras["dense"].params == DenseCRFParams() and loaded.extras["method"] == "dense"
    assert "warning" in capsys.readouterr().out


def test_attach_puts_the_crf_choice_classes_and_palette_in_extras(pac_run, dense_run):
    pac = load_run(pac_run, task="segment")
    assert pac.extras["crf"] == "pac" and pac.extras["method"] == "pac" and pac.extras["dense"] is None
    assert pac.extras["class_names"][:2] == ("grass", "gravel") and len(pac.extras["class_names"]) == 8
    assert np.array_equal(pac.extras["palette"], VOC_PALETTE)
    dense = load_run(dense_run, task="segment")
    fitted = json.loads((dense_run / "dense_crf.json").read_text())["params"]
    assert dense.extras["method"] == "dense" and dense.extras["dense"].params == DenseCRFParams(**fitted)
    assert load_run(dense_run, task="segment", options=argparse.Namespace(crf="none")).extras["dense"] is None


def test_predict_writes_labels_colours_and_overlays_for_any_image_mode(dense_run, tmp_path):
    images = tmp_path / "images"
    rng = np.random.default_rng(0)
    write_png(images / "rgb.png", (rng.random((40, 36, 3)) * 255).astype(np.uint8))
    write_png16(images / "gray16.png", (rng.random((24, 30)) * 65535).astype(np.uint16))
    Image.fromarray((rng.random((20, 20, 2)) * 255).astype(np.uint8), mode="LA").save(images / "gray_alpha.png")
    out = tmp_path / "pred"
    assert main(["segment", "predict", "--model", str(dense_run), "--images", str(images), "--out", str(out)]) == 0
    for name, shape in (("rgb", (40, 36)), ("gray16", (24, 30)), ("gray_alpha", (20, 20))):
        labels = read_palette_png(out / "labels" / f"{name}.png")
        assert labels.shape == shape and labels.max() < 8
        colour = (read_rgb(out / "colour" / f"{name}.png") * 255).round().astype(np.uint8)
        assert np.array_equal(colour, VOC_PALETTE[labels])
        assert read_rgb(out / "overlays" / f"{name}.png").shape == (*shape, 3)


def test_predict_crf_none_writes_the_unaries_and_names_an_unreadable_file(pac_run, tmp_path, capsys):
    def method(crf):
        return load_run(pac_run, task="segment", options=argparse.Namespace(crf=crf)).extras["method"]

    assert method("none") == "unaries" and method(None) == "pac"
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    assert main(["segment", "predict", "--model", str(pac_run), "--images", str(bad), "--out", str(tmp_path)]) == 2
    assert "broken.png" in capsys.readouterr().err


def test_hot_swap_keeps_the_init_unaries_until_fine_tuned(unaries_run, tmp_path):
    init = load_run(unaries_run, task="segment").model
    swapped = create_model("seg_fcn", **segment_task.network_config(SegmentConfig(width=0.25, blocks=1,
                                                                                  hot_swap=True), 8))
    assert segment_task.load_init(swapped, str(unaries_run), 8) == []
    assert sum(isinstance(m, HotSwappedPac) for m in swapped.modules()) == 3
    image = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(swapped.eval().unaries(image), init.unaries(image), atol=1e-6, rtol=1e-5)
    run = tmp_path / "hot"
    assert main(["segment", "train", "--out", str(run), "--init", str(unaries_run), "--hot-swap",
                 "--set", "joint_stage.steps=1", "--set", "joint_stage.batch_size=2", *TINY]) == 0
    meta = json.loads((run / "model.json").read_text())
    assert "hot_swap" in meta["model_config"] and meta["step"] == 1


def tiny_voc(folder):
    """A VOC2012 folder with one 16 x 16 image (split ``val``) holding class 20."""
    write_png(folder / "JPEGImages" / "a.jpg", np.zeros((16, 16, 3), np.uint8))
    label = np.zeros((16, 16), np.uint8)
    label[4:8, 4:8] = 20
    write_palette_png(folder / "SegmentationClass" / "a.png", label)
    (folder / "ImageSets" / "Segmentation").mkdir(parents=True)
    (folder / "ImageSets" / "Segmentation" / "val.txt").write_text("a\n")
    return folder


def test_eval_against_data_with_other_classes_is_a_clear_error(unaries_run, tmp_path, capsys):
    voc = tiny_voc(tmp_path / "VOC2012")
    assert main(["segment", "eval", "--model", str(unaries_run), "--data", str(voc), "--split", "val",
                 "--out", str(tmp_path / "e")]) == 2
    assert "classes" in capsys.readouterr().err
    with pytest.raises(ValueError, match="labels up to 20, but the model has 8 classes"):
        evaluate_dataset(load_run(unaries_run, task="segment").model, VocSegmentation(voc, "val"), 8)


def test_eval_follow_symlinks_reads_a_dataset_linked_from_outside(tmp_path, capsys):
    """A VOC folder whose JPEGImages/ is a link to another place: refused by default (naming the
    link), read with --follow-symlinks."""
    outside = tiny_voc(tmp_path / "elsewhere")
    voc = tmp_path / "VOC2012"
    voc.mkdir()
    for name in ("SegmentationClass", "ImageSets"):
        os.rename(outside / name, voc / name)
    os.symlink(outside / "JPEGImages", voc / "JPEGImages")
    run = tmp_path / "run"
    model = create_model("seg_fcn", num_classes=21, width=0.25, blocks=1)
    cfg = SegmentConfig(width=0.25, blocks=1, data=str(voc))
    save_checkpoint(run / "model", model, model_name="seg_fcn", model_config={"num_classes": 21, "width": 0.25,
                                                                             "blocks": 1}, config=cfg)
    args = ["segment", "eval", "--model", str(run), "--data", str(voc), "--split", "val", "--examples", "0"]
    assert main([*args, "--out", str(tmp_path / "refused")]) == 2
    assert "JPEGImages: symbolic link" in capsys.readouterr().err
    assert main([*args, "--follow-symlinks", "--out", str(tmp_path / "e")]) == 0
    assert json.loads((tmp_path / "e" / "metrics.json").read_text())["images"] == 1


def test_init_from_a_run_with_other_classes_is_refused(unaries_run):
    with pytest.raises(ValueError, match="trained for 8 classes, the data has 5"):
        segment_task.load_init(create_model("seg_fcn", num_classes=5, width=0.25, blocks=1), str(unaries_run), 5)


def test_pac_crf_refuses_unary_and_image_of_different_sizes():
    with pytest.raises(ValueError, match=r"unary \(1, 3, 8, 8\) and image \(1, 3, 8, 10\)"):
        PacCRF(3, kernels=[(3, 1)], steps=1)(torch.randn(1, 3, 8, 8), torch.rand(1, 3, 8, 10))


def test_crf_choices_the_run_lacks_and_reused_run_folders_are_refused(unaries_run, pac_run, tmp_path, capsys):
    assert main(["segment", "eval", "--model", str(unaries_run), "--crf", "pac", "--out", str(tmp_path)]) == 2
    assert "trained without a PAC-CRF" in capsys.readouterr().err
    assert main(["segment", "predict", "--model", str(pac_run), "--crf", "pac-loose", "--images", str(tmp_path),
                 "--out", str(tmp_path)]) == 2
    assert "use --crf pac" in capsys.readouterr().err
    assert main(["segment", "train", "--out", str(pac_run), "--steps", "1", *TINY]) == 2
    assert "--resume" in capsys.readouterr().err


def test_kernels_option_parses_pairs_and_rejects_bad_syntax(tmp_path, capsys):
    assert main(["segment", "train", "--out", str(tmp_path / "r"), "--kernels", "5:16,5:64", "--hot-swap",
                 "--print-config"]) == 0
    text = capsys.readouterr().out
    assert "- - 5\n  - 16\n- - 5\n  - 64" in text and "hot_swap: true" in text
    for bad in ("5", "5:x", "4:2", "5:0", "5:16,", "5:16:2"):
        with pytest.raises(SystemExit) as exc:
            main(["segment", "train", "--out", str(tmp_path / "r"), "--kernels", bad])
        assert exc.value.code == 2
        assert "--kernels" in capsys.readouterr().err


def test_crf_stage_keeps_the_frozen_network_bitwise(unaries_run, pac_run):
    """Backbone and classifier weights and BatchNorm statistics are untouched by the CRF stage
    (frozen params get no gradient, so Adam's weight decay skips them; BN stays in eval mode
    through the engine's model.train() calls), also across its interrupt and resume."""
    init = load_checkpoint(unaries_run / "model").model_state
    crf = load_checkpoint(pac_run / "crf" / "model").model_state
    shared = [k for k in crf if not k.startswith("crf.")]
    assert any("running_mean" in k for k in shared) and set(shared) == set(init)
    for k in shared:
        assert torch.equal(crf[k], init[k]), k
    assert any(not torch.equal(crf[k], v) for k, v in load_checkpoint(pac_run / "model").model_state.items()
               if k in init)  # the joint stage does train the network


def test_crf_stage_freezes_every_parameter_outside_the_crf():
    """The CRF stage's frozen modules hold every non-CRF parameter, hot-swapped layers included."""
    cfg = SegmentConfig(width=0.25, blocks=1, crf="pac", hot_swap=True, init="a run")
    model = create_model("seg_fcn", **segment_task.network_config(cfg, 8))
    crf_stage = [s for s in segment_task.plan_stages(cfg) if s.name == "crf"]
    assert [s.name for s in segment_task.plan_stages(cfg)] == ["crf", "joint"] and crf_stage[0].frozen
    held = {f"{m}.{n}" for m in crf_stage[0].frozen for n, _ in model.get_submodule(m).named_parameters()}
    assert held == {n for n, _ in model.named_parameters() if not n.startswith("crf.")}


def test_evaluate_dataset_scores_ignore_and_band_by_hand():
    class Fixed(nn.Module):  # predicts class 0 left of column 3, class 1 from there on
        crf = None

        def __init__(self):
            super().__init__()
            self.p = nn.Parameter(torch.zeros(1))

        def unaries(self, x):
            logits = torch.zeros(1, 2, *x.shape[-2:])
            logits[:, 0, :, :3], logits[:, 1, :, 3:] = 1.0, 1.0
            return logits

    label = torch.zeros(4, 6, dtype=torch.long)
    label[:, 2:] = 1          # truth: boundary between columns 1 and 2
    label[0, :] = 255         # an ignored row: counts nowhere
    data = [{"image": torch.rand(3, 4, 6), "label": label}]
    out = evaluate_dataset(Fixed(), data, 2, band_width=0)["methods"]["unaries"]
    # valid rows 1-3: per row 2 px class 0 right, 1 px class 1 predicted 0, 3 px class 1 right
    assert out["pixel_accuracy"] == pytest.approx(15 / 18)
    assert out["per_class_iou"] == {"0": pytest.approx(6 / 9), "1": pytest.approx(9 / 12)}
    assert out["miou"] == pytest.approx((6 / 9 + 9 / 12) / 2)
    # band of width 0: columns 1 (class 0, right) and 2 (class 1, predicted 0), rows 1-3
    assert out["band_miou"] == pytest.approx((3 / 6 + 0 / 3) / 2)


def test_dense_run_stopped_in_its_grid_search_has_no_model_json(unaries_run, tmp_path, monkeypatch):
    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(segment_task, "search_dense_crf", stop)
    cfg = SegmentConfig(width=0.25, blocks=1, image_size=32, val_images=2, synthetic_train=50,
                        init=str(unaries_run), crf="dense", joint_stage=StageConfig(steps=0))
    with pytest.raises(KeyboardInterrupt):
        get_task("segment").train(cfg, tmp_path / "dense", log=lambda m: None)
    assert not (tmp_path / "dense" / "model.json").exists()  # the demo would reuse it without dense_crf.json
