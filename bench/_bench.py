"""Shared helpers of the benchmarks: timing, medians, markdown tables.

Each benchmark measures its baseline in the same process run, interleaved with the measured code
(baseline, subject, baseline, subject, ...) so that machine noise hits both alike; the ratio is
median(subject) / median(baseline).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence

REPEATS = int(os.environ.get("TRIGGER_NB_BENCH_REPEATS", "5"))


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes."""
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def micro(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs"


def milli(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f} ms"


def human(seconds: float) -> str:
    """µs below a millisecond, ms above."""
    return micro(seconds) if seconds < 1e-3 else milli(seconds)


def verdict(value: float, limit: float) -> str:
    return "met" if value <= limit else "**missed**"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
