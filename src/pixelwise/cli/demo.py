"""``pixelwise demo``: the README's main job (guided depth upsampling, trained and evaluated here)."""

from __future__ import annotations

from pathlib import Path

from ._common import info, is_quiet, positive_int


def add_parser(sub) -> None:
    demo = sub.add_parser("demo", help="train PAC-lite and DJF briefly, compare with bicubic and JBU on a real "
                                       "Middlebury scene at x8 and x16, write a report (about 5 minutes)")
    demo.add_argument("--out", default="runs/demo", help="run folder (re-running resumes / reuses it)")
    demo.add_argument("--steps", type=positive_int, default=None, help="training steps per model (default 300)")
    demo.add_argument("--quiet", action="store_true")
    demo.set_defaults(func=_demo)


def _demo(args) -> int:
    from ..tasks.demo import DemoBudget, run_demo

    budget = DemoBudget() if args.steps is None else DemoBudget(steps=args.steps)
    report = run_demo(Path(args.out), budget=budget, quiet=is_quiet(args), log=info)
    print(f"report: {report.resolve()}")
    return 0
