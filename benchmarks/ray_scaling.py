"""Runs on Ray: Tune trial throughput, and one run's rollouts on Ray actors.

    python benchmarks/ray_scaling.py [--trials 6] [--steps 50000] [--cpus-per-trial 1] [--skip-sweep] [--skip-workers]

Workers: env-steps/s of training (updates included) in this process, with ``--workers 1`` and with
``--workers 2``, for

- MAPPO at the default batch (128 envs x 25 steps) on simple_spread (``--worker-steps`` env steps);
- MAPPO and the generative agent (genrl, default config, ``prefill_steps`` 1000) on a *slow env*:
  simple_spread registered from Python (``genmarl.register``) with a step that waits
  ``--slow-ms`` (genrl) or ``--slow-ms-mappo`` (MAPPO) milliseconds per env -- an engine whose step
  costs time but not this machine's CPU (a GPU simulator, a remote engine, a co-simulation);
- genrl on plain simple_spread, where training dominates.

Both sides run the same ``--trials`` MAPPO runs on simple_spread (seeds 0..N-1, ``--steps`` env
steps, 32 envs, evaluation only at the end, one torch thread each): first sequentially with
``genmarl.train``, then as a ``genmarl sweep`` on a local Ray cluster of all the machine's CPUs.
Prints the wall time of each, runs per minute, the speed-up, and Ray's fixed cost (cluster start
and a trial with a 800-step run).
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

import genmarl
from genmarl.algos.config import load_config


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=6)
    p.add_argument("--steps", type=int, default=50_000)
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    p.add_argument("--skip-sweep", action="store_true")
    p.add_argument("--skip-workers", action="store_true")
    p.add_argument("--worker-steps", type=int, default=640_000, help="MAPPO on simple_spread (steady state)")
    p.add_argument("--slow-ms", type=float, default=5.0, help="the slow env's wait per env step, genrl")
    p.add_argument("--slow-ms-mappo", type=float, default=0.2, help="the slow env's wait per env step, MAPPO")
    p.add_argument("--genrl-steps", type=int, default=8_000)
    args = p.parse_args()
    if not args.skip_workers:
        workers_bench(args)
    if args.skip_sweep:
        return
    base = f"""algo = "mappo"
env = "simple_spread"
total_steps = {args.steps}
num_envs = 32
eval_every = 0
eval_episodes = 20
checkpoint_every = 0
tensorboard = false
torch_threads = 1
"""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "base.toml"
        cfg.write_text(base)
        t = time.perf_counter()
        for seed in range(args.trials):
            genmarl.train(load_config(toml_path=cfg, overrides=[f"seed={seed}", "progress=false"]), out=Path(tmp) / f"seq_{seed}")
        sequential = time.perf_counter() - t

        import ray

        from genmarl.sweep import run_sweep

        t = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        started = time.perf_counter() - t
        tiny = Path(tmp) / "tiny.toml"
        tiny.write_text(base.replace(f"total_steps = {args.steps}", "total_steps = 800"))
        t = time.perf_counter()
        run_sweep(tiny, 1, {}, Path(tmp) / "tiny_sweep", cpus_per_trial=args.cpus_per_trial)
        one_tiny = time.perf_counter() - t
        t = time.perf_counter()
        run_sweep(cfg, args.trials, {}, Path(tmp) / "sweep", cpus_per_trial=args.cpus_per_trial)
        swept = time.perf_counter() - t
        ray.shutdown()
    cpus = os.cpu_count()
    print(f"{args.trials} MAPPO runs of {args.steps:,} env steps on {cpus} CPUs:")
    print(f"  one after the other:  {sequential:7.1f} s ({args.trials / sequential * 60:.2f} runs/min)")
    print(f"  Ray Tune sweep:       {swept:7.1f} s ({args.trials / swept * 60:.2f} runs/min), "
          f"{sequential / swept:.2f}x, {args.cpus_per_trial:g} CPU per trial")
    print(f"  Ray's fixed costs: local cluster start {started:.1f} s; a sweep of one 800-step trial {one_tiny:.1f} s")


class SlowEnv:
    """simple_spread whose every step also waits ``ms_per_env`` ms per env (see the module docstring)."""

    def __init__(self, ms_per_env: float = 1.0, **kwargs: object) -> None:
        self._env = genmarl.make("simple_spread", **kwargs)
        self._wait = ms_per_env * self._env.num_envs / 1000.0

    def __getattr__(self, name: str) -> object:
        return getattr(self._env, name)

    def step_grouped(self, actions: dict) -> tuple:
        time.sleep(self._wait)
        return self._env.step_grouped(actions)


def _steady_rate(run_dir: Path) -> float:
    """Env-steps/s over the second half of a run's updates (metrics.csv): without the start of
    the workers and, for genrl, without the prefill."""
    with open(run_dir / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    a, b = rows[len(rows) // 2], rows[-1]
    return (int(b["env_steps"]) - int(a["env_steps"])) / (float(b["wall_time_s"]) - float(a["wall_time_s"]))


def _rates(tmp: str, label: str, base: dict, overrides: list[str]) -> dict[int, tuple[float, float]]:
    """{workers: (env-steps/s of the whole run, of its second half)} for 0, 1 and 2 workers."""
    rates = {}
    for workers in (0, 1, 2):
        cfg = load_config({**base, "workers": workers}, overrides=[
            "eval_every=0", "eval_episodes=4", "checkpoint_every=0", "progress=false", "tensorboard=false", *overrides,
        ])  # fmt: skip
        result = genmarl.train(cfg, out=Path(tmp) / f"{label}_{workers}")
        rates[workers] = (result.summary["env_steps_per_s"], _steady_rate(result.run_dir))
    return rates


def _print(label: str, rates: dict[int, tuple[float, float]]) -> None:
    print(f"{label}:", flush=True)
    for i, what in ((0, "whole run"), (1, "second half")):
        r = {w: v[i] for w, v in rates.items()}
        print(f"  {what:<11}  in-process {r[0]:,.0f} env-steps/s; --workers 1 {r[1]:,.0f} ({r[1] / r[0]:.2f}x); "
              f"--workers 2 {r[2]:,.0f} ({r[2] / r[0]:.2f}x)", flush=True)


def workers_bench(args: argparse.Namespace) -> None:
    import ray

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory() as tmp:
        n = args.worker_steps
        _print(f"MAPPO, simple_spread, 128 envs x 25 steps per update, {n:,} env steps",
               _rates(tmp, "mappo", {"env": "simple_spread"}, [f"total_steps={n}"]))
        genmarl.register("slow_spread", SlowEnv, overwrite=True)
        m = args.slow_ms_mappo
        _print(f"MAPPO, slow simple_spread ({m:g} ms per env step), 64,000 env steps",
               _rates(tmp, "mappo_slow", {"env": "slow_spread"}, ["total_steps=64000", f"env_kwargs.ms_per_env={m}"]))
        g, ms = args.genrl_steps, args.slow_ms
        genrl = [f"total_steps={g}", "prefill_steps=1000"]
        _print(f"genrl, slow simple_spread ({ms:g} ms per env step), 16 envs x 25 steps, {g:,} env steps",
               _rates(tmp, "genrl_slow", {"algo": "genrl", "env": "slow_spread"}, [*genrl, f"env_kwargs.ms_per_env={ms}"]))
        _print(f"genrl, simple_spread, 16 envs x 25 steps, {g:,} env steps",
               _rates(tmp, "genrl", {"algo": "genrl", "env": "simple_spread"}, genrl))
    ray.shutdown()


if __name__ == "__main__":
    main()
