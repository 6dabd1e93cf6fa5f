"""Gradient-update throughput of the generative agent, and where the time goes.

Fills the replay buffer with uniformly random simple_spread steps, then times ``train_step``
(world-model update + imagination + actor-critic update) at the default model size on one torch
thread, and profiles one batch of updates by stage (``genrl/replay``, ``genrl/world_model``,
``genrl/imagination``, ``genrl/actor_critic``). Prints updates/s and the share of each stage.
On the CPU it times both ``overlap_updates`` modes, alternating: sequential (one thread) and the
actor-critic update overlapped with the next world-model update on a second thread.

    python benchmarks/genrl_update_throughput.py [--updates 50] [--repeats 3] [--device cpu|cuda] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import genmarl
from genmarl.algos.config import GenRLConfig
from genmarl.generative.agent import GenerativeAgent

STAGES = ("genrl/replay", "genrl/world_model", "genrl/reward_model", "genrl/imagination", "genrl/distill_planning", "genrl/actor_critic")


def parse_overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        default = getattr(GenRLConfig(), key)
        out[key] = type(default)(value) if not isinstance(default, bool) else value.lower() in ("1", "true", "yes")
    return out


def make_agent(args: argparse.Namespace, overlap: str) -> tuple[GenerativeAgent, GenRLConfig]:
    cfg = GenRLConfig(env=args.env, device=args.device, torch_threads=args.threads, tensorboard=False, progress=False,
                      **{**parse_overrides(args.set), "overlap_updates": overlap})  # fmt: skip
    env = genmarl.make(args.env, num_envs=cfg.num_envs, seed=0)
    agent = GenerativeAgent(env, cfg)
    rng = np.random.default_rng(0)
    obs, _ = env.reset_grouped(seed=0)
    for _ in range(5000 // cfg.num_envs + cfg.seq_len + 1):  # random prefill, as a run starts
        acts = env.sample_actions(rng, grouped=True)
        nxt, rew, term, trunc, _ = env.step_grouped(acts)
        step = {}
        for g in env.groups:
            step.update({f"{g}/obs": obs[g], f"{g}/action": acts[g], f"{g}/reward": rew[g],
                         f"{g}/terminated": term[g], f"{g}/truncated": trunc[g]})  # fmt: skip
        agent.buffer.add_step(step)
        obs = nxt
    for _ in range(3):  # warm-up
        agent.train_step()
    return agent, cfg


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="simple_spread")
    p.add_argument("--updates", type=int, default=50, help="timed updates per repeat and mode")
    p.add_argument("--repeats", type=int, default=3, help="alternating repeats of each mode (medians are printed)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="GenRLConfig overrides")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    overlap = ["off", "on"] if args.device == "cpu" and parse_overrides(args.set).get("overlap_updates") != "off" else ["off"]
    agents = {mode: make_agent(args, mode) for mode in overlap}
    agent, cfg = agents["off"]
    sync = torch.cuda.synchronize if agent.device.type == "cuda" else (lambda: None)
    times: dict[str, list[float]] = {mode: [] for mode in overlap}
    for _ in range(args.repeats):  # the modes alternate: this VM's speed drifts between minutes
        for mode in overlap:
            a = agents[mode][0]
            sync()
            t0 = time.perf_counter()
            for _ in range(args.updates):
                a.train_step()
            sync()
            times[mode].append((time.perf_counter() - t0) / args.updates)
    print(f"{args.env}, device {agent.device}, {args.threads} torch thread(s), overrides {args.set or 'none'}")
    for mode in overlap:
        dt = float(np.median(times[mode]))
        what = "sequential (one thread)" if mode == "off" else "overlap_updates=on (world model on a second thread)"
        print(f"  {what}: {1 / dt:.2f} updates/s ({1000 * dt:.0f} ms per update; repeats "
              f"{', '.join(f'{1000 * t:.0f}' for t in times[mode])} ms); at replay_ratio {cfg.replay_ratio}: "
              f"{1 / dt / max(cfg.replay_ratio, 1e-9):.0f} env steps/s of training")  # fmt: skip
    n = max(5, args.updates // 5)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(n):
            agent.train_step()
        sync()
    totals = {e.key: e.cpu_time_total for e in prof.key_averages() if e.key in STAGES}
    total = sum(totals.values()) or 1.0
    print("  where the time goes (sequential):")
    for stage in STAGES:
        t = totals.get(stage, 0.0)
        print(f"  {stage:<20} {t / n / 1000:8.1f} ms per update ({100 * t / total:4.1f}%)")


if __name__ == "__main__":
    main()
