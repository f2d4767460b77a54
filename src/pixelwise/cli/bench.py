"""``pixelwise bench ops|upsample|lidar|instances|segment``: benchmarks that report ratios measured in one run."""

from __future__ import annotations

import sys
from pathlib import Path

from .. import __version__
from ..atomic import write_text_atomic
from ._common import positive_int as _positive_int


def _cmd_bench_ops(args) -> int:
    from ..bench import ops

    if args.kernel_size % 2 == 0:
        print(f"pixelwise bench ops: --kernel-size must be odd, got {args.kernel_size}", file=sys.stderr)
        return 2
    quiet = args.quiet or not sys.stderr.isatty()
    report = ops.run(sizes=args.sizes, channels=args.channels, kernel_size=args.kernel_size,
                     guide_channels=args.guide_channels, repeats=args.repeats, threads=args.threads,
                     memory=not args.no_memory, naive=not args.no_naive,
                     progress=(lambda m: None) if quiet else (lambda m: print(m, file=sys.stderr)))
    print(f"pixelwise {__version__} | torch {report.torch_version} | {report.threads} threads | "
          f"B=1, {report.channels}->{report.channels} channels, k={report.kernel_size}, fp32, "
          f"guide {report.guide_channels} channels")
    return _emit(report, args)


def _emit(report, args) -> int:
    """Print the report's table and, with --json, write its JSON (atomically)."""
    print(report.table())
    if args.json:
        write_text_atomic(Path(args.json), report.to_json())
        print(f"wrote {args.json}")
    return 0


def add_parser(sub) -> None:
    bench = sub.add_parser("bench", help="benchmarks: ratios against standard PyTorch ops, measured in one run")
    bench_sub = bench.add_subparsers(dest="suite", required=True)
    ops = bench_sub.add_parser("ops", help="PAC / PAC^T / SAC against nn.Conv2d / nn.ConvTranspose2d, plus memory")
    ops.add_argument("--sizes", type=_positive_int, nargs="+", default=[128, 256], help="square image sizes")
    ops.add_argument("--channels", type=_positive_int, default=32)
    ops.add_argument("--kernel-size", type=_positive_int, default=5)
    ops.add_argument("--guide-channels", type=_positive_int, default=8)
    ops.add_argument("--repeats", type=_positive_int, default=7, help="timed runs per op (median)")
    ops.add_argument("--threads", type=_positive_int, default=2)
    ops.add_argument("--json", help="also write the results to this JSON file")
    ops.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    ops.add_argument("--no-naive", action="store_true", help="skip the naive unfold+einsum baseline")
    ops.add_argument("--quiet", action="store_true", help="no progress messages")
    ops.set_defaults(func=_cmd_bench_ops)

    ups = bench_sub.add_parser("upsample", help="inference time of the PAC upsampler against DJF on one guide")
    ups.add_argument("--size", type=_positive_int, default=512, help="square guide side (multiple of the factor)")
    ups.add_argument("--factor", type=_positive_int, default=8)
    ups.add_argument("--repeats", type=_positive_int, default=5)
    ups.add_argument("--threads", type=_positive_int, default=2)
    ups.add_argument("--json", help="also write the results to this JSON file")
    ups.set_defaults(func=_cmd_bench_upsample)

    lid = bench_sub.add_parser("lidar", help="SAC block variants vs plain block, SSGV3-21 vs plain backbone, kNN "
                                             "and projection costs")
    lid.add_argument("--scan", help="a SemanticKITTI .bin scan (default: a synthetic scan)")
    lid.add_argument("--width", type=_positive_int, default=2048, help="range-image width for the network timing")
    lid.add_argument("--repeats", type=_positive_int, default=5)
    lid.add_argument("--threads", type=_positive_int, default=2)
    lid.add_argument("--json", help="also write the results to this JSON file")
    lid.set_defaults(func=_cmd_bench_lidar)

    ins = bench_sub.add_parser("instances", help="GBMS forward+backward time and memory; instance extraction "
                                                 "against sklearn MeanShift (time and recall)")
    ins.add_argument("--sizes", type=_positive_int, nargs="+", default=[1024, 4096], help="sampled pixels N")
    ins.add_argument("--iterations", type=_positive_int, default=5, help="T mean-shift iterations")
    ins.add_argument("--images", type=int, default=4, help="synthetic images for the extraction comparison (0 = skip)")
    ins.add_argument("--image-size", type=_positive_int, default=512)
    ins.add_argument("--model", help="trained instances run folder: use its embeddings instead of synthetic ones")
    ins.add_argument("--bandwidth", type=float, default=1.0, help="sklearn MeanShift bandwidth (Euclidean; "
                                                                   "1.0 = cosine 0.5 on the unit sphere)")
    ins.add_argument("--repeats", type=_positive_int, default=5)
    ins.add_argument("--threads", type=_positive_int, default=2)
    ins.add_argument("--json", help="also write the results to this JSON file")
    ins.add_argument("--quiet", action="store_true", help="no progress messages")
    ins.set_defaults(func=_cmd_bench_instances)

    seg = bench_sub.add_parser("segment", help="PAC-CRF against the fully connected CRF (pydensecrf): inference and "
                                              "training time on one image, as in the paper")
    seg.add_argument("--height", type=_positive_int, default=375, help="image height (default 375, as in VOC)")
    seg.add_argument("--width", type=_positive_int, default=500, help="image width (default 500)")
    seg.add_argument("--classes", type=_positive_int, default=21, help="labels (default 21, as in VOC)")
    seg.add_argument("--steps", type=_positive_int, default=5, help="mean-field steps")
    seg.add_argument("--repeats", type=_positive_int, default=3, help="timed runs per method (median)")
    seg.add_argument("--threads", type=_positive_int, default=2,
                     help="torch threads for PAC-CRF (pydensecrf always runs on one)")
    seg.add_argument("--json", help="also write the results to this JSON file")
    seg.add_argument("--quiet", action="store_true", help="no progress messages")
    seg.set_defaults(func=_cmd_bench_segment)


def _cmd_bench_upsample(args) -> int:
    from ..bench import upsample

    report = upsample.run(size=args.size, factor=args.factor, repeats=args.repeats, threads=args.threads)
    return _emit(report, args)


def _cmd_bench_lidar(args) -> int:
    from ..bench import lidar
    from ..data.semantic_kitti import read_scan

    points = read_scan(args.scan) if args.scan else None
    report = lidar.run(points, args.scan or "a synthetic scan", repeats=args.repeats, threads=args.threads,
                       width=args.width)
    return _emit(report, args)


def _cmd_bench_instances(args) -> int:
    from ..bench import instances

    quiet = args.quiet or not sys.stderr.isatty()
    report = instances.run(sizes=args.sizes, iterations=args.iterations, repeats=args.repeats, threads=args.threads,
                           images=args.images, image_size=args.image_size, model=args.model,
                           bandwidth=args.bandwidth,
                           progress=(lambda m: None) if quiet else (lambda m: print(m, file=sys.stderr)))
    return _emit(report, args)


def _cmd_bench_segment(args) -> int:
    from ..bench import segment

    if args.classes < 2:
        print(f"pixelwise bench segment: --classes must be >= 2, got {args.classes}", file=sys.stderr)
        return 2
    quiet = args.quiet or not sys.stderr.isatty()
    report = segment.run(height=args.height, width=args.width, classes=args.classes, steps=args.steps,
                         repeats=args.repeats, threads=args.threads,
                         progress=(lambda m: None) if quiet else (lambda m: print(m, file=sys.stderr)))
    return _emit(report, args)
