"""``pixelwise bench ops``: each adaptive op against its standard PyTorch counterpart.

Every figure is a ratio measured in one process: the op and its reference run interleaved
(A, B, A, B, ...) and the medians are compared, so machine-wide slowdowns hit both sides.
Peak memory is measured in a fresh subprocess per case: the peak RSS of one forward+backward
above the RSS before it (Linux ``/proc``).
"""

from __future__ import annotations

import multiprocessing as mp
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .. import __version__
from ..checks import check_odd, parse_positive_int as positive_int
from ..options import Option
from ..nn import PacConv2d, PacConvTranspose2d, SacConv2d
from .report import BenchTable
from .timing import interleaved_medians

TARGETS = {  # issue targets: the op may take at most this many times its reference
    "pac_forward": 2.0,
    "pac_forward_backward": 3.0,
    "pac_transpose_forward": 2.5,
    "sac_isk_block_forward": 2.0,
    "pac_peak_memory": 3.0,
}


@dataclass
class Row:
    case: str
    size: int
    op_ms: float
    reference_ms: float
    ratio: float
    target: float | None = None
    note: str = ""

    @property
    def meets(self):
        return None if self.target is None else self.ratio <= self.target


@dataclass
class Report(BenchTable):
    threads: int
    channels: int
    kernel_size: int
    guide_channels: int
    torch_version: str
    rows: list[Row] = field(default_factory=list)

    def extra_json(self) -> dict:
        return {"rows": [{**asdict(r), "meets_target": r.meets} for r in self.rows]}

    def table(self) -> str:
        title = (f"pixelwise {__version__} | torch {self.torch_version} | {self.threads} threads | B=1, "
                 f"{self.channels}->{self.channels} channels, k={self.kernel_size}, fp32, guide {self.guide_channels} "
                 f"channels")
        head = f"{'case':42s} {'size':>5s} {'op ms':>9s} {'ref ms':>9s} {'ratio':>7s} {'target':>7s}  note"
        lines = [title, head, "-" * len(head)]
        for r in self.rows:
            target = "" if r.target is None else f"<={r.target:.1f}" + (" ok" if r.meets else " MISS")
            lines.append(f"{r.case:42s} {r.size:5d} {r.op_ms:9.2f} {r.reference_ms:9.2f} {r.ratio:6.2f}x {target:>7s}  {r.note}")
        return "\n".join(lines)


def naive_pac_conv2d(x, guide, weight, padding):
    """The straightforward PAC: unfold input and guide, Gaussian kernel, einsum. Kept only as
    the baseline the library must beat (it stores C*k^2*H*W numbers for backward)."""
    k = weight.shape[-1]
    B, C, H, W = x.shape
    cols = F.unfold(x, k, padding=padding).view(B, C, k * k, H, W)
    g = F.unfold(guide, k, padding=padding).view(B, guide.shape[1], k * k, H, W)
    centre = guide.unsqueeze(2)
    mask = F.unfold(torch.ones_like(guide[:, :1]), k, padding=padding).view(B, 1, k * k, H, W)
    K = torch.exp(-0.5 * ((g - centre) ** 2).sum(1, keepdim=True)) * mask
    return torch.einsum("bctn,oct->bon", (cols * K).view(B, C, k * k, H * W), weight.view(weight.shape[0], C, k * k)).view(B, -1, H, W)


def _case_tensors(size, channels, guide_channels, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, channels, size, size, generator=g)
    f = torch.randn(1, guide_channels, size, size, generator=g)
    return x, f


def _fwd_bwd(module_call, params):
    def run():
        for p in params:
            p.grad = None
        module_call().sum().backward()
    return run


