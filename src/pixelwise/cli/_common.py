"""Argument types and output helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import sys


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def is_quiet(args) -> bool:
    """Progress output only for a person watching: off with --quiet or when stderr is not a TTY."""
    return bool(getattr(args, "quiet", False)) or not sys.stderr.isatty()


def info(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def add_train_options(parser, task: str) -> None:
    """The options every ``<task> train`` shares: run folder, config file, overrides, resume."""
    parser.add_argument("--out", required=True, help="run folder (config, log.jsonl, checkpoints, model)")
    parser.add_argument("--config", help=f"YAML file of settings (see `pixelwise {task} train --print-config`)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one setting, e.g. --set train.optimizer.lr=3e-4 (repeatable)")
    parser.add_argument("--steps", type=positive_int, help="shortcut for --set train.steps=N")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--print-config", action="store_true", help="print the resolved settings as YAML and exit")
    parser.add_argument("--quiet", action="store_true")


def resolve_train_config(cls, args, keys: dict[str, str]):
    """The task config from --config, then --set overrides, then the shortcut options (``keys``
    maps an argument name to a config key; later ones win). A resumed run
    keeps the settings it started with unless --config is given. Returns None after
    --print-config."""
    from pathlib import Path

    import yaml

    from ..engine import config_to_dict, load_config

    overrides = list(args.overrides)
    for arg, key in keys.items():
        value = getattr(args, arg)
        if value is not None:
            overrides.append(f"{key}={value}")
    if args.steps:
        overrides.append(f"train.steps={args.steps}")
    if args.quiet:
        overrides.append("train.quiet=true")
    config_path = args.config
    run_dir = Path(args.out)
    if args.resume and config_path is None and (run_dir / "config.yaml").exists():
        config_path = run_dir / "config.yaml"  # resume with the settings the run started with
    cfg = load_config(cls, config_path, overrides)
    if args.print_config:
        print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), end="")
        return None
    checkpoints = run_dir / "checkpoints"
    if not args.resume and checkpoints.exists() and any(checkpoints.iterdir()):
        raise ValueError(f"--out {run_dir}: already holds checkpoints; pass --resume to continue it or choose a new folder")
    return cfg


def finish_training(result, run_dir, task: str) -> int:
    if getattr(result, "interrupted", False):
        info(f"interrupted; continue with: pixelwise {task} train --out {run_dir} --resume")
        return 130
    info(f"model written to {run_dir}/model.safetensors")
    return 0
