"""How well can a network learn an env's reward from the next observation?

The generative agent ranks actions (in imagination and when planning) by predicted rewards. On
simple_spread the reward of a step is an exact function of each agent's next observation (the
landmark and agent offsets it contains), so this measures the best case for any reward model
that reads observations: an MLP trained by supervised regression on (next observation, reward)
pairs of a fixed data set (the world-model ablation's heuristic/random mix), far more updates
and samples than the world model's reward head gets in a training run. Prints the reward
variance, the held-out squared error and R^2, overall and split by whether the agent collides
(MPE scenarios whose rewards count collisions: a step in the reward).

    python benchmarks/reward_fit.py --env simple_spread --steps 3000
"""

from __future__ import annotations

import argparse
import time

import torch
from world_model_ablation import collect

from genmarl.generative.reward_model import REWARD_INPUTS, ObsRewardModel, reward_pairs


def pairs(buf, groups, n: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """(next observations {g: [M, n_g, d_g]}, rewards [M, N]) from n sampled windows."""
    b = buf.sample_sequences(n, 2, mode="pad")
    obs = {g.name: torch.as_tensor(b[f"{g.name}/obs"]).reshape(n, 2, g.num_agents, g.obs_dim) for g in groups}
    rew = torch.cat([torch.as_tensor(b[f"{g.name}/reward"]) for g in groups], -1)
    return reward_pairs(obs, rew, torch.as_tensor(b["mask"]), torch.as_tensor(b["is_first"]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="simple_spread")
    p.add_argument("--data-steps", type=int, default=100_000)
    p.add_argument("--steps", type=int, default=3000, help="gradient steps")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--inputs", choices=REWARD_INPUTS, default="joint",
                   help="the agent's own next observation, or every agent's too (ObsRewardModel)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    train_buf, groups = collect(args.env, args.data_steps, args.seed, 0.5)
    val_buf, _ = collect(args.env, 20_000, args.seed + 1000, 0.5)
    X, Y = pairs(train_buf, groups, 200_000)
    Xv, Yv = pairs(val_buf, groups, 20_000)
    net = ObsRewardModel(groups, hidden_size=args.width, layers=args.layers, inputs=args.inputs)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    n_agents = Y.shape[1]
    batch = max(1, args.batch_size // n_agents)  # --batch-size counts agent rewards
    t0 = time.perf_counter()
    for _ in range(args.steps):
        i = torch.randint(0, len(Y), (batch,))
        loss = net.loss({g: o[i] for g, o in X.items()}, Y[i])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    secs = time.perf_counter() - t0
    with torch.no_grad():
        err = ((net(Xv) - Yv) ** 2).reshape(-1)
    Yv = Yv.reshape(-1)
    var = float(Yv.var())
    print(f"{args.env}: {Y.numel():,} training rewards, {args.steps} steps of {batch * n_agents} in {secs:.1f} s "
          f"(MLP {args.width}x{args.layers}, inputs {args.inputs!r})")
    print(f"reward variance {var:.4f}; held-out squared error {float(err.mean()):.4f} (R^2 {1 - float(err.mean()) / var:.2f})")
    if args.env.startswith("simple_spread"):  # others' offsets sit after velocity, position and landmarks
        g = groups[0]
        n_other = g.num_agents - 1
        lm = (g.obs_dim - 4 - 4 * n_other) // 2
        off = Xv[g.name].reshape(-1, g.obs_dim)[:, 4 + 2 * lm : 4 + 2 * lm + 2 * n_other].reshape(-1, n_other, 2)
        coll = (off.norm(dim=-1) < 0.3).any(-1)  # agent size 0.15 each
        free = ~coll
        print(f"steps with a collision: {float(coll.float().mean()):.3f}; squared error without one {float(err[free].mean()):.4f} "
              f"(variance {float(Yv[free].var()):.4f}), with one {float(err[coll].mean()):.4f}")


if __name__ == "__main__":
    main()
