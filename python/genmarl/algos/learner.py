"""What every learner on genmarl's grouped env API shares, and the one protocol the runner,
evaluation and the CLI know learners by (:class:`Learner`): MAPPO/IPPO (:mod:`genmarl.algos.ppo`)
and the generative agent (:mod:`genmarl.generative.agent`) implement it.

Shared pieces: :class:`GroupInfo` / :func:`group_infos` (an env's agent groups as learners see
them), :class:`FinishedEpisodes` / :func:`finished_returns` (finished-episode accounting),
:func:`env_actions` (what the env is given), :class:`GroupedLearner` (config, device, seeding, the
env loop's state, counters and their persistence).
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from genmarl.training import checkpoints
from genmarl.training.checkpoints import to_numpy, to_tensor


@runtime_checkable
class Learner(Protocol):
    """What the runner, evaluation and the CLI know a learner by.

    Built on an env with genmarl's grouped API and a config (``Learner(env, config)``); it owns the
    env loop of training (:meth:`reset`, :meth:`collect`, :meth:`update`), acts with explicit
    recurrent state (:meth:`act`, whose ``reset`` flags restart it per env), hands out a copy that
    acts in another env with fresh state (:meth:`for_env`: evaluation), reports diagnostics
    at evaluations (empty when it has none) and the metrics.csv columns it fills, and saves/loads itself.
    """

    cfg: Any
    env: Any
    num_envs: int
    env_steps: int
    updates: int

    def reset(self, seed: int | None = None) -> None: ...

    def collect(self) -> dict[str, Any]: ...

    def update(self) -> dict[str, float]: ...

    def set_progress(self, fraction_done: float) -> None: ...

    def act(
        self,
        obs: dict[str, np.ndarray],
        deterministic: bool = False,
        reset: np.ndarray | None = None,
        action_mask: dict[str, np.ndarray] | None = None,
    ) -> dict[str, np.ndarray]: ...

    def for_env(self, env: Any) -> Learner: ...

    def evaluation_diagnostics(self) -> dict[str, Any]: ...

    @property
    def planning_env_steps(self) -> int: ...

    @classmethod
    def csv_columns(cls, config: Any) -> tuple[list[str], list[str]]: ...

    def state_dict(self, include_env: bool = True) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def save(self, path: str) -> None: ...

    def load(self, path: str) -> None: ...


# algo name -> "module:class" of its learner (imported on first use: torch-free until then)
LEARNERS = {
    "mappo": "genmarl.algos.ppo:MAPPO",
    "ippo": "genmarl.algos.ppo:MAPPO",
    "genrl": "genmarl.generative.agent:GenerativeAgent",
}


def learner_class(algo: str) -> type:
    """The learner class of ``algo`` (``LEARNERS``); unknown names raise ValueError naming the known ones."""
    if algo not in LEARNERS:
        raise ValueError(f"unknown algo {algo!r}; known: {sorted(LEARNERS)}")
    module, _, name = LEARNERS[algo].partition(":")
    return getattr(importlib.import_module(module), name)


def make_learner(env: Any, config: Any) -> Learner:
    """The learner of ``config.algo`` on ``env`` (with ``config.workers > 0``: its rollouts on Ray
    actors, :func:`genmarl.distributed.workers_learner`)."""
    if config.workers > 0:
        from genmarl.distributed import workers_learner

        return workers_learner(env, config)
    return learner_class(config.algo)(env, config)


def env_actions(actions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Continuous actions are clipped to the env's [0, 1] box (the stored action stays unclipped)."""
    return {g: (np.clip(a, 0.0, 1.0) if a.dtype == np.float32 else a) for g, a in actions.items()}


def finished_returns(infos: dict[str, Any], done: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Returns of the episodes that ended in a step (rows where ``done``): the mean return per
    agent over all agents, and per group the mean over the group's agents."""
    per_group = {g: r[done] for g, r in infos["episode_return"].items()}
    total = sum((r.sum(-1) for r in per_group.values()), np.zeros(int(done.sum())))  # summed in float64
    total /= sum(r.shape[-1] for r in per_group.values())
    return total, {g: r.mean(-1) for g, r in per_group.items()}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclasses.dataclass
class GroupInfo:
    name: str
    num_agents: int
    obs_dim: int  # one agent's observation, flattened
    continuous: bool
    act_n: int  # discrete: number of actions; continuous: action dimension
    masked: bool = False  # the env reports valid actions (infos["action_mask"][name])


def group_infos(env: Any) -> list[GroupInfo]:
    from gymnasium import spaces

    masked = set(getattr(env, "action_mask_groups", ()))
    out = []
    for g in env.groups:
        shape = env.group_observation_space(g).shape
        n, d = shape[0], int(np.prod(shape[1:]))
        act = env.group_action_space(g)
        if isinstance(act, spaces.Box):
            out.append(GroupInfo(g, n, d, True, int(act.shape[-1])))
        else:
            out.append(GroupInfo(g, n, d, False, int(act.nvec[0]), g in masked))
    return out


class FinishedEpisodes:
    """Statistics of the episodes that finish during a collection (see :func:`finished_returns`)."""

    def __init__(self, groups: list[str]) -> None:
        self.returns: list[np.ndarray] = []
        self.group_returns: dict[str, list[np.ndarray]] = {g: [] for g in groups}
        self.lengths: list[np.ndarray] = []

    def add(self, infos: dict[str, Any], done: np.ndarray) -> None:
        """Records the rows of one step's ``infos`` where ``done``."""
        total, per_group = finished_returns(infos, done)
        self.returns.append(total)
        for g, r in per_group.items():
            self.group_returns[g].append(r)
        self.lengths.append(infos["episode_length"][done])

    def add_summary(self, other: dict[str, Any]) -> None:
        """Records the episodes of another collection's :meth:`summary` (e.g. a rollout worker's)."""
        self.returns.append(other["episode_returns"])
        for g, r in other["group_returns"].items():
            self.group_returns[g].append(r)
        self.lengths.append(other["episode_lengths"])

    def summary(self) -> dict[str, Any]:
        """``episode_returns`` (mean return per agent of each finished episode), ``group_returns``
        ({group: per-episode mean over its agents}), ``episode_lengths``."""
        cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0)  # noqa: E731
        return {
            "episode_returns": cat(self.returns),
            "group_returns": {g: cat(v) for g, v in self.group_returns.items()},
            "episode_lengths": cat(self.lengths),
        }


