"""A multi-agent world model (after DreamerV3 and MAMBA), torch, device-agnostic.

Per agent ``i`` and step ``t`` the model keeps a deterministic recurrent state ``h[t, i]`` and a
stochastic latent ``z[t, i]`` (``stoch_size`` categoricals of ``classes`` classes, one-hot,
straight-through gradients). The feature of an agent is ``feat = [h, z]``.

    embed[t, i]   = encoder_g([obs[t, i], id_i])                    (weights shared within group g)
    z[t, i]       ~ posterior(h[t, i], embed[t, i])                  (from the observation)
    z'[t, i]      ~ prior(h[t, i])                                   (imagined, no observation)
    h[t+1]        = transition(h[t], z[t], a[t])                     (agents attend to each other)
    obs[t, i]     ~ decoder_g(feat[t, i])
    reward[t, i]  ~ reward(h[t+1, i]),  continue[t, i] ~ cont(h[t+1, i])  (1 - terminated)
    a[t, j]       ~ behaviour(feat[t, i])[j]   for every other agent j   (behaviour prediction)

The transition mixes agents with one multi-head self-attention layer over the agent axis, so each
agent's next state depends on what the others did (learned communication, as in MAMBA). Acting
reads these states, so the agents share what they observe through the model; ``agent_mixing=False``
leaves the attention out: agent i's states then depend on its own observations and actions only
(decentralised execution). A state
whose step starts an episode (``is_first``) is replaced by ``h_init = transition(0, 0, 0)``,
which is also what acting uses after a reset. Reward and continuation are read from ``h[t+1]``
computed before the next observation, so the last step of an episode (whose successor
observation belongs to infos["final_obs"], not to the buffer) still gets its targets.
Truncation is not a termination: it only ends the stored episode (``is_first`` of the next step).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from genmarl.algos.config import DECODER_INPUTS, OBS_TARGETS
from genmarl.algos.learner import GroupInfo


def symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.expm1(x.abs())


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int = 1) -> nn.Sequential:
    """``layers`` hidden layers of Linear -> LayerNorm -> SiLU, then a linear output."""
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), nn.LayerNorm(hidden), nn.SiLU()]
        d = hidden
    mods.append(nn.Linear(d, out_dim))
    return nn.Sequential(*mods)


def agent_ids(like: torch.Tensor, n: int) -> torch.Tensor:
    """One-hot ids [..., n, n] of a group's ``n`` agents for inputs ``like`` [..., n, d] (same dtype and device)."""
    return torch.eye(n, device=like.device, dtype=like.dtype).expand(*like.shape[:-1], n)


def mix_logits(logits: torch.Tensor, unimix: float) -> torch.Tensor:
    """Logits of ``(1 - unimix) * softmax(logits) + unimix / k`` over the last axis."""
    if unimix <= 0:
        return logits.log_softmax(-1)
    probs = (1.0 - unimix) * logits.softmax(-1) + unimix / logits.shape[-1]
    return probs.log()


def categorical_draw(probs: torch.Tensor) -> torch.Tensor:
    """Indices [...] drawn from the (unnormalised, non-negative) probabilities ``[..., k]``.

    Inverse-CDF sampling: one uniform per draw against the cumulative sums. About 10x faster than
    ``torch.multinomial`` on CPU for the many small categoricals of a world model, and the same on
    any device. A class of probability zero is never drawn: the uniform is kept strictly below the
    total mass, so rounding cannot land past the last class that has mass.
    """
    return inverse_cdf(probs, torch.rand_like(probs[..., 0]))


