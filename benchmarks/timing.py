"""Timing shared by the benchmark scripts (imported as ``timing``: scripts run from benchmarks/)."""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable


def time_per_call(fn: Callable[[], Any], repeats: int, min_time: float, warmup: int = 3, max_calls: int = 1 << 22) -> float:
    """Median seconds per call of fn() over `repeats` timed loops, after `warmup` calls.
    Each loop runs the call enough times (at most `max_calls`) to last about `min_time` seconds."""
    for _ in range(warmup):
        fn()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= min_time or n >= max_calls:
            break
        n = max(n * 2, int(n * min_time / max(dt, 1e-9) * 1.1))
    per_call = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        per_call.append((time.perf_counter() - t0) / n)
    return statistics.median(per_call)
