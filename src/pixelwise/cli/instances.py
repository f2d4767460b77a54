"""``pixelwise instances train|eval|predict``: instance grouping with pixel embeddings and mean shift."""

from __future__ import annotations

from pathlib import Path

from ._common import add_train_options, finish_training, info, positive_int, resolve_train_config


def add_parser(sub) -> None:
    inst = sub.add_parser("instances", help="instance grouping: hyperspherical pixel embeddings + recurrent mean shift")
    inst_sub = inst.add_subparsers(dest="action", required=True)

    tr = inst_sub.add_parser("train", help="train the embedding network (and semantic head) into a run folder")
    tr.add_argument("--data", default=None, help="'synthetic' (default: scenes generated on the fly) or a "
                                                 "VOC2012 / SBD folder")
    tr.add_argument("--iterations", type=int, default=None,
                    help="T mean-shift iterations unrolled in the loss (default 5; 0 = embedding loss only)")
    tr.add_argument("--embedding-dim", type=positive_int, default=None, help="D (default 64)")
    tr.add_argument("--width", type=float, default=None, help="channel multiplier (default 0.5)")
    add_train_options(tr, "instances")
    tr.set_defaults(func=_train)

    ev = inst_sub.add_parser("eval", help="proposal recall (AR) and AP^r; metrics.json and report.html")
    ev.add_argument("--model", required=True, help="trained run folder or checkpoint")
    ev.add_argument("--data", default="synthetic", help="'synthetic' (held-out scenes) or a VOC2012 / SBD folder")
    ev.add_argument("--split", default="val", help="split of a VOC / SBD folder (default val)")
    ev.add_argument("--max-images", type=positive_int, default=None, help="only the first N images")
    ev.add_argument("--examples", type=int, default=6, help="images shown in the report")
    ev.add_argument("--device", default="cpu")
    ev.add_argument("--out", required=True, help="folder for metrics.json and report.html")
    ev.set_defaults(func=_eval)

    pr = inst_sub.add_parser("predict", help="instance-ID PNGs, colour overlays and embedding images for images")
    pr.add_argument("--model", required=True, help="trained run folder or checkpoint")
    pr.add_argument("--images", required=True, help="an image file or a folder of images")
    pr.add_argument("--out", required=True, help="writes instances/, overlays/, embeddings/ (and semantic/)")
    pr.add_argument("--device", default="cpu")
    pr.set_defaults(func=_predict)


def _train(args) -> int:
    from ..tasks.instances import InstancesConfig, train_instances

    keys = {"data": "data", "iterations": "iterations", "embedding_dim": "embedding_dim", "width": "width"}
    cfg = resolve_train_config(InstancesConfig, args, keys)
    if cfg is None:
        return 0
    return finish_training(train_instances(cfg, Path(args.out), resume=args.resume, log=info), args.out,
                           "instances")


def _eval(args) -> int:
    from ..tasks.instances import run_evaluation

    summary, report = run_evaluation(args.model, args.data, Path(args.out), split=args.split,
                                     max_images=args.max_images or 0, examples=args.examples, device=args.device,
                                     log=info)
    s = summary["summary"]
    print(f"{s['images']} images, {s['mean_proposals']:.1f} proposals per image")
    for k in (10, 60):
        print(f"top {k:3d}: recall at IoU 0.5 {s[f'recall50@{k}']:.3f}, AR 0.5:0.95 {s[f'ar@{k}']:.3f}")
    print(f"AP^r at IoU 0.5: {100 * s['map']:.1f}")
    print(f"report: {report}")
    return 0


def _predict(args) -> int:
    from ..tasks.instances import load_instances_model, predict_folder

    loaded = load_instances_model(args.model, args.device)
    written = predict_folder(loaded, Path(args.images), Path(args.out), log=info)
    print(f"wrote {len(written)} instance map(s) under {Path(args.out) / 'instances'}")
    return 0