def inverse_cdf(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Index [...] of the class where the uniform ``u`` [...] in [0, 1) falls in the cumulative
    sums of ``probs`` [..., k]: :func:`categorical_draw` with the uniforms given (what exported
    graphs, which draw nothing themselves, take as an input)."""
    cdf = probs.cumsum(-1)
    total = cdf[..., -1:]
    x = torch.minimum(u.unsqueeze(-1) * total, torch.nextafter(total, torch.zeros_like(total)))
    return (cdf <= x).sum(-1).clamp_(max=probs.shape[-1] - 1)


def straight_through_sample(logits: torch.Tensor, unimix: float, deterministic: bool = False) -> torch.Tensor:
    """One-hot samples ``[..., k]`` of ``Categorical(mix(logits))`` with straight-through gradients."""
    logp = mix_logits(logits, unimix)
    probs = logp.exp()
    if deterministic:
        idx = probs.argmax(-1)
    else:
        idx = categorical_draw(probs.detach())
    one_hot = F.one_hot(idx, probs.shape[-1]).to(probs.dtype)
    return one_hot + probs - probs.detach()


def categorical_kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(p || q) summed over the last axis; inputs are normalised log-probabilities."""
    return (p_logits.exp() * (p_logits - q_logits)).sum(-1)


@dataclass
class ObserveResult:
    """World-model states along replayed sequences (``B`` sequences, ``T`` steps, ``N`` agents)."""

    h: torch.Tensor  # [B, T, N, deter]
    z: torch.Tensor  # [B, T, N, stoch * classes] one-hot (straight-through)
    h_next: torch.Tensor  # [B, T, N, deter]: transition(h[t], z[t], a[t])
    post_logits: torch.Tensor  # [B, T, N, stoch, classes] (mixed, normalised)
    embed: torch.Tensor  # [B, T, N, hidden]

    @property
    def feat(self) -> torch.Tensor:
        return torch.cat([self.h, self.z], -1)


class WorldModel(nn.Module):
    """Multi-agent world model for agent groups ``groups`` (discrete actions).

    Agents are ordered group by group (``N`` in all); actions are one-hot over ``A`` = the
    largest action count of any group (a group's invalid actions are masked out).
    """

    def __init__(
        self,
        groups: list[GroupInfo],
        *,
        deter_size: int = 128,
        stoch_size: int = 8,
        classes: int = 8,
        hidden_size: int = 128,
        attention_heads: int = 4,
        agent_mixing: bool = True,
        unimix: float = 0.01,
        layers: int = 2,
        obs_target: str = "absolute",
        obs_symlog: bool = False,
        decoder_input: str = "feat",
    ) -> None:
        super().__init__()
        if obs_target not in OBS_TARGETS:
            raise ValueError(f"obs_target must be one of {OBS_TARGETS}, got {obs_target!r}")
        if decoder_input not in DECODER_INPUTS:
            raise ValueError(f"decoder_input must be one of {DECODER_INPUTS}, got {decoder_input!r}")
        self.decoder_input = decoder_input
        self.obs_target = obs_target
        self.obs_symlog = bool(obs_symlog)
        for g in groups:
            if g.continuous:
                raise ValueError(
                    f"the generative agent needs discrete actions; group {g.name!r} has a continuous action space "
                    "(make the env with continuous_actions=False, the MPE default)"
                )
        self.groups = list(groups)
        self.num_agents = sum(g.num_agents for g in groups)
        self.num_actions = max(g.act_n for g in groups)
        self.deter_size, self.stoch_size, self.classes = deter_size, stoch_size, classes
        self.stoch_dim = stoch_size * classes
        self.feat_size = deter_size + self.stoch_dim
        self.hidden_size = hidden_size
        self.unimix = unimix
        N, A = self.num_agents, self.num_actions
        self.register_buffer("agent_ids", torch.eye(N), persistent=False)
        mask = torch.zeros(N, A, dtype=torch.bool)
        slices, start = {}, 0
        for g in groups:
            mask[start : start + g.num_agents, : g.act_n] = True
            slices[g.name] = slice(start, start + g.num_agents)
            start += g.num_agents
        self.register_buffer("action_mask", mask, persistent=False)  # [N, A] valid actions of each agent
        # [N, N-1]: row i lists the agents other than i (a buffer, so that traced graphs hold it as a constant)
        others = torch.tensor([[j for j in range(N) if j != i] for i in range(N)], dtype=torch.long).view(N, max(N - 1, 0))
        self.register_buffer("others_index", others, persistent=False)
        self.slices = slices
        self.encoders = nn.ModuleDict({g.name: mlp(g.obs_dim + g.num_agents, hidden_size, hidden_size, layers) for g in groups})
        dec_in = self.feat_size if decoder_input == "feat" else deter_size
        self.decoders = nn.ModuleDict({g.name: mlp(dec_in, hidden_size, g.obs_dim, layers) for g in groups})
        self.abs_decoders = (
            nn.ModuleDict({g.name: mlp(dec_in, hidden_size, g.obs_dim, layers) for g in groups}) if obs_target == "both" else None
        )
        self.trans_in = mlp(self.stoch_dim + A + N, hidden_size, hidden_size)
        # agent_mixing=False: no attention, so agent i's states depend on its own observations and actions
        # only (decentralised execution); the model then has no parameters for the mixing either
        self.agent_mixing = bool(agent_mixing)
        self.attn_norm = nn.LayerNorm(hidden_size) if agent_mixing else None
        self.attn = nn.MultiheadAttention(hidden_size, attention_heads, batch_first=True) if agent_mixing else None
        self.gru = nn.GRUCell(hidden_size, deter_size)
        self.prior_net = mlp(deter_size, hidden_size, self.stoch_dim, layers)
        self.post_net = mlp(deter_size + hidden_size, hidden_size, self.stoch_dim, layers)
        self.reward_head = mlp(deter_size, hidden_size, 1, layers)
        self.cont_head = mlp(deter_size, hidden_size, 1)
        self.behaviour_head = mlp(self.feat_size, hidden_size, N * A)

    # ---- pieces ------------------------------------------------------------------------

    def embed(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """obs[g]: [..., n_g, obs_dim_g] -> [..., N, hidden] (groups concatenated)."""
        out = []
        for g in self.groups:
            o = obs[g.name]
            out.append(self.encoders[g.name](torch.cat([o, agent_ids(o, g.num_agents)], -1)))
        return torch.cat(out, -2)

    def decode(self, feat: torch.Tensor) -> dict[str, torch.Tensor]:
        """feat: [..., N, feat] -> the decoder's raw outputs [..., n_g, obs_dim_g] (see ``obs_target``;
        in symlog space with ``obs_symlog``). :meth:`predict_obs` turns them into observations."""
        x = self._decoder_features(feat)
        return {g.name: self.decoders[g.name](x[..., self.slices[g.name], :]) for g in self.groups}

    def _decoder_features(self, feat: torch.Tensor) -> torch.Tensor:
        """What the decoder heads read: [h, z], or h alone with ``decoder_input="deter"``."""
        return feat[..., : self.deter_size] if self.decoder_input == "deter" else feat

    def predict_obs(self, feat: torch.Tensor, prev_obs: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Predicted observations {g: [..., n_g, d_g]} of the states ``feat`` [..., N, F].

        With ``obs_target="delta"`` the prediction is ``prev_obs`` (the previous step's
        observation, real or predicted; None at an episode's first step) plus the predicted change.
        """
        return self.obs_from_targets(self.decode(feat), prev_obs)

    def predict_sequence(self, feat: torch.Tensor, start_obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Predicted observations {g: [K, ..., n_g, d_g]} of K consecutive states ``feat``
        [K, ..., N, F] that follow the observation ``start_obs`` {g: [..., n_g, d_g]}: one batched
        decoder call; with delta targets the changes are summed from ``start_obs`` on, which is
        :meth:`predict_obs` applied step by step."""
        x = self.obs_from_targets(self.decode(feat))  # observations, or their changes (delta targets)
        if self.obs_target == "absolute":
            return x
        return {name: start_obs[name].unsqueeze(0) + v.cumsum(0) for name, v in x.items()}

    def obs_from_targets(
        self, raw: dict[str, torch.Tensor], prev_obs: dict[str, torch.Tensor] | None = None
    ) -> dict[str, torch.Tensor]:
        """Inverts :meth:`recon_targets` for one step: decoder-space values -> observations."""
        out = {}
        for name, r in raw.items():
            x = symexp(r) if self.obs_symlog else r
            if self.obs_target != "absolute" and prev_obs is not None:
                x = prev_obs[name] + x
            out[name] = x
        return out

    def recon_targets(
        self, obs: dict[str, torch.Tensor], is_first: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Decoder targets {g: [B, T, n_g, d_g]} for observed sequences and where they are
        defined [B, T] bool: everywhere for absolute targets; for deltas, every step but a
        window's first when that step is mid-episode (its previous observation is not in the window).
        """
        first = is_first.to(torch.bool)
        valid = torch.ones_like(first)
        out = {}
        for g in self.groups:
            o = obs[g.name]
            if self.obs_target != "absolute":
                prev = torch.cat([torch.zeros_like(o[:, :1]), o[:, :-1]], 1)
                prev = torch.where(first[:, :, None, None], torch.zeros_like(prev), prev)
                o = o - prev
            out[g.name] = symlog(o) if self.obs_symlog else o
        if self.obs_target != "absolute":
            valid = valid.clone()
            valid[:, 0] = first[:, 0]
        return out, valid

    @torch.no_grad()
    def open_loop_errors(
        self,
        obs: dict[str, torch.Tensor],
        actions: torch.Tensor,
        is_first: torch.Tensor,
        mask: torch.Tensor,
        horizon: int,
        states: ObserveResult | None = None,
        rewards: torch.Tensor | None = None,
        reward_model: Any = None,
    ) -> dict[str, Any]:
        """Open-loop prediction errors on windows ``[B, horizon + 1]`` (``mask`` marks real steps).

        From the posterior at step 0, the model is rolled forward with the actions actually taken
        and the prior's mode; ``obs_error_k[k-1]`` is the mean squared error per observation
        element of the prediction of step k, ``obs_error_trivial_k`` the same for 'obs[k] = obs[0]',
        ``recon_error`` the posterior reconstruction of step 0. ``states``: the deterministic
        ``observe`` of these windows, when the caller already has it. With ``rewards`` [B, T, N]
        also ``reward_error_k[k-1]``: the squared error of the reward predicted for step k-1 along
        the same open-loop rollout (what imagination scores policies with), per agent: read from
        the state by the reward head, or with ``reward_model`` (an :class:`ObsRewardModel`) from
        the predicted observations of step k.
        """
        out = self.observe(obs, actions, is_first, deterministic=True) if states is None else states
        d_total = sum(g.num_agents * g.obs_dim for g in self.groups)

        def sq_err(pred: dict[str, torch.Tensor], t: int, keep: torch.Tensor) -> float:
            err = sum(((pred[g.name] - obs[g.name][:, t]) ** 2).sum((-1, -2)) for g in self.groups)
            return float((err[keep] / d_total).mean()) if keep.any() else float("nan")

        start = {g.name: obs[g.name][:, 0] for g in self.groups}
        # the step-0 reconstruction is relative to step -1, which the window lacks: count it only where
        # step 0 starts an episode (delta targets) -- absolute targets count everywhere
        recon_keep = mask[:, 0] & (is_first[:, 0].to(torch.bool) if self.obs_target != "absolute" else True)
        recon = self.predict_obs(out.feat[:, 0], None)
        res: dict[str, Any] = {"recon_error": sq_err(recon, 0, recon_keep)}
        errs, trivial, rew_errs = [], [], []
        for k, h, pred in self._open_loop(out.h[:, 0], out.z[:, 0], actions, start, horizon):
            if rewards is not None:  # the reward of step k-1 exists where no episode started in 1..k-1
                rew_keep = mask[:, k - 1] & (~is_first[:, 1:k].to(torch.bool)).all(1)
                rew_hat = self.reward(h) if reward_model is None else reward_model(pred)
                rew_err = ((rew_hat - rewards[:, k - 1]) ** 2).mean(-1)
                rew_errs.append(float(rew_err[rew_keep].mean()) if rew_keep.any() else float("nan"))
            keep = mask[:, k] & ~is_first[:, k].to(torch.bool)
            errs.append(sq_err(pred, k, keep))
            trivial.append(sq_err(start, k, keep))
        res["obs_error_k"], res["obs_error_trivial_k"] = errs, trivial
        if rewards is not None:
            res["reward_error_k"] = rew_errs
        return res

    def _open_loop(
        self, h: torch.Tensor, z: torch.Tensor, actions: torch.Tensor, start_obs: dict[str, torch.Tensor], steps: int
    ) -> Iterator[tuple[int, torch.Tensor, dict[str, torch.Tensor]]]:
        """Rolls the model ``steps`` steps from ``h``, ``z`` [B, N, ...] with the actions taken
        (``actions`` [B, > steps, N]) and the prior's mode (straight-through), predicting
        observations from ``start_obs`` on. Yields (k, h after the k-th transition -- the state
        the reward of step k-1 is read from --, the predicted observations of step k), k = 1..steps.
        The rollout behind :meth:`overshoot_loss` and :meth:`open_loop_errors`."""
        a1h = self.one_hot_actions(actions)
        pred = start_obs
        for k in range(1, steps + 1):
            h = self.transition(h, z, a1h[:, k - 1])
            z = self.sample_z(self.prior_logits(h), deterministic=True)  # the mode, straight-through
            pred = self.predict_obs(torch.cat([h, z], -1), pred)
            yield k, h, pred

    def one_hot_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """actions: [..., N] int -> [..., N, A] float."""
        return F.one_hot(actions.long(), self.num_actions).float()

    def transition(self, h: torch.Tensor, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """h: [..., N, deter], z: [..., N, stoch_dim], a: [..., N, A] one-hot -> next h [..., N, deter]."""
        lead = h.shape[:-2]
        N = self.num_agents
        x = self.trans_in(torch.cat([z, a, self.agent_ids.expand(*lead, N, N)], -1)).reshape(-1, N, self.hidden_size)
        if self.agent_mixing:
            x = x + self.attend(self.attn_norm(x))
        h_new = self.gru(x.reshape(-1, self.hidden_size), h.reshape(-1, self.deter_size))
        return h_new.reshape(*lead, N, self.deter_size)

    def attend(self, y: torch.Tensor) -> torch.Tensor:
        """Multi-head self-attention over the agent axis of ``y`` [M, N, hidden], with the weights of
        ``self.attn`` (an ``nn.MultiheadAttention``, kept for its parameters and checkpoints).

        The same function as ``self.attn(y, y, y)`` (equal to float rounding; a test checks it), written
        for what it is here: attention among a handful of agents per row. The scores and the weighted
        sum are broadcast products over the ``N x N`` agent pairs, not batched matrix products or a
        fused attention kernel, which cost about 1.5x as much per call at N = 3 on the CPU.
        """
        heads = self.attn.num_heads
        dh = self.hidden_size // heads
        q, k, v = F.linear(y, self.attn.in_proj_weight, self.attn.in_proj_bias).unflatten(-1, (3, heads, dh)).unbind(-3)
        scores = (q.unsqueeze(-3) * k.unsqueeze(-4)).sum(-1) * dh**-0.5  # [M, N (query), N (key), heads]
        mixed = (scores.softmax(-2).unsqueeze(-1) * v.unsqueeze(-4)).sum(-3)  # [M, N, heads, dh]
        return self.attn.out_proj(mixed.flatten(-2))

    def initial_state(self, *lead: int) -> torch.Tensor:
        """h_init = transition(0, 0, 0), expanded to [*lead, N, deter]."""
        dev = self.agent_ids.device
        N = self.num_agents
        h0 = self.transition(
            torch.zeros(1, N, self.deter_size, device=dev),
            torch.zeros(1, N, self.stoch_dim, device=dev),
            torch.zeros(1, N, self.num_actions, device=dev),
        )[0]
        return h0.expand(*lead, N, self.deter_size)

    def restart(self, h: torch.Tensor, reset: torch.Tensor) -> torch.Tensor:
        """h [B, N, deter] with the rows where ``reset`` [B] bool replaced by ``h_init`` (a step that
        starts an episode, or acting)."""
        return torch.where(reset[:, None, None], self.initial_state(h.shape[0]), h)

    def prior_logits(self, h: torch.Tensor) -> torch.Tensor:
        """[..., N, deter] -> mixed log-probabilities [..., N, stoch, classes]."""
        return mix_logits(self.prior_net(h).unflatten(-1, (self.stoch_size, self.classes)), self.unimix)

    def posterior_logits(self, h: torch.Tensor, embed: torch.Tensor) -> torch.Tensor:
        return mix_logits(self.post_net(torch.cat([h, embed], -1)).unflatten(-1, (self.stoch_size, self.classes)), self.unimix)

    def posterior_z(self, h: torch.Tensor, obs: dict[str, torch.Tensor], deterministic: bool = False) -> torch.Tensor:
        """One filter step's latent: the posterior's draw (or mode) for states h [..., N, deter]
        and observations obs[g] [..., n_g, d_g] -> one-hot [..., N, stoch_dim]."""
        return self.sample_z(self.posterior_logits(h, self.embed(obs)), deterministic)

    def sample_z(self, logits: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """[..., stoch, classes] mixed log-probs -> one-hot [..., stoch * classes] (straight-through)."""
        return straight_through_sample(logits, 0.0, deterministic).flatten(-2)

    def reward(self, h_next: torch.Tensor) -> torch.Tensor:
        """Predicted reward [..., N] of the step that led to ``h_next``."""
        return symexp(self.reward_head(h_next).squeeze(-1))

    def cont_logit(self, h_next: torch.Tensor) -> torch.Tensor:
        """Logit [..., N] of 'the episode continues' (not terminated) after the step."""
        return self.cont_head(h_next).squeeze(-1)

    def behaviour_logits(self, feat: torch.Tensor) -> torch.Tensor:
        """Each agent's prediction of every agent's action: [..., N(predictor), N(actor), A];
        actions invalid for the predicted agent's group are -inf."""
        logits = self.behaviour_head(feat).unflatten(-1, (self.num_agents, self.num_actions))
        return logits.masked_fill(~self.action_mask, float("-inf"))

    def others_probs(self, feat: torch.Tensor) -> torch.Tensor:
        """Predicted action probabilities of the *other* agents, flattened for the actor:
        [..., N, (N - 1) * A] (agent i's row lists agents j != i in order)."""
        N, A = self.num_agents, self.num_actions
        probs = self.behaviour_logits(feat).softmax(-1)  # [..., N, N, A]
        if N == 1:
            return probs.new_zeros(*probs.shape[:-2], 0)
        idx = self.others_index.view(N, N - 1, 1).expand(*probs.shape[:-3], N, N - 1, A)
        return probs.gather(-2, idx).flatten(-2)

    # ---- sequences -----------------------------------------------------------------------

    def observe(
        self, obs: dict[str, torch.Tensor], actions: torch.Tensor, is_first: torch.Tensor, deterministic: bool = False
    ) -> ObserveResult:
        """Filters replayed sequences: obs[g] [B, T, n_g, d_g], actions [B, T, N] int, is_first [B, T] bool."""
        B, T = actions.shape[:2]
        embed = self.embed(obs)
        a1h = self.one_hot_actions(actions)
        h_init = self.initial_state(B)
        first = is_first.to(torch.bool)
        hs, zs, hns, posts = [], [], [], []
        h = h_init
        for t in range(T):
            if t > 0:
                h = torch.where(first[:, t, None, None], h_init, hn)
            post = self.posterior_logits(h, embed[:, t])
            z = self.sample_z(post, deterministic)
            hn = self.transition(h, z, a1h[:, t])
            hs.append(h)
            zs.append(z)
            hns.append(hn)
            posts.append(post)
        return ObserveResult(
            h=torch.stack(hs, 1), z=torch.stack(zs, 1), h_next=torch.stack(hns, 1), post_logits=torch.stack(posts, 1), embed=embed
        )

    def loss(
        self,
        obs: dict[str, torch.Tensor],
        actions: torch.Tensor,
        rewards: torch.Tensor,
        terminated: torch.Tensor,
        is_first: torch.Tensor,
        *,
        free_nats: float = 1.0,
        kl_dyn: float = 0.5,
        kl_rep: float = 0.1,
        behaviour_coef: float = 1.0,
        overshoot: int = 0,
        overshoot_coef: float = 1.0,
        overshoot_reward_coef: float = 0.0,
    ) -> tuple[torch.Tensor, dict[str, float], ObserveResult]:
        """World-model loss on replayed sequences (all [B, T, ...]; rewards/terminated [B, T, N]).

        reconstruction (squared error summed over obs dims) + reward (squared error in symlog space)
        + continuation (binary cross-entropy) + behaviour (cross-entropy of every other agent's
        action) + KL balancing with free nats (DreamerV3) + with ``overshoot`` > 0 the open-loop
        loss (:meth:`overshoot_loss`: observations x ``overshoot_coef``, rewards x
        ``overshoot_reward_coef``). Returns (loss, stats as floats read in one sync, states).
        """
        out = self.observe(obs, actions, is_first)
        feat = out.feat
        recon = self.decode(feat)
        targets, valid = self.recon_targets(obs, is_first)
        w = valid.to(feat.dtype)[..., None] / valid.to(feat.dtype).mean().clamp(min=1e-8)  # [B, T, 1]
        rec_loss = sum((w * ((recon[g.name] - targets[g.name]) ** 2).sum(-1)).mean() for g in self.groups)
        if self.abs_decoders is not None:
            x = self._decoder_features(feat)
            for g in self.groups:
                target = symlog(obs[g.name]) if self.obs_symlog else obs[g.name]
                rec_loss = rec_loss + ((self.abs_decoders[g.name](x[..., self.slices[g.name], :]) - target) ** 2).sum(-1).mean()
        rew_pred = self.reward_head(out.h_next).squeeze(-1)
        rew_loss = ((rew_pred - symlog(rewards)) ** 2).mean()
        cont_target = 1.0 - terminated.float()
        cont_loss = F.binary_cross_entropy_with_logits(self.cont_logit(out.h_next), cont_target)
        prior = self.prior_logits(out.h)
        post = out.post_logits
        dyn = categorical_kl(post.detach(), prior).sum(-1)  # [B, T, N]
        rep = categorical_kl(post, prior.detach()).sum(-1)
        dyn_loss = dyn.clamp(min=free_nats).mean()
        rep_loss = rep.clamp(min=free_nats).mean()
        beh_loss, beh_acc = self.behaviour_loss(feat, actions)
        loss = rec_loss + rew_loss + cont_loss + kl_dyn * dyn_loss + kl_rep * rep_loss + behaviour_coef * beh_loss
        os_terms = (
            self.overshoot_loss(out, obs, actions, is_first, overshoot, rewards if overshoot_reward_coef > 0 else None)
            if overshoot > 0
            else None
        )
        os_loss = os_rew = None
        if os_terms is not None:
            os_loss, os_rew = os_terms
            loss = loss + overshoot_coef * os_loss
            if os_rew is not None:
                loss = loss + overshoot_reward_coef * os_rew
        stats = {
            "wm/loss": loss,
            "wm/recon": rec_loss,
            "wm/reward_loss": rew_loss,
            "wm/cont_loss": cont_loss,
            "wm/kl": dyn.mean(),
            "wm/behaviour_loss": beh_loss,
            "wm/behaviour_acc_train": beh_acc,
        }
        if os_loss is not None:
            stats["wm/overshoot_loss"] = os_loss
        if os_rew is not None:
            stats["wm/overshoot_reward_loss"] = os_rew
        return loss, stats_to_floats({k: v.detach() for k, v in stats.items()}), out

    def overshoot_loss(
        self,
        out: ObserveResult,
        obs: dict[str, torch.Tensor],
        actions: torch.Tensor,
        is_first: torch.Tensor,
        steps: int,
        rewards: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """Open-loop prediction loss: from the posterior at each window's first step, the model is
        rolled ``steps`` steps with the actions taken and the prior's mode (straight-through), and
        the predicted observations are compared with the real ones (squared error summed over
        observation elements, steps after an episode boundary left out). This trains what
        imagination and planning use -- multi-step predictions -- rather than one-step filtering.

        With ``rewards`` [B, T, N] the reward head is also trained on the open-loop states (squared
        error in symlog space of the reward of each step rolled, as in :meth:`loss`): imagination
        scores the policy with rewards read from prior states, not from filtered ones.
        Returns (observation term, reward term or None), or None when the windows are too short."""
        T = actions.shape[1]
        K = min(int(steps), T - 1)
        if K < 1:
            return None
        alive = torch.cumprod((~is_first[:, 1 : K + 1].to(torch.bool)).to(out.h.dtype), 1)  # [B, K]
        start = {g.name: obs[g.name][:, 0] for g in self.groups}
        total = out.h.new_zeros(())
        rew_total = out.h.new_zeros(()) if rewards is not None else None
        for k, h, pred in self._open_loop(out.h[:, 0], out.z[:, 0], actions, start, K):
            if rew_total is not None:
                # the reward of step k-1 exists if no episode started in steps 1..k-1 (step k may start one)
                rew_alive = alive[:, k - 2] if k > 1 else torch.ones_like(alive[:, 0])
                rew_err = ((self.reward_head(h).squeeze(-1) - symlog(rewards[:, k - 1])) ** 2).mean(-1)  # [B]
                rew_total = rew_total + (rew_alive * rew_err).mean()
            err = sum(((pred[g.name] - obs[g.name][:, k]) ** 2).sum((-1, -2)) for g in self.groups)  # [B]
            total = total + (alive[:, k - 1] * err).mean()
        return total / K, (rew_total / K if rew_total is not None else None)

    def behaviour_loss(self, feat: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy of agent i's predictions of the actions of agents j != i. feat [..., N, F],
        actions [..., N] -> (mean loss, accuracy), both 0-d tensors."""
        N = self.num_agents
        if N == 1:
            return feat.new_zeros(()), feat.new_full((), float("nan"))
        logits = self.behaviour_logits(feat)  # [..., N, N, A]
        target = actions.long().unsqueeze(-2).expand(*actions.shape[:-1], N, N)  # [..., i, j] = a_j
        logp = logits.log_softmax(-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)  # [..., N, N]
        off = 1.0 - torch.eye(N, dtype=logp.dtype, device=feat.device)  # a mask, not an index: no data-dependent shapes
        count = off.sum() * logp[..., 0, 0].numel()
        loss = -(logp * off).sum() / count
        with torch.no_grad():
            acc = ((logits.argmax(-1) == target).to(logp.dtype) * off).sum() / count
        return loss, acc


def stats_to_floats(stats: dict[str, torch.Tensor]) -> dict[str, float]:
    """0-d tensors -> Python floats with one device-to-host copy (one sync per update, not one per statistic)."""
    if not stats:
        return {}
    return dict(zip(stats, torch.stack([v.float() for v in stats.values()]).tolist(), strict=True))
