"""MAPPO and IPPO (Yu et al. 2021; de Witt et al. 2020) on genmarl's batched envs.

One code path: ``algo="mappo"`` gives each agent group a centralised critic on the global state
(all agents' observations concatenated, plus the agent's one-hot id); ``algo="ippo"`` a critic on
the agent's own observation. Each agent group has its own actor and critic, shared by the group's
agents (one-hot agent id appended). Rollouts step the env's grouped arrays into a C++
:class:`~genmarl.buffers.RolloutBuffer`; GAE runs in C++.

    algo = MAPPO(env, PPOConfig(...))
    actions = algo.act(obs)                 # obs: env.reset_grouped()[0]
    stats = algo.collect(); losses = algo.update(algo.rollout)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from torch import nn

from genmarl.algos.config import PPOConfig
from genmarl.algos.learner import FinishedEpisodes, GroupedLearner, env_actions
from genmarl.algos.networks import Actor, Critic, ValueNorm
from genmarl.buffers import RolloutBuffer, env_spec
from genmarl.envs.vector_env import final_obs

# ---- loss pieces (unit-tested against hand-computed values) -------------------------


def policy_loss(
    log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor, clip_coef: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate: ``-mean(min(r A, clip(r, 1-c, 1+c) A))`` with ``r = exp(logp - old)``.
    Returns (loss, clip fraction, approximate KL ``mean((r - 1) - log r)``)."""
    log_ratio = log_prob - old_log_prob
    ratio = log_ratio.exp()
    unclipped = ratio * advantages
    clipped = ratio.clamp(1.0 - clip_coef, 1.0 + clip_coef) * advantages
    loss = -torch.min(unclipped, clipped).mean()
    with torch.no_grad():
        clipfrac = ((ratio - 1.0).abs() > clip_coef).float().mean()
        approx_kl = ((ratio - 1.0) - log_ratio).mean()
    return loss, clipfrac, approx_kl


def huber(error: torch.Tensor, delta: float) -> torch.Tensor:
    """Elementwise Huber loss; ``delta == 0`` gives ``error**2 / 2``."""
    if delta <= 0:
        return 0.5 * error.pow(2)
    a = error.abs()
    return torch.where(a <= delta, 0.5 * error.pow(2), delta * (a - 0.5 * delta))


def value_loss(
    values: torch.Tensor, old_values: torch.Tensor, targets: torch.Tensor, clip_coef: float | None, huber_delta: float
) -> torch.Tensor:
    """Value loss; with ``clip_coef`` the max of the unclipped and the clipped-prediction loss
    (predictions kept within ``clip_coef`` of the values at collection time)."""
    loss = huber(targets - values, huber_delta)
    if clip_coef is not None:
        clipped = old_values + (values - old_values).clamp(-clip_coef, clip_coef)
        loss = torch.max(loss, huber(targets - clipped, huber_delta))
    return loss.mean()


