"""The ``pixelwise`` command line, generated from the task registry.

``pixelwise <task> train|eval|predict|<task verbs>``, ``pixelwise demo [TASK ...]``,
``pixelwise bench [ops|TASK ...]``, ``pixelwise tasks`` and ``pixelwise zoo``. Nothing here names a
task: each registered :class:`~pixelwise.tasks.Task` declares its options, and adding a task
needs no edit in this file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import yaml

from . import __version__
from .atomic import write_text_atomic
from .bench import ops as ops_bench
from .engine import (EXIT_CODES, CheckpointError, NonFiniteLossError, RunLockedError, config_to_dict, load_config,
                     run_lock)
from .tasks import Option, Task, get_task, list_tasks
from .zoo import list_zoo, read_card

__all__ = ["build_parser", "main"]

DEMO_OUT = "runs/demo"


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def info(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def is_quiet(args) -> bool:
    """Progress output only for a person watching: off with --quiet or when stderr is not a TTY."""
    return bool(getattr(args, "quiet", False)) or not sys.stderr.isatty()


def _common(parser, *options: Option) -> None:
    for option in options:
        option.add_to(parser)


QUIET = Option("--quiet", "no progress output (also off when stderr is not a terminal)", action="store_true")
DEVICE = Option("--device", "cpu, cuda or cuda:N", default="cpu")


# ---------------------------------------------------------------------------------------------- <task> verbs


def _add_task(sub, task: Task) -> None:
    parser = sub.add_parser(task.name, help=task.summary, description=f"{task.summary}. Conventions, results and "
                                                                      f"costs: {task.doc}")
    verbs = parser.add_subparsers(dest="action", required=True, metavar="{train,eval,predict" +
                                  "".join(f",{v.name}" for v in task.verbs) + "}")

    tr = verbs.add_parser("train", help="train into a run folder (resumable; SIGINT/SIGTERM save a checkpoint)")
    for option in task.train_options:
        option.add_to(tr, shown_default=task.config_default(option.key) if option.key else None)
    _common(tr,
            Option("--out", "run folder (config.yaml, log.jsonl, checkpoints/, model.safetensors + .json)",
                   required=True),
            Option("--config", f"YAML file of settings (see `pixelwise {task.name} train --print-config`)"),
            Option("--set", "override one setting, e.g. --set train.optimizer.lr=3e-4 (repeatable)", action="append",
                   default=[], metavar="KEY=VALUE"),
            Option("--steps", "shortcut for --set train.steps=N", type=positive_int),
            Option("--device", "shortcut for --set train.device=...: auto, cpu, cuda or cuda:N (default: the "
                               "config's, auto = the GPU when there is one)"),
            Option("--resume", "continue the run in --out from its last checkpoint", action="store_true"),
            Option("--print-config", "print the resolved settings as YAML and exit", action="store_true"),
            QUIET)
    tr.set_defaults(func=lambda args: _train(task, args))

    ev = verbs.add_parser("eval", help=task.eval_help)
    if task.multiple_eval_models:
        Option("--model", f"{task.model_help} (repeatable: compared side by side)", action="append",
               required=True).add_to(ev)
    else:
        Option("--model", task.model_help, required=True).add_to(ev)
    _common(ev, *task.eval_options, DEVICE, Option("--out", "folder for metrics.json and report.html", required=True))
    ev.set_defaults(func=lambda args: _eval(task, args))

    pr = verbs.add_parser("predict", help=task.predict_help)
    Option("--model", task.model_help, required=True).add_to(pr)
    _common(pr, *task.predict_options, DEVICE)
    pr.set_defaults(func=lambda args: _predict(task, args))

    for verb in task.verbs:
        vp = verbs.add_parser(verb.name, help=verb.help)
        _common(vp, *verb.options)
        vp.set_defaults(func=lambda args, verb=verb: verb.run(args, info))


def _saved_config(run_dir: Path) -> Path | None:
    """The settings a run started with: its config.yaml, or a staged run's first stage's."""
    if (run_dir / "config.yaml").exists():
        return run_dir / "config.yaml"
    staged = sorted(run_dir.glob("*/config.yaml"), key=lambda p: p.stat().st_mtime)
    return staged[0] if staged else None


def _holds_run(run_dir: Path) -> bool:
    markers = ("model.json", "log.jsonl", "config.yaml")
    return any((run_dir / m).exists() for m in markers) or any(
        (d / m).exists() for d in run_dir.glob("*") if d.is_dir() for m in markers + ("checkpoints",))


def _train(task: Task, args) -> int:
    overrides = list(args.set)
    for option in task.train_options:
        value = getattr(args, option.dest)
        if value is not None:
            overrides.append(f"{option.key}={json.dumps(value) if isinstance(value, list) else value}")
    for flag, key in (("steps", "train.steps"), ("device", "train.device")):
        if getattr(args, flag) is not None:
            overrides.append(f"{key}={getattr(args, flag)}")
    if args.quiet:
        overrides.append("train.quiet=true")
    run_dir = Path(args.out)
    config_path = args.config
    if args.resume and config_path is None:
        config_path = _saved_config(run_dir)  # resume with the settings the run started with
    cfg = load_config(task.config_class, config_path, overrides)
    if args.print_config:
        print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), end="")
        return 0
    # Under torchrun every rank runs this; rank 0 owns the folder (the engine's collectives keep
    # the others in step), so only it locks and checks it.
    main_rank = os.environ.get("RANK", "0") in ("", "0")
    with run_lock(run_dir, on_stale=info) if main_rank else contextlib.nullcontext():
        if main_rank and not args.resume and _holds_run(run_dir):
            raise FileExistsError(f"--out {run_dir}: already holds a run; pass --resume to continue it or choose "
                                  f"a new folder")
        result = task.train(cfg, run_dir, resume=args.resume, log=info)
    if result is not None and result.interrupted:
        info(f"interrupted by {result.signal}; continue with: pixelwise {task.name} train --out {run_dir} --resume")
        return EXIT_CODES.get(result.signal or "SIGINT", 130)
    info(f"model written to {run_dir}/model.safetensors")
    return 0


def _eval(task: Task, args) -> int:
    out = Path(args.out)
    evaluation = task.evaluate(args, info)
    write_text_atomic(out / "metrics.json", json.dumps(evaluation.metrics, indent=2, default=float) + "\n")
    report = evaluation.report.write(out / "report.html")
    for line in evaluation.lines:
        print(line)
    print(f"report: {report}")
    return 0


def _predict(task: Task, args) -> int:
    print(task.predict(args, info))
    return 0


# ---------------------------------------------------------------------------------------------- demo


def _prefixed(prefix: str, option: Option) -> tuple[str, str]:
    return f"--{prefix}-{option.flag[2:]}", f"{prefix}_{option.dest}"


def _part_options(args, prefix: str, options, **shared) -> argparse.Namespace:
    """The namespace one task (or suite) sees: its own options without the prefix, plus ``shared``."""
    values = {o.dest: getattr(args, _prefixed(prefix, o)[1]) for o in options}
    return argparse.Namespace(**values, **shared)


def _add_demo(sub) -> None:
    tasks = list_tasks()
    budget = sum(get_task(t).demo_budget_s for t in tasks)
    demo = sub.add_parser("demo", help=f"the main job: every task trained briefly and evaluated on held-out data, "
                                       f"with reports (about {round(budget / 60)} minutes on 2 cores)")
    demo.add_argument("parts", nargs="*", metavar="TASK", help=f"which tasks (default: all of {', '.join(tasks)})")
    _common(demo,
            Option("--out", "demo folder: <out>/<task>/ per task, summary.json (re-running reuses finished runs)",
                   default=DEMO_OUT),
            Option("--data-root", "a folder of real datasets the parts evaluate on when they find theirs inside "
                                  "(e.g. semantic-kitti/)"),
            Option("--seed", "seed of every part", type=int, default=0), QUIET)
    for name in tasks:
        for option in get_task(name).demo_options:
            flag, dest = _prefixed(name, option)
            option.add_to(demo, flag=flag, dest=dest)
    demo.set_defaults(func=_demo)


def _demo(args) -> int:
    unknown = [p for p in args.parts if p not in list_tasks()]
    if unknown:
        raise ValueError(f"demo: unknown task(s) {', '.join(unknown)}; tasks: {', '.join(list_tasks())}")
    if args.data_root and not Path(args.data_root).is_dir():
        raise FileNotFoundError(f"--data-root {args.data_root}: no such folder")
    out = Path(args.out)
    summary_file = out / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    for name in args.parts or list_tasks():
        task = get_task(name)
        options = _part_options(args, name, task.demo_options, data_root=args.data_root)
        started = time.perf_counter()
        result = task.demo(out / name, options, seed=args.seed, quiet=is_quiet(args), log=info)
        seconds = round(time.perf_counter() - started, 1)
        if seconds > task.demo_budget_s:
            info(f"note: the {name} part took {seconds} s, over its budget of {task.demo_budget_s} s")
        summary[name] = {"headline": result.headline, "seconds": seconds, "budget_s": task.demo_budget_s,
                         "reports": [str(r) for r in result.reports]}
        write_text_atomic(out / name / "metrics.json", json.dumps(result.summary, indent=2, default=float) + "\n")
        write_text_atomic(summary_file, json.dumps(summary, indent=2) + "\n")
        print(f"{name}: {result.headline} ({seconds} s)")
        for report in result.reports:
            print(f"report: {Path(report).resolve()}")
    return 0


# ---------------------------------------------------------------------------------------------- bench


def _suites() -> dict[str, tuple]:
    """Suite name -> (its options, run(options, log) -> report with table() / to_json())."""
    suites = {"ops": (ops_bench.OPTIONS, ops_bench.run_suite)}
    for name in list_tasks():
        task = get_task(name)
        suites[name] = (task.bench_options, task.bench)
    return suites


def _add_bench(sub) -> None:
    suites = _suites()
    bench = sub.add_parser("bench", help="benchmarks: ratios against the standard op or the field's peer, measured "
                                         "in one run")
    bench.add_argument("suites", nargs="*", metavar="SUITE", help=f"which suites (default: all of "
                                                                  f"{', '.join(suites)})")
    _common(bench,
            Option("--json", "write the results of the one suite asked for to this JSON file"),
            Option("--json-dir", "write each suite's results to <dir>/bench-<suite>.json"),
            Option("--data-root", "a folder of real data the suites use when they find theirs inside"),
            QUIET)
    for name, (options, _) in suites.items():
        for option in options:
            flag, dest = _prefixed(name, option)
            option.add_to(bench, flag=flag, dest=dest)
    bench.set_defaults(func=_bench)


def _bench(args) -> int:
    suites = _suites()
    chosen = args.suites or list(suites)
    unknown = [s for s in chosen if s not in suites]
    if unknown:
        raise ValueError(f"bench: unknown suite(s) {', '.join(unknown)}; suites: {', '.join(suites)}")
    if args.json and len(chosen) != 1:
        raise ValueError("--json: give exactly one suite (or use --json-dir for several)")
    log = (lambda m: None) if is_quiet(args) else info
    for name in chosen:
        declared, run = suites[name]
        report = run(_part_options(args, name, declared, data_root=args.data_root), log)
        print(f"pixelwise {__version__} | bench {name}")
        print(report.table())
        target = Path(args.json) if args.json else Path(args.json_dir) / f"bench-{name}.json" if args.json_dir else None
        if target is not None:
            write_text_atomic(target, report.to_json())
            print(f"wrote {target}")
    return 0


# ---------------------------------------------------------------------------------------------- tasks, zoo


def _tasks(args) -> int:
    for name in list_tasks():
        task = get_task(name)
        verbs = ", ".join(["train", "eval", "predict", *(v.name for v in task.verbs)])
        print(f"{name}: {task.summary}")
        print(f"  commands:     pixelwise {name} {{{verbs}}}")
        print(f"  models:       {', '.join(task.models())}")
        print(f"  data sources: {', '.join(task.data_sources)}")
        if task.headline:
            print(f"  result:       {task.headline}")
        print(f"  docs:         {task.doc}")
    return 0


def _zoo(args) -> int:
    names = list_zoo()
    if not names:
        print("no weights are shipped in pixelwise/zoo yet; train with `pixelwise <task> train` and pass the run "
              "folder as --model")
    for name in names:
        card = read_card(name).card
        print(f"{name}: {card['task']} / {card['model']}, {card['steps']} steps on {card['data']}; "
              f"{json.dumps(card['metrics'])}\n  reproduce: {card['recipe']}")
    return 0


# ---------------------------------------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pixelwise", description="Pixel-level prediction with content-adaptive "
                                                                   "operators.")
    parser.add_argument("--version", action="version", version=f"pixelwise {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("tasks", help="list the tasks: commands, models, data sources, docs").set_defaults(func=_tasks)
    sub.add_parser("zoo", help="list the trained weights shipped with pixelwise").set_defaults(func=_zoo)
    _add_demo(sub)
    _add_bench(sub)
    for name in list_tasks():
        _add_task(sub, get_task(name))
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError, CheckpointError, RunLockedError, NonFiniteLossError) as exc:
        # Bad input is the user's to fix: one line naming the argument or file, no traceback.
        print(f"pixelwise: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pixelwise: interrupted", file=sys.stderr)
        return 130