class GroupedLearner:
    """What every learner on genmarl's grouped env API shares (MAPPO, GenerativeAgent): config,
    device, agent groups, seeding, the env loop's state (current observations, the last step's
    done flags, the policy's hidden state), counters, and their persistence. A learner defines
    ``_zero_hidden()`` (its policy state for ``num_envs`` envs) and ``state_dict`` /
    ``load_state_dict`` (its networks plus ``_learner_state`` / ``_load_learner_state``).

    ``env`` needs ``groups``, ``num_envs``, ``group_observation_space(g)``,
    ``group_action_space(g)``, ``reset_grouped(seed)`` and ``step_grouped(actions)`` (a
    :class:`genmarl.VectorEnv`, or any env with that interface).
    """

    def _init_learner(self, env: Any, cfg: Any) -> None:
        self.cfg = cfg
        self.env = env
        self.device = resolve_device(cfg.device)
        self.groups = group_infos(env)
        self.num_envs = int(env.num_envs)
        torch.manual_seed(cfg.seed)
        self.np_rng = np.random.default_rng(cfg.seed)
        self.obs: dict[str, np.ndarray] | None = None
        self.masks: dict[str, np.ndarray] = {}  # valid actions in self.obs, for groups with masks
        self._last_done = np.zeros(self.num_envs, bool)
        self.updates = 0
        self.env_steps = 0

    def reset(self, seed: int | None = None) -> None:
        self.obs, infos = self.env.reset_grouped(seed=self.cfg.seed if seed is None else seed)
        self.masks = infos.get("action_mask", {})
        self._hidden = self._zero_hidden()
        self._last_done = np.zeros(self.num_envs, bool)

    def _learner_state(self, include_env: bool) -> dict[str, Any]:
        """RNG states and counters; with ``include_env`` (once the env was reset) the env's
        simulator state, the policy's hidden state and the last done flags."""
        state = {
            "np_rng": self.np_rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "updates": self.updates,
            "env_steps": self.env_steps,
        }
        if include_env and self.obs is not None and hasattr(self.env, "get_state"):
            # numpy arrays cross as tensors: checkpoints hold plain data only (weights_only loads)
            state["env_state"] = {k: to_tensor(v) for k, v in self.env.get_state().items()}
            state["hidden"] = {k: v.cpu() for k, v in self._hidden.items()}
            state["last_done"] = to_tensor(self._last_done)
        return state

    def _load_learner_state(self, state: dict[str, Any]) -> None:
        self.np_rng.bit_generator.state = state["np_rng"]
        torch.set_rng_state(state["torch_rng"].cpu())
        self.updates = int(state["updates"])
        self.env_steps = int(state["env_steps"])
        if "env_state" in state:
            self.env.set_state({k: to_numpy(v) for k, v in state["env_state"].items()})
            self.obs = self.env.observe_grouped()
            self.masks = self.env.action_masks() if getattr(self.env, "has_action_masks", False) else {}
            self._hidden = {k: v.to(self.device) for k, v in state["hidden"].items()}
            self._last_done = to_numpy(state["last_done"]).astype(bool)

    def for_env(self, env: Any) -> GroupedLearner:
        """A learner sharing this one's networks (and sampling streams) that acts in ``env``,
        with a fresh policy state for its ``num_envs`` envs (evaluation)."""
        other = copy.copy(self)
        other.env, other.num_envs = env, int(env.num_envs)
        other.obs, other.masks = None, {}
        other._last_done = np.zeros(other.num_envs, bool)
        other._hidden = other._zero_hidden()
        return other

    def evaluation_diagnostics(self) -> dict[str, Any]:
        """Diagnostics measured at every training evaluation (none by default)."""
        return {}

    @property
    def planning_env_steps(self) -> int:
        """Env steps spent by act-time planning in a simulator (never experience); 0 without it."""
        return 0

    def save(self, path: str) -> None:
        """Writes the networks, optimisers and counters (not the env state) atomically, as plain
        data that :meth:`load` reads with ``torch.load(weights_only=True)``."""
        checkpoints.save(self.state_dict(include_env=False), path)

    def load(self, path: str) -> None:
        """Loads a :meth:`save` file. Reads tensors and plain data only (a file carrying code is
        refused); raises :class:`~genmarl.training.checkpoints.CheckpointError` for a damaged or
        foreign file, or one saved by a learner of another shape."""
        # on the CPU first: the RNG state must stay a CPU ByteTensor; load_state_dict moves the rest
        state = checkpoints.load(path, map_location="cpu", what=f"a model saved by {type(self).__name__}.save")
        try:
            self.load_state_dict(state)
        except (KeyError, RuntimeError, TypeError, ValueError) as exc:
            raise checkpoints.CheckpointError(f"{path} does not fit this {type(self).__name__} ({exc})") from None
