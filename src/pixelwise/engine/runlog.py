"""The run's record on disk (``log.jsonl``) and on the terminal (tqdm bar, one-line messages).

Why JSON lines: one self-contained object per line can be appended after every log step,
read with any tool while training runs, and cut back to a step on resume without parsing more
than one line at a time. A half-written last line (a crash mid-write) is dropped on resume.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..atomic import write_text_atomic

__all__ = ["RunLog", "make_progress", "format_values", "to_float"]


def to_float(value: Any) -> Any:
    """Python float for tensors / numpy scalars / ints; other values are returned unchanged."""
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return value


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # "nan"/"inf" as strings keep every line strict JSON
    return value


class RunLog:
    """Append-only JSON-lines file; a no-op on ranks that must not write."""

    def __init__(self, path: str | os.PathLike, *, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        self._fh = None

    def truncate_after(self, step: int) -> int:
        """Drop lines whose step is greater than ``step`` (and unreadable lines); returns how
        many were dropped. Used on resume so the log continues exactly from the checkpoint."""
        if not self.enabled or not self.path.exists():
            return 0
        kept, dropped = [], 0
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
                keep = isinstance(record, dict) and int(record.get("step", 0)) <= step
            except (json.JSONDecodeError, TypeError, ValueError):
                keep = False
            if keep:
                kept.append(line)
            else:
                dropped += 1
        if dropped:
            write_text_atomic(self.path, "".join(line + "\n" for line in kept))
        return dropped

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a")
        self._fh.write(json.dumps({k: _json_safe(v) for k, v in record.items()}, allow_nan=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def make_progress(total: int, initial: int, *, enabled: bool):
    """A tqdm bar on stderr, or None when disabled or stderr is not a terminal (logs and CI
    output would otherwise fill with carriage-return noise)."""
    if not enabled or not sys.stderr.isatty():
        return None
    return tqdm(total=total, initial=initial, file=sys.stderr, dynamic_ncols=True, desc="train", unit="step")


def format_values(values: dict[str, Any]) -> str:
    """``loss 0.1234 lr 0.001`` -- compact, for one-line messages."""
    parts = []
    for k, v in values.items():
        parts.append(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}")
    return " ".join(parts)
