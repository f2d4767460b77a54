"""``pixelwise demo``: the README's main job -- guided depth upsampling, LiDAR segmentation and instance
grouping and semantic segmentation with PAC-CRF, each trained and evaluated here."""

from __future__ import annotations

from pathlib import Path

from ._common import info, is_quiet, positive_int

PARTS = ("upsample", "lidar", "instances", "segment")


def add_parser(sub) -> None:
    demo = sub.add_parser("demo", help="train briefly and evaluate: guided depth upsampling on a real Middlebury "
                                       "scene (PAC-lite, DJF, JBU, bicubic at x8/x16) and LiDAR segmentation "
                                       "(SqueezeSegV3-21), instance grouping (pixel embeddings + mean shift), semantic "
                                       "segmentation with PAC-CRF vs the dense CRF; writes reports (about 15 minutes "
                                       "on 2 cores)")
    demo.add_argument("--out", default="runs/demo", help="run folder (re-running resumes / reuses it)")
    demo.add_argument("--steps", type=positive_int, default=None, help="upsampling training steps per model "
                                                                       "(default 200)")
    demo.add_argument("--lidar-steps", type=positive_int, default=None, help="LiDAR training steps (default 60)")
    demo.add_argument("--lidar-scans", default=None, help="labelled SemanticKITTI scans to evaluate the LiDAR model "
                                                          "on (default: held-out synthetic scans)")
    demo.add_argument("--instances-steps", type=positive_int, default=None,
                      help="instance-embedding training steps (default 150)")
    demo.add_argument("--segment-steps", type=positive_int, default=None,
                      help="segmentation network training steps (default 300)")
    demo.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="which parts to run")
    demo.add_argument("--quiet", action="store_true")
    demo.set_defaults(func=_demo)


def _demo(args) -> int:
    out = Path(args.out)
    if args.lidar_scans and not Path(args.lidar_scans).exists():
        raise FileNotFoundError(f"--lidar-scans {args.lidar_scans}: no such file or folder")
    if "upsample" in args.parts:
        from ..tasks.demo import DemoBudget, run_demo

        budget = DemoBudget() if args.steps is None else DemoBudget(steps=args.steps)
        report = run_demo(out, budget=budget, quiet=is_quiet(args), log=info)
        print(f"report: {report.resolve()}")
    if "lidar" in args.parts:
        from ..tasks.lidar_demo import LidarDemoBudget, run_lidar_demo

        budget = LidarDemoBudget() if args.lidar_steps is None else LidarDemoBudget(steps=args.lidar_steps)
        run_lidar_demo(out / "lidar", scans=args.lidar_scans, budget=budget, quiet=is_quiet(args), log=info)
        print(f"report: {(out / 'lidar' / 'report.html').resolve()}")
    if "instances" in args.parts:
        from ..tasks.instances_demo import InstancesDemoBudget, run_instances_demo

        budget = InstancesDemoBudget() if args.instances_steps is None else InstancesDemoBudget(
            steps=args.instances_steps)
        run_instances_demo(out / "instances", budget=budget, quiet=is_quiet(args), log=info)
        print(f"report: {(out / 'instances' / 'report.html').resolve()}")
    if "segment" in args.parts:
        from ..tasks.segment_demo import SegmentDemoBudget, run_segment_demo

        budget = SegmentDemoBudget() if args.segment_steps is None else SegmentDemoBudget(steps=args.segment_steps)
        run_segment_demo(out / "segment", budget=budget, quiet=is_quiet(args), log=info)
        for name in ("eval_pac_crf", "eval_dense_crf"):
            print(f"report: {(out / 'segment' / name / 'report.html').resolve()}")
    return 0
