"""Actor and critic networks shared by the PPO family (torch)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Categorical, Normal


def layer_init(layer: nn.Linear, gain: float = math.sqrt(2)) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def mlp(in_dim: int, hidden: int, layers: int, layer_norm_input: bool) -> nn.Sequential:
    mods: list[nn.Module] = [nn.LayerNorm(in_dim)] if layer_norm_input else []
    d = in_dim
    for _ in range(layers):
        mods += [layer_init(nn.Linear(d, hidden)), nn.ReLU()]
        d = hidden
    return nn.Sequential(*mods)


class Actor(nn.Module):
    """Policy of one agent group (weights shared by its agents).

    Input ``[..., in_dim]``; discrete: categorical logits over ``act_n``; continuous: a Gaussian
    with state-independent log-std over ``act_dim``. With ``gru`` a GRU cell follows the MLP.
    """

    def __init__(self, in_dim: int, act_n: int, continuous: bool, hidden: int, layers: int, layer_norm_input: bool, gru: bool):
        super().__init__()
        self.continuous = continuous
        self.body = mlp(in_dim, hidden, layers, layer_norm_input)
        self.gru = nn.GRUCell(hidden, hidden) if gru else None
        self.head = layer_init(nn.Linear(hidden, act_n), gain=0.01)
        self.log_std = nn.Parameter(torch.full((act_n,), -0.5)) if continuous else None
        self.hidden_size = hidden

    def features(self, x: torch.Tensor, h: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x: [B, in_dim], h: [B, hidden] (GRU only) -> (features [B, hidden], new h)."""
        z = self.body(x)
        if self.gru is None:
            return z, None
        h = self.gru(z, h)
        return h, h

    def features_seq(self, x: torch.Tensor, h0: torch.Tensor, resets: torch.Tensor) -> torch.Tensor:
        """x: [T, B, in_dim], h0: [B, hidden], resets: [T, B] bool (episode starts at t) -> [T, B, hidden]."""
        z = self.body(x)
        if self.gru is None:
            return z
        out = []
        h = h0
        for t in range(x.shape[0]):
            if t > 0:
                h = h * (~resets[t]).unsqueeze(-1).to(h.dtype)
            h = self.gru(z[t], h)
            out.append(h)
        return torch.stack(out)

    def dist(self, feats: torch.Tensor, mask: torch.Tensor | None = None) -> torch.distributions.Distribution:
        """``mask [..., act_n] bool`` (discrete): invalid actions get probability 0."""
        out = self.head(feats)
        if self.continuous:
            return Normal(out, self.log_std.exp().expand_as(out))
        if mask is not None:
            out = out.masked_fill(~mask, torch.finfo(out.dtype).min)
        return Categorical(logits=out)

    def log_prob_entropy(
        self, feats: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.dist(feats, mask)
        if self.continuous:
            return d.log_prob(actions).sum(-1), d.entropy().sum(-1)
        return d.log_prob(actions), d.entropy()


class Critic(nn.Module):
    """Value of each agent of a group, from the global state (MAPPO) or its own observation (IPPO)."""

    def __init__(self, in_dim: int, hidden: int, layers: int, layer_norm_input: bool):
        super().__init__()
        self.body = mlp(in_dim, hidden, layers, layer_norm_input)
        self.head = layer_init(nn.Linear(hidden, 1), gain=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).squeeze(-1)


class ValueNorm(nn.Module):
    """Running mean/variance of value targets (MAPPO's ValueNorm: debiased exponential averages)."""

    def __init__(self, beta: float = 0.99999, eps: float = 1e-5):
        super().__init__()
        self.beta, self.eps = beta, eps
        self.register_buffer("mean", torch.zeros((), dtype=torch.float64))
        self.register_buffer("mean_sq", torch.zeros((), dtype=torch.float64))
        self.register_buffer("debias", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        x = x.detach().to(torch.float64)
        w = self.beta
        self.mean.mul_(w).add_(x.mean() * (1 - w))
        self.mean_sq.mul_(w).add_((x * x).mean() * (1 - w))
        self.debias.mul_(w).add_(1 - w)

    def stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.debias.clamp(min=self.eps)
        mean = self.mean / d
        var = (self.mean_sq / d - mean * mean).clamp(min=1e-2)
        return mean.float(), var.sqrt().float()

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self.stats()
        return (x - mean) / std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self.stats()
        return x * std + mean
