"""A cleanrl-style PPO loop on genmarl through Gymnasium's vector API (parameter sharing).

Every (env, agent) pair of one agent group is a sub-env of ``genmarl.gymnasium.AgentVectorEnv``,
so this is single-agent PPO code -- no genmarl learner involved -- training one policy shared by
the group's agents. Episode statistics come from Gymnasium's own ``RecordEpisodeStatistics``.

    python examples/gymnasium_ppo.py --env simple_spread --num-envs 64 --total-steps 300000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from gymnasium.wrappers.vector import RecordEpisodeStatistics
from torch import nn

from genmarl.gymnasium import AgentVectorEnv


def layer(i: int, o: int, std: float = 2**0.5) -> nn.Linear:
    lin = nn.Linear(i, o)
    nn.init.orthogonal_(lin.weight, std)
    nn.init.zeros_(lin.bias)
    return lin


class Agent(nn.Module):
    def __init__(self, obs_dim: int, n_actions: int) -> None:
        super().__init__()
        self.critic = nn.Sequential(layer(obs_dim, 64), nn.Tanh(), layer(64, 64), nn.Tanh(), layer(64, 1, 1.0))
        self.actor = nn.Sequential(layer(obs_dim, 64), nn.Tanh(), layer(64, 64), nn.Tanh(), layer(64, n_actions, 0.01))

    def value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x).squeeze(-1)

    def act(self, x: torch.Tensor, action: torch.Tensor | None = None):
        dist = torch.distributions.Categorical(logits=self.actor(x))
        if action is None:
            action = dist.sample()
        return action, dist.log_prob(action), dist.entropy(), self.value(x)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="simple_spread")
    p.add_argument("--num-envs", type=int, default=64, help="genmarl envs (sub-envs = this x agents)")
    p.add_argument("--num-steps", type=int, default=25, help="steps per rollout")
    p.add_argument("--total-steps", type=int, default=300_000, help="env steps (genmarl envs, not sub-envs)")
    p.add_argument("--lr", type=float, default=7e-4)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--minibatches", type=int, default=4)
    p.add_argument("--gamma", type=float, default=0.99)
    p.add_argument("--gae-lambda", type=float, default=0.95)
    p.add_argument("--clip", type=float, default=0.2)
    p.add_argument("--ent-coef", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)

    envs = RecordEpisodeStatistics(AgentVectorEnv(args.env, num_envs=args.num_envs, seed=args.seed), buffer_length=200)
    B, T = envs.num_envs, args.num_steps
    agent = Agent(int(np.prod(envs.single_observation_space.shape)), int(envs.single_action_space.n))
    opt = torch.optim.Adam(agent.parameters(), lr=args.lr, eps=1e-5)
    obs_buf = torch.zeros(T, B, *envs.single_observation_space.shape)
    act_buf, logp_buf, rew_buf, val_buf = (torch.zeros(T, B) for _ in range(4))
    done_buf = torch.zeros(T, B)  # the episode ended at this step (terminated or truncated)
    boot_buf = torch.zeros(T, B)  # value of the final observation where an episode was truncated

    obs, _ = envs.reset(seed=args.seed)
    obs = torch.as_tensor(obs)
    iterations = args.total_steps // (args.num_envs * T)
    first_returns, t0 = None, time.perf_counter()
    for it in range(1, iterations + 1):
        for t in range(T):
            with torch.no_grad():
                action, logp, _, value = agent.act(obs)
            obs_buf[t], act_buf[t], logp_buf[t], val_buf[t] = obs, action, logp, value
            nxt, reward, term, trunc, infos = envs.step(action.numpy())
            rew_buf[t] = torch.as_tensor(reward)
            done_buf[t] = torch.as_tensor(term | trunc, dtype=torch.float32)
            boot_buf[t] = 0.0
            if "_final_obs" in infos and trunc.any():  # bootstrap truncated episodes from their final observation
                with torch.no_grad():
                    fv = agent.value(torch.as_tensor(infos["final_obs"]))
                boot_buf[t] = torch.where(torch.as_tensor(trunc & ~term), fv, 0.0)
            obs = torch.as_tensor(nxt)
        with torch.no_grad():  # GAE; an episode that ends at t does not see step t + 1
            next_value = agent.value(obs)
            adv = torch.zeros(T, B)
            last = torch.zeros(B)
            for t in reversed(range(T)):
                nv = next_value if t == T - 1 else val_buf[t + 1]
                nv = torch.where(done_buf[t].bool(), boot_buf[t], nv)
                delta = rew_buf[t] + args.gamma * nv - val_buf[t]
                last = delta + args.gamma * args.gae_lambda * (1.0 - done_buf[t]) * last
                adv[t] = last
            ret = adv + val_buf
        b_obs, b_act, b_logp = obs_buf.flatten(0, 1), act_buf.flatten(0, 1), logp_buf.flatten(0, 1)
        b_adv, b_ret = adv.flatten(), ret.flatten()
        n = b_obs.shape[0]
        for _ in range(args.epochs):
            perm = torch.randperm(n)
            for mb in perm.split(n // args.minibatches):
                _, logp, ent, value = agent.act(b_obs[mb], b_act[mb].long())
                ratio = (logp - b_logp[mb]).exp()
                a = (b_adv[mb] - b_adv[mb].mean()) / (b_adv[mb].std() + 1e-8)
                pg = torch.max(-a * ratio, -a * ratio.clamp(1 - args.clip, 1 + args.clip)).mean()
                loss = pg + 0.5 * ((value - b_ret[mb]) ** 2).mean() - args.ent_coef * ent.mean()
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), 0.5)
                opt.step()
        if envs.return_queue and (it % 20 == 0 or it == iterations):
            mean_ret = float(np.mean(envs.return_queue))
            first_returns = mean_ret if first_returns is None else first_returns
            steps = it * args.num_envs * T
            print(f"env steps {steps:>8,}  episode return (per agent, last {len(envs.return_queue)} sub-env episodes) "
                  f"{mean_ret:8.2f}  {steps / (time.perf_counter() - t0):,.0f} env-steps/s", flush=True)
    print(f"first logged return {first_returns:.2f}, last {float(np.mean(envs.return_queue)):.2f}")
    envs.close()


if __name__ == "__main__":
    main()
