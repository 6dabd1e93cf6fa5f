"""Imagined rollouts through a :class:`WorldModel` and the lambda-returns computed on them.

``ImaginationRollout`` rolls ``S`` start states x all ``N`` agents for ``H`` steps at once: fixed
shapes, one batched call per network per step, no Python loop over agents, the same code on CPU
and CUDA. Categorical draws (latents and joint actions) go through genmarl's C++ sampling kernels
on CPU tensors when ``sampler`` is ``"genmarl"`` (``"auto"`` picks them on CPU when the extension
has them), and through torch otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from genmarl.generative.world_model import WorldModel, categorical_draw, mix_logits


def lambda_returns(rewards: torch.Tensor, values: torch.Tensor, discounts: torch.Tensor, lam: float) -> torch.Tensor:
    """TD(lambda) returns along the first axis.

    rewards, discounts: [H, ...] (discount of step t = gamma * P(continue after t));
    values: [H + 1, ...]. ``R[H] = values[H]``,
    ``R[t] = rewards[t] + discounts[t] * ((1 - lam) * values[t + 1] + lam * R[t + 1])``. Returns [H, ...].
    """
    H = rewards.shape[0]
    if values.shape[0] != H + 1 or discounts.shape != rewards.shape:
        raise ValueError(
            f"lambda_returns needs rewards/discounts [H, ...] and values [H + 1, ...]; got {tuple(rewards.shape)}, "
            f"{tuple(discounts.shape)}, {tuple(values.shape)}"
        )
    out = []
    ret = values[H]
    for t in reversed(range(H)):
        ret = rewards[t] + discounts[t] * ((1.0 - lam) * values[t + 1] + lam * ret)
        out.append(ret)
    return torch.stack(out[::-1], 0)


class Policy(Protocol):
    def logits(self, feat: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
        """feat [..., N, F], others [..., N, (N-1)A] -> masked logits [..., N, A]."""
        ...


@dataclass
class Imagined:
    """An imagined trajectory: ``H`` steps from ``S`` starts, ``N`` agents."""

    feat: torch.Tensor  # [H + 1, S, N, F]  world-model features (state of step t)
    others: torch.Tensor  # [H + 1, S, N, (N-1)A] predicted action probabilities of the other agents
    actions: torch.Tensor  # [H, S, N] int64 joint actions taken
    log_probs: torch.Tensor  # [H, S, N] log-probability of each agent's action under the policy
    rewards: torch.Tensor  # [H, S, N] predicted rewards
    cont: torch.Tensor  # [H, S, N] predicted probability that the episode continues after the step
    h: torch.Tensor  # [H + 1, S, N, deter]


def sampler_available() -> bool:
    try:
        from genmarl import _core, sampling  # noqa: F401
    except ImportError:
        return False
    return hasattr(_core, "categorical_sample")


class ImaginationRollout:
    """Rolls a world model forward under a policy, sampling latents and joint actions.

    ``sampler``: ``"torch"``, ``"genmarl"`` (C++ kernels; CPU tensors only) or ``"auto"``
    (genmarl's kernels for CPU tensors when available). ``seed`` keys the C++ kernels' counter-based
    draws (each call advances ``stream``); the torch path draws from torch's global generator.
    ``reward_model`` (an :class:`~genmarl.generative.reward_model.ObsRewardModel`): rewards are
    read from the observations the world model predicts, which every call then needs the start
    observations for; without it, from the world model's reward head.
    """

    def __init__(
        self, model: WorldModel, horizon: int = 15, *, sampler: str = "auto", seed: int = 0, reward_model: nn.Module | None = None
    ) -> None:
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        if sampler not in ("auto", "torch", "genmarl"):
            raise ValueError(f"sampler must be 'auto', 'torch' or 'genmarl', got {sampler!r}")
        self._kernels = sampler_available()  # checked once, not per draw
        if sampler == "genmarl" and not self._kernels:
            raise ImportError("sampler='genmarl' needs genmarl's C++ sampling kernels (genmarl.sampling)")
        self.model, self.horizon, self.sampler = model, horizon, sampler
        self.reward_model = reward_model
        self.seed = int(seed)
        self.stream = 0

    def uses_kernels(self, device: torch.device) -> bool:
        """Whether random draws on ``device`` go through genmarl's C++ kernels (and not torch's generator)."""
        if self.sampler == "torch" or device.type != "cpu":
            if self.sampler == "genmarl" and device.type != "cpu":
                raise ValueError("sampler='genmarl' runs on CPU tensors; use 'auto' or 'torch' on CUDA")
            return False
        return self.sampler == "genmarl" or self._kernels

    def sample(
        self, logits: torch.Tensor, unimix: float = 0.0, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draws from ``Categorical((1 - unimix) * softmax(logits) + unimix / k)`` for raw logits
        ``[..., k]``: (index [...] int64, log-probability of the index [...] float32)."""
        if not deterministic and self.uses_kernels(logits.device):
            from genmarl import sampling

            arr = logits.detach().float().contiguous().numpy()
            idx, lp = sampling.categorical_sample(arr, self.seed, self.stream, unimix=unimix)
            self.stream += 1
            return torch.from_numpy(idx), torch.from_numpy(lp)
        logp = mix_logits(logits, unimix)
        if deterministic:
            idx = logp.argmax(-1)
        else:
            idx = categorical_draw(logp.exp())
        return idx, logp.gather(-1, idx.unsqueeze(-1)).squeeze(-1)

    def __call__(
        self,
        h: torch.Tensor,
        z: torch.Tensor,
        policy: Policy,
        *,
        horizon: int | None = None,
        first_actions: torch.Tensor | None = None,
        differentiable: bool = False,
        latent_mode: bool = False,
        start_obs: dict[str, torch.Tensor] | None = None,
    ) -> Imagined:
        """Starts h [S, N, deter], z [S, N, stoch_dim] (e.g. posterior states of replayed steps).

        ``first_actions [S, N]`` fixes the joint action of step 0 (else it is sampled).
        ``differentiable``: keep the graph, with straight-through one-hots for sampled actions
        and latents, so that returns can be differentiated through the model into the policy
        (dynamics backpropagation); the draws themselves are the same. ``latent_mode``: each step's
        latent is the prior's mode instead of a draw (one most-likely future per action sequence,
        what planning in deterministic envs scores); actions are still drawn. ``start_obs``
        {g: [S, n_g, d_g]}: the observations of the start states, which a ``reward_model`` needs.
        """
        if self.reward_model is not None and start_obs is None:
            raise ValueError("this rollout reads rewards from predicted observations (reward_from='obs'): pass start_obs")
        with torch.set_grad_enabled(differentiable):
            H = self.horizon if horizon is None else horizon
            return self._roll(h, z, policy, H, first_actions, differentiable, latent_mode, start_obs)

    def _roll(
        self,
        h: torch.Tensor,
        z: torch.Tensor,
        policy: Policy,
        H: int,
        first_actions: torch.Tensor | None,
        st: bool,
        latent_mode: bool = False,
        start_obs: dict[str, torch.Tensor] | None = None,
    ) -> Imagined:
        m = self.model
        feats, others, acts, lps, hs = [], [], [], [], []
        for t in range(H + 1):
            feat = torch.cat([h, z], -1)
            oth = m.others_probs(feat)
            feats.append(feat)
            others.append(oth)
            hs.append(h)
            if t == H:
                break
            logits = policy.logits(feat, oth)
            if t == 0 and first_actions is not None:
                a = first_actions.long()
                lp = logits.log_softmax(-1).gather(-1, a.unsqueeze(-1)).squeeze(-1)
            else:
                a, lp = self.sample(logits)
            a = a.to(h.device)
            a1h = F.one_hot(a, m.num_actions).float()
            if st:
                probs = logits.softmax(-1)
                a1h = a1h + probs - probs.detach()
            h = m.transition(h, z, a1h)
            prior = m.prior_net(h).unflatten(-1, (m.stoch_size, m.classes))
            idx, _ = self.sample(prior, m.unimix, deterministic=latent_mode)
            z = F.one_hot(idx.to(h.device), m.classes).float()
            if st:
                probs = mix_logits(prior, m.unimix).exp()
                z = z + probs - probs.detach()
            z = z.flatten(-2)
            acts.append(a)
            lps.append(lp)
        h_all = torch.stack(hs)
        feat_all = torch.stack(feats)
        # rewards and continuation of every step in one call each (they read step t + 1 and feed nothing back)
        if self.reward_model is not None:  # __call__ checked that start_obs is given
            rewards = self.reward_model(m.predict_sequence(feat_all[1:], start_obs))
        else:
            rewards = m.reward(h_all[1:])
        return Imagined(
            feat=feat_all,
            others=torch.stack(others),
            actions=torch.stack(acts),
            log_probs=torch.stack(lps),
            rewards=rewards,
            cont=torch.sigmoid(m.cont_logit(h_all[1:])),
            h=h_all,
        )

