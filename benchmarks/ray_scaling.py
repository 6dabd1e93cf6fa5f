"""Runs on Ray: Tune trial throughput, and one run's rollouts on Ray actors.

    python benchmarks/ray_scaling.py [--trials 6] [--steps 50000] [--cpus-per-trial 1] [--skip-sweep] [--skip-workers]

Workers: MAPPO at the default batch (128 envs x 25 steps) in this process, with ``--workers 1`` and
with ``--workers 2`` (env-steps/s of training, the update included), on simple_spread and on an
expensive simple_spread (``N=24`` agents: the C++ step's pairwise collision checks grow with N^2).

Both sides run the same ``--trials`` MAPPO runs on simple_spread (seeds 0..N-1, ``--steps`` env
steps, 32 envs, evaluation only at the end, one torch thread each): first sequentially with
``genmarl.train``, then as a ``genmarl sweep`` on a local Ray cluster of all the machine's CPUs.
Prints the wall time of each, runs per minute, the speed-up, and Ray's fixed cost (cluster start
and a trial with a 800-step run).
"""

from __future__ import annotations

import argparse
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
    p.add_argument("--worker-steps", type=int, default=64_000)
    args = p.parse_args()
    if not args.skip_workers:
        workers_bench(args.worker_steps)
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


def workers_bench(steps: int) -> None:
    import ray

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory() as tmp:
        for label, kwargs in (("simple_spread (N=3)", []), ("expensive simple_spread (N=24)", ["env_kwargs.N=24"])):
            rates = {}
            for workers in (0, 1, 2):
                cfg = load_config({"env": "simple_spread", "workers": workers}, overrides=[
                    f"total_steps={steps}", "eval_every=0", "eval_episodes=4", "checkpoint_every=0", "progress=false",
                    "tensorboard=false", *kwargs,
                ])  # fmt: skip
                result = genmarl.train(cfg, out=Path(tmp) / f"{label[:9]}_{workers}_{len(kwargs)}")
                rates[workers] = result.summary["env_steps_per_s"]
            print(f"{label}, MAPPO, 128 envs x 25 steps per update, {steps:,} env steps: in-process {rates[0]:,.0f} env-steps/s; "
                  f"--workers 1 {rates[1]:,.0f} ({rates[1] / rates[0]:.2f}x); --workers 2 {rates[2]:,.0f} ({rates[2] / rates[0]:.2f}x)",
                  flush=True)
    ray.shutdown()


if __name__ == "__main__":
    main()
