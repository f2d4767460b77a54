"""``pixelwise segment train|eval|predict``: semantic segmentation with PAC-CRF, PAC hot-swap and the dense CRF."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_train_options, finish_training, info, positive_int, resolve_train_config

CRF_HELP = "none (unaries only), pac / pac-loose (a learned PAC-CRF), dense (fully connected CRF)"
STAGES = ("unaries", "crf", "joint")


def crf_kernels(text: str) -> list[list[int]]:
    """``"5:32"`` or ``"5:16,5:64"`` -> ``[[5, 32]]`` / ``[[5, 16], [5, 64]]``: kernel_size:dilation pairs."""
    try:
        pairs = [[int(v) for v in item.split(":")] for item in text.split(",")]
    except ValueError:
        pairs = []
    if not pairs or any(len(p) != 2 or p[0] < 3 or p[0] % 2 == 0 or p[1] < 1 for p in pairs):
        raise argparse.ArgumentTypeError(f"expected kernel_size:dilation pairs separated by commas, kernel_size odd "
                                         f">= 3 and dilation >= 1, e.g. 5:32 or 5:16,5:64; got {text!r}")
    return pairs


def add_parser(sub) -> None:
    seg = sub.add_parser("segment", help="semantic segmentation: PAC-CRF, PAC hot-swap, fully connected CRF")
    seg_sub = seg.add_subparsers(dest="action", required=True)

    tr = seg_sub.add_parser("train", help="train the network (and its CRF) into a run folder; "
                                          "fit the dense CRF's parameters with --crf dense")
    tr.add_argument("--data", default=None, help="'synthetic' (default), a VOC2012 / SBD folder or cityscapes:<folder>")
    tr.add_argument("--crf", choices=("none", "pac", "pac-loose", "dense"), default=None, help=CRF_HELP)
    tr.add_argument("--kernels", type=crf_kernels, default=None,
                    help="PAC-CRF pairwise kernels as kernel_size:dilation, e.g. 5:32 (default) or 5:16,5:64")
    tr.add_argument("--compat", choices=("4d", "2d", "potts"), default=None,
                    help="PAC-CRF label compatibility (default 4d)")
    tr.add_argument("--hot-swap", action="store_true", default=None,
                    help="turn the last conv of stages 2-4 into PAC layers guided by the stem, then fine-tune")
    tr.add_argument("--init", default=None, help="a trained run folder or checkpoint to start from "
                                                 "(default: train the network from scratch first)")
    tr.add_argument("--width", type=float, default=None, help="channel multiplier (default 0.5)")
    add_train_options(tr, "segment")
    tr.set_defaults(func=_train)

    ev = seg_sub.add_parser("eval", help="mIoU, pixel accuracy, boundary-band mIoU and time per method; "
                                         "metrics.json and report.html")
    ev.add_argument("--model", required=True, help="trained run folder or checkpoint")
    ev.add_argument("--data", default="synthetic", help="'synthetic' (held-out scenes), a VOC2012 / SBD folder or "
                                                        "cityscapes:<folder>")
    ev.add_argument("--split", default="test", help="synthetic: val or test (default); a dataset folder: a split, "
                                                    "e.g. val")
    ev.add_argument("--crf", choices=("none", "pac", "pac-loose", "dense"), default=None,
                    help=f"CRF to apply (default: the one the run was trained with): {CRF_HELP}")
    ev.add_argument("--max-images", type=positive_int, default=None, help="only the first N images")
    ev.add_argument("--examples", type=int, default=6, help="images shown in the report")
    ev.add_argument("--device", default="cpu")
    ev.add_argument("--out", required=True, help="folder for metrics.json and report.html")
    ev.set_defaults(func=_eval)

    pr = seg_sub.add_parser("predict", help="class-label PNGs, colour maps and overlays for images")
    pr.add_argument("--model", required=True, help="trained run folder or checkpoint")
    pr.add_argument("--images", required=True, help="an image file or a folder of images")
    pr.add_argument("--out", required=True, help="writes labels/ (palette PNGs of class ids), colour/ and overlays/")
    pr.add_argument("--crf", choices=("none", "pac", "pac-loose", "dense"), default=None,
                    help=f"CRF to apply (default: the one the run was trained with): {CRF_HELP}")
    pr.add_argument("--device", default="cpu")
    pr.set_defaults(func=_predict)


def _train(args) -> int:
    from ..tasks.segment import SegmentConfig, train_segmentation

    run_dir = Path(args.out)
    stage_configs = [run_dir / s / "config.yaml" for s in STAGES if (run_dir / s / "config.yaml").exists()]
    if stage_configs and not (args.resume or args.print_config):
        raise ValueError(f"--out {run_dir}: already holds a run; pass --resume to continue it or choose a new folder")
    if args.resume and args.config is None and stage_configs:
        args.config = stage_configs[0]  # every stage saves the whole config: resume with the run's settings
    keys = {"data": "data", "crf": "crf", "kernels": "crf_kernels", "compat": "crf_compat", "hot_swap": "hot_swap",
            "init": "init", "width": "width"}
    cfg = resolve_train_config(SegmentConfig, args, keys)
    if cfg is None:
        return 0
    return finish_training(train_segmentation(cfg, run_dir, resume=args.resume, log=info), args.out, "segment")


def _summary_line(method: str, scores: dict, ms: float | None) -> str:
    time = f", {ms:.0f} ms" if ms is not None else ""
    return (f"{method:8s} mIoU {100 * scores['miou']:.1f}, pixel accuracy {100 * scores['pixel_accuracy']:.1f}, "
            f"band mIoU {100 * scores['band_miou']:.1f}{time}")


def _eval(args) -> int:
    from ..tasks.segment import run_evaluation
    from ..tasks.segment_report import METHOD_TIMES

    summary, report = run_evaluation(args.model, args.data, Path(args.out), split=args.split, crf=args.crf,
                                     max_images=args.max_images or 0, examples=args.examples, device=args.device,
                                     log=info)
    print(f"{summary['images']} images, {len(summary['methods'])} method(s)")
    for method, scores in summary["methods"].items():
        print(_summary_line(method, scores, summary["median_ms"].get(METHOD_TIMES[method])))
    print(f"report: {report}")
    return 0


def _predict(args) -> int:
    from ..tasks.segment import load_segment_model, predict_folder

    loaded = load_segment_model(args.model, args.device, args.crf, log=info)
    written = predict_folder(loaded, Path(args.images), Path(args.out), log=info)
    print(f"wrote {len(written)} label map(s) ({loaded.method}) under {Path(args.out) / 'labels'}")
    return 0
