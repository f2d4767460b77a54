"""``pixelwise bench segment`` at a tiny size: the report's structure, positive times, JSON output."""

import json

import torch

from pixelwise.cli import main
from pixelwise.tasks.segment import bench


def test_segment_bench_tiny_run():
    threads = torch.get_num_threads()  # run() sets it process-wide: keep the session's setting
    report = bench.run(height=30, width=40, classes=3, steps=2, repeats=1, threads=threads)
    methods = [(r.method, r.mode) for r in report.rows]
    assert methods[0] == ("dense CRF (permutohedral)", "inference")
    assert {m for m, mode in methods if mode == "inference"} >= {"PAC-CRF 32 (4d)", "PAC-CRF 32 (potts)",
                                                                 "PAC-CRF 16-64 (4d)", "PAC-CRF 16-64 (potts)"}
    assert [m for m, mode in methods if mode == "forward+backward"] == ["PAC-CRF 32 (4d)", "PAC-CRF 16-64 (4d)"]
    assert all(r.ms > 0 and r.ratio_to_dense > 0 for r in report.rows)
    assert all(r.saved_mb > 0 for r in report.rows if r.mode == "forward+backward")
    assert report.rows[0].ratio_to_dense == 1.0 and report.threads == threads
    assert "PAC-CRF 16-64 (potts)" in report.table()


def test_segment_bench_cli_writes_json(tmp_path, capsys):
    path = tmp_path / "segment.json"
    assert main(["bench", "segment", "--segment-height", "30", "--segment-width", "40", "--segment-classes", "3",
                 "--segment-steps", "1", "--segment-repeats", "1", "--segment-threads", str(torch.get_num_threads()),
                 "--json", str(path), "--quiet"]) == 0
    data = json.loads(path.read_text())
    assert (data["height"], data["width"], data["classes"], data["steps"]) == (30, 40, 3, 1)
    assert len(data["rows"]) == 7 and all(row["ms"] > 0 for row in data["rows"])
    assert "dense CRF" in capsys.readouterr().out
    assert main(["bench", "segment", "--segment-classes", "1"]) == 2
    assert "classes must be >= 2" in capsys.readouterr().err