class MAPPO(GroupedLearner):
    """MAPPO / IPPO learner for an env with genmarl's grouped API (see :class:`GroupedLearner`)."""

    def __init__(self, env: Any, config: PPOConfig | None = None) -> None:
        self._init_learner(env, (config or PPOConfig()).validate())
        cfg = self.cfg
        self.state_dim = sum(g.num_agents * g.obs_dim for g in self.groups)
        self.actors = nn.ModuleDict()
        self.critics = nn.ModuleDict()
        self.value_norms = nn.ModuleDict()
        for g in self.groups:
            ids = g.num_agents if cfg.agent_id else 0
            self.actors[g.name] = Actor(
                g.obs_dim + ids, g.act_n, g.continuous, cfg.hidden_size, cfg.num_layers, cfg.layer_norm_input, cfg.use_gru
            )
            critic_in = (self.state_dim if cfg.algo == "mappo" else g.obs_dim) + ids
            self.critics[g.name] = Critic(critic_in, cfg.hidden_size, cfg.num_layers, cfg.layer_norm_input)
            self.value_norms[g.name] = ValueNorm()
        self.actors.to(self.device)
        self.critics.to(self.device)
        self.value_norms.to(self.device)
        self.actor_opt = torch.optim.Adam(self.actors.parameters(), lr=cfg.lr, eps=1e-5)
        self.critic_opt = torch.optim.Adam(self.critics.parameters(), lr=cfg.critic_lr, eps=1e-5)
        extra: dict[str, Any] = {}
        if cfg.use_gru:
            for g in self.groups:
                extra[f"{g.name}/h"] = ((g.num_agents, cfg.hidden_size), np.float32)
        self.rollout = RolloutBuffer(cfg.num_steps, self.num_envs, {**env_spec(env, action_extras=True, value_fields=True), **extra})
        self._ids = {g.name: torch.eye(g.num_agents, device=self.device) for g in self.groups}
        # rank of one group observation [n, *obs_shape] (vector observations: 2)
        self._obs_rank = {g: len(env.group_observation_space(g).shape) for g in env.groups}
        self._hidden = self._zero_hidden()

    # ---- inputs ----------------------------------------------------------------------

    def _zero_hidden(self) -> dict[str, torch.Tensor]:
        if not self.cfg.use_gru:
            return {}
        return {g.name: torch.zeros(self.num_envs, g.num_agents, self.cfg.hidden_size, device=self.device) for g in self.groups}

    def _with_id(self, x: torch.Tensor, g: str) -> torch.Tensor:
        """x: [..., n, d] -> [..., n, d + n] (one-hot agent id appended)."""
        if not self.cfg.agent_id:
            return x
        ids = self._ids[g].expand(*x.shape[:-1], self._ids[g].shape[0])
        return torch.cat([x, ids], -1)

    def _tensors(self, obs: dict[str, Any]) -> dict[str, torch.Tensor]:
        """[..., n, *obs_shape] arrays or tensors -> [..., n, obs_dim] tensors."""
        out = {}
        for g in self.groups:
            o = torch.as_tensor(obs[g.name], device=self.device).float()  # uint8 / int32 observations too
            lead = o.shape[: o.dim() - self._obs_rank[g.name]]
            out[g.name] = o.reshape(*lead, g.num_agents, g.obs_dim)
        return out

    def _mask_tensors(self, masks: dict[str, np.ndarray] | None) -> dict[str, torch.Tensor | None]:
        masks = masks or {}
        return {
            g.name: torch.as_tensor(masks[g.name], device=self.device) if g.masked and g.name in masks else None
            for g in self.groups
        }

    def _critic_inputs(self, obs_t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per group [..., n, critic_in]: global state (MAPPO) or own obs (IPPO), plus the id."""
        if self.cfg.algo == "ippo":
            return {g: self._with_id(o, g) for g, o in obs_t.items()}
        lead = next(iter(obs_t.values())).shape[:-2]
        state = torch.cat([obs_t[g.name].reshape(*lead, -1) for g in self.groups], -1)
        out = {}
        for g in self.groups:
            s = state.unsqueeze(-2).expand(*lead, g.num_agents, self.state_dim)
            out[g.name] = self._with_id(s, g.name)
        return out

    @torch.no_grad()
    def values(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Denormalised values ``[num_envs, n]`` per group for grouped observations."""
        inputs = self._critic_inputs(self._tensors(obs))
        out = {}
        for g in self.groups:
            v = self.critics[g.name](inputs[g.name])
            if self.cfg.value_norm:
                v = self.value_norms[g.name].denormalize(v)
            out[g.name] = v.cpu().numpy()
        return out

    # ---- acting ----------------------------------------------------------------------

    @torch.no_grad()
    def act(
        self,
        obs: dict[str, np.ndarray],
        deterministic: bool = False,
        reset: np.ndarray | None = None,
        action_mask: dict[str, np.ndarray] | None = None,
    ) -> dict[str, np.ndarray]:
        """Actions for grouped observations ``obs[g]: [num_envs, n, *obs_shape]``.

        ``reset [num_envs] bool`` (GRU policies): envs whose episode just restarted (the
        previous step's ``infos["done"]``) start from a zero hidden state. ``action_mask``
        (``infos["action_mask"]``): only valid actions are chosen.
        """
        actions, _, _ = self._policy(obs, deterministic, reset, action_mask)
        return actions

    def _policy(
        self, obs: dict[str, np.ndarray], deterministic: bool, reset: np.ndarray | None, action_mask: dict | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
        obs_t = self._tensors(obs)
        masks = self._mask_tensors(action_mask)
        if reset is not None and self.cfg.use_gru:
            keep = torch.as_tensor(~np.asarray(reset, bool), device=self.device)[:, None, None].float()
            for g in self._hidden:
                self._hidden[g] = self._hidden[g] * keep
        actions, log_probs, hiddens = {}, {}, {}
        for g in self.groups:
            x = self._with_id(obs_t[g.name], g.name)
            E, n = x.shape[:2]
            h = self._hidden[g.name].reshape(E * n, -1) if self.cfg.use_gru else None
            if h is not None:
                hiddens[g.name] = self._hidden[g.name].cpu().numpy()
            feats, h_new = self.actors[g.name].features(x.reshape(E * n, -1), h)
            m = masks[g.name]
            dist = self.actors[g.name].dist(feats, None if m is None else m.reshape(E * n, -1))
            if deterministic:
                a = dist.mean if g.continuous else dist.probs.argmax(-1)
            else:
                a = dist.sample()
            lp = dist.log_prob(a)
            if g.continuous:
                lp = lp.sum(-1)
                actions[g.name] = a.reshape(E, n, -1).cpu().numpy().astype(np.float32)
            else:
                actions[g.name] = a.reshape(E, n).cpu().numpy().astype(np.int64)
            log_probs[g.name] = lp.reshape(E, n).cpu().numpy().astype(np.float32)
            if h_new is not None:
                self._hidden[g.name] = h_new.reshape(E, n, -1)
        return actions, log_probs, hiddens

    env_actions = staticmethod(env_actions)

    @classmethod
    def csv_columns(cls, config: PPOConfig) -> tuple[list[str], list[str]]:
        """metrics.csv columns of this learner: (before the evaluation columns, at the end)."""
        return ["losses/policy", "losses/value", "losses/entropy", "losses/approx_kl", "losses/clipfrac", "losses/lr"], []

    # ---- collection ------------------------------------------------------------------

    @torch.no_grad()
    def collect(self) -> dict[str, Any]:
        """Steps ``num_steps`` times into ``self.rollout`` and computes GAE.

        Returns finished-episode statistics: ``episode_returns`` (mean return per agent of each
        finished episode), ``group_returns`` ({group: per-episode mean over its agents}),
        ``episode_lengths``.
        """
        if self.obs is None:
            self.reset()
        cfg = self.cfg
        self.rollout.reset()
        finished = FinishedEpisodes([g.name for g in self.groups])
        for _ in range(cfg.num_steps):
            obs = self.obs
            masks = self.masks
            actions, log_probs, hiddens = self._policy(obs, False, self._last_done if cfg.use_gru else None, masks)
            values = self.values(obs)
            nxt, rew, term, trunc, infos = self.env.step_grouped(self.env_actions(actions))
            done = infos["done"]
            final_values = {g.name: np.zeros((self.num_envs, g.num_agents), np.float32) for g in self.groups}
            if done.any():
                fv = self.values(final_obs(infos))
                for g in self.groups:
                    final_values[g.name] = np.where(done[:, None], fv[g.name], 0.0).astype(np.float32)
                finished.add(infos, done)
            step: dict[str, np.ndarray] = {}
            for g in self.groups:
                k = g.name
                step[f"{k}/obs"] = obs[k]
                step[f"{k}/action"] = actions[k]
                step[f"{k}/log_prob"] = log_probs[k]
                step[f"{k}/reward"] = rew[k]
                step[f"{k}/terminated"] = term[k]
                step[f"{k}/truncated"] = trunc[k]
                step[f"{k}/value"] = values[k].astype(np.float32)
                step[f"{k}/final_value"] = final_values[k]
                if cfg.use_gru:
                    step[f"{k}/h"] = hiddens[k]
                if g.masked:
                    step[f"{k}/action_mask"] = masks[k]
            self.rollout.add(step)
            self.obs = nxt
            self.masks = infos.get("action_mask", {})
            self._last_done = done
            self.env_steps += self.num_envs
        last = self.values(self.obs)
        self.rollout.compute_gae(last, gamma=cfg.gamma, gae_lambda=cfg.gae_lambda)
        return finished.summary()

    # ---- update ----------------------------------------------------------------------

    def set_progress(self, fraction_done: float) -> None:
        """Linear learning-rate decay (when enabled): lr * (1 - fraction_done)."""
        if not self.cfg.lr_decay:
            return
        scale = max(0.0, 1.0 - fraction_done)
        for opt, lr in ((self.actor_opt, self.cfg.lr), (self.critic_opt, self.cfg.critic_lr)):
            for pg in opt.param_groups:
                pg["lr"] = lr * scale

    def update(self, rollout: RolloutBuffer | None = None) -> dict[str, float]:
        """PPO epochs over a collected rollout (GAE computed). Returns mean losses."""
        cfg = self.cfg
        rollout = self.rollout if rollout is None else rollout
        adv_stats = {}
        for g in self.groups:
            if cfg.value_norm:
                self.value_norms[g.name].update(torch.as_tensor(rollout[f"{g.name}/return"], device=self.device))
            a = rollout[f"{g.name}/advantage"]
            adv_stats[g.name] = (float(a.mean()), float(a.std()))
        sums: dict[str, float] = {}
        count = 0
        for _ in range(cfg.update_epochs):
            for mb in rollout.minibatches(cfg.num_minibatches, rng=self.np_rng, by_env=cfg.use_gru):
                stats = self._minibatch_step(mb, adv_stats)
                for k, v in stats.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
        self.updates += 1
        out = {k: v / count for k, v in sums.items()}
        out["losses/lr"] = self.actor_opt.param_groups[0]["lr"]
        return out

    def _minibatch_step(self, mb: dict[str, np.ndarray], adv_stats: dict[str, tuple[float, float]]) -> dict[str, float]:
        cfg = self.cfg
        t = {k: torch.as_tensor(v, device=self.device) for k, v in mb.items()}
        obs_t = self._tensors({g.name: t[f"{g.name}/obs"] for g in self.groups})
        critic_in = self._critic_inputs(obs_t)
        actor_loss = torch.zeros((), device=self.device)
        critic_loss = torch.zeros((), device=self.device)
        stats = {"losses/policy": 0.0, "losses/value": 0.0, "losses/entropy": 0.0, "losses/approx_kl": 0.0, "losses/clipfrac": 0.0}
        for g in self.groups:
            k = g.name
            x = self._with_id(obs_t[k], k)
            actor = self.actors[k]
            if cfg.use_gru:  # x: [T, B, n, in]; keep time, reset at episode starts
                T, B, n = x.shape[:3]
                done_prev = (t[f"{k}/terminated"] | t[f"{k}/truncated"]).any(-1)  # [T, B]
                resets = torch.zeros_like(done_prev)
                resets[1:] = done_prev[:-1]
                resets = resets.unsqueeze(-1).expand(T, B, n).reshape(T, B * n)
                h0 = t[f"{k}/h"][0].reshape(B * n, -1)
                feats = actor.features_seq(x.reshape(T, B * n, -1), h0, resets).reshape(T, B, n, -1)
            else:
                feats, _ = actor.features(x, None)
            log_prob, entropy = actor.log_prob_entropy(feats, t[f"{k}/action"], t.get(f"{k}/action_mask"))
            adv = t[f"{k}/advantage"]
            if cfg.adv_norm:
                mean, std = adv_stats[k]
                adv = (adv - mean) / (std + 1e-8)
            pl, clipfrac, kl = policy_loss(log_prob, t[f"{k}/log_prob"], adv, cfg.clip_coef)
            ent = entropy.mean()
            v = self.critics[k](critic_in[k])
            targets, old_v = t[f"{k}/return"], t[f"{k}/value"]
            if cfg.value_norm:
                targets = self.value_norms[k].normalize(targets)
                old_v = self.value_norms[k].normalize(old_v)
            vl = value_loss(v, old_v, targets, cfg.value_clip_coef if cfg.clip_value_loss else None, cfg.huber_delta)
            actor_loss = actor_loss + pl - cfg.entropy_coef * ent
            critic_loss = critic_loss + cfg.value_coef * vl
            w = 1.0 / len(self.groups)
            stats["losses/policy"] += w * pl.item()
            stats["losses/value"] += w * vl.item()
            stats["losses/entropy"] += w * ent.item()
            stats["losses/approx_kl"] += w * kl.item()
            stats["losses/clipfrac"] += w * clipfrac.item()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        if cfg.max_grad_norm > 0:
            nn.utils.clip_grad_norm_(self.actors.parameters(), cfg.max_grad_norm)
        self.actor_opt.step()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        if cfg.max_grad_norm > 0:
            nn.utils.clip_grad_norm_(self.critics.parameters(), cfg.max_grad_norm)
        self.critic_opt.step()
        return stats

    # ---- persistence -------------------------------------------------------------------

    def state_dict(self, include_env: bool = True) -> dict[str, Any]:
        """Everything needed to continue bitwise: networks, optimisers, value norms, RNG states,
        counters and (``include_env``) the env's simulator state and policy hidden state."""
        state = {
            "config": self.cfg.to_dict(),
            "actors": self.actors.state_dict(),
            "critics": self.critics.state_dict(),
            "value_norms": self.value_norms.state_dict(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            **self._learner_state(include_env),
        }
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actors.load_state_dict(state["actors"])
        self.critics.load_state_dict(state["critics"])
        self.value_norms.load_state_dict(state["value_norms"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self._load_learner_state(state)


def IPPO(env: Any, config: PPOConfig | None = None) -> MAPPO:  # noqa: N802 - an algorithm's name
    """MAPPO's code path with per-agent critics on each agent's own observation."""
    cfg = dataclasses.replace(config or PPOConfig(), algo="ippo")
    return MAPPO(env, cfg)
