"""``pixelwise upsample train|eval|predict``: guided depth / flow upsampling."""

from __future__ import annotations

from pathlib import Path

from ._common import add_train_options, finish_training, info, positive_int, resolve_train_config


def add_parser(sub) -> None:
    ups = sub.add_parser("upsample", help="guided (joint) upsampling of depth or flow with an RGB guide")
    ups_sub = ups.add_subparsers(dest="action", required=True)

    tr = ups_sub.add_parser("train", help="train a model (JBU: grid-search its bandwidths) into a run folder")
    tr.add_argument("--model", default=None, help="pac_upsampler, pac_upsampler_lite, djf or jbu")
    tr.add_argument("--factor", type=positive_int, default=None)
    tr.add_argument("--kind", choices=("depth", "flow"), default=None)
    tr.add_argument("--data", default=None, help="synthetic (default), middlebury:<root>, nyu:<file.mat>, "
                                                  "sintel:<root>, folder:<root>")
    add_train_options(tr, "upsample")
    tr.set_defaults(func=_train)

    ev = ups_sub.add_parser("eval", help="metrics.json and report.html comparing methods side by side")
    ev.add_argument("--model", action="append", required=True,
                    help="bicubic, bilinear, jbu, or a trained run folder / checkpoint (repeatable)")
    ev.add_argument("--factor", type=positive_int, default=8)
    ev.add_argument("--kind", choices=("depth", "flow"), default="depth")
    ev.add_argument("--data", default=None, help="default: motorcycle (depth), synthetic (flow)")
    ev.add_argument("--target-scale", type=float, default=1000.0, help="16-bit PNG targets: value = png / scale")
    ev.add_argument("--out", required=True, help="folder for metrics.json and report.html")
    ev.set_defaults(func=_eval)

    pr = ups_sub.add_parser("predict", help="upsample one low-res map with its guide image")
    pr.add_argument("--model", required=True, help="bicubic, bilinear, jbu, or a trained run folder / checkpoint")
    pr.add_argument("--factor", type=positive_int, default=None, help="default: the checkpoint's factor (8 for names)")
    pr.add_argument("--kind", choices=("depth", "flow"), default=None)
    pr.add_argument("--image", required=True, help="high-resolution guide image")
    pr.add_argument("--target", required=True, help="low-resolution map: .npy, .pfm, .flo or 16-bit .png")
    pr.add_argument("--target-scale", type=float, default=1000.0, help="16-bit PNG: value = png / scale")
    pr.add_argument("--out", required=True, help="output map: .npy, .pfm, .flo or 16-bit .png (by suffix)")
    pr.set_defaults(func=_predict)


def _train(args) -> int:
    from ..tasks.upsample import UpsampleConfig, train_upsampler

    keys = {"model": "model", "factor": "factor", "kind": "kind", "data": "data"}
    cfg = resolve_train_config(UpsampleConfig, args, keys)
    if cfg is None:
        return 0
    return finish_training(train_upsampler(cfg, Path(args.out), resume=args.resume, log=info), args.out, "upsample")


def _eval(args) -> int:
    from ..tasks.upsample import run_evaluation

    results, report = run_evaluation(args.model, factor=args.factor, kind=args.kind, data=args.data,
                                     out=Path(args.out), target_scale=args.target_scale)
    key = "epe" if args.kind == "flow" else "rmse"
    for label, r in results.items():
        print(f"{label:24s} {key} {r[key]:.4f}")
    print(f"report: {report}")
    return 0


def _predict(args) -> int:
    from ..data import formats
    from ..report import colorize_flow, colorize_scalar, save_png
    from ..tasks.upsample import load_method, method_geometry, predict, read_prediction_inputs

    factor, kind = method_geometry(args.model, args.factor, args.kind)
    _, model = load_method(args.model, factor, kind)
    image, target_lr = read_prediction_inputs(args.image, args.target, factor=factor, kind=kind,
                                              target_scale=args.target_scale)
    out = predict(model, image, target_lr).numpy()
    out_path = Path(args.out)
    array = out[0] if kind == "depth" else out.transpose(1, 2, 0)
    formats.write_target(out_path, array, scale=args.target_scale)
    colour = colorize_flow(array) if kind == "flow" else colorize_scalar(array)
    colour_path = out_path.with_name(out_path.stem + "_color.png")
    save_png(colour_path, colour)
    print(f"wrote {out_path} ({array.shape[0]}x{array.shape[1]}) and {colour_path}")
    return 0
