import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import pixelwise
from pixelwise.atomic import write_text_atomic as write_atomic
from pixelwise.bench.ops import naive_pac_conv2d
from pixelwise.cli import main
from pixelwise.ops import pac_conv2d


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and pixelwise.__version__ in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0 and "bench" in capsys.readouterr().out


def test_console_script_is_installed():
    for command in (["pixelwise"], [sys.executable, "-m", "pixelwise"]):
        exe = shutil.which(command[0]) or str(Path(sys.executable).parent / command[0])
        out = subprocess.run([exe, *command[1:], "--version"], capture_output=True, text=True)
        assert out.returncode == 0 and out.stdout.startswith("pixelwise "), (command, out.stderr)


def test_bench_ops_small_run_writes_json(tmp_path, capsys):
    path = tmp_path / "sub" / "bench.json"
    assert main(["bench", "ops", "--ops-sizes", "32", "--ops-channels", "4", "--ops-repeats", "1", "--ops-no-memory",
                 "--ops-no-naive", "--quiet", "--json", str(path)]) == 0
    text = capsys.readouterr().out
    assert "PacConv2d forward" in text and "SacConv2d ISK block" in text
    data = json.loads(path.read_text())
    assert data["channels"] == 4 and data["kernel_size"] == 5
    cases = {r["case"] for r in data["rows"]}
    assert {"PacConv2d forward+backward", "PacConvTranspose2d forward (stride 2)"} <= cases
    assert all(r["ratio"] > 0 and r["op_ms"] > 0 for r in data["rows"])


def test_bench_rejects_even_kernel(capsys):
    assert main(["bench", "ops", "--ops-kernel-size", "4", "--ops-sizes", "16", "--ops-no-memory"]) == 2
    assert "--ops-kernel-size must be odd, got 4" in capsys.readouterr().err


def test_bench_refuses_unknown_suites_and_one_json_for_several(tmp_path, capsys):
    assert main(["bench", "opz"]) == 2
    assert "unknown suite(s) opz" in capsys.readouterr().err
    assert main(["bench", "ops", "upsample", "--json", str(tmp_path / "x.json")]) == 2
    assert "--json: give exactly one suite" in capsys.readouterr().err


def test_write_atomic_replaces_whole_file(tmp_path):
    path = tmp_path / "a.json"
    write_atomic(path, "first")
    write_atomic(path, "second")
    assert path.read_text() == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary file left behind


def test_bench_naive_baseline_is_a_correct_pac():
    """The baseline the library is timed against must compute the same thing."""

    x, f = torch.randn(1, 3, 10, 9, dtype=torch.float64), torch.randn(1, 2, 10, 9, dtype=torch.float64)
    w = torch.randn(4, 3, 5, 5, dtype=torch.float64)
    assert torch.allclose(naive_pac_conv2d(x, f, w, 2), pac_conv2d(x, w, padding=2, guide=f), atol=1e-12)
