"""``pixelwise bench upsample``: inference speed of the joint-upsampling networks, as ratios to DJF
on the same input.

The paper sized PAC-lite to DJF's parameter count; this measures what that costs in time on one
high-resolution guide. Bicubic and JBU are included for scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ...bench.report import BenchTable
from ...bench.timing import interleaved_medians
from ...checks import check_positive_int
from ...models import count_parameters, create_model

__all__ = ["METHODS", "UpsampleReport", "UpsampleRow", "run"]

METHODS = ("djf", "pac_upsampler_lite", "pac_upsampler", "jbu", "bicubic")


@dataclass
class UpsampleRow:
    model: str
    parameters: int
    ms: float
    ratio_to_djf: float


@dataclass
class UpsampleReport(BenchTable):
    size: int
    factor: int
    threads: int
    torch_version: str
    rows: list[UpsampleRow] = field(default_factory=list)

    def table(self) -> str:
        head = (f"x{self.factor} depth upsampling, guide {self.size}x{self.size}, forward only, fp32, "
                f"{self.threads} threads, torch {self.torch_version}\n"
                f"{'model':22s} {'params':>9s} {'ms':>9s} {'vs DJF':>8s}")
        lines = [head, "-" * 51]
        for r in self.rows:
            lines.append(f"{r.model:22s} {r.parameters:9d} {r.ms:9.1f} {r.ratio_to_djf:7.2f}x")
        return "\n".join(lines)


def run(size: int = 512, factor: int = 8, repeats: int = 5, threads: int = 2) -> UpsampleReport:
    """Median forward time of every method in :data:`METHODS` on one ``size`` x ``size`` guide."""
    for value, name in ((size, "size"), (factor, "factor"), (repeats, "repeats"), (threads, "threads")):
        check_positive_int(value, name)
    if size % factor:
        raise ValueError(f"--size {size} must be a multiple of --factor {factor}")
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    guide = torch.rand(1, 3, size, size, generator=gen)
    target = torch.rand(1, 1, size // factor, size // factor, generator=gen) * 10 + 1
    models = {}
    for name in METHODS:
        model = create_model(name, factor=factor).eval()
        for p in model.parameters():  # away from the zero init, so no branch is trivially skipped
            p.data.add_(torch.randn(p.shape, generator=gen) * 0.01)
        models[name] = model

    def call(model):
        def f():
            with torch.inference_mode():
                model(target, guide)
        return f

    times = interleaved_medians([call(m) for m in models.values()], repeats)
    djf_ms = times[0]
    report = UpsampleReport(size, factor, threads, torch.__version__)
    for (name, model), ms in zip(models.items(), times):
        report.rows.append(UpsampleRow(name, count_parameters(model), ms, ms / djf_ms))
    return report
