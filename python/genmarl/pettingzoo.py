"""PettingZoo adapters: one genmarl environment as a Parallel or AEC PettingZoo env.

>>> from genmarl.pettingzoo import parallel_env
>>> env = parallel_env("simple_spread", N=3)
>>> obs, infos = env.reset(seed=0)

Both pass PettingZoo's own ``parallel_api_test`` / ``api_test``, seed tests and
``max_cycles_test``. Needs the ``pettingzoo`` package (``pip install genmarl[pettingzoo]``).
"""

from __future__ import annotations

import secrets
from typing import Any

import numpy as np
from gymnasium import spaces

from genmarl.envs.vector_env import ClosesOnExit, VectorEnv

try:
    from pettingzoo import ParallelEnv as _ParallelBase
except ImportError:  # pragma: no cover - exercised only without pettingzoo
    _ParallelBase = object  # type: ignore[misc,assignment]


def _require_pettingzoo() -> None:
    if _ParallelBase is object:
        raise ImportError("genmarl.pettingzoo needs the 'pettingzoo' package: pip install 'genmarl[pettingzoo]'")


class GenmarlParallelEnv(ClosesOnExit, _ParallelBase):  # type: ignore[misc,valid-type]
    """A single genmarl env behind PettingZoo's Parallel API.

    ``seed`` seeds the first unseeded ``reset()``; ``reset(seed=s)`` reseeds. When the episode
    ends, ``agents`` becomes empty and the returned observations are the final ones.
    """

    def __init__(self, name: str, seed: int | None = None, render_mode: str | None = None, **kwargs: Any) -> None:
        _require_pettingzoo()
        self._base_seed = secrets.randbits(63) if seed is None else seed
        self._venv = VectorEnv(name, num_envs=1, num_threads=1, seed=self._base_seed, render_mode=render_mode, **kwargs)
        self.render_mode = render_mode
        self.metadata = {
            "render_modes": ["rgb_array"],
            "name": name,
            "is_parallelizable": True,
            "render_fps": 10,
        }
        self.possible_agents = list(self._venv.possible_agents)
        self.agents: list[str] = []
        self.observation_spaces = {a: self._venv.observation_space(a) for a in self.possible_agents}
        self.action_spaces = {a: self._venv.action_space(a) for a in self.possible_agents}
        state_dim = sum(int(np.prod(s.shape)) for s in self.observation_spaces.values())
        self.state_space = spaces.Box(-np.inf, np.inf, (state_dim,), np.float32)
        self._obs: dict[str, np.ndarray] = {}
        self._needs_seed = True

    @property
    def vector_env(self) -> VectorEnv:
        """The underlying one-env :class:`genmarl.VectorEnv`."""
        return self._venv

    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if seed is None and self._needs_seed:
            seed = self._base_seed
        if seed is not None:
            obs, infos = self._venv.reset(seed=seed)
            self._needs_seed = False
        else:
            obs, infos = self._venv.reset()
        self.agents = list(self.possible_agents)
        self._obs = {a: obs[a][0] for a in self.agents}
        return dict(self._obs), self._agent_infos(infos)

    def _agent_infos(self, infos: dict) -> dict[str, dict]:
        # PettingZoo's convention: infos[agent]["action_mask"], a [num_actions] int8 array.
        return {
            a: ({"action_mask": infos[a]["action_mask"][0].astype(np.int8)} if "action_mask" in infos[a] else {})
            for a in self.agents
        }

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        batched = {a: np.asarray(actions[a])[None] if a in actions else None for a in self.possible_agents}
        missing = [a for a, v in batched.items() if v is None]
        if missing:
            raise KeyError(f"actions are missing agents {missing}")
        obs, rew, term, trunc, infos = self._venv.step(batched)
        finished = "final_obs" in infos[self.possible_agents[0]]
        if finished:
            self._obs = {a: infos[a]["final_obs"][0] for a in self.agents}
        else:
            self._obs = {a: obs[a][0] for a in self.agents}
        out = (
            dict(self._obs),
            {a: float(rew[a][0]) for a in self.agents},
            {a: bool(term[a][0]) for a in self.agents},
            {a: bool(trunc[a][0]) for a in self.agents},
            {} if finished else self._agent_infos(infos),
        )
        if finished:
            out = out[:4] + ({a: {} for a in self.agents},)
            self.agents = []
        return out

    def state(self) -> np.ndarray:
        """Concatenated observations of all agents (mpe2's state)."""
        return np.concatenate([self._obs.get(a, np.zeros(self.observation_spaces[a].shape, np.float32)) for a in self.possible_agents])

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            return None
        return self._venv.render(0)

    def close(self) -> None:
        self._venv.close()


if _ParallelBase is not object:
    from pettingzoo.utils.wrappers import OrderEnforcingWrapper

    class GenmarlAECEnv(ClosesOnExit, OrderEnforcingWrapper):  # type: ignore[misc]
        """PettingZoo's order-enforcing AEC env over :class:`GenmarlParallelEnv`, as
        ``pettingzoo.utils.conversions.parallel_to_aec`` builds it, and a context manager."""


def parallel_env(name: str, **kwargs: Any) -> GenmarlParallelEnv:
    """A PettingZoo ParallelEnv for genmarl environment ``name`` (kwargs as in :func:`genmarl.make`)."""
    return GenmarlParallelEnv(name, **kwargs)


def env(name: str, **kwargs: Any):
    """A PettingZoo AECEnv for genmarl environment ``name`` (agents act in turn; the world steps
    once every agent has acted)."""
    _require_pettingzoo()
    from pettingzoo.utils.conversions import parallel_to_aec_wrapper

    return GenmarlAECEnv(parallel_to_aec_wrapper(GenmarlParallelEnv(name, **kwargs)))
