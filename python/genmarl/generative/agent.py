"""``GenerativeAgent`` (``algo="genrl"``): act on a multi-agent world model's predicted futures.

Loop (one ``collect()`` + ``update()`` per iteration, as the PPO learners):

1. act in ``num_envs`` real envs: filter each env's observation through the world model
   (posterior latent on top of the recurrent state), feed the actor the agent's features *and
   the predicted actions of the other agents*, or (``plan=K``) pick the first joint action of
   the best of K imagined futures; store the steps in a C++ :class:`~genmarl.buffers.EpisodeBuffer`;
2. ``replay_ratio`` gradient updates per env step, each: world-model loss on replayed sequences
   (``EpisodeBuffer.sample_sequences(mode="stitch")``), then an ``H``-step imagined rollout from
   every replayed state and an actor-critic update on it: lambda-returns from a slow target
   critic, REINFORCE advantages scaled by the 5-95th percentile range of the returns
   (DreamerV3), entropy bonus, critic regression in symlog space.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn
from torch.profiler import record_function

from genmarl.algos.config import GenRLConfig
from genmarl.algos.learner import FinishedEpisodes, GroupedLearner
from genmarl.buffers import EpisodeBuffer
from genmarl.generative.imagination import Imagined, ImaginationRollout, lambda_returns
from genmarl.generative.reward_model import ObsRewardModel, reward_pairs
from genmarl.generative.simulator_planning import SimulatorPlanner, check_simulator_env
from genmarl.generative.world_model import WorldModel, agent_ids, mlp, symexp, symlog
from genmarl.training.checkpoints import to_numpy, to_tensor

_MASKED = -1e9  # logit of an action a group does not have (finite: keeps entropies well defined)
_LOG_ALPHA_MIN, _LOG_ALPHA_MAX = math.log(1e-4), 0.0  # entropy_target: the adapted coefficients stay in [1e-4, 1]

# metrics.csv columns of a genrl run: the training statistics of an update ...
CSV_TRAINING_COLUMNS = [
    "perf/grad_steps", "losses/policy", "losses/value", "losses/entropy", "wm/loss", "wm/recon", "wm/reward_loss",
    "wm/cont_loss", "wm/kl", "wm/behaviour_loss", "imagination/return", "imagination/return_scale",
]  # fmt: skip
# ... and the world-model diagnostics measured at every evaluation (GenerativeAgent.diagnostics)
CSV_DIAGNOSTIC_COLUMNS = [
    "wm/obs_error_k1", "wm/obs_error_trivial", "wm/recon_error", "wm/reward_error", "wm/behaviour_acc",
    "wm/behaviour_acc_baseline", "wm/behaviour_acc_chance", "wm/behaviour_loglik", "wm/behaviour_loglik_uniform",
    "wm/imagined_return", "wm/real_return",
]  # fmt: skip


class _CandidatePolicy:
    """The agent's policy as planning samples it (see :meth:`GenerativeAgent.candidate_logits`)."""

    def __init__(self, agent: GenerativeAgent, unimix: float | None = None) -> None:
        self.agent, self.unimix = agent, unimix

    def logits(self, feat: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
        return self.agent.candidate_logits(feat, others, self.unimix)


@dataclasses.dataclass
class _Starts:
    """Replayed states an actor-critic update imagines from: h [S, N, deter], z [S, N, stoch_dim],
    their observations {g: [S, n_g, d_g]}, and the indices of the distillation starts (or None)."""

    h: torch.Tensor
    z: torch.Tensor
    obs: dict[str, torch.Tensor]
    distill: torch.Tensor | None

    def to(self, device: torch.device | str) -> _Starts:
        distill = None if self.distill is None else self.distill.to(device)
        return _Starts(self.h.to(device), self.z.to(device), {g: o.to(device) for g, o in self.obs.items()}, distill)


class GenerativeAgent(GroupedLearner):
    """The generative-RL agent for an env with genmarl's grouped API (discrete actions)."""

    def __init__(self, env: Any, config: GenRLConfig | None = None) -> None:
        self._init_learner(env, (config or GenRLConfig()).validate())
        cfg = self.cfg
        self.wm = WorldModel(
            self.groups,
            deter_size=cfg.deter_size,
            stoch_size=cfg.stoch_size,
            classes=cfg.classes,
            hidden_size=cfg.hidden_size,
            attention_heads=cfg.attention_heads,
            agent_mixing=cfg.agent_mixing,
            unimix=cfg.unimix,
            layers=cfg.mlp_layers,
            obs_target=cfg.obs_target,
            obs_symlog=cfg.obs_symlog,
            decoder_input=cfg.decoder_input,
        ).to(self.device)
        N, A, Fd = self.wm.num_agents, self.wm.num_actions, self.wm.feat_size
        self.num_agents, self.num_actions = N, A
        self.actors = nn.ModuleDict(
            {g.name: mlp(Fd + (N - 1) * A + g.num_agents, cfg.ac_hidden_size, g.act_n, layers=2) for g in self.groups}
        ).to(self.device)
        self.critics = nn.ModuleDict({g.name: mlp(Fd + g.num_agents, cfg.ac_hidden_size, 1, layers=2) for g in self.groups}).to(self.device)
        for g in self.groups:  # start near-uniform policies and zero values
            nn.init.zeros_(self.actors[g.name][-1].weight)
            nn.init.zeros_(self.actors[g.name][-1].bias)
            nn.init.zeros_(self.critics[g.name][-1].weight)
        self.target_critics = copy.deepcopy(self.critics).requires_grad_(False)
        self.model_opt = torch.optim.Adam(self.wm.parameters(), lr=cfg.model_lr, eps=1e-6)
        self.actor_opt = torch.optim.Adam(self.actors.parameters(), lr=cfg.actor_lr, eps=1e-6)
        self.critic_opt = torch.optim.Adam(self.critics.parameters(), lr=cfg.critic_lr, eps=1e-6)
        # entropy_target: one log entropy coefficient per agent, adapted to hold the policy's entropy at
        # entropy_target x log(the agent's number of actions)
        self.log_alpha: torch.Tensor | None = None
        if cfg.entropy_target > 0:
            self.entropy_goal = cfg.entropy_target * self.wm.action_mask.sum(-1).to(torch.float32).log().to(self.device)
            self.log_alpha = torch.full((N,), math.log(cfg.entropy_coef), device=self.device, requires_grad=True)
            self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.entropy_target_lr)
        self.buffer = EpisodeBuffer.for_env(env, cfg.buffer_capacity, seed=cfg.seed)
        # reward_from="obs": a reward network on (predicted) next observations, trained on real pairs
        self.reward_model: ObsRewardModel | None = None
        if cfg.reward_from == "obs":
            self.reward_model = ObsRewardModel(
                self.groups, hidden_size=cfg.reward_hidden_size, layers=cfg.reward_layers, inputs=cfg.reward_inputs
            ).to(self.device)
            self.reward_opt = torch.optim.Adam(self.reward_model.parameters(), lr=cfg.reward_lr, eps=1e-6)
        self.imagine = ImaginationRollout(self.wm, cfg.horizon, sampler=cfg.sampler, seed=cfg.seed, reward_model=self.reward_model)
        self.return_scale = torch.zeros((), device=self.device)  # EMA of the 5-95% range of returns
        self.grad_steps = 0
        self._credit = 0.0  # fractional gradient updates owed by replay_ratio
        self._trained_steps = 0  # env steps already paid for in gradient updates
        self._hidden = self._zero_hidden()
        self._last_returns = np.zeros(0)  # returns of the episodes the latest collect() finished
        self._acting = False  # False while prefilling with random actions
        self.simulator_planner = SimulatorPlanner(cfg.gamma)  # plan_model="simulator"; counts its env steps
        # overlap_updates: the actor-critic update of one gradient step runs on this (the calling)
        # thread while a worker thread trains the world model on the next batch. Imagination then
        # reads frozen copies of the models, refreshed after every world-model update.
        self.overlap = self._resolve_overlap()
        self._pending: _Starts | None = None  # starts of the actor-critic update still owed (overlap)
        self._pool: ThreadPoolExecutor | None = None
        self._frozen_imagine: ImaginationRollout | None = None  # imagination through the frozen copies
        if self.overlap:
            frozen_reward = None if self.reward_model is None else copy.deepcopy(self.reward_model).requires_grad_(False)
            self._frozen_imagine = ImaginationRollout(
                copy.deepcopy(self.wm).requires_grad_(False), cfg.horizon, sampler=cfg.sampler, seed=cfg.seed,
                reward_model=frozen_reward,
            )  # fmt: skip

    def _resolve_overlap(self) -> bool:
        """Whether ``overlap_updates`` applies here. The two threads must not share a random
        stream: the world model draws from torch's generator, imagination from genmarl's
        counter-based kernels (CPU), so runs stay deterministic. On CUDA the kernels are not used
        and overlapping gains nothing (the device already runs asynchronously)."""
        mode = self.cfg.overlap_updates
        if mode == "off":
            return False
        kernels = self.imagine.uses_kernels(self.device)
        if mode == "on":
            if not kernels:
                why = f"device {self.device}" if self.device.type != "cpu" else f"sampler={self.cfg.sampler!r}"
                raise ValueError(
                    f"overlap_updates='on' needs imagination on the CPU with genmarl's sampling kernels (got {why}); "
                    "use overlap_updates='auto' or 'off'"
                )
            return True
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return kernels and cores >= 2

    # ---- layout helpers ------------------------------------------------------------------

    def _ids(self, g: str, like: torch.Tensor) -> torch.Tensor:
        n = self.wm.slices[g].stop - self.wm.slices[g].start
        return agent_ids(like, n)

    def _cat_groups(self, values: dict[str, Any], dtype: torch.dtype | None = None) -> torch.Tensor:
        """{g: [..., n_g]} -> [..., N] on the device."""
        return torch.cat([torch.as_tensor(values[g.name], device=self.device) for g in self.groups], -1).to(dtype or torch.float32)

    def _split_groups(self, x: torch.Tensor) -> dict[str, np.ndarray]:
        """[E, N] -> {g: [E, n_g]} numpy."""
        x = x.cpu().numpy()
        return {g.name: np.ascontiguousarray(x[:, self.wm.slices[g.name]]) for g in self.groups}

    # ---- policy and values on world-model features ---------------------------------------

    def logits(self, feat: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
        """Policy logits [..., N, A] from features [..., N, F] and the predicted actions of the
        other agents [..., N, (N-1)A]; actions a group lacks get a large negative logit."""
        out = []
        for g in self.groups:
            sl = self.wm.slices[g.name]
            f = feat[..., sl, :]
            x = torch.cat([f, others[..., sl, :], self._ids(g.name, f)], -1)
            lg = self.actors[g.name](x)
            if g.act_n < self.num_actions:
                lg = F.pad(lg, (0, self.num_actions - g.act_n), value=_MASKED)
            out.append(lg)
        return torch.cat(out, -2)

    def candidate_logits(self, feat: torch.Tensor, others: torch.Tensor, unimix: float | None = None) -> torch.Tensor:
        """Logits of planning candidates' actions: the policy mixed with ``unimix`` (default
        ``cfg.plan_unimix``) of a uniform choice among each agent's valid actions (a group's
        missing actions stay masked)."""
        logits = self.logits(feat, others)
        u = self.cfg.plan_unimix if unimix is None else unimix
        if u <= 0:
            return logits
        valid = self.wm.action_mask.to(logits.dtype)  # [N, A]
        probs = (1 - u) * logits.softmax(-1) + u * valid / valid.sum(-1, keepdim=True)
        return torch.where(valid.bool(), probs.clamp_min(1e-30).log(), torch.full_like(logits, _MASKED))

    def values(self, feat: torch.Tensor, target: bool = False) -> torch.Tensor:
        """Values [..., N] of features [..., N, F] (the slow target critic with ``target``)."""
        return symexp(self._critic_raw(feat, target))

    def _critic_raw(self, feat: torch.Tensor, target: bool = False) -> torch.Tensor:
        critics = self.target_critics if target else self.critics
        out = []
        for g in self.groups:
            f = feat[..., self.wm.slices[g.name], :]
            out.append(critics[g.name](torch.cat([f, self._ids(g.name, f)], -1)).squeeze(-1))
        return torch.cat(out, -1)

    # ---- acting ------------------------------------------------------------------------------

    def _zero_hidden(self) -> dict[str, torch.Tensor]:
        return {
            "h": torch.zeros(self.num_envs, self.num_agents, self.cfg.deter_size, device=self.device),
            "fresh": torch.ones(self.num_envs, dtype=torch.bool, device=self.device),
        }

    @torch.no_grad()
    def act(
        self,
        obs: dict[str, np.ndarray],
        deterministic: bool = False,
        reset: np.ndarray | None = None,
        action_mask: dict[str, np.ndarray] | None = None,
    ) -> dict[str, np.ndarray]:
        """Joint actions {g: [num_envs, n_g] int64} for grouped observations ``obs[g]: [num_envs, n_g, d_g]``.

        ``reset [num_envs] bool``: envs whose episode just restarted (the previous step's
        ``infos["done"]``); their recurrent state restarts from ``h_init``. ``action_mask``
        (``infos["action_mask"]``): the policy picks only valid actions (planning candidates are
        not masked: the env applies its own rule to an invalid action).
        """
        wm = self.wm
        h, z = self.filter_state(obs, reset, deterministic)
        if self.cfg.plan > 0:
            a = self.plan(h, z, obs=obs)
        else:
            feat = torch.cat([h, z], -1)
            logits = self.logits(feat, wm.others_probs(feat))
            if action_mask:
                logits = logits.masked_fill(~self._joint_mask(action_mask), _MASKED)
            a = self.imagine.sample(logits, deterministic=deterministic)[0].to(self.device)
        self._hidden = {"h": wm.transition(h, z, wm.one_hot_actions(a)), "fresh": torch.zeros_like(self._hidden["fresh"])}
        return self._split_groups(a)

    def _joint_mask(self, action_mask: dict[str, np.ndarray]) -> torch.Tensor:
        """[num_envs, N, num_actions] bool: the env's masks where given, each group's own actions elsewhere."""
        masks = {g: torch.as_tensor(np.asarray(m, bool), device=self.device) for g, m in action_mask.items()}
        return self.joint_mask(masks, self.num_envs)

    def joint_mask(self, masks: dict[str, torch.Tensor | None], batch: int) -> torch.Tensor:
        """[batch, N, num_actions] bool from per-group masks {g: [batch, n_g, act_n_g] bool} (a group
        absent or None: its own actions), each group's missing actions False. Builds a new tensor
        without in-place writes, so the export's traced policy graph uses it too."""
        wm = self.wm
        rows = []
        for g in self.groups:
            m = masks.get(g.name)
            own = wm.action_mask[wm.slices[g.name]].expand(batch, -1, -1)  # [batch, n_g, A]
            rows.append(own if m is None else F.pad(m, (0, wm.num_actions - g.act_n), value=False))
        return torch.cat(rows, 1)

    @torch.no_grad()
    def filter_state(
        self, obs: dict[str, np.ndarray], reset: np.ndarray | None = None, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The acting filter's state at ``obs`` (without advancing it): h [num_envs, N, deter] from
        the previous step's transition (``h_init`` where an episode restarted, as in :meth:`act`)
        and the posterior latent z [num_envs, N, stoch_dim] given the observations."""
        obs_t = self._check_obs(obs)
        fresh = self._hidden["fresh"]
        if reset is not None:
            fresh = fresh | torch.as_tensor(np.asarray(reset, bool), device=self.device)
        h = self.wm.restart(self._hidden["h"], fresh)
        return h, self.wm.posterior_z(h, obs_t, deterministic)

    def _check_obs(self, obs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """Grouped observations as float32 tensors; a ValueError says what was expected."""
        if not hasattr(obs, "keys") or set(obs.keys()) != {g.name for g in self.groups}:
            got = sorted(obs.keys()) if hasattr(obs, "keys") else type(obs).__name__
            raise ValueError(f"obs must map the agent groups {[g.name for g in self.groups]} to arrays, got {got}")
        out = {}
        for g in self.groups:
            a = np.asarray(obs[g.name])
            if a.ndim > 3 and a.shape[:2] == (self.num_envs, g.num_agents) and int(np.prod(a.shape[2:])) == g.obs_dim:
                a = a.reshape(self.num_envs, g.num_agents, g.obs_dim)  # e.g. grid observations
            if a.shape != (self.num_envs, g.num_agents, g.obs_dim) or not np.issubdtype(a.dtype, np.number):
                raise ValueError(
                    f"obs[{g.name!r}] must be a numeric array of shape (num_envs, n, obs_dim) = "
                    f"{(self.num_envs, g.num_agents, g.obs_dim)}, got {a.dtype} {a.shape}"
                )
            out[g.name] = torch.as_tensor(a, dtype=torch.float32, device=self.device)
        return out

    @torch.no_grad()
    def plan(
        self,
        h: torch.Tensor,
        z: torch.Tensor,
        k: int | None = None,
        horizon: int | None = None,
        *,
        model: str | None = None,
        env: Any = None,
        obs: dict[str, np.ndarray] | None = None,
    ) -> torch.Tensor:
        """Proactive planning: K joint action sequences per env sampled from the policy (mixed with
        ``cfg.plan_unimix`` of uniform, so a near-deterministic policy still yields distinct
        candidates); returns
        the first joint action [E, N] of the candidate with the best return, averaged over agents.

        ``model="world"`` (``cfg.plan_model`` by default) rolls the candidates through the world
        model and scores them by discounted predicted rewards, weighted by the predicted
        continuation, plus the discounted value of the last state. ``model="simulator"`` copies
        each env of ``env`` (default: the env being acted in) into a scratch env and rolls them
        through the real simulator (see :mod:`genmarl.generative.simulator_planning`): the oracle
        that shows what model error costs. Its env steps are counted in
        ``simulator_planner.env_steps``, never in ``env_steps``. ``obs``: the observations the
        filter state saw, which world-model planning with ``reward_from="obs"`` starts its
        predicted observations from.
        """
        cfg = self.cfg
        K = k or cfg.plan or 1
        H = horizon or cfg.plan_horizon or cfg.horizon
        model = model or cfg.plan_model
        if model == "simulator":
            return self._plan_simulator(h, z, K, H, self.env if env is None else env)
        if model != "world":
            raise ValueError(f"model must be 'world' or 'simulator', got {model!r}")
        start_obs = None
        if self.reward_model is not None:
            if obs is None:
                raise ValueError("planning with reward_from='obs' needs the observations of the filter state: pass obs")
            start_obs = self._check_obs(obs)
        return self._plan_world(h, z, K, H, start_obs)

    def _plan_world(
        self,
        h: torch.Tensor,
        z: torch.Tensor,
        K: int,
        H: int,
        start_obs: dict[str, torch.Tensor] | None,
        unimix: float | None = None,
        imagine: ImaginationRollout | None = None,
    ) -> torch.Tensor:
        """World-model planning from states h, z [E, N, ...] (observations ``start_obs`` {g: [E, n_g, d_g]}
        where rewards are read from predicted observations; candidates mixed with ``unimix``, default
        ``cfg.plan_unimix``; through ``imagine``'s models, default the agent's): the best
        candidate's first joint action [E, N]."""
        cfg = self.cfg
        E, N = h.shape[:2]
        if start_obs is not None:
            start_obs = {g: o.repeat_interleave(K, 0) for g, o in start_obs.items()}
        traj = (imagine or self.imagine)(
            h.repeat_interleave(K, 0), z.repeat_interleave(K, 0), _CandidatePolicy(self, unimix), horizon=H,
            latent_mode=cfg.plan_latents == "mode", start_obs=start_obs,
        )  # fmt: skip
        score = self._imagined_return(traj)[0].mean(-1).view(E, K)  # return of step 0, mean over agents
        best = score.argmax(-1)
        return traj.actions[0].view(E, K, N)[torch.arange(E, device=h.device), best]

    def _plan_simulator(self, h: torch.Tensor, z: torch.Tensor, K: int, H: int, env: Any) -> torch.Tensor:
        check_simulator_env(env)
        wm = self.wm
        E, N = h.shape[:2]
        if env.num_envs != E:
            raise ValueError(f"the env to plan in has {env.num_envs} envs, the filter state {E}")
        carry = {"h": h.repeat_interleave(K, 0), "z": z.repeat_interleave(K, 0)}

        def filter_obs(obs: dict[str, np.ndarray]) -> None:
            o = {g: torch.as_tensor(v, dtype=torch.float32, device=self.device) for g, v in obs.items()}
            carry["z"] = wm.posterior_z(carry["h"], o)

        def choose(t: int, obs: dict[str, np.ndarray], ended: np.ndarray) -> dict[str, np.ndarray]:
            if t > 0:
                filter_obs(obs)
            feat = torch.cat([carry["h"], carry["z"]], -1)
            a = self.imagine.sample(self.candidate_logits(feat, wm.others_probs(feat)))[0].to(self.device)
            carry["h"] = wm.transition(carry["h"], carry["z"], wm.one_hot_actions(a))
            return self._split_groups(a)

        def bootstrap(obs: dict[str, np.ndarray]) -> np.ndarray:
            filter_obs(obs)
            return self.values(torch.cat([carry["h"], carry["z"]], -1), target=True).mean(-1).cpu().numpy()

        score, first = self.simulator_planner.rollout(env, K, H, choose, bootstrap)
        joint = np.concatenate([first[g.name] for g in self.groups], -1)  # [E, K, N]
        best = score.argmax(1)
        return torch.as_tensor(joint[np.arange(E), best], dtype=torch.long, device=self.device)

    def _imagined_return(self, traj: Imagined) -> torch.Tensor:
        """Discounted predicted return [H, S, N] of an imagined trajectory (bootstrapped by the target critic)."""
        disc = self.cfg.gamma * traj.cont
        return lambda_returns(traj.rewards, self.values(traj.feat, target=True), disc, self.cfg.gae_lambda)

    # ---- collection --------------------------------------------------------------------------

    @torch.no_grad()
    def collect(self) -> dict[str, Any]:
        """Steps the envs ``num_steps`` times into the replay buffer (uniformly random actions
        during the first ``prefill_steps`` env steps). Returns finished-episode statistics as
        :meth:`genmarl.algos.MAPPO.collect`."""
        return self.step_envs(self.buffer.add_step, lambda: self.env_steps < self.cfg.prefill_steps)

    @torch.no_grad()
    def step_envs(self, add_step: Callable[[dict[str, np.ndarray]], None], random_actions: Callable[[], bool]) -> dict[str, Any]:
        """The loop behind :meth:`collect`: ``num_steps`` steps of every env, each handed to
        ``add_step`` (a replay buffer's, or a rollout worker's list) as ``{g/obs, g/action,
        g/reward, g/terminated, g/truncated}``; uniformly random actions while
        ``random_actions()``, the policy (or planning) after that."""
        if self.obs is None:
            self.reset()
        finished = FinishedEpisodes([g.name for g in self.groups])
        for _ in range(self.cfg.num_steps):
            obs = self.obs
            if random_actions():
                masked = {"action_mask": self.masks} if self.masks else {}
                actions = self.env.sample_actions(self.np_rng, grouped=True, **masked)
            else:
                if not self._acting:  # the filter starts from h_init mid-episode, as replayed windows do
                    self._hidden = self._zero_hidden()
                    self._acting = True
                actions = self.act(obs, reset=self._last_done, action_mask=self.masks)
            nxt, rew, term, trunc, infos = self.env.step_grouped(actions)
            done = infos["done"]
            self.masks = infos.get("action_mask", {})
            step: dict[str, np.ndarray] = {}
            for g in self.groups:
                k = g.name
                step[f"{k}/obs"] = obs[k]
                step[f"{k}/action"] = np.asarray(actions[k], np.int64)
                step[f"{k}/reward"] = rew[k]
                step[f"{k}/terminated"] = term[k]
                step[f"{k}/truncated"] = trunc[k]
            add_step(step)
            if done.any():
                finished.add(infos, done)
            self.obs = nxt
            self._last_done = done
            self.env_steps += self.num_envs
        stats = finished.summary()
        self._last_returns = stats["episode_returns"]
        return stats

    # ---- training ------------------------------------------------------------------------------

    def set_progress(self, fraction_done: float) -> None:
        """Learning rates stay constant (kept for the runner's interface)."""

    def update(self) -> dict[str, float]:
        """``replay_ratio`` gradient updates per env step collected since the last call (none
        before ``prefill_steps``). Returns the mean losses/statistics."""
        self.updates += 1
        if self.env_steps < self.cfg.prefill_steps:
            return {}
        self._credit += self.cfg.replay_ratio * (self.env_steps - self._trained_steps)
        self._trained_steps = self.env_steps
        n = int(self._credit)
        self._credit -= n
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for _ in range(n):
            for k, v in self.train_step().items():
                sums[k] = sums.get(k, 0.0) + v
                counts[k] = counts.get(k, 0) + 1
        out = {k: v / counts[k] for k, v in sums.items()}  # (overlapped: an update may lack the actor-critic's)
        out["perf/grad_steps"] = float(self.grad_steps)
        return out

    def _batch_tensors(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        dev = self.device
        return {
            # [B, T, n, *obs_shape] of the group's dtype -> [B, T, n, obs_dim] float32 (grid/image observations)
            "obs": {g.name: torch.as_tensor(batch[f"{g.name}/obs"], device=dev).float().flatten(3) for g in self.groups},
            "actions": torch.cat([torch.as_tensor(batch[f"{g.name}/action"], device=dev) for g in self.groups], -1),
            "rewards": self._cat_groups({g.name: batch[f"{g.name}/reward"] for g in self.groups}),
            "terminated": self._cat_groups({g.name: batch[f"{g.name}/terminated"] for g in self.groups}),
            "is_first": torch.as_tensor(batch["is_first"], device=dev),
            "mask": torch.as_tensor(batch["mask"], device=dev),
        }

    def train_step(self) -> dict[str, float]:
        """One world-model update on replayed sequences and one actor-critic update on the
        trajectories imagined from the replayed states.

        With ``overlap`` (``overlap_updates``), the actor-critic update imagines from the states
        of the *previous* world-model update, with the models as that update left them (frozen
        copies), on this thread, while a worker thread runs the next world-model and reward-network
        update: the pairing of states, models and policy is the sequential one's, and the world
        model runs one update ahead of the policy (the first call trains only the world model).
        """
        if not self.overlap:
            stats, starts = self._model_step()
            stats.update(self._policy_step(starts, self.imagine, toggle=(self.wm, self.reward_model)))
            self.grad_steps += 1
            return stats
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="genrl-world-model")
        pending, self._pending = self._pending, None
        future = self._pool.submit(self._model_step)
        policy_stats: dict[str, float] = {}
        try:
            if pending is not None:
                policy_stats = self._frozen_policy_step(pending)
        finally:
            stats, self._pending = future.result()  # (re-raises the worker's exception)
        self._refresh_frozen()
        stats.update(policy_stats)
        self.grad_steps += 1
        return stats

    def flush_updates(self) -> dict[str, float]:
        """Runs the actor-critic update still owed under ``overlap_updates`` (nothing otherwise):
        afterwards the policy has trained on every world-model update made, and the agent's
        networks equal those of the same number of sequential updates. Training does not call it
        (a run's results must not depend on where it stops); call it before using the policy of a
        finished agent outside ``genmarl.train`` if the last update matters. Returns its statistics."""
        if self._pending is None:
            return {}
        pending, self._pending = self._pending, None
        return self._frozen_policy_step(pending)

    def _frozen_policy_step(self, starts: _Starts) -> dict[str, float]:
        self._frozen_imagine.stream = self.imagine.stream  # one stream of draws, as sequential updates
        try:
            return self._policy_step(starts, self._frozen_imagine)
        finally:
            self.imagine.stream = self._frozen_imagine.stream

    def _refresh_frozen(self) -> None:
        frozen_imagine = self._frozen_imagine
        pairs = [(frozen_imagine.model, self.wm), (frozen_imagine.reward_model, self.reward_model)]
        with torch.no_grad():
            for frozen, trained in pairs:
                if frozen is not None:
                    for f, t in zip(frozen.parameters(), trained.parameters(), strict=True):
                        f.copy_(t)

    def _model_step(self) -> tuple[dict[str, float], _Starts]:
        """World-model (and reward-network) update on a replayed batch; returns its statistics and
        the states the actor-critic update imagines from (``imagine_starts`` of them, drawn here,
        on the thread that owns torch's generator, as are the distillation starts)."""
        cfg = self.cfg
        with record_function("genrl/replay"):
            b = self._batch_tensors(self.buffer.sample_sequences(cfg.batch_size, cfg.seq_len, mode="stitch"))
        with record_function("genrl/world_model"):
            loss, stats, states = self.wm.loss(
                b["obs"], b["actions"], b["rewards"], b["terminated"], b["is_first"],
                free_nats=cfg.free_nats, kl_dyn=cfg.kl_dyn, kl_rep=cfg.kl_rep, behaviour_coef=cfg.behaviour_coef,
                overshoot=cfg.overshoot, overshoot_coef=cfg.overshoot_coef, overshoot_reward_coef=cfg.overshoot_reward_coef,
            )  # fmt: skip
            self.model_opt.zero_grad(set_to_none=True)
            loss.backward()
            stats["wm/grad_norm"] = float(nn.utils.clip_grad_norm_(self.wm.parameters(), cfg.max_grad_norm))
            self.model_opt.step()
        if self.reward_model is not None:
            with record_function("genrl/reward_model"):
                stats.update(self.reward_model_step())
        N = self.num_agents
        h0 = states.h.detach().reshape(-1, N, cfg.deter_size)
        z0 = states.z.detach().reshape(-1, N, self.wm.stoch_dim)
        o0 = {g.name: b["obs"][g.name].reshape(-1, g.num_agents, g.obs_dim) for g in self.groups}
        if 0 < cfg.imagine_starts < h0.shape[0]:
            pick = torch.randperm(h0.shape[0], device=h0.device)[: cfg.imagine_starts]
            h0, z0 = h0[pick], z0[pick]
            o0 = {g: o[pick] for g, o in o0.items()}
        distill = None
        if cfg.distill_coef > 0:
            distill = torch.randperm(h0.shape[0], device=h0.device)[: min(cfg.distill_starts, h0.shape[0])]
        return stats, _Starts(h0, z0, o0, distill)

    def _policy_step(
        self, starts: _Starts, imagine: ImaginationRollout, toggle: tuple[nn.Module | None, ...] = ()
    ) -> dict[str, float]:
        """Imagination from ``starts`` through ``imagine``'s models, then the actor-critic update
        (``toggle``: models to freeze meanwhile when imagination reads the trained ones)."""
        cfg = self.cfg
        h0, z0, o0 = starts.h, starts.z, starts.obs
        dynamics = cfg.actor_dynamics > 0
        models = [m for m in toggle if m is not None] if dynamics else []
        for m in models:  # gradients flow through the models, not into them
            m.requires_grad_(False)
        try:
            with record_function("genrl/imagination"):  # (the start observations serve only a reward_model)
                traj = imagine(h0, z0, self, differentiable=dynamics, start_obs=o0)
            distill = None
            if starts.distill is not None:  # expert iteration: plan from some replayed states, distill the chosen actions
                with record_function("genrl/distill_planning"):
                    sub = starts.distill
                    with torch.no_grad():
                        o_sub = {g: o[sub] for g, o in o0.items()}
                        # candidates from the policy itself: mixing in uniform actions measured worse here
                        target = self._plan_world(h0[sub], z0[sub], cfg.distill_k, cfg.distill_horizon, o_sub, unimix=0.0,
                                                  imagine=imagine)  # fmt: skip
                    distill = (torch.cat([h0[sub], z0[sub]], -1), target)
            with record_function("genrl/actor_critic"):
                return self.actor_critic_step(traj, distill, imagine.model)
        finally:
            for m in models:
                m.requires_grad_(True)

    def reward_model_step(self) -> dict[str, float]:
        """``reward_updates`` supervised updates of the observation reward network, each on the
        (next observation, reward) pairs of ``reward_batch_size`` replayed steps."""
        cfg = self.cfg
        total = 0.0
        for _ in range(cfg.reward_updates):
            b = self._batch_tensors(self.buffer.sample_sequences(cfg.reward_batch_size, 2, mode="pad"))
            next_obs, rewards = reward_pairs(b["obs"], b["rewards"], b["mask"], b["is_first"])
            if rewards.shape[0] == 0:
                continue
            loss = self.reward_model.loss(next_obs, rewards)
            self.reward_opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.reward_model.parameters(), cfg.max_grad_norm)
            self.reward_opt.step()
            total += loss.item()
        return {"reward/loss": total / max(cfg.reward_updates, 1)}

    def actor_critic_step(
        self, traj: Imagined, distill: tuple[torch.Tensor, torch.Tensor] | None = None, model: WorldModel | None = None
    ) -> dict[str, float]:
        """Actor and symlog critic on an imagined trajectory (world model frozen; ``model``: the
        world model that imagined it, default the agent's).

        The actor's objective mixes REINFORCE on lambda-return advantages (weight
        ``1 - actor_dynamics``) with the lambda-return itself differentiated through the world
        model (weight ``actor_dynamics``; needs the trajectory imagined with
        ``differentiable=True``), both scaled by the 5-95th percentile range of the returns.
        ``distill`` (states' features [P, N, F], the joint actions planning chose there [P, N]):
        adds ``distill_coef`` x the policy's cross-entropy on those actions.
        """
        cfg = self.cfg
        rho = cfg.actor_dynamics
        disc = cfg.gamma * traj.cont.detach()  # [H, S, N]
        v_target = self.values(traj.feat, target=True)  # [H + 1, S, N]; carries gradients to the actor when rho > 0
        returns = lambda_returns(traj.rewards, v_target, disc, cfg.gae_lambda)
        with torch.no_grad():
            weight = torch.cumprod(torch.cat([torch.ones_like(disc[:1]), disc[:-1]], 0), 0)
            flat = returns.detach().flatten()
            if flat.numel() > 16_000_000:  # torch.quantile's input limit
                flat = flat[torch.randperm(flat.numel(), device=flat.device)[:1_000_000]]
            lo, hi = torch.quantile(flat, torch.tensor([0.05, 0.95], device=flat.device))
            d = cfg.return_norm_decay
            self.return_scale = d * self.return_scale + (1 - d) * (hi - lo)
            scale = torch.clamp(self.return_scale, min=1.0)
            adv = (returns - v_target[:-1]).detach() / scale
        feat, others = traj.feat[:-1].detach(), traj.others[:-1].detach()
        logp_all = self.logits(feat, others).log_softmax(-1)
        logp = logp_all.gather(-1, traj.actions.unsqueeze(-1)).squeeze(-1)
        entropy = -(logp_all.exp() * logp_all).sum(-1)  # [H, S, N]
        coef = cfg.entropy_coef if self.log_alpha is None else self.log_alpha.detach().exp()
        objective = coef * entropy
        if rho < 1:
            objective = objective + (1 - rho) * logp * adv
        if rho > 0:
            objective = objective + rho * returns / scale
        actor_loss = -(weight * objective).mean()
        distill_loss = None
        if distill is not None:
            d_feat, d_act = distill
            with torch.no_grad():
                d_others = (model or self.wm).others_probs(d_feat)
            d_logp = self.logits(d_feat, d_others).log_softmax(-1)
            distill_loss = -d_logp.gather(-1, d_act.unsqueeze(-1)).mean()
            actor_loss = actor_loss + cfg.distill_coef * distill_loss
        returns = returns.detach()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        nn.utils.clip_grad_norm_(self.actors.parameters(), cfg.max_grad_norm)
        self.actor_opt.step()
        pred = self._critic_raw(feat)
        critic_loss = (weight * (pred - symlog(returns)) ** 2).mean()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        nn.utils.clip_grad_norm_(self.critics.parameters(), cfg.max_grad_norm)
        self.critic_opt.step()
        with torch.no_grad():
            for p, tp in zip(self.critics.parameters(), self.target_critics.parameters(), strict=True):
                tp.lerp_(p, cfg.critic_ema)
        if self.log_alpha is not None:  # raise an agent's coefficient while its entropy is below the goal
            with torch.no_grad():
                agent_entropy = (weight * entropy).sum((0, 1)) / weight.sum((0, 1))  # [N]
            alpha_loss = (self.log_alpha * (agent_entropy - self.entropy_goal)).sum()
            self.alpha_opt.zero_grad(set_to_none=True)
            alpha_loss.backward()
            self.alpha_opt.step()
            with torch.no_grad():
                self.log_alpha.clamp_(_LOG_ALPHA_MIN, _LOG_ALPHA_MAX)
        return {
            "losses/policy": actor_loss.item(),
            "losses/value": critic_loss.item(),
            "losses/entropy": entropy.mean().item(),
            "imagination/return": returns[0].mean().item(),
            "imagination/reward": traj.rewards.mean().item(),
            "imagination/return_scale": float(self.return_scale),
            **({"losses/distill": distill_loss.item()} if distill_loss is not None else {}),
            **({"losses/entropy_coef": self.log_alpha.detach().exp().mean().item()} if self.log_alpha is not None else {}),
        }

    # ---- diagnostics ----------------------------------------------------------------------------

    @classmethod
    def csv_columns(cls, config: GenRLConfig) -> tuple[list[str], list[str]]:
        """metrics.csv columns of this learner: (before the evaluation columns, at the end: the
        world-model diagnostics measured at every evaluation)."""
        H = config.horizon
        training = list(CSV_TRAINING_COLUMNS) + (["reward/loss"] if config.reward_from == "obs" else [])
        training += ["losses/distill"] if config.distill_coef > 0 else []
        training += ["losses/entropy_coef"] if config.entropy_target > 0 else []
        policy_alone = ["eval/policy_return_mean", "eval/policy_return_std"] if config.plan > 0 else []
        return training, policy_alone + list(CSV_DIAGNOSTIC_COLUMNS) + [
            f"wm/obs_error_k{H}", f"wm/obs_error_trivial_k{H}", f"wm/reward_error_k{H}"
        ]

    @property
    def planning_env_steps(self) -> int:
        """Env steps of simulator planning (``plan_model="simulator"``), never counted as experience."""
        return int(self.simulator_planner.env_steps)

    def evaluation_diagnostics(self) -> dict[str, Any]:
        """:meth:`diagnostics` at a training evaluation (nothing before the first gradient update);
        when the agent plans (``plan`` > 0) also ``eval/policy_return_mean`` / ``_std``: the same
        evaluation (episodes, seed) acting on the policy alone, without planning."""
        res = self.diagnostics() if self.grad_steps > 0 else {}
        if self.cfg.plan > 0:
            from genmarl.training.evaluate import evaluate

            alone = copy.copy(self)
            alone.cfg = dataclasses.replace(self.cfg, plan=0)
            ev = evaluate(alone, self.cfg.eval_episodes, seed=self.cfg.eval_seed)
            res["eval/policy_return_mean"], res["eval/policy_return_std"] = ev["return"]["mean"], ev["return"]["std"]
        return res

    @torch.no_grad()
    def diagnostics(self, num_windows: int = 256) -> dict[str, Any]:
        """World-model diagnostics on replayed data (see docs/generative.md):

        ``wm/obs_error_k`` (list, k = 1..H): mean squared error per observation element of the
        open-loop prediction k steps ahead (posterior at t, then the prior's mode under the
        actions actually taken), ``wm/obs_error_trivial_k`` the same for 'next = current',
        ``wm/recon_error`` (posterior reconstruction), ``wm/reward_error`` (squared error of the
        1-step reward prediction), ``wm/reward_error_k`` (list: the same along the open-loop
        rollouts, for the reward of step k-1; ``wm/reward_error_kH`` its last), ``wm/behaviour_acc`` (agents' predictions of the other agents'
        actions) vs ``wm/behaviour_acc_baseline`` (each agent's most frequent action in the same
        data) and ``wm/behaviour_acc_chance``; ``wm/behaviour_loglik`` (mean log-likelihood of the other
        agents' actions under the prediction, nats) vs ``wm/behaviour_loglik_uniform``; ``wm/imagined_return`` (an imagined episode of
        the current policy from real episode starts, mean return per agent) vs
        ``wm/real_return`` (the latest real episodes).
        """
        cfg, wm = self.cfg, self.wm
        H = cfg.horizon
        b = self._batch_tensors(self.buffer.sample_sequences(num_windows, H + 1, mode="pad"))
        out = wm.observe(b["obs"], b["actions"], b["is_first"], deterministic=True)
        mask = b["mask"]  # [B, H + 1]
        errors = wm.open_loop_errors(
            b["obs"], b["actions"], b["is_first"], mask, H, states=out, rewards=b["rewards"], reward_model=self.reward_model
        )
        errs, trivial = errors["obs_error_k"], errors["obs_error_trivial_k"]
        res: dict[str, Any] = {"wm/recon_error": errors["recon_error"]}
        res["wm/obs_error_k"] = errs
        res["wm/obs_error_trivial_k"] = trivial
        res["wm/obs_error_k1"], res["wm/obs_error_trivial"] = errs[0], trivial[0]
        res[f"wm/obs_error_k{H}"], res[f"wm/obs_error_trivial_k{H}"] = errs[-1], trivial[-1]
        res["wm/reward_error_k"] = errors["reward_error_k"]  # along the open-loop rollouts
        res[f"wm/reward_error_k{H}"] = errors["reward_error_k"][-1]
        m = mask.reshape(-1)
        if self.reward_model is None:
            rew_pred = wm.reward(out.h_next).reshape(-1, self.num_agents)[m]
            res["wm/reward_error"] = float(((rew_pred - b["rewards"].reshape(-1, self.num_agents)[m]) ** 2).mean())
        else:  # the reward network on the real next observations
            next_obs, rew = reward_pairs(
                {g: o[:, :2] for g, o in b["obs"].items()}, b["rewards"][:, :2], mask[:, :2], b["is_first"][:, :2]
            )
            res["wm/reward_error"] = float(((self.reward_model(next_obs) - rew) ** 2).mean())
        # behaviour prediction: agent i's argmax for agent j != i
        N, A = self.num_agents, self.num_actions
        if N > 1:
            logits = wm.behaviour_logits(out.feat).reshape(-1, N, N, A)[m]  # [M, i, j, A]
            acts = b["actions"].reshape(-1, N)[m]  # [M, j]
            off = ~torch.eye(N, dtype=torch.bool, device=acts.device)
            hit = logits.argmax(-1) == acts[:, None, :]
            res["wm/behaviour_acc"] = float(hit[:, off].float().mean())
            counts = F.one_hot(acts, A).sum(0)  # [N, A]
            base_pred = counts.argmax(-1)  # each agent's most frequent action
            base_hit = (acts == base_pred).float().mean(0)  # [N]
            res["wm/behaviour_acc_baseline"] = float(base_hit.mean())
            res["wm/behaviour_acc_chance"] = float(np.mean([1.0 / g.act_n for g in self.groups for _ in range(g.num_agents)]))
            # log-likelihood (nats per predicted action) of the other agents' actual actions under the
            # prediction vs under a uniform guess over each predicted agent's actions
            logp = logits.log_softmax(-1).gather(-1, acts[:, None, :, None].expand(-1, N, N, 1)).squeeze(-1)  # [M, i, j]
            res["wm/behaviour_loglik"] = float(logp[:, off].mean())
            n_act = torch.tensor([g.act_n for g in self.groups for _ in range(g.num_agents)], dtype=torch.float32)
            res["wm/behaviour_loglik_uniform"] = float(-torch.log(n_act)[None, :].expand(N, N)[off.cpu()].mean())
        # imagined vs real return of the current policy, from real episode starts
        starts = self._batch_tensors(self.buffer.sample_sequences(max(64, num_windows * 4), 1, mode="pad"))
        first = starts["is_first"][:, 0]
        if first.any() and len(self._last_returns):
            o = {g: v[first] for g, v in starts["obs"].items()}
            s = wm.observe(o, starts["actions"][first], starts["is_first"][first])
            length = int(self.env.max_cycles) if hasattr(self.env, "max_cycles") else H
            traj = self.imagine(s.h[:, 0], s.z[:, 0], self, horizon=length, start_obs={g: v[:, 0] for g, v in o.items()})
            alive = torch.cumprod(torch.cat([torch.ones_like(traj.cont[:1]), traj.cont[:-1]], 0), 0)
            res["wm/imagined_return"] = float((alive * traj.rewards).sum(0).mean())
            res["wm/real_return"] = float(np.mean(self._last_returns))
        return res

    # ---- persistence ----------------------------------------------------------------------------

    def state_dict(self, include_env: bool = True) -> dict[str, Any]:
        """Networks, optimisers, RNG states and counters; with ``include_env`` also the replay
        buffer (bytes of its file), the env's simulator state and the filter state, so a resumed
        run continues bitwise on CPU."""
        state = {
            "config": self.cfg.to_dict(),
            "world_model": self.wm.state_dict(),
            "actors": self.actors.state_dict(),
            "critics": self.critics.state_dict(),
            "target_critics": self.target_critics.state_dict(),
            "model_opt": self.model_opt.state_dict(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "return_scale": self.return_scale.cpu(),
            **(
                {"log_alpha": self.log_alpha.detach().cpu(), "alpha_opt": self.alpha_opt.state_dict()}
                if self.log_alpha is not None
                else {}
            ),
            **(
                {"reward_model": self.reward_model.state_dict(), "reward_opt": self.reward_opt.state_dict()}
                if self.reward_model is not None
                else {}
            ),
            "sampler_stream": self.imagine.stream,
            "grad_steps": self.grad_steps,
            "credit": self._credit,
            "trained_steps": self._trained_steps,
            "acting": self._acting,
            **self._learner_state(include_env),
        }
        if self._pending is not None:  # overlap_updates: the actor-critic update still owed
            state["pending_starts"] = vars(self._pending.to("cpu"))
        if "env_state" in state:
            state["last_returns"] = to_tensor(self._last_returns)
            state["buffer"] = self.buffer_bytes()
        return state

    def ingest(self, steps: dict[str, np.ndarray], env_ids: np.ndarray) -> None:
        """Steps collected elsewhere (a rollout worker's ``step_envs``), ``{field: [T, len(env_ids),
        ...]}``, into the replay buffer's columns ``env_ids``; counted as env steps."""
        T = next(iter(steps.values())).shape[0]
        for t in range(T):
            self.buffer.add_step({k: v[t] for k, v in steps.items()}, env_ids)
        self.env_steps += T * len(env_ids)

    def record_finished(self, stats: dict[str, Any]) -> None:
        """The finished-episode statistics of a collection made elsewhere (what diagnostics compare
        imagined returns with)."""
        self._last_returns = stats["episode_returns"]

    def acting_weights(self) -> dict[str, Any]:
        """What acting and planning read, as CPU state dicts (:meth:`load_acting_weights` loads them)."""
        cpu = lambda m: {k: v.detach().cpu() for k, v in m.state_dict().items()}  # noqa: E731
        models = {"world_model": self.wm, "actors": self.actors, "critics": self.critics, "reward_model": self.reward_model}
        return {name: cpu(m) for name, m in models.items() if m is not None}

    def load_acting_weights(self, weights: dict[str, Any]) -> None:
        """Loads what acting and planning read -- ``world_model``, ``actors``, ``critics`` and, with
        ``reward_from="obs"``, ``reward_model`` state dicts -- e.g. a rollout worker's copy of
        the learner's networks (:mod:`genmarl.distributed`)."""
        self.wm.load_state_dict(weights["world_model"])
        self.actors.load_state_dict(weights["actors"])
        self.critics.load_state_dict(weights["critics"])
        if self.reward_model is not None:
            self.reward_model.load_state_dict(weights["reward_model"])
        if self.overlap:
            self._refresh_frozen()

    def buffer_bytes(self) -> bytes:
        """The replay buffer as the bytes of its file (what checkpoints carry)."""
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "replay.gmb")
            self.buffer.save(path)
            with open(path, "rb") as fh:
                return fh.read()

    def load_buffer_bytes(self, data: bytes) -> None:
        """Replaces the replay buffer with one saved by :meth:`buffer_bytes`."""
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "replay.gmb")
            with open(path, "wb") as fh:
                fh.write(data)
            self.buffer = EpisodeBuffer.load(path)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_acting_weights(state)
        self.target_critics.load_state_dict(state["target_critics"])
        self.model_opt.load_state_dict(state["model_opt"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        if self.reward_model is not None:
            self.reward_opt.load_state_dict(state["reward_opt"])
        self.return_scale = torch.as_tensor(state["return_scale"], device=self.device)
        if self.log_alpha is not None:
            if "log_alpha" not in state:
                raise ValueError("this checkpoint was trained without entropy_target; resume it with entropy_target=0")
            with torch.no_grad():
                self.log_alpha.copy_(state["log_alpha"].to(self.device))
            self.alpha_opt.load_state_dict(state["alpha_opt"])
        self.imagine.stream = int(state["sampler_stream"])
        self.grad_steps = int(state["grad_steps"])
        self._credit = float(state["credit"])
        self._trained_steps = int(state["trained_steps"])
        self._acting = bool(state["acting"])
        self._load_learner_state(state)
        pending = state.get("pending_starts") if self.overlap else None
        self._pending = None if pending is None else _Starts(**pending).to(self.device)
        if "env_state" in state:
            self._last_returns = to_numpy(state["last_returns"])
            self.load_buffer_bytes(state["buffer"])
