"""``pixelwise lidar synth|train|eval|predict``: LiDAR point-cloud segmentation (SqueezeSegV3)."""

from __future__ import annotations

from pathlib import Path

from ._common import add_train_options, finish_training, info, positive_int, resolve_train_config


def add_parser(sub) -> None:
    lidar = sub.add_parser("lidar", help="LiDAR point-cloud segmentation on SemanticKITTI-format scans")
    lidar_sub = lidar.add_subparsers(dest="action", required=True)

    sy = lidar_sub.add_parser("synth", help="generate synthetic 64-beam scans with labels in SemanticKITTI layout")
    sy.add_argument("--out", required=True, help="dataset root (writes sequences/00 for training, 08 for validation)")
    sy.add_argument("--scans", type=positive_int, default=400, help="training scans (sequence 00)")
    sy.add_argument("--val-scans", type=positive_int, default=16, help="validation scans (sequence 08)")
    sy.add_argument("--seed", type=int, default=0)
    sy.set_defaults(func=_synth)

    tr = lidar_sub.add_parser("train", help="train SqueezeSegV3 (or an ablation variant) into a run folder")
    tr.add_argument("--model", choices=("ssgv3_21", "ssgv3_53"), default=None)
    tr.add_argument("--block", default=None, help="first conv of each residual block: ISK (default), plain, S, IS, "
                                                  "SK, PAC, SE, CBAM, CAM")
    tr.add_argument("--width", type=float, default=None, help="channel multiplier (1 = the paper's network)")
    tr.add_argument("--data", default=None, help="'synthetic' (default: generated into the run folder) or a "
                                                 "SemanticKITTI folder")
    tr.add_argument("--image-width", type=positive_int, default=None, help="range-image width (default 2048)")
    add_train_options(tr, "lidar")
    tr.set_defaults(func=_train)

    ev = lidar_sub.add_parser("eval", help="point-level IoU per class, with and without kNN; metrics.json and "
                                           "report.html")
    ev.add_argument("--model", required=True, help="trained run folder or checkpoint")
    ev.add_argument("--data", required=True, help="SemanticKITTI folder (or one sequence / scan) with labels")
    ev.add_argument("--sequences", nargs="*", default=None, help="only these sequences (e.g. 08)")
    ev.add_argument("--max-scans", type=positive_int, default=None, help="only the first N scans")
    ev.add_argument("--no-knn", action="store_true", help="skip the kNN refinement")
    ev.add_argument("--device", default="cpu")
    ev.add_argument("--out", required=True, help="folder for metrics.json and report.html")
    ev.set_defaults(func=_eval)

    pr = lidar_sub.add_parser("predict", help="submission-ready .label files (plus PNG / PLY) for a folder of scans")
    pr.add_argument("--model", required=True, help="trained run folder or checkpoint")
    pr.add_argument("--scans", required=True, help="a SemanticKITTI folder, a sequence, a velodyne/ folder or a .bin")
    pr.add_argument("--out", required=True, help="writes <out>/sequences/<seq>/predictions/<frame>.label")
    pr.add_argument("--no-knn", action="store_true", help="skip the kNN refinement")
    pr.add_argument("--no-png", action="store_true", help="no colour range-image PNGs")
    pr.add_argument("--ply", action="store_true", help="also write a coloured PLY point cloud per scan")
    pr.add_argument("--device", default="cpu")
    pr.set_defaults(func=_predict)


def _synth(args) -> int:
    from ..tasks.lidar import prepare_synthetic

    root = prepare_synthetic(Path(args.out), args.scans, args.val_scans, args.seed, log=info)
    print(f"wrote {args.scans} training and {args.val_scans} validation scans under {root / 'sequences'}")
    return 0


def _train(args) -> int:
    from ..tasks.lidar import LidarConfig, train_lidar

    keys = {"model": "model", "block": "block", "width": "width", "data": "data", "image_width": "image_width"}
    cfg = resolve_train_config(LidarConfig, args, keys)
    if cfg is None:
        return 0
    return finish_training(train_lidar(cfg, Path(args.out), resume=args.resume, log=info), args.out, "lidar")


def _eval(args) -> int:
    from ..tasks.lidar import run_evaluation

    summary, report = run_evaluation(args.model, args.data, Path(args.out), sequences=args.sequences,
                                     max_scans=args.max_scans or 0, knn=not args.no_knn, device=args.device,
                                     log=info)
    for key in ("point", "point_knn", "pixel"):
        if key in summary:
            s = summary[key]
            print(f"{key:10s} mIoU {100 * s['miou']:.1f} (present classes {100 * s['miou_present']:.1f}) "
                  f"accuracy {100 * s['accuracy']:.1f}")
    print(f"report: {report}")
    return 0


def _predict(args) -> int:
    from ..data.semantic_kitti import find_scans
    from ..tasks.lidar import load_lidar_model, predict_scans

    loaded = load_lidar_model(args.model, args.device)
    written = predict_scans(loaded, find_scans(args.scans), Path(args.out), knn=not args.no_knn,
                            png=not args.no_png, ply=args.ply, log=info)
    print(f"wrote {len(written)} label file(s) under {Path(args.out) / 'sequences'}")
    return 0
