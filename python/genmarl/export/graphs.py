"""The torch modules that ``genmarl export`` traces: a trained learner's acting step and the
pieces of its world model, each with fixed tensor inputs and outputs (no Python state, no
random numbers drawn inside: draws use uniforms / normals passed in, so a graph is a pure
function and C++ and Python give the same outputs for the same inputs).

Every graph takes and returns flat lists of tensors in the order its :class:`TensorSpec` list
states (what ``export.json`` and the package metadata record); the leading axis ``B`` is the
batch (envs, or envs x candidates when planning) and is dynamic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from genmarl.generative.agent import _MASKED
from genmarl.generative.world_model import inverse_cdf


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a graph: ``name``, ``dtype`` (float32 | int64 | bool) and shape,
    where ``-1`` is the batch axis."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    def to_metadata(self) -> str:
        """``name:dtype:d0,d1,...`` (``B`` for the batch axis): what genmarl::torch parses."""
        return f"{self.name}:{self.dtype}:" + ",".join("B" if d == -1 else str(d) for d in self.shape)


def mask_specs(groups: list[Any]) -> list[TensorSpec]:
    """``mask/<g>`` [B, n, act_n] bool inputs, one per group whose env reports valid actions; they
    come last, after ``deterministic`` (a policy without masked groups keeps the five inputs of
    exports made before masks were inputs)."""
    return [TensorSpec(f"mask/{g.name}", "bool", (-1, g.num_agents, g.act_n)) for g in groups if g.masked and not g.continuous]


def group_masks(groups: list[Any], mask: list[torch.Tensor] | None) -> dict[str, torch.Tensor | None]:
    """{group: its mask input or None}, the inputs in :func:`mask_specs` order."""
    it = iter(mask or ())
    return {g.name: (next(it) if g.masked and not g.continuous else None) for g in groups}


# ---- MAPPO / IPPO ---------------------------------------------------------------------------


class PPOPolicyGraph(nn.Module):
    """The acting step of a :class:`~genmarl.algos.ppo.MAPPO` learner (mappo or ippo).

    Inputs: ``obs/<g>`` [B, n, d] per group; with a GRU ``state/<g>`` [B, n, hidden] per group;
    ``reset`` [B] bool (envs whose episode restarted: their GRU state starts from zero);
    ``noise/<g>`` per group (discrete: uniforms [B, n]; continuous: standard normals
    [B, n, act_dim]); ``deterministic`` [] bool; then ``mask/<g>`` [B, n, act_n] bool for each group
    whose env reports valid actions (``infos["action_mask"]``: invalid actions are never chosen).
    Outputs: ``action/<g>`` (int64 [B, n] or float32 [B, n, act_dim], unclipped, as ``MAPPO.act``
    returns it), ``logits/<g>`` (discrete logits, masked where a mask is given, or the Gaussian's
    mean), then ``state/<g>`` (next GRU state) with a GRU.
    """

    def __init__(self, algo: Any) -> None:
        super().__init__()
        self.groups = list(algo.groups)
        self.actors = algo.actors
        self.agent_id = bool(algo.cfg.agent_id)
        self.gru = bool(algo.cfg.use_gru)
        self.hidden = int(algo.cfg.hidden_size)

    def input_specs(self) -> list[TensorSpec]:
        specs = [TensorSpec(f"obs/{g.name}", "float32", (-1, g.num_agents, g.obs_dim)) for g in self.groups]
        if self.gru:
            specs += [TensorSpec(f"state/{g.name}", "float32", (-1, g.num_agents, self.hidden)) for g in self.groups]
        specs.append(TensorSpec("reset", "bool", (-1,)))
        for g in self.groups:
            shape = (-1, g.num_agents, g.act_n) if g.continuous else (-1, g.num_agents)
            specs.append(TensorSpec(f"noise/{g.name}", "float32", shape))
        specs.append(TensorSpec("deterministic", "bool", ()))
        return specs + mask_specs(self.groups)

    def noise_kinds(self) -> dict[str, str]:
        return {f"noise/{g.name}": ("normal" if g.continuous else "uniform") for g in self.groups}

    def output_specs(self) -> list[TensorSpec]:
        specs = []
        for g in self.groups:
            specs.append(TensorSpec(f"action/{g.name}", "float32" if g.continuous else "int64",
                                    (-1, g.num_agents, g.act_n) if g.continuous else (-1, g.num_agents)))  # fmt: skip
        specs += [TensorSpec(f"logits/{g.name}", "float32", (-1, g.num_agents, g.act_n)) for g in self.groups]
        if self.gru:
            specs += [TensorSpec(f"state/{g.name}", "float32", (-1, g.num_agents, self.hidden)) for g in self.groups]
        return specs

    def forward(
        self, obs: list[torch.Tensor], state: list[torch.Tensor], reset: torch.Tensor, noise: list[torch.Tensor], deterministic: torch.Tensor,
        mask: list[torch.Tensor] | None = None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        masks = group_masks(self.groups, mask)
        actions, logits, states = [], [], []
        for i, g in enumerate(self.groups):
            x = obs[i]
            B, n = x.shape[0], g.num_agents
            if self.agent_id:
                x = torch.cat([x, torch.eye(n, dtype=x.dtype, device=x.device).expand(B, n, n)], -1)
            actor = self.actors[g.name]
            z = actor.body(x.reshape(B * n, -1))
            if self.gru:
                h = state[i] * (~reset).to(x.dtype)[:, None, None]
                z = actor.gru(z, h.reshape(B * n, -1))
                states.append(z.reshape(B, n, -1))
            out = actor.head(z).reshape(B, n, -1)
            if masks[g.name] is not None:  # as Actor.dist masks them
                out = out.masked_fill(~masks[g.name], torch.finfo(out.dtype).min)
            if g.continuous:
                std = actor.log_std.exp()
                a = torch.where(deterministic, out, out + std * noise[i])
            else:
                sampled = inverse_cdf(out.softmax(-1), noise[i])
                a = torch.where(deterministic, out.argmax(-1), sampled)
            actions.append(a)
            logits.append(out)
        return actions, logits, states


# ---- the generative agent -------------------------------------------------------------------


class GenRLPolicyGraph(nn.Module):
    """The acting step of a :class:`~genmarl.generative.GenerativeAgent`: filter, act, advance.

    Inputs: ``obs/<g>`` [B, n, d]; ``state/h`` [B, N, deter] (the previous step's transition);
    ``reset`` [B] bool (the state restarts from ``h_init``: the first step of an episode, or of
    acting); ``noise/latent`` [B, N, stoch] and ``noise/action`` [B, N] uniforms;
    ``deterministic`` [] bool (the posterior's mode and greedy actions); then ``mask/<g>`` [B, n,
    act_n] bool for each group whose env reports valid actions. Outputs: ``action/<g>`` int64 [B, n],
    ``logits/<g>`` [B, n, act_n] (the policy's, masked where a mask is given), ``state/h`` [B, N, deter].
    """

    def __init__(self, agent: Any) -> None:
        super().__init__()
        self.agent = agent  # its wm, actors and groups (the graph reads; it never trains)
        self.groups = list(agent.groups)
        self.wm = agent.wm
        self.actors = agent.actors

    def input_specs(self) -> list[TensorSpec]:
        wm = self.wm
        specs = [TensorSpec(f"obs/{g.name}", "float32", (-1, g.num_agents, g.obs_dim)) for g in self.groups]
        specs += [
            TensorSpec("state/h", "float32", (-1, wm.num_agents, wm.deter_size)),
            TensorSpec("reset", "bool", (-1,)),
            TensorSpec("noise/latent", "float32", (-1, wm.num_agents, wm.stoch_size)),
            TensorSpec("noise/action", "float32", (-1, wm.num_agents)),
            TensorSpec("deterministic", "bool", ()),
        ]
        return specs + mask_specs(self.groups)

    def noise_kinds(self) -> dict[str, str]:
        return {"noise/latent": "uniform", "noise/action": "uniform"}

    def output_specs(self) -> list[TensorSpec]:
        specs = [TensorSpec(f"action/{g.name}", "int64", (-1, g.num_agents)) for g in self.groups]
        specs += [TensorSpec(f"logits/{g.name}", "float32", (-1, g.num_agents, g.act_n)) for g in self.groups]
        specs.append(TensorSpec("state/h", "float32", (-1, self.wm.num_agents, self.wm.deter_size)))
        return specs

    def forward(
        self, obs: list[torch.Tensor], state: list[torch.Tensor], reset: torch.Tensor, noise: list[torch.Tensor], deterministic: torch.Tensor,
        mask: list[torch.Tensor] | None = None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        wm = self.wm
        masks = group_masks(self.groups, mask)
        obs_d = {g.name: obs[i] for i, g in enumerate(self.groups)}
        h = wm.restart(state[0], reset)
        post = wm.posterior_logits(h, wm.embed(obs_d))  # [B, N, S, C] normalised log-probs
        z_idx = torch.where(deterministic, post.argmax(-1), inverse_cdf(post.exp(), noise[0]))
        z = F.one_hot(z_idx, wm.classes).to(h.dtype).flatten(-2)
        feat = torch.cat([h, z], -1)
        logits = self.agent.logits(feat, wm.others_probs(feat))  # [B, N, A], a group's missing actions masked
        if any(m is not None for m in masks.values()):  # as GenerativeAgent.act masks them
            logits = logits.masked_fill(~self.agent.joint_mask(masks, logits.shape[0]), _MASKED)
        a = torch.where(deterministic, logits.argmax(-1), inverse_cdf(logits.softmax(-1), noise[1]))
        h_next = wm.transition(h, z, F.one_hot(a, wm.num_actions).to(h.dtype))
        actions, group_logits = [], []
        for g in self.groups:
            sl = wm.slices[g.name]
            actions.append(a[:, sl])
            group_logits.append(logits[:, sl, : g.act_n])
        return actions, group_logits, [h_next]


class WorldFilterGraph(nn.Module):
    """``filter``: obs/<g> [B, n, d], state/h [B, N, deter], reset [B] -> h [B, N, deter] (``h_init``
    where reset), posterior [B, N, stoch, classes] (normalised log-probabilities, unimix mixed)."""

    def __init__(self, agent: Any) -> None:
        super().__init__()
        self.wm, self.groups = agent.wm, list(agent.groups)

    def specs(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        wm = self.wm
        N = wm.num_agents
        ins = [TensorSpec(f"obs/{g.name}", "float32", (-1, g.num_agents, g.obs_dim)) for g in self.groups]
        ins += [TensorSpec("state/h", "float32", (-1, N, wm.deter_size)), TensorSpec("reset", "bool", (-1,))]
        outs = [TensorSpec("h", "float32", (-1, N, wm.deter_size)), TensorSpec("posterior", "float32", (-1, N, wm.stoch_size, wm.classes))]
        return ins, outs

    def forward(self, obs: list[torch.Tensor], h: torch.Tensor, reset: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        wm = self.wm
        h = wm.restart(h, reset)
        return h, wm.posterior_logits(h, wm.embed({g.name: obs[i] for i, g in enumerate(self.groups)}))


class WorldActorGraph(nn.Module):
    """``actor``: h [B, N, deter], z [B, N, stoch * classes] one-hot -> logits [B, N, A] (the
    policy's, on world-model features and the predicted actions of the others; a group's missing
    actions at -1e9)."""

    def __init__(self, agent: Any) -> None:
        super().__init__()
        self.agent, self.wm, self.actors = agent, agent.wm, agent.actors

    def specs(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        wm = self.wm
        N = wm.num_agents
        return _hz_specs(wm), [TensorSpec("logits", "float32", (-1, N, wm.num_actions))]

    def forward(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        feat = torch.cat([h, z], -1)
        return self.agent.logits(feat, self.wm.others_probs(feat))


class WorldStepGraph(nn.Module):
    """``step`` (the imagine step): h, z, action [B, N] int64 -> h_next [B, N, deter], prior
    [B, N, stoch, classes] (normalised log-probabilities of the next latent), reward [B, N] and
    continuation probability [B, N] of the step."""

    def __init__(self, agent: Any) -> None:
        super().__init__()
        self.wm = agent.wm

    def specs(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        wm = self.wm
        N = wm.num_agents
        ins = _hz_specs(wm) + [TensorSpec("action", "int64", (-1, N))]
        outs = [
            TensorSpec("h_next", "float32", (-1, N, wm.deter_size)),
            TensorSpec("prior", "float32", (-1, N, wm.stoch_size, wm.classes)),
            TensorSpec("reward", "float32", (-1, N)),
            TensorSpec("cont", "float32", (-1, N)),
        ]
        return ins, outs

    def forward(self, h: torch.Tensor, z: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, ...]:
        wm = self.wm
        h_next = wm.transition(h, z, F.one_hot(action, wm.num_actions).to(h.dtype))
        return h_next, wm.prior_logits(h_next), wm.reward(h_next), torch.sigmoid(wm.cont_logit(h_next))


class WorldValueGraph(nn.Module):
    """``value``: h, z -> value [B, N] of the slow target critic (what planning bootstraps with)."""

    def __init__(self, agent: Any) -> None:
        super().__init__()
        self.agent, self.wm, self.target_critics = agent, agent.wm, agent.target_critics

    def specs(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        return _hz_specs(self.wm), [TensorSpec("value", "float32", (-1, self.wm.num_agents))]

    def forward(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.agent.values(torch.cat([h, z], -1), target=True)


class WorldBehaviourGraph(nn.Module):
    """``behaviour``: h, z -> probabilities [B, N(predictor), N(actor), A] of every agent's action
    as each agent predicts it (behaviour prediction)."""

    def __init__(self, agent: Any) -> None:
        super().__init__()
        self.wm = agent.wm

    def specs(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        wm = self.wm
        N = wm.num_agents
        return _hz_specs(wm), [TensorSpec("behaviour", "float32", (-1, N, N, wm.num_actions))]

    def forward(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.wm.behaviour_logits(torch.cat([h, z], -1)).softmax(-1)


class WorldObsRewardGraph(nn.Module):
    """``obs_reward`` (only for agents with ``reward_from="obs"``): obs/<g> [B, n, d] (the previous
    step's observations, real or predicted), h, z [B, N, ...] (the state after the step) -> obs/<g>
    [B, n, d] (the observations predicted for the state) and reward [B, N] (the agent's reward
    network on them): what imagination scores a step with in place of ``step``'s reward."""

    def __init__(self, agent: Any) -> None:
        super().__init__()
        self.wm, self.groups, self.reward_model = agent.wm, list(agent.groups), agent.reward_model

    def specs(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        obs = [TensorSpec(f"obs/{g.name}", "float32", (-1, g.num_agents, g.obs_dim)) for g in self.groups]
        return obs + _hz_specs(self.wm), obs + [TensorSpec("reward", "float32", (-1, self.wm.num_agents))]

    def forward(self, obs: list[torch.Tensor], h: torch.Tensor, z: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        prev = {g.name: obs[i] for i, g in enumerate(self.groups)}
        pred = self.wm.predict_obs(torch.cat([h, z], -1), prev)
        return [pred[g.name] for g in self.groups], self.reward_model(pred)


def _hz_specs(wm: Any) -> list[TensorSpec]:
    N = wm.num_agents
    return [TensorSpec("h", "float32", (-1, N, wm.deter_size)), TensorSpec("z", "float32", (-1, N, wm.stoch_dim))]


WORLD_GRAPHS = {
    "filter": WorldFilterGraph,
    "actor": WorldActorGraph,
    "step": WorldStepGraph,
    "value": WorldValueGraph,
    "behaviour": WorldBehaviourGraph,
}
