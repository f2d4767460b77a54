"""The segmentation part of `pixelwise demo`, at a tiny budget: every run, evaluation and prediction happens."""

import json

from pixelwise.tasks.segment_demo import SegmentDemoBudget, run_segment_demo


def test_segment_demo_end_to_end(tmp_path):
    budget = SegmentDemoBudget(steps=2, crf_steps=2, joint_steps=1, image_size=48, val_images=2, test_images=2)
    summary = run_segment_demo(tmp_path, budget=budget, quiet=True, log=lambda m: None)
    assert set(summary["methods"]) == {"unaries", "dense_crf", "pac_crf_32", "unaries_after_joint"}
    for scores in summary["methods"].values():
        assert 0.0 <= scores["miou"] <= 1.0 and 0.0 <= scores["band_miou"] <= 1.0
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["images"] == 2 and saved["budget"]["steps"] == 2
    for name in ("eval_pac_crf", "eval_dense_crf"):
        assert (tmp_path / name / "report.html").stat().st_size > 1000
    for folder in ("labels", "colour", "overlays"):
        assert (tmp_path / "predictions" / folder / "astronaut.png").exists()
    # a second call reuses the finished runs instead of training again
    again = run_segment_demo(tmp_path, budget=budget, quiet=True, log=lambda m: None)
    assert again["methods"]["pac_crf_32"] == summary["methods"]["pac_crf_32"]
