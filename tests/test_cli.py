import json
import subprocess
import sys

import pytest

import pixelwise
from pixelwise.atomic import write_text_atomic as write_atomic
from pixelwise.cli import main


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and pixelwise.__version__ in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0 and "bench" in capsys.readouterr().out


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "pixelwise.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("pixelwise ")


def test_bench_ops_small_run_writes_json(tmp_path, capsys):
    path = tmp_path / "sub" / "bench.json"
    assert main(["bench", "ops", "--sizes", "32", "--channels", "4", "--repeats", "1", "--no-memory",
                 "--no-naive", "--quiet", "--json", str(path)]) == 0
    text = capsys.readouterr().out
    assert "PacConv2d forward" in text and "SacConv2d ISK block" in text
    data = json.loads(path.read_text())
    assert data["channels"] == 4 and data["kernel_size"] == 5
    cases = {r["case"] for r in data["rows"]}
    assert {"PacConv2d forward+backward", "PacConvTranspose2d forward (stride 2)"} <= cases
    assert all(r["ratio"] > 0 and r["op_ms"] > 0 for r in data["rows"])


def test_bench_rejects_even_kernel(capsys):
    assert main(["bench", "ops", "--kernel-size", "4", "--sizes", "16", "--no-memory"]) == 2
    assert "--kernel-size" in capsys.readouterr().err


def test_write_atomic_replaces_whole_file(tmp_path):
    path = tmp_path / "a.json"
    write_atomic(path, "first")
    write_atomic(path, "second")
    assert path.read_text() == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary file left behind


def test_bench_naive_baseline_is_a_correct_pac():
    """The baseline the library is timed against must compute the same thing."""
    import torch

    from pixelwise.bench.ops import naive_pac_conv2d
    from pixelwise.ops import pac_conv2d

    x, f = torch.randn(1, 3, 10, 9, dtype=torch.float64), torch.randn(1, 2, 10, 9, dtype=torch.float64)
    w = torch.randn(4, 3, 5, 5, dtype=torch.float64)
    assert torch.allclose(naive_pac_conv2d(x, f, w, 2), pac_conv2d(x, w, padding=2, guide=f), atol=1e-12)
