"""Gymnasium 1.x vector env over one agent group: every (env, agent) pair is one sub-env.

>>> from genmarl.gymnasium import AgentVectorEnv
>>> envs = AgentVectorEnv("simple_spread", num_envs=256, seed=0)   # 768 sub-envs
>>> obs, infos = envs.reset(seed=0)                                  # obs: [768, 18]
>>> obs, rewards, terminations, truncations, infos = envs.step(envs.action_space.sample())

This is SuperSuit's ``pettingzoo_env_to_vec_env_v1`` + ``concat_vec_envs_v1`` in one batched C++
step: single-agent code (cleanrl's PPO, Gymnasium's vector wrappers such as
``RecordEpisodeStatistics``) trains a policy shared by the group's agents. Sub-env ``i`` is agent
``i % n`` of env ``i // n`` (``n`` agents in the group). The agents of one env share its episode:
they finish together.

Autoreset is Gymnasium's ``SAME_STEP`` mode (``metadata["autoreset_mode"]``): a finished env is
reset inside ``step``, the returned observation starts the new episode and ``infos`` holds
``final_obs`` (a ``[num_envs, *obs_shape]`` array, rows valid where ``_final_obs``) and
``final_info`` (``episode_return``, ``episode_length`` and the scenario's ``metrics``, each with
its ``_`` mask). Envs with action masks put them in ``infos["action_mask"]`` (``[num_envs,
num_actions]`` bool). Gymnasium's observation wrappers (``VectorObservationWrapper``, e.g.
``NormalizeObservation``) accept only ``NEXT_STEP`` envs and refuse this one; ``NEXT_STEP`` cannot
be emulated over a batch that resets finished envs inside the step. Normalise observations in the
training code instead (as cleanrl's ``RunningMeanStd`` does).

For envs with several groups, ``group`` picks the one that learns; the other groups act by
``other_policy(obs, action_mask) -> actions`` (grouped dicts, as :meth:`VectorEnv.step_grouped`
takes them; default: uniformly random valid actions).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector import VectorEnv as _GymVectorEnv
from gymnasium.vector.utils import batch_space

from genmarl.envs.vector_env import make, refuse_python_env

OtherPolicy = Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], Mapping[str, np.ndarray]]


class AgentVectorEnv(_GymVectorEnv):
    """A Gymnasium ``VectorEnv`` with ``num_envs * n`` sub-envs: the ``n`` agents of group
    ``group`` in each of ``num_envs`` genmarl envs (``num_envs`` in the constructor counts
    genmarl envs; the ``num_envs`` attribute counts sub-envs, as Gymnasium defines it).
    ``scenario_kwargs`` are the env's arguments, as for :func:`genmarl.make`."""

    metadata = {"render_modes": ["rgb_array"], "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(
        self,
        name: str,
        num_envs: int = 1,
        group: str | None = None,
        seed: int = 0,
        num_threads: int | None = None,
        render_mode: str | None = None,
        other_policy: OtherPolicy | None = None,
        **scenario_kwargs: Any,
    ) -> None:
        refuse_python_env(name, "AgentVectorEnv")
        env = make(name, num_envs=num_envs, num_threads=num_threads, seed=seed, render_mode=render_mode, **scenario_kwargs)
        if group is None:
            if len(env.groups) != 1:
                raise ValueError(f"{name} has agent groups {env.groups}; pass group= one of them (the others act by other_policy)")
            group = env.groups[0]
        if group not in env.groups:
            raise ValueError(f"unknown agent group {group!r}; {name} has groups {env.groups}")
        if other_policy is not None and not callable(other_policy):
            raise TypeError(f"other_policy must be callable(obs, action_mask) -> actions, got {type(other_policy).__name__}")
        agents = env.group_agents[group]
        self.env = env  # the genmarl VectorEnv underneath
        self.group = group
        self.agents_per_env = len(agents)
        self.num_envs = env.num_envs * self.agents_per_env
        self.single_observation_space = env.observation_space(agents[0])
        self.single_action_space = env.action_space(agents[0])
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = render_mode
        self.other_policy = other_policy
        self._others = [g for g in env.groups if g != group]
        self._other_rng = np.random.default_rng(seed)
        self._obs: dict[str, np.ndarray] = {}
        self._masks: dict[str, np.ndarray] = {}

    # ---- layout ----------------------------------------------------------------------------
    def _flat(self, x: np.ndarray) -> np.ndarray:
        """[E, n, ...] -> [E * n, ...] (a view of a contiguous array)."""
        return x.reshape(self.num_envs, *x.shape[2:])

    def _per_sub_env(self, x: np.ndarray) -> np.ndarray:
        """[E, ...] values of whole envs -> one per sub-env."""
        return np.repeat(x, self.agents_per_env, axis=0)

    def _infos(self, infos: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        mask = infos.get("action_mask", {})
        if self.group in mask:
            out["action_mask"] = self._flat(mask[self.group])
        if "final_obs" in infos:
            done = self._per_sub_env(infos["done"])
            final_info: dict[str, Any] = {
                "episode_return": self._flat(infos["final_info"]["episode_return"][self.group]),
                "_episode_return": done,
                "episode_length": self._per_sub_env(infos["final_info"]["episode_length"]),
                "_episode_length": done,
            }
            if "metrics" in infos["final_info"]:
                final_info["metrics"] = {k: self._per_sub_env(v) for k, v in infos["final_info"]["metrics"].items()}
                final_info["_metrics"] = done
            out.update(final_obs=self._flat(infos["final_obs"][self.group]), _final_obs=done, final_info=final_info, _final_info=done)
        return out

    # ---- Gymnasium API ---------------------------------------------------------------------
    def reset(self, *, seed: int | list | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Resets every env; ``seed`` (an int; all sub-envs share one batch seed) reseeds."""
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise TypeError(f"seed must be an int or None (genmarl seeds the whole batch with one seed), got {seed!r}")
        if seed is not None:
            self._other_rng = np.random.default_rng(int(seed))
        obs, infos = self.env.reset_grouped(seed=seed)
        self._obs, self._masks = obs, infos.get("action_mask", {})
        return self._flat(obs[self.group]), self._infos(infos)

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """``actions``: ``[num_envs]`` ints (Discrete) or ``[num_envs, act_dim]`` floats (Box),
        one per sub-env."""
        if not self._obs:
            raise RuntimeError("step() called before reset()")
        a = np.asarray(actions)
        want = (self.num_envs, *self.single_action_space.shape)
        if a.shape != want:
            raise ValueError(f"actions must have shape {want} (one per sub-env), got {a.shape}")
        grouped = {self.group: a.reshape(self.env.num_envs, self.agents_per_env, *a.shape[1:])}
        if self._others:
            grouped.update(self._other_actions())
        obs, rew, term, trunc, infos = self.env.step_grouped(grouped)
        self._obs, self._masks = obs, infos.get("action_mask", {})
        g = self.group
        return self._flat(obs[g]), self._flat(rew[g]), self._flat(term[g]), self._flat(trunc[g]), self._infos(infos)

    def _other_actions(self) -> dict[str, np.ndarray]:
        if self.other_policy is None:
            masks = {k: v for k, v in self._masks.items() if k in self._others}
            rand = self.env.sample_actions(self._other_rng, grouped=True, action_mask=masks or None)
            return {k: rand[k] for k in self._others}
        got = self.other_policy({k: self._obs[k] for k in self._others}, {k: v for k, v in self._masks.items() if k in self._others})
        missing = [k for k in self._others if k not in got]
        if missing:
            raise ValueError(f"other_policy returned no actions for groups {missing}")
        return {k: got[k] for k in self._others}

    def render(self) -> tuple[np.ndarray, ...] | None:
        """One ``[H, W, 3]`` frame per genmarl env (with ``render_mode="rgb_array"``)."""
        if self.render_mode is None:
            return None
        return tuple(self.env.render(e) for e in range(self.env.num_envs))

    def close_extras(self, **kwargs: Any) -> None:
        self.env.close()

    def __repr__(self) -> str:
        return f"AgentVectorEnv({self.env.name!r}, group={self.group!r}, num_envs={self.num_envs})"
