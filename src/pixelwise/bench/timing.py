"""Timing helpers every benchmark shares: interleaved medians, so a machine-wide slowdown hits
the op and its reference alike and their ratio stays meaningful."""

from __future__ import annotations

import statistics
import time

__all__ = ["interleaved_medians"]


def interleaved_medians(fns, repeats: int, warmup: int = 2):
    """Median wall time (ms) of each callable, run in round-robin order."""
    for f in fns:
        for _ in range(warmup):
            f()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for i, f in enumerate(fns):
            t0 = time.perf_counter()
            f()
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) * 1e3 for t in times]
