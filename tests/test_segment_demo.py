"""The segmentation part of `pixelwise demo`, at a tiny budget: every run, evaluation and prediction happens."""

import json

from pixelwise.cli import build_parser
from pixelwise.tasks import get_task
from pixelwise.tasks.segment.demo import SegmentDemoBudget, run_demo


def test_segment_demo_end_to_end(tmp_path):
    budget = SegmentDemoBudget(steps=2, crf_steps=2, joint_steps=1, image_size=48, val_images=2, test_images=2)
    result = run_demo(get_task("segment"), tmp_path, budget=budget, quiet=True, log=lambda m: None)
    summary = result.summary
    assert set(summary["methods"]) == {"unaries", "dense_crf", "pac_crf_32", "unaries_after_joint"}
    for scores in summary["methods"].values():
        assert 0.0 <= scores["miou"] <= 1.0 and 0.0 <= scores["band_miou"] <= 1.0
    assert summary["images"] == 2 and summary["budget"]["steps"] == 2
    assert json.loads(json.dumps(summary, default=float)) and "pac_crf_32" in result.headline
    assert result.reports == [tmp_path / "eval_pac_crf" / "report.html", tmp_path / "eval_dense_crf" / "report.html"]
    for name in ("eval_pac_crf", "eval_dense_crf"):
        assert (tmp_path / name / "report.html").stat().st_size > 1000
        assert json.loads((tmp_path / name / "metrics.json").read_text())["images"] == 2
    for folder in ("labels", "colour", "overlays"):
        assert (tmp_path / "predictions" / folder / "astronaut.png").exists()
    # a second call reuses the finished runs instead of training again
    again = run_demo(get_task("segment"), tmp_path, budget=budget, quiet=True, log=lambda m: None)
    assert again.summary["methods"]["pac_crf_32"] == summary["methods"]["pac_crf_32"]


def test_segment_demo_steps_flag():
    assert build_parser().parse_args(["demo", "segment", "--segment-steps", "7"]).segment_steps == 7
    assert build_parser().parse_args(["demo", "segment"]).segment_steps == SegmentDemoBudget.steps
