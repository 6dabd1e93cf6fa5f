"""How well does a genrl run's world model rank planning candidates? Model scores vs the simulator's.

For ``--envs`` episodes of the run's env, the agent acts greedily for ``t0`` steps. It then draws
``K`` candidate joint action sequences of ``H`` steps from its planning policy (the policy mixed with
``--unimix`` of uniform). Each sequence is scored twice, in the same units:

- by the world model: the discounted sum of predicted rewards (mean over agents, weighted by the
  predicted continuation), and the λ-return with the critic that ``--plan`` ranks by;
- by the true simulator: the same open-loop sequence stepped through a copy of the env
  (``SimulatorPlanner.score_sequences``), the discounted sum of real rewards.

Printed per ``t0``, averaged over envs:

- the rank correlation (Spearman) between model and real scores of the K candidates;
- the real score of the model's pick, of the best candidate and of the average candidate.

The gap between the pick and the best is what model error costs one planning step.

    python benchmarks/plan_ranking.py RUN_DIR [--k 16] [--horizon 15] [--envs 64] [--unimix 0.5]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch

import genmarl
from genmarl.algos.config import config_from_dict
from genmarl.generative.agent import GenerativeAgent, _CandidatePolicy
from genmarl.generative.imagination import lambda_returns
from genmarl.generative.simulator_planning import SimulatorPlanner
from genmarl.training import checkpoints
from genmarl.training.runner import make_learner


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks along the last axis (ties broken by order; scores are continuous)."""
    return np.argsort(np.argsort(x, -1), -1).astype(np.float64)


def spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of each row of ``a`` with the same row of ``b`` ([E, K] -> [E])."""
    ra, rb = ranks(a), ranks(b)
    ra -= ra.mean(-1, keepdims=True)
    rb -= rb.mean(-1, keepdims=True)
    return (ra * rb).sum(-1) / np.sqrt((ra**2).sum(-1) * (rb**2).sum(-1))


def load_agent(run: Path, num_envs: int, unimix: float, seed: int) -> tuple[GenerativeAgent, object]:
    state = checkpoints.load(run / "model.pt", what="a model.pt written by genmarl train")
    cfg = config_from_dict({**state["config"], "device": "cpu"})
    if cfg.algo != "genrl":
        raise SystemExit(f"{run} trained {cfg.algo}; this benchmark needs a genrl run")
    cfg = dataclasses.replace(cfg, num_envs=num_envs, plan=0, plan_unimix=unimix).validate()
    env = genmarl.make(cfg.env, num_envs=num_envs, seed=seed, **cfg.env_kwargs)
    agent = make_learner(env, cfg)
    agent.load_state_dict(state)
    return agent, env


@torch.no_grad()
def probe(agent: GenerativeAgent, env, t0: int, K: int, H: int, seed: int) -> dict[str, float]:
    wm, E = agent.wm, env.num_envs
    obs, _ = env.reset_grouped(seed=seed)
    agent._hidden = agent._zero_hidden()
    reset = np.ones(E, bool)
    for _ in range(t0):
        obs, _, _, _, infos = env.step_grouped(agent.act(obs, deterministic=True, reset=reset))
        reset = infos["done"]
    h, z = agent.filter_state(obs, reset, deterministic=True)
    # reward_from="obs" reads rewards from the observations predicted from these
    start_obs = {g: o.repeat_interleave(K, 0) for g, o in agent._check_obs(obs).items()}
    traj = agent.imagine(
        h.repeat_interleave(K, 0), z.repeat_interleave(K, 0), _CandidatePolicy(agent), horizon=H, start_obs=start_obs
    )
    gamma = agent.cfg.gamma
    # discounted predicted rewards weighted by predicted continuation: the lambda=1 return with no bootstrap
    no_value = torch.zeros_like(traj.rewards[:1]).expand(H + 1, *traj.rewards.shape[1:])
    model_rew = lambda_returns(traj.rewards, no_value, gamma * traj.cont, 1.0)[0].mean(-1).view(E, K).numpy()
    model_ret = agent._imagined_return(traj)[0].mean(-1).view(E, K).numpy()
    acts = traj.actions.permute(1, 0, 2).reshape(E, K, H, -1).numpy()  # [E, K, H, N]
    seqs = {g.name: np.ascontiguousarray(acts[..., wm.slices[g.name]]) for g in agent.groups}
    real = SimulatorPlanner(gamma).score_sequences(env, seqs)  # [E, K]
    rows = np.arange(E)
    return {
        "spearman_rewards": float(np.nanmean(spearman(model_rew, real))),
        "spearman_return": float(np.nanmean(spearman(model_ret, real))),
        "pick_rewards": float(real[rows, model_rew.argmax(1)].mean()),
        "pick_return": float(real[rows, model_ret.argmax(1)].mean()),
        "best": float(real.max(1).mean()),
        "mean": float(real.mean()),
        "model_rewards_mean": float(model_rew.mean()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path)
    p.add_argument("--k", type=int, default=16)
    p.add_argument("--horizon", type=int, default=15)
    p.add_argument("--envs", type=int, default=64)
    p.add_argument("--unimix", type=float, default=0.5)
    p.add_argument("--t0", default="0,8,16", help="comma-separated steps acted before each probe")
    p.add_argument("--seed", type=int, default=2_000_003)
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    agent, env = load_agent(args.run, args.envs, args.unimix, args.seed)
    print(f"{args.run}: {agent.cfg.env}, K={args.k}, H={args.horizon}, {args.envs} envs, candidates unimix {args.unimix}")
    print(f"{'t0':>4} {'rank corr (rewards)':>20} {'rank corr (λ-return)':>21} {'pick (rewards)':>15} {'pick (λ-return)':>16} "
          f"{'best':>8} {'mean':>8} {'model rew':>10}")
    for t0 in (int(x) for x in args.t0.split(",")):
        r = probe(agent, env, t0, args.k, args.horizon, args.seed + t0)
        print(f"{t0:>4} {r['spearman_rewards']:>20.3f} {r['spearman_return']:>21.3f} {r['pick_rewards']:>15.3f} "
              f"{r['pick_return']:>16.3f} {r['best']:>8.3f} {r['mean']:>8.3f} {r['model_rewards_mean']:>10.3f}")


if __name__ == "__main__":
    main()
