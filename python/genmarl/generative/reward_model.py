"""A reward model that reads observations (``GenRLConfig.reward_from="obs"``).

The world model's own reward head reads the recurrent state, and is trained with one small batch
per world-model update: on simple_spread it explains almost none of the reward's variance (R^2
about 0.03, docs/generative.md), too little for imagination or planning to rank actions. Many
tasks' rewards are (close to) a function of the observations after the step, and a network fed
those observations learns them far better given enough cheap supervised updates
(``benchmarks/reward_fit.py``: R^2 0.74 after 3,000 updates of 1,024 pairs, 0.94 after 20,000).

:class:`ObsRewardModel` predicts agent i's reward of a step from the observations that follow it:
agent i's own next observation and its agent id (``inputs="own"``), plus every agent's next
observation (``inputs="joint"``, for rewards that depend on what only other agents see, such as
a shared team reward). It is trained on real (next observation, reward) pairs from the replay
buffer, and imagination applies it to the world model's predicted observations.
"""

from __future__ import annotations

import torch
from torch import nn

from genmarl.algos.config import REWARD_INPUTS
from genmarl.algos.learner import GroupInfo
from genmarl.generative.world_model import agent_ids, mlp, symexp, symlog


class ObsRewardModel(nn.Module):
    """Per-group MLPs ``r_i = f_g([o'_i, id_i(, o'_1..o'_N)])`` in symlog space (groups in the
    world model's agent order)."""

    def __init__(self, groups: list[GroupInfo], *, hidden_size: int = 256, layers: int = 2, inputs: str = "joint") -> None:
        super().__init__()
        if inputs not in REWARD_INPUTS:
            raise ValueError(f"reward inputs must be one of {REWARD_INPUTS}, got {inputs!r}")
        self.groups = list(groups)
        self.inputs = inputs
        joint = sum(g.num_agents * g.obs_dim for g in groups) if inputs == "joint" else 0
        self.nets = nn.ModuleDict({g.name: mlp(g.obs_dim + g.num_agents + joint, hidden_size, 1, layers) for g in groups})

    def raw(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """obs[g] [..., n_g, d_g] (the observations after the step) -> symlog rewards [..., N]."""
        if self.inputs == "joint":
            everyone = torch.cat([obs[g.name].flatten(-2) for g in self.groups], -1)  # [..., sum n_g d_g]
        out = []
        for g in self.groups:
            o = obs[g.name]
            parts = [o, agent_ids(o, g.num_agents)]
            if self.inputs == "joint":
                parts.append(everyone.unsqueeze(-2).expand(*o.shape[:-1], everyone.shape[-1]))
            out.append(self.nets[g.name](torch.cat(parts, -1)).squeeze(-1))
        return torch.cat(out, -1)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Predicted rewards [..., N] of the steps that led to the observations ``obs``."""
        return symexp(self.raw(obs))

    def loss(self, next_obs: dict[str, torch.Tensor], rewards: torch.Tensor) -> torch.Tensor:
        """Mean squared error in symlog space; next_obs[g] [M, n_g, d_g], rewards [M, N]."""
        return ((self.raw(next_obs) - symlog(rewards)) ** 2).mean()


def reward_pairs(
    obs: dict[str, torch.Tensor], rewards: torch.Tensor, mask: torch.Tensor, is_first: torch.Tensor
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """(next observations {g: [M, n_g, d_g]}, rewards [M, N]) from windows of two steps
    (obs[g] [B, 2, n_g, d_g], rewards [B, 2, N], mask / is_first [B, 2]): the reward of step 0 and
    the observation of step 1, where both steps are stored and belong to one episode (the
    successor of an episode's last step is not in the buffer)."""
    keep = mask[:, 1] & ~is_first[:, 1].to(torch.bool)
    return {g: o[:, 1][keep] for g, o in obs.items()}, rewards[:, 0][keep]