def bench_size(report: Report, size: int, repeats: int, include_naive: bool = True):
    C, k, Cf = report.channels, report.kernel_size, report.guide_channels
    pad = k // 2
    x, f = _case_tensors(size, C, Cf)
    conv = nn.Conv2d(C, C, k, padding=pad)
    pac = PacConv2d(C, C, k, padding=pad)
    pac.load_state_dict(conv.state_dict())
    add = report.rows.append

    with torch.no_grad():
        kernel = pac.compute_kernel(f)
        t_pac, t_pac_k, t_conv = interleaved_medians(
            [lambda: pac(x, f), lambda: pac(x, kernel=kernel), lambda: conv(x)], repeats)
    add(Row("PacConv2d forward (guide -> kernel -> conv)", size, t_pac, t_conv, t_pac / t_conv, TARGETS["pac_forward"],
            f"vs nn.Conv2d; guide {Cf} ch"))
    add(Row("PacConv2d forward, precomputed kernel", size, t_pac_k, t_conv, t_pac_k / t_conv, None, "vs nn.Conv2d"))

    xg, fg = x.clone().requires_grad_(), f.clone().requires_grad_()
    run_pac = _fwd_bwd(lambda: pac(xg, fg), [xg, fg, *pac.parameters()])
    run_conv = _fwd_bwd(lambda: conv(xg), [xg, *conv.parameters()])
    t_pac_fb, t_conv_fb = interleaved_medians([run_pac, run_conv], repeats)
    add(Row("PacConv2d forward+backward", size, t_pac_fb, t_conv_fb, t_pac_fb / t_conv_fb,
            TARGETS["pac_forward_backward"], "grads: input, guide, weight, bias"))

    if include_naive:
        w = pac.weight.detach()
        with torch.no_grad():
            t_naive, t_lib = interleaved_medians([lambda: naive_pac_conv2d(x, f, w, pad), lambda: pac(x, f)], max(3, repeats // 2))
        add(Row("naive unfold+einsum PAC forward", size, t_naive, t_lib, t_naive / t_lib, None,
                f"library is {t_naive / t_lib:.1f}x faster"))
        wg = w.clone().requires_grad_()
        run_naive = _fwd_bwd(lambda: naive_pac_conv2d(xg, fg, wg, pad), [xg, fg, wg])
        t_naive_fb, t_lib_fb = interleaved_medians([run_naive, run_pac], max(3, repeats // 2))
        add(Row("naive unfold+einsum PAC forward+backward", size, t_naive_fb, t_lib_fb, t_naive_fb / t_lib_fb, None,
                f"library is {t_naive_fb / t_lib_fb:.1f}x faster"))

    # PAC^T: 2x upsampling from size/2 to size, guide at the output resolution.
    xs = torch.randn(1, C, size // 2, size // 2)
    convt = nn.ConvTranspose2d(C, C, k, stride=2, padding=pad, output_padding=1)
    pact = PacConvTranspose2d(C, C, k, stride=2, padding=pad, output_padding=1)
    pact.load_state_dict(convt.state_dict())
    with torch.no_grad():
        t_pt, t_ct = interleaved_medians([lambda: pact(xs, f), lambda: convt(xs)], repeats)
    add(Row("PacConvTranspose2d forward (stride 2)", size, t_pt, t_ct, t_pt / t_ct, TARGETS["pac_transpose_forward"],
            "vs nn.ConvTranspose2d"))

    # SAC-ISK block vs a plain conv block (conv, BN, LeakyReLU), inference mode.
    raw = torch.randn(1, 3, size, size)
    for ks in sorted({3, k}):
        sac_block = nn.Sequential(SacConv2d(C, C, ks, padding=ks // 2, variant="ISK", raw_channels=3),
                                  nn.BatchNorm2d(C), nn.LeakyReLU(0.1)).eval()
        plain = nn.Sequential(nn.Conv2d(C, C, ks, padding=ks // 2), nn.BatchNorm2d(C), nn.LeakyReLU(0.1)).eval()

        def run_sac(block=sac_block):
            return block[2](block[1](block[0](x, raw)))

        with torch.no_grad():
            t_sac, t_plain = interleaved_medians([run_sac, lambda: plain(x)], repeats)
        add(Row(f"SacConv2d ISK block forward (k={ks})", size, t_sac, t_plain, t_sac / t_plain,
                TARGETS["sac_isk_block_forward"], "vs conv+BN+LReLU; attention 7x7 on 3-ch raw input"))


def _peak_worker(case, size, channels, kernel_size, guide_channels, threads, queue):
    torch.set_num_threads(threads)
    x, f = _case_tensors(size, channels, guide_channels)
    pad = kernel_size // 2
    x.requires_grad_()
    f.requires_grad_()
    layer = (PacConv2d if case == "pac" else nn.Conv2d)(channels, channels, kernel_size, padding=pad)
    if case == "naive":
        w = layer.weight.detach().clone().requires_grad_()

    def run():
        if case == "pac":
            y = layer(x, f)
        elif case == "naive":
            y = naive_pac_conv2d(x, f, w, pad)
        else:
            y = layer(x)
        y.sum().backward()

    run()  # warm up allocator and oneDNN primitive caches before reading the baseline
    x.grad = f.grad = None
    for prm in layer.parameters():
        prm.grad = None
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # Linux: reset the peak-RSS mark (VmHWM) to the current RSS
    base = _status_kb("VmRSS")
    run()
    queue.put((_status_kb("VmHWM") - base) * 1024)


def _status_kb(field_name: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field_name}")


def peak_memory_mb(case, size, report: Report) -> float:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_peak_worker, args=(case, size, report.channels, report.kernel_size,
                                               report.guide_channels, report.threads, q))
    p.start()
    value = q.get(timeout=600)
    p.join()
    return value / 2**20


def saved_for_backward_mb(module_call) -> float:
    """Bytes autograd keeps between forward and backward (unique storages)."""
    seen = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module_call()
    return sum(seen.values()) / 2**20


def bench_memory(report: Report, size: int):
    C, k, Cf = report.channels, report.kernel_size, report.guide_channels
    pac_mb = peak_memory_mb("pac", size, report)
    conv_mb = peak_memory_mb("conv", size, report)
    naive_mb = peak_memory_mb("naive", size, report)
    report.rows.append(Row("peak memory PAC fwd+bwd (MB, not ms)", size, pac_mb, conv_mb, pac_mb / max(conv_mb, 1e-6),
                           TARGETS["pac_peak_memory"], f"vs nn.Conv2d; naive unfold PAC: {naive_mb:.0f} MB"))
    x, f = _case_tensors(size, C, Cf)
    x.requires_grad_()
    pac = PacConv2d(C, C, k, padding=k // 2)
    conv = nn.Conv2d(C, C, k, padding=k // 2)
    s_pac = saved_for_backward_mb(lambda: pac(x, f.requires_grad_()))
    s_conv = saved_for_backward_mb(lambda: conv(x))
    s_naive = saved_for_backward_mb(lambda: naive_pac_conv2d(x, f, conv.weight, k // 2))
    full = C * k * k * size * size * 4 / 2**20
    report.rows.append(Row("saved for backward PAC (MB, not ms)", size, s_pac, s_conv, s_pac / max(s_conv, 1e-6), None,
                           f"C*k^2*H*W = {full:.0f} MB; naive keeps {s_naive:.0f} MB"))


def run(sizes=(128, 256), channels=32, kernel_size=5, guide_channels=8, repeats=7, threads=2,
        memory=True, naive=True, progress=print) -> Report:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    report = Report(threads, channels, kernel_size, guide_channels, torch.__version__)
    for size in sizes:
        progress(f"[bench ops] {size}x{size} timing ...")
        bench_size(report, size, repeats, include_naive=naive)
        if memory:
            progress(f"[bench ops] {size}x{size} memory ...")
            bench_memory(report, size)
    return report


OPTIONS = (
    Option("--sizes", "square image sizes", type=positive_int, nargs="+", default=[128, 256]),
    Option("--channels", "input = output channels", type=positive_int, default=32),
    Option("--kernel-size", "odd kernel size", type=positive_int, default=5),
    Option("--guide-channels", "guidance feature channels", type=positive_int, default=8),
    Option("--repeats", "timed runs per op (median)", type=positive_int, default=7),
    Option("--threads", "torch threads", type=positive_int, default=2),
    Option("--no-memory", "skip the peak-memory subprocesses", action="store_true"),
    Option("--no-naive", "skip the naive unfold+einsum baseline", action="store_true"),
)


def run_suite(options, log) -> Report:
    """``pixelwise bench ops``: the options of :data:`OPTIONS` as a namespace."""
    check_odd(options.kernel_size, "--ops-kernel-size")
    return run(sizes=options.sizes, channels=options.channels, kernel_size=options.kernel_size,
               guide_channels=options.guide_channels, repeats=options.repeats, threads=options.threads,
               memory=not options.no_memory, naive=not options.no_naive, progress=log)
