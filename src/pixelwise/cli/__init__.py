"""The ``pixelwise`` command line: ``demo``; ``upsample``, ``lidar``, ``instances`` and ``segment``
(train|eval|predict); ``margin``; ``bench``."""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from . import bench, demo, instances, lidar, margin, segment, upsample


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pixelwise", description="Pixel-level prediction with content-adaptive operators.")
    parser.add_argument("--version", action="version", version=f"pixelwise {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo.add_parser(sub)
    upsample.add_parser(sub)
    lidar.add_parser(sub)
    instances.add_parser(sub)
    segment.add_parser(sub)
    margin.add_parser(sub)
    bench.add_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as exc:
        # Bad input is the user's to fix: one line naming the argument or file, no traceback.
        print(f"pixelwise: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pixelwise: interrupted", file=sys.stderr)
        return 130
