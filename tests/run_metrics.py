"""Reading a run directory's metrics.csv in tests that compare runs."""

from __future__ import annotations

import csv


def metrics_without_wall_clock(run_dir) -> list[dict]:
    """metrics.csv rows without the wall-clock columns (wall_time_s, perf/sps)."""
    with open(run_dir / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r.pop("wall_time_s")
        r.pop("perf/sps")
    return rows
