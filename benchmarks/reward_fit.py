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

import numpy as np
import torch
from world_model_ablation import collect

from genmarl.generative.world_model import mlp, symexp, symlog


def pairs(buf, groups, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(next observation + agent id, reward) of one homogeneous group, from n sampled windows."""
    g = groups[0]
    b = buf.sample_sequences(n, 2, mode="pad")
    keep = b["mask"][:, 1] & ~b["is_first"][:, 1]  # step t and t + 1 in one episode
    o = torch.as_tensor(b[f"{g.name}/obs"][:, 1][keep]).reshape(-1, g.obs_dim)
    r = torch.as_tensor(b[f"{g.name}/reward"][:, 0][keep]).reshape(-1)
    ids = torch.eye(g.num_agents).repeat(int(keep.sum()), 1)
    return torch.cat([o, ids], -1), r


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="simple_spread")
    p.add_argument("--data-steps", type=int, default=100_000)
    p.add_argument("--steps", type=int, default=3000, help="gradient steps")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    train_buf, groups = collect(args.env, args.data_steps, args.seed, 0.5)
    val_buf, _ = collect(args.env, 20_000, args.seed + 1000, 0.5)
    if len(groups) != 1:
        raise SystemExit(f"{args.env} has {len(groups)} agent groups; this benchmark fits one homogeneous group")
    X, Y = pairs(train_buf, groups, 200_000)
    Xv, Yv = pairs(val_buf, groups, 20_000)
    net = mlp(X.shape[1], args.width, 1, args.layers)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        i = torch.randint(0, len(X), (args.batch_size,))
        loss = ((net(X[i]).squeeze(-1) - symlog(Y[i])) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    secs = time.perf_counter() - t0
    with torch.no_grad():
        err = (symexp(net(Xv).squeeze(-1)) - Yv) ** 2
    var = float(Yv.var())
    print(f"{args.env}: {len(X):,} training pairs, {args.steps} steps of {args.batch_size} in {secs:.1f} s "
          f"(MLP {args.width}x{args.layers})")
    print(f"reward variance {var:.4f}; held-out squared error {float(err.mean()):.4f} (R^2 {1 - float(err.mean()) / var:.2f})")
    if args.env.startswith("simple_spread"):  # others' offsets sit after velocity, position and landmarks
        n_other = groups[0].num_agents - 1
        lm = (groups[0].obs_dim - 4 - 4 * n_other) // 2
        off = Xv[:, 4 + 2 * lm : 4 + 2 * lm + 2 * n_other].reshape(-1, n_other, 2)
        coll = (off.norm(dim=-1) < 0.3).any(-1)  # agent size 0.15 each
        free = ~coll
        print(f"steps with a collision: {float(coll.float().mean()):.3f}; squared error without one {float(err[free].mean()):.4f} "
              f"(variance {float(Yv[free].var()):.4f}), with one {float(err[coll].mean()):.4f}")


if __name__ == "__main__":
    main()
