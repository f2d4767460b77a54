"""Command-line options declared as data: tasks and benchmark suites list theirs, and the CLI
builds its parsers from them (so no task's options are written in the CLI)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Option"]


@dataclass(frozen=True)
class Option:
    """One command-line option, declared once; the CLI is generated from these.

    ``key`` (train verbs only) is the config key the option sets (``"factor"``,
    ``"crf_kernels"``); its default is then the config's, shown in the help. Other options reach
    the task as attributes of the ``options`` namespace under :attr:`dest`.
    """

    flag: str
    help: str
    type: Callable | None = None
    default: Any = None
    choices: tuple | None = None
    action: str | None = None  # "store_true" or "append"
    nargs: str | int | None = None
    required: bool = False
    key: str | None = None
    metavar: str | None = None

    def __post_init__(self) -> None:
        if not self.flag.startswith("--") or not self.help:
            raise ValueError(f"Option {self.flag!r}: needs a --long flag and help text")

    @property
    def dest(self) -> str:
        return self.flag[2:].replace("-", "_")

    def add_to(self, parser: argparse.ArgumentParser, *, flag: str | None = None, dest: str | None = None,
               shown_default: Any = None) -> None:
        """Add to ``parser`` (optionally under another flag / dest, e.g. ``--lidar-scans``)."""
        kwargs: dict[str, Any] = {"dest": dest or self.dest, "help": self.help}
        default = self.default if shown_default is None else shown_default
        if self.action == "store_true":
            kwargs.update(action="store_true", default=self.default if self.default is not None else False)
            if self.key:
                kwargs["default"] = None
        else:
            if self.action:
                kwargs["action"] = self.action
            for name in ("type", "choices", "nargs"):
                if getattr(self, name) is not None:
                    kwargs[name] = getattr(self, name)
            if self.choices is None:
                kwargs["metavar"] = self.metavar or self.dest.upper()
            kwargs["default"] = self.default
            kwargs["required"] = self.required
        if default not in (None, False, [], (), "") and not self.required:
            shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
            kwargs["help"] = f"{self.help} (default: {shown})"
        parser.add_argument(flag or self.flag, **kwargs)
