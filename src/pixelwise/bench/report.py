"""What every benchmark report shares: a dataclass of settings and measured rows, written as JSON
whole (``pixelwise bench --json``), printed as a table by its own ``table()``."""

from __future__ import annotations

import json
from dataclasses import asdict

__all__ = ["BenchTable"]


class BenchTable:
    """Base of the benchmark report dataclasses: ``to_json`` = every field, plus
    :meth:`extra_json` (derived values a reader of the file needs, e.g. whether a target is met)."""

    def extra_json(self) -> dict:
        return {}

    def to_json(self) -> str:
        return json.dumps({**asdict(self), **self.extra_json()}, indent=2)
