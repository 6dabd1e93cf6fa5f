"""Learning curves of one or more runs (matplotlib): mean and min-max band over seeds."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np


def read_metrics(run_dir: str | Path) -> dict[str, np.ndarray]:
    """metrics.csv of a run as float columns (blank cells are NaN)."""
    path = Path(run_dir) / "metrics.csv"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no metrics.csv)")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ValueError(f"{path} has no rows yet")
    cols: dict[str, list[float]] = defaultdict(list)
    for i, r in enumerate(rows, start=2):
        for k, v in r.items():
            try:
                cols[k].append(float(v) if v not in ("", None) else np.nan)
            except (TypeError, ValueError):
                raise ValueError(f"{path} line {i}, column {k!r}: {v!r} is not a number; expected genmarl's metrics.csv") from None
    return {k: np.asarray(v) for k, v in cols.items()}


def _label(run_dir: Path) -> str:
    if (run_dir.parent.parent / "sweep.json").exists():  # a sweep's run: its setting (seeds share a curve)
        return run_dir.parent.name
    try:
        cfg = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):  # absent or unreadable: label by the directory's name
        return run_dir.name
    if not isinstance(cfg, dict):
        return run_dir.name
    return f"{cfg.get('algo', '?')} {cfg.get('env', '')}"


def _band(xs: list[np.ndarray], ys: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Interpolates every seed's curve onto a common grid; mean, min and max."""
    lo = max(x[0] for x in xs)
    hi = min(x[-1] for x in xs)
    grid = np.linspace(lo, hi, 200) if hi > lo else np.array([lo])
    stack = np.stack([np.interp(grid, x, y) for x, y in zip(xs, ys)])
    return grid, stack.mean(0), stack.min(0), stack.max(0)


def plot_runs(run_dirs: list[str | Path], out: str | Path, metric: str = "charts/episode_return") -> Path:
    """Plots ``metric`` (and the evaluation returns as markers) against env steps and wall time.

    Runs with the same algorithm and env are seeds of one curve (mean line, min-max band). Runs
    with several agent groups (e.g. simple_tag) get one training-return curve per group.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, list[dict[str, np.ndarray]]] = defaultdict(list)
    for d in run_dirs:
        groups[_label(Path(d))].append(read_metrics(d))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    curves = []  # (label, runs, column): per agent group where runs have several groups
    for label, runs in groups.items():
        per_group = sorted(k for k in runs[0] if k.startswith("charts/") and k.endswith("/episode_return") and k.count("/") == 2)
        if metric == "charts/episode_return" and per_group:
            curves += [(f"{label} [{k.split('/')[1]}]", runs, k) for k in per_group]
        else:
            curves.append((label, runs, metric))
    for label, runs, column in curves:
        for ax, xkey in zip(axes, ("env_steps", "wall_time_s")):
            xs, ys = [], []
            for m in runs:
                if column not in m:
                    continue
                ok = ~np.isnan(m[column])
                if ok.sum() >= 1:
                    xs.append(m[xkey][ok])
                    ys.append(m[column][ok])
            if not xs:
                continue
            grid, mean, lo, hi = _band(xs, ys)
            line = ax.plot(grid, mean, label=f"{label} (n={len(xs)})")[0]
            if len(xs) > 1:
                ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.2)
            for m in runs if column == metric else []:
                ev = ~np.isnan(m.get("eval/return_mean", np.full(len(m[xkey]), np.nan)))
                if ev.any():
                    ax.plot(m[xkey][ev], m["eval/return_mean"][ev], "o", color=line.get_color(), ms=4)
    axes[0].set_xlabel("env steps")
    axes[1].set_xlabel("wall time (s)")
    for ax in axes:
        ax.set_ylabel("mean episode return per agent")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # no curve yet (e.g. no episode finished)
            ax.legend(fontsize=8)
    fig.suptitle("training return (lines: mean, band: min-max over seeds; dots: evaluation)")
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    if any("wm/obs_error_k1" in m for runs in groups.values() for m in runs):
        plot_world_model(run_dirs, out.with_name(out.stem + "_wm" + out.suffix))
    return out


def plot_world_model(run_dirs: list[str | Path], out: str | Path) -> Path:
    """World-model diagnostics of generative (genrl) runs: 1-step observation error against
    'next = current', behaviour-prediction accuracy against the most-frequent-action predictor,
    imagined against real return (all vs env steps), and the final open-loop k-step error curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(20, 4.5))
    for d in run_dirs:
        d = Path(d)
        m = read_metrics(d)
        if "wm/obs_error_k1" not in m:
            continue
        label = f"{_label(d)} seed {json.loads((d / 'config.json').read_text()).get('seed', '?')}" if (d / "config.json").exists() else d.name
        ok = ~np.isnan(m["wm/obs_error_k1"])
        x = m["env_steps"][ok]
        line = axes[0].plot(x, m["wm/obs_error_k1"][ok], "o-", ms=3, label=f"{label}: model")[0]
        axes[0].plot(x, m["wm/obs_error_trivial"][ok], "--", color=line.get_color(), label=f"{label}: next = current")
        if "wm/behaviour_acc" in m:
            axes[1].plot(x, m["wm/behaviour_acc"][ok], "o-", ms=3, color=line.get_color(), label=f"{label}: model")
            axes[1].plot(x, m["wm/behaviour_acc_baseline"][ok], "--", color=line.get_color(), label=f"{label}: most frequent")
        if "wm/imagined_return" in m:
            axes[2].plot(x, m["wm/imagined_return"][ok], "o-", ms=3, color=line.get_color(), label=f"{label}: imagined")
            axes[2].plot(x, m["wm/real_return"][ok], "--", color=line.get_color(), label=f"{label}: real")
        diag_path = d / "wm_diagnostics.json"
        if diag_path.exists():
            last = json.loads(diag_path.read_text())[-1]
            k = np.arange(1, len(last["wm/obs_error_k"]) + 1)
            axes[3].plot(k, last["wm/obs_error_k"], "o-", ms=3, color=line.get_color(), label=f"{label}: model")
            axes[3].plot(k, last["wm/obs_error_trivial_k"], "--", color=line.get_color(), label=f"{label}: obs[t+k] = obs[t]")
    titles = [
        ("1-step observation error (MSE per element)", "env steps"),
        ("behaviour prediction accuracy (other agents' actions)", "env steps"),
        ("episode return per agent: imagined vs real", "env steps"),
        ("open-loop k-step observation error (last evaluation)", "k"),
    ]
    for ax, (title, xlabel) in zip(axes, titles):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
    axes[0].set_yscale("log")
    axes[3].set_yscale("log")
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def expand_runs(paths: list[str | Path]) -> list[Path]:
    """Run directories, with a sweep directory (``genmarl sweep --out``) standing for its finished runs."""
    out: list[Path] = []
    for p in map(Path, paths):
        if (p / "sweep.json").exists():
            from genmarl.sweep import sweep_runs

            runs = [r for rs in sweep_runs(p).values() for r in rs]
            if not runs:
                raise ValueError(f"sweep {p} has no finished or started runs yet")
            out += runs
        else:
            out.append(p)
    return out


def plot_main(args: Any) -> None:
    out = plot_runs(expand_runs(args.runs), args.output)
    print(f"wrote {out}")
    wm = out.with_name(out.stem + "_wm" + out.suffix)
    if wm.exists():
        print(f"wrote {wm}")
