"""Many runs on Ray Tune: every (setting, seed) of a sweep is one Tune trial and one run directory.

    genmarl sweep CONFIG.toml --seeds 3 [--grid lr=3e-4,7e-4 ...] [--ray-address ADDR] --out SWEEP_DIR

Layout of ``SWEEP_DIR``: ``sweep.json`` (the sweep's definition), ``<setting>/seed_<k>/`` (a run
directory exactly as ``genmarl train`` writes it; ``<setting>`` is ``base`` or e.g.
``lr=3e-4,num_envs=64``), ``summary.csv`` (setting, seed, final evaluation return, env steps,
wall time) and ``curves.png`` (``genmarl plot SWEEP_DIR``: one curve over seeds per setting).
Ray's own experiment state lives in ``SWEEP_DIR/_tune``.

Resuming: running the same command again (or after a crash, a killed driver, a stopped cluster)
restores the Tune experiment; a trial whose run directory holds a finished run is not run again,
one that was interrupted continues from its last checkpoint (``genmarl train --resume``), the
others start. Everything is checked (config keys and values of every setting, the seeds, the
address) before the first trial starts. Ray is imported only here (``pip install 'genmarl[ray]'``).
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
from pathlib import Path
from typing import Any

from genmarl.algos.config import load_config
from genmarl.distributed import check_address, init_ray


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    """``["lr=3e-4,7e-4", "env_kwargs.N=3,4"]`` -> ``{"lr": ["3e-4", "7e-4"], "env_kwargs.N": ["3", "4"]}``."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, eq, values = item.partition("=")
        key = key.strip()
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not eq or not key or not vals:
            raise ValueError(f"--grid expects key=value1,value2,... (e.g. lr=3e-4,7e-4), got {item!r}")
        if key in grid:
            raise ValueError(f"--grid names {key!r} twice")
        if key == "seed":
            raise ValueError("--grid cannot set seed; use --seeds")
        grid[key] = vals
    return grid


def settings(grid: dict[str, list[str]]) -> list[dict[str, str]]:
    """Every combination of the grid's values (one empty setting for an empty grid)."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))] or [{}]


def setting_name(setting: dict[str, str]) -> str:
    """A directory name for a setting: ``base`` or ``key=value,key=value`` (path-safe characters)."""
    if not setting:
        return "base"
    return ",".join(f"{k}={re.sub(r'[^A-Za-z0-9_.+-]', '_', v)}" for k, v in setting.items())


def _config(config_path: str | None, setting: dict[str, str], seed: int) -> Any:
    overrides = [f"{k}={v}" for k, v in setting.items()] + [f"seed={seed}", "progress=false"]
    return load_config(toml_path=config_path, overrides=overrides)


def _trial(params: dict[str, Any]) -> None:
    """One Tune trial: one genmarl run (resumed or skipped when its directory says so)."""
    import genmarl
    from genmarl.training.runner import read_summary

    t = params["trial"]
    run_dir = Path(t["run_dir"])
    summary = read_summary(run_dir)
    if summary is None:
        cfg = _config(t["config_path"], t["setting"], t["seed"])
        resume = (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir())
        result = genmarl.train(cfg, out=run_dir, resume=resume)
        summary = result.summary
    report = {"eval_return": float(summary["eval/return_mean"]), "env_steps": int(summary["env_steps"]),
              "wall_time_s": float(summary["wall_time_s"])}  # fmt: skip
    from ray import tune

    tune.report(report)


def run_sweep(
    config_path: str | os.PathLike | None,
    seeds: int,
    grid: dict[str, list[str]],
    out: str | os.PathLike,
    *,
    ray_address: str | None = None,
    cpus_per_trial: float = 1.0,
    max_concurrent: int = 0,
) -> Path:
    """Runs the sweep (see the module docstring); returns the path of ``summary.csv``."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"--seeds must be a positive number of seeds, got {seeds!r}")
    if not cpus_per_trial > 0:
        raise ValueError(f"--cpus-per-trial must be > 0, got {cpus_per_trial}")
    out = Path(out).resolve()
    config_path = None if config_path is None else str(Path(config_path).resolve())
    combos = settings(grid)
    for setting in combos:  # every setting's config is checked before Ray starts
        _config(config_path, setting, 0)
    if ray_address is not None:
        check_address(ray_address)
    definition = {"config": config_path, "seeds": seeds, "grid": grid}
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "sweep.json"
    if saved.exists():
        before = json.loads(saved.read_text())
        if before != definition:
            raise ValueError(f"{out} holds another sweep ({before}); use another --out or the same arguments to resume it")
    else:
        saved.write_text(json.dumps(definition, indent=2))
    trials = [
        {"setting": s, "seed": k, "config_path": config_path, "run_dir": str(out / setting_name(s) / f"seed_{k}")}
        for s in combos
        for k in range(seeds)
    ]

    from ray import tune

    init_ray(ray_address)
    trainable = tune.with_resources(_trial, {"cpu": cpus_per_trial})
    storage = out / "_tune"
    if tune.Tuner.can_restore(str(storage / "sweep")):
        tuner = tune.Tuner.restore(str(storage / "sweep"), trainable, resume_errored=True, restart_errored=False)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space={"trial": tune.grid_search(trials)},
            tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent or None),
            run_config=tune.RunConfig(name="sweep", storage_path=str(storage), verbose=0),
        )
    results = tuner.fit()
    errors = [r.error for r in results if r.error is not None]
    path = write_summary(out, trials)
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(trials)} trials failed (first: {errors[0]}); rerun the same command to resume")
    return path


def write_summary(out: Path, trials: list[dict[str, Any]]) -> Path:
    """``summary.csv``: one row per trial that finished (setting, seed, eval return, env steps, wall time)."""
    from genmarl.training.runner import read_summary

    rows = []
    for t in trials:
        s = read_summary(Path(t["run_dir"]))
        if s is not None:
            rows.append({"setting": setting_name(t["setting"]), "seed": t["seed"], "eval_return": s["eval/return_mean"],
                         "env_steps": s["env_steps"], "wall_time_s": s["wall_time_s"], "run_dir": t["run_dir"]})  # fmt: skip
    path = out / "summary.csv"
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, ["setting", "seed", "eval_return", "env_steps", "wall_time_s", "run_dir"])
        w.writeheader()
        w.writerows(rows)
    return path


def sweep_runs(sweep_dir: Path) -> dict[str, list[Path]]:
    """The finished runs of a sweep directory by setting (for plots)."""
    out: dict[str, list[Path]] = {}
    for run in sorted(sweep_dir.glob("*/seed_*")):
        if (run / "metrics.csv").exists():
            out.setdefault(run.parent.name, []).append(run)
    return out
