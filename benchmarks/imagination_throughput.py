"""Imagined-rollout throughput of the generative agent: torch sampling vs genmarl's C++ kernels.

Times ``ImaginationRollout`` (H steps from S replayed states x N agents: prior latents and joint
actions sampled every step) with each sampler, plus a whole ``train_step`` (world-model update +
imagination + actor-critic update), on the CPU with one torch thread. Prints a table; figures are
medians of ``--repeats`` runs.

    python benchmarks/imagination_throughput.py [--env simple_spread] [--starts 256 1024] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import genmarl
from genmarl.generative import GenerativeAgent, GenRLConfig


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="simple_spread")
    p.add_argument("--starts", type=int, nargs="+", default=[256, 1024])
    p.add_argument("--horizon", type=int, default=15)
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = GenRLConfig(env=args.env, num_envs=16, prefill_steps=2_000, horizon=args.horizon, progress=False, device="cpu")
    env = genmarl.make(args.env, num_envs=cfg.num_envs, seed=0)
    agent = GenerativeAgent(env, cfg)
    while agent.env_steps < cfg.prefill_steps:
        agent.collect()
    agent.train_step()
    N = agent.num_agents
    print(f"{args.env}: {N} agents, horizon {args.horizon}, latents {cfg.stoch_size}x{cfg.classes}, 1 torch thread")
    print(f"{'starts':>7} | {'torch (ms)':>10} | {'genmarl (ms)':>12} | {'speed-up':>8} | {'agent-steps/s (genmarl)':>24}")
    for S in args.starts:
        b = agent._batch_tensors(agent.buffer.sample_sequences(S, 1, mode="stitch"))
        with torch.no_grad():
            st = agent.wm.observe(b["obs"], b["actions"], b["is_first"])
        h0, z0 = st.h[:, 0].contiguous(), st.z[:, 0].contiguous()
        o0 = {g: o[:, 0] for g, o in b["obs"].items()}
        res = {}
        for sampler in ("torch", "genmarl"):
            agent.imagine.sampler = sampler
            res[sampler] = timed(lambda: agent.imagine(h0, z0, agent, start_obs=o0), args.repeats)
        rate = S * N * args.horizon / res["genmarl"]
        print(f"{S:>7} | {res['torch'] * 1e3:>10.1f} | {res['genmarl'] * 1e3:>12.1f} | {res['torch'] / res['genmarl']:>7.2f}x | {rate:>24,.0f}")
    for sampler in ("torch", "genmarl"):
        agent.imagine.sampler = sampler
        t = timed(agent.train_step, args.repeats)
        print(f"train_step (batch {cfg.batch_size}x{cfg.seq_len}, {cfg.imagine_starts} starts), {sampler} sampling: {t * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
