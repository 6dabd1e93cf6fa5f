"""The ``genmarl`` command line.

``genmarl demo``   steps a large batch of envs with a random policy and prints throughput and returns.
``genmarl envs``   lists the environments and their arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np


def _demo(args: argparse.Namespace) -> int:
    import genmarl

    threads = args.num_threads or (os.cpu_count() or 1)
    env = genmarl.make(args.env, num_envs=args.num_envs, num_threads=threads, seed=args.seed)
    print(f"genmarl demo: {args.env}, {env.num_envs} envs x {args.steps} steps, {env.num_threads} threads")
    print(f"  agents: {env.possible_agents}")
    rng = np.random.default_rng(args.seed)
    # Pre-draw the random actions so the timing is the environment's, not numpy's.
    actions = [env.sample_actions(rng, grouped=True) for _ in range(min(args.steps, 64))]
    env.reset_grouped(seed=args.seed)
    returns = {g: [] for g in env.groups}
    lengths = []
    t0 = time.perf_counter()
    for t in range(args.steps):
        _, _, _, _, infos = env.step_grouped(actions[t % len(actions)])
        if "episode_return" in infos:
            done = infos["done"]
            for g, r in infos["episode_return"].items():
                returns[g].append(r[done].mean(axis=1))
            lengths.append(infos["episode_length"][done])
    dt = time.perf_counter() - t0
    env_steps = env.num_envs * args.steps
    print(f"  throughput: {env_steps / dt:,.0f} env-steps/s, {env_steps * env.num_agents / dt:,.0f} agent-steps/s ({dt:.2f} s)")
    n_episodes = int(sum(len(x) for x in lengths))
    print(f"  finished episodes: {n_episodes:,} (mean length {np.concatenate(lengths).mean() if lengths else 0:.1f})")
    for g, rs in returns.items():
        if rs:
            r = np.concatenate(rs)
            print(f"  random-policy episode return per agent [{g}]: mean {r.mean():.2f}, std {r.std():.2f}")
    return 0


def _envs(_: argparse.Namespace) -> int:
    from genmarl import _core

    for name in _core.list_envs():
        params = ", ".join(f"{p[0]}={'None' if p[1] == 'optional_int' and p[2] < 0 else (bool(p[2]) if p[1] == 'bool' else (int(p[2]) if p[1] == 'int' else p[2]))}" for p in _core.env_params(name))
        print(f"{name}({params})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genmarl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="step a large batch of envs and print throughput and returns")
    demo.add_argument("--env", default="simple_spread")
    demo.add_argument("--num-envs", type=int, default=4096)
    demo.add_argument("--num-threads", type=int, default=None)
    demo.add_argument("--steps", type=int, default=500)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(fn=_demo)
    envs = sub.add_parser("envs", help="list environments and their arguments")
    envs.set_defaults(fn=_envs)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except (ValueError, TypeError) as exc:
        print(f"genmarl: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
