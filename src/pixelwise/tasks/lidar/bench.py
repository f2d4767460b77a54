"""LiDAR segmentation costs, as ratios measured in one run (interleaved medians):

* each residual-block variant of the ablation network, and the released network's SAC block,
  against the plain block, on the paper's Table 3 shape (input 32 x 64 x 512, blocks of 64
  channels after a 32 -> 64 conv), forward only;
* the released SSGV3-21 forward, and the ablation network with SAC-ISK blocks, against the
  ablation network with plain convs (the RangeNet-style baseline);
* kNN refinement time as a fraction of the network's time on one scan;
* points per second of the spherical projection.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...bench.report import BenchTable
from ...bench.timing import interleaved_medians
from ...checks import parse_positive_int
from ...data.io.semantic_kitti import read_scan
from ...data.synthetic.lidar import generate_scan
from ...data.transforms.spherical_projection import ProjectionConfig, normalize, project
from ...models import create_model
from ...models.squeezeseg_ablation import BLOCK_TYPES, SacResidualBlock
from ...nn.sac import SacBlock
from ...ops import knn_refine
from ...options import Option

__all__ = ["OPTIONS", "PAPER_BLOCK_LATENCY", "LidarBenchReport", "default_scan", "run", "run_suite"]

# Xu et al. 2020, Table 3: block latency in 1e-4 s on a GPU (input 32x64x512, output 64x64x512).
PAPER_BLOCK_LATENCY = {"plain": 3.0, "S": 5.3, "IS": 4.6, "SK": 15.0, "ISK": 5.2, "PAC": 18.4, "SE": 54.5,
                       "CBAM": 15.8, "CAM": 10.6}
RELEASED = "released"  # the SacBlock of the released network (a SAC-ISK block) in the block table


@dataclass
class LidarBenchReport(BenchTable):
    threads: int
    torch_version: str
    scan: str
    points: int
    blocks: list[dict] = field(default_factory=list)
    network: dict = field(default_factory=dict)
    knn: dict = field(default_factory=dict)
    projection: dict = field(default_factory=dict)

    def table(self) -> str:
        lines = [f"torch {self.torch_version}, {self.threads} threads, fp32, forward only",
                 "", "Residual block, input 32x64x512 -> 64 channels (Table 3 shape), ratio to the plain block:",
                 f"{'block':8s} {'ms':>9s} {'ratio':>7s} {'paper':>7s}"]
        for r in self.blocks:
            paper = f"{r['paper_ratio']:6.2f}x" if r["paper_ratio"] is not None else f"{'-':>7s}"
            lines.append(f"{r['block']:8s} {r['ms']:9.1f} {r['ratio']:6.2f}x {paper}")
        n = self.network
        lines += ["", f"Forward at {n['height']}x{n['width']}, ratio to the plain-conv backbone (paper: 20/16 = 1.25x "
                      f"scans/s):",
                  f"  ssgv3_21 (released)        {n['official_ms']:7.0f} ms  {n['official_ratio']:.2f}x",
                  f"  ssgv3_ablation_21, SAC-ISK {n['isk_ms']:7.0f} ms  {n['isk_ratio']:.2f}x",
                  f"  ssgv3_ablation_21, plain   {n['plain_ms']:7.0f} ms  1.00x"]
        k = self.knn
        lines.append(f"kNN refinement on {self.scan} ({self.points} points): {k['knn_ms']:.0f} ms, reference mode "
                     f"{k['reference_ms']:.0f} ms = {k['fraction']:.2f} of the released network's time at "
                     f"{n['height']}x{n['width']}")
        p = self.projection
        lines.append(f"spherical projection {p['height']}x{p['width']}: {p['ms']:.1f} ms per scan, "
                     f"{p['points_per_s'] / 1e6:.1f} M points/s (normalisation included)")
        return "\n".join(lines)


class _TableThreeBlock(nn.Module):
    """The benchmark unit of the paper's Table 3: a 32 -> 64 conv, then one residual block."""

    def __init__(self, block: str):
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64),
                                    nn.LeakyReLU(0.1))
        self.block = SacBlock(64) if block == RELEASED else SacResidualBlock(64, block)

    def forward(self, x, raw):
        return self.block(self.expand(x), raw)


