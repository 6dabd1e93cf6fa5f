"""Gradient-update throughput of the generative agent, and where the time goes.

Fills the replay buffer with uniformly random simple_spread steps, then times ``train_step``
(world-model update + imagination + actor-critic update) at the default model size on one torch
thread, and profiles one batch of updates by stage (``genrl/replay``, ``genrl/world_model``,
``genrl/imagination``, ``genrl/actor_critic``). Prints updates/s and the share of each stage.

    python benchmarks/genrl_update_throughput.py [--updates 50] [--device cpu|cuda] [--set key=value ...]
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="simple_spread")
    p.add_argument("--updates", type=int, default=50)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="GenRLConfig overrides")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = GenRLConfig(env=args.env, device=args.device, torch_threads=args.threads, tensorboard=False, progress=False,
                      **parse_overrides(args.set))
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
                         f"{g}/terminated": term[g], f"{g}/truncated": trunc[g]})
        agent.buffer.add_step(step)
        obs = nxt
    sync = torch.cuda.synchronize if agent.device.type == "cuda" else (lambda: None)
    for _ in range(3):  # warm-up
        agent.train_step()
    sync()
    t0 = time.perf_counter()
    for _ in range(args.updates):
        agent.train_step()
    sync()
    dt = time.perf_counter() - t0
    print(f"{args.env}, device {agent.device}, {args.threads} torch thread(s), overrides {args.set or 'none'}")
    print(f"  {args.updates / dt:.2f} updates/s ({1000 * dt / args.updates:.0f} ms per update); "
          f"at replay_ratio {cfg.replay_ratio}: {args.updates / dt / max(cfg.replay_ratio, 1e-9):.0f} env steps/s of training")
    n = max(5, args.updates // 5)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(n):
            agent.train_step()
        sync()
    totals = {e.key: e.cpu_time_total for e in prof.key_averages() if e.key in STAGES}
    total = sum(totals.values()) or 1.0
    for stage in STAGES:
        t = totals.get(stage, 0.0)
        print(f"  {stage:<20} {t / n / 1000:8.1f} ms per update ({100 * t / total:4.1f}%)")


if __name__ == "__main__":
    main()
