"""A report as a value: what a task's evaluation or demo returns, written in one place.

Tasks build a :class:`Report` (tables, figure sections, a summary); :meth:`Report.write` adds the
metadata every report carries (versions, command line, time) and writes the HTML atomically, so
no task repeats that ending.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from .. import __version__
from .html import Section, write_report

__all__ = ["Report", "standard_metadata"]


def standard_metadata() -> dict[str, str]:
    return {"pixelwise": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "command": " ".join(sys.argv), "written": datetime.now(timezone.utc).isoformat(timespec="seconds")}


@dataclass
class Report:
    title: str
    summary: str = ""
    tables: Sequence[tuple[str, Sequence[str], Sequence[Sequence[Any]]]] = ()
    sections: Sequence[Section] = ()
    highlight: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def write(self, path: str | os.PathLike) -> Path:
        """Write ``path`` (HTML, atomically) with the standard metadata plus this report's own."""
        return write_report(path, title=self.title, summary=self.summary, tables=list(self.tables),
                            sections=list(self.sections), metadata={**standard_metadata(), **self.metadata},
                            highlight=dict(self.highlight) or None)