def run(points: np.ndarray | None = None, scan_name: str = "synthetic scan", *, repeats: int = 5, threads: int = 2,
        height: int = 64, width: int = 2048, blocks=BLOCK_TYPES + (RELEASED,)) -> LidarBenchReport:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    points = generate_scan(0)[0] if points is None else points
    report = LidarBenchReport(threads, torch.__version__, scan_name, len(points))

    x, raw = torch.randn(1, 32, 64, 512), torch.randn(1, 3, 64, 512)
    units = [_TableThreeBlock(b).eval() for b in blocks]

    def call(module, *args):
        def f():
            with torch.inference_mode():
                module(*args)
        return f

    times = interleaved_medians([call(u, x, raw) for u in units], repeats)
    plain = times[list(blocks).index("plain")] if "plain" in blocks else times[0]
    for b, ms in zip(blocks, times):
        paper = PAPER_BLOCK_LATENCY.get(b)
        report.blocks.append({"block": b, "ms": ms, "ratio": ms / plain,
                              "paper_ratio": None if paper is None else paper / PAPER_BLOCK_LATENCY["plain"]})

    image = project(points, ProjectionConfig(height, width))
    inp = torch.from_numpy(normalize(image.channels, image.mask))[None]
    nets = {"official": create_model("ssgv3_21").eval(), "ISK": create_model("ssgv3_ablation_21", block="ISK").eval(),
            "plain": create_model("ssgv3_ablation_21", block="plain").eval()}
    official_ms, isk_ms, plain_ms = interleaved_medians([call(nets[k], inp) for k in ("official", "ISK", "plain")],
                                                        max(2, repeats // 2), warmup=1)
    report.network = {"height": height, "width": width, "official_ms": official_ms, "isk_ms": isk_ms,
                      "plain_ms": plain_ms, "official_ratio": official_ms / plain_ms, "isk_ratio": isk_ms / plain_ms}

    with torch.inference_mode():
        labels = nets["official"](inp).argmax(1)[0]
    args = (torch.from_numpy(image.channels[0]), labels, torch.from_numpy(image.point_range),
            torch.from_numpy(image.u), torch.from_numpy(image.v))
    knn_ms, reference_ms = interleaved_medians([lambda: knn_refine(*args), lambda: knn_refine(*args, mode="reference")],
                                               repeats)
    report.knn = {"knn_ms": knn_ms, "reference_ms": reference_ms, "fraction": knn_ms / official_ms}

    def projection():
        img = project(points, ProjectionConfig(height, width))
        normalize(img.channels, img.mask)

    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        projection()
        samples.append(time.perf_counter() - t0)
    ms = 1e3 * float(np.median(samples))
    report.projection = {"height": height, "width": width, "ms": ms, "points_per_s": len(points) / (ms / 1e3)}
    return report


OPTIONS = (
    Option("--scan", "a SemanticKITTI .bin scan (default: <data-root>/semantic-kitti/sequences/00/velodyne/000000.bin "
                     "when present, else a synthetic scan)"),
    Option("--width", "range-image width for the network timing", type=parse_positive_int, default=2048),
    Option("--repeats", "timed runs per measurement (median)", type=parse_positive_int, default=5),
    Option("--threads", "torch threads", type=parse_positive_int, default=2),
)


def default_scan(data_root: str | Path | None) -> Path | None:
    """The first scan of the SemanticKITTI sample under ``data_root``, when it is there."""
    if data_root is None:
        return None
    scan = Path(data_root) / "semantic-kitti" / "sequences" / "00" / "velodyne" / "000000.bin"
    return scan if scan.is_file() else None


def run_suite(options, log) -> LidarBenchReport:
    """``pixelwise bench lidar``: the options of :data:`OPTIONS` plus ``data_root`` as a namespace."""
    scan = options.scan or default_scan(options.data_root)
    log(f"lidar bench on {scan or 'a synthetic scan'}")
    points = read_scan(scan) if scan else None
    return run(points, str(scan) if scan else "a synthetic scan", repeats=options.repeats, threads=options.threads,
               width=options.width)
