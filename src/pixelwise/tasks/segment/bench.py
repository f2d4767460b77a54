"""``pixelwise bench segment``: CRF inference cost, PAC-CRF against the fully connected CRF.

The paper's timing setting (Su et al. 2019, Table 3): one 500 x 375 image, 21 classes, 5 mean-field
steps. Every method runs on the same input -- a real photograph (scikit-image's ``chelsea``, resized)
and a smooth random 21-class logit field as the unary (fixed seed) -- and the times are medians of
interleaved runs (A, B, A, B, ...; one untimed warm-up each, as one run takes seconds), reported as
ratios to the dense CRF measured in the same run.

* dense CRF: :class:`pixelwise.nn.DenseCRF` (pydensecrf's permutohedral lattice, single-threaded
  C++, default :class:`DenseCRFParams`), inference only -- it has no backward;
* PAC-CRF 32 (one 5x5 PAC at dilation 32) and 16-64 (two at dilations 16 and 64), with the paper's
  4-D compatibility and with Potts: inference under ``torch.no_grad``, plus forward + backward of
  an NLL loss (the training cost) for the 4-D variants, and the bytes autograd keeps for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ...bench.ops import saved_for_backward_mb
from ...bench.report import BenchTable
from ...bench.timing import interleaved_medians
from ...checks import check_int
from ...nn import DenseCRF, PacCRF, PairwiseKernel
from ...nn.dense_crf import DenseCRFParams

__all__ = ["PAC_CONFIGS", "PAPER_MS", "SegmentReport", "SegmentRow", "make_inputs", "run"]

PAC_CONFIGS = {"PAC-CRF 32": (32,), "PAC-CRF 16-64": (16, 64)}
PAPER_MS = {"dense CRF": 629.0, "PAC-CRF 32": 39.0, "PAC-CRF 16-64": 78.0}  # Table 3, their hardware


@dataclass
class SegmentRow:
    method: str
    mode: str  # "inference" or "forward+backward"
    ms: float
    ratio_to_dense: float
    saved_mb: float | None = None


@dataclass
class SegmentReport(BenchTable):
    height: int
    width: int
    classes: int
    steps: int
    threads: int
    torch_version: str
    image: str
    rows: list[SegmentRow] = field(default_factory=list)

    def extra_json(self) -> dict:
        return {"paper_ms": PAPER_MS}

    def table(self) -> str:
        lines = [(f"CRF on one {self.width}x{self.height} image ({self.image}), {self.classes} classes, "
                  f"{self.steps} mean-field steps, fp32 CPU, torch {self.torch_version}, {self.threads} threads "
                  "(pydensecrf: 1 thread)"),
                 f"{'method':30s} {'mode':17s} {'ms':>9s} {'vs dense':>9s} {'saved MB':>9s}"]
        lines.append("-" * len(lines[-1]))
        for r in self.rows:
            saved = "" if r.saved_mb is None else f"{r.saved_mb:9.1f}"
            lines.append(f"{r.method:30s} {r.mode:17s} {r.ms:9.1f} {r.ratio_to_dense:8.2f}x {saved:>9s}")
        lines.append("paper (Table 3, GPU for PAC-CRF): " + ", ".join(f"{k} {v:.0f} ms" for k, v in PAPER_MS.items()))
        return "\n".join(lines)


def make_inputs(height: int, width: int, classes: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(unary (1, classes, H, W), image (1, 3, H, W))``: a real photo, and logits that vary smoothly
    over ~32-pixel cells (blob-like segments, as a stride-8 backbone's upsampled scores)."""
    from skimage import data, transform  # optional heavy dependency: only the benchmark's photo needs it

    photo = transform.resize(data.chelsea(), (height, width), anti_aliasing=True)
    image = torch.from_numpy(photo).float().permute(2, 0, 1)[None].clamp(0, 1).contiguous()
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(1, classes, -(-height // 32) + 1, -(-width // 32) + 1, generator=g)
    unary = 3.0 * F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    return unary.contiguous(), image


def _pac_crfs(classes: int, steps: int) -> dict[str, PacCRF]:
    crfs = {}
    for name, dilations in PAC_CONFIGS.items():
        for compat in ("4d", "potts"):
            kernels = tuple(PairwiseKernel(5, d, compat=compat) for d in dilations)
            crfs[f"{name} ({compat})"] = PacCRF(classes, kernels=kernels, steps=steps)
    return crfs


def run(height: int = 375, width: int = 500, classes: int = 21, steps: int = 5, repeats: int = 3,
        threads: int = 2, progress=lambda message: None) -> SegmentReport:
    """Time the dense CRF and the PAC-CRFs on one ``height x width`` image of ``classes`` labels."""
    check_int(classes, "classes", min=2)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    unary, image = make_inputs(height, width, classes)
    report = SegmentReport(height, width, classes, steps, torch.get_num_threads(), torch.__version__,
                           f"skimage chelsea resized to {width}x{height}")
    dense = DenseCRF(DenseCRFParams(steps=steps))
    crfs = _pac_crfs(classes, steps)

    def infer(crf):
        def f():
            with torch.no_grad():
                crf(unary, image)
        return f

    progress("[bench segment] inference ...")
    calls = [infer(dense), *(infer(c) for c in crfs.values())]
    dense_ms, *pac_ms = interleaved_medians(calls, repeats, warmup=1)
    report.rows.append(SegmentRow("dense CRF (permutohedral)", "inference", dense_ms, 1.0))
    for name, ms in zip(crfs, pac_ms):
        report.rows.append(SegmentRow(name, "inference", ms, ms / dense_ms))

    target = unary.argmax(1)
    trained = {name: crf for name, crf in crfs.items() if name.endswith("(4d)")}

    def train_step(crf):
        def f():
            crf.zero_grad(set_to_none=True)
            F.nll_loss(crf(unary.detach().requires_grad_(), image), target).backward()
        return f

    progress("[bench segment] forward+backward ...")
    train_ms = interleaved_medians([train_step(c) for c in trained.values()], repeats, warmup=1)
    for (name, crf), ms in zip(trained.items(), train_ms):
        saved = saved_for_backward_mb(lambda crf=crf: crf(unary.detach().requires_grad_(), image))
        report.rows.append(SegmentRow(name, "forward+backward", ms, ms / dense_ms, saved))
    return report
