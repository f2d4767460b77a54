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
