"""Planning with the true simulator: the oracle that shows what world-model error costs.

For every env being acted in, :class:`SimulatorPlanner` copies the env's full state
(``get_state``) ``K`` times into a scratch batched env (``set_state``), rolls ``K`` candidate
joint action sequences of ``H`` steps through the real C++ simulator, scores each by its
discounted real reward (mean over agents; nothing counted after the episode ends) plus the
discounted critic value of where it ends, and acts on the first joint action of the best.

Rows of the scratch env are laid out env-major: row ``e * K + k`` is candidate ``k`` of env ``e``.
The env being acted in is only read (``get_state`` returns copies), never stepped or changed.
Random draws inside the scratch env (MPE draws only at resets) come from the scratch env's own
streams, so a candidate whose episode ends early is scored on what happened up to the end.

Every simulator step taken here is an env step: :attr:`SimulatorPlanner.env_steps` counts them
(``num_envs * K * H`` per plan) so that sample-efficiency figures can report them separately.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = ["SimulatorPlanner", "check_simulator_env"]


def check_simulator_env(env: Any) -> None:
    """Raises ValueError unless ``env`` can be copied into a scratch env (genmarl's VectorEnv)."""
    missing = [m for m in ("get_state", "set_state", "step_grouped", "scenario_kwargs", "name") if not hasattr(env, m)]
    if missing:
        raise ValueError(
            f"planning with the simulator needs an env whose state can be copied (get_state/set_state, "
            f"as genmarl.make(...) envs have); {type(env).__name__} lacks {', '.join(missing)}. "
            "Plan with the world model instead (plan_model='world')"
        )


class SimulatorPlanner:
    """Scores candidate joint action sequences by rolling them through copies of the real env."""

    def __init__(self, gamma: float, num_threads: int | None = None) -> None:
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma!r}")
        self.gamma = float(gamma)
        self.num_threads = num_threads
        self.env_steps = 0  # simulator steps spent on planning
        self._scratch: Any = None
        self._scratch_key: tuple | None = None

    def branch(self, env: Any, copies: int) -> Any:
        """A scratch env whose row ``e * copies + k`` holds a copy of ``env``'s env ``e``."""
        check_simulator_env(env)
        if not isinstance(copies, int) or copies < 1:
            raise ValueError(f"copies must be a positive integer, got {copies!r}")
        import genmarl

        E = env.num_envs
        key = (env.name, tuple(sorted(env.scenario_kwargs.items())), E * copies)
        if self._scratch is None or self._scratch_key != key:
            threads = self.num_threads or env.num_threads
            self._scratch = genmarl.make(env.name, num_envs=E * copies, num_threads=threads, **env.scenario_kwargs)
            self._scratch_key = key
        state = env.get_state()
        copied = {
            name: (np.repeat(arr, copies, axis=0) if arr.ndim >= 1 else arr) for name, arr in state.items()
        }
        self._scratch.set_state(copied)
        return self._scratch

    def rollout(
        self,
        env: Any,
        copies: int,
        horizon: int,
        choose: Callable[[int, dict[str, np.ndarray], np.ndarray], dict[str, np.ndarray]],
        bootstrap: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Rolls ``copies`` candidates per env for ``horizon`` steps.

        ``choose(t, obs, done)`` returns the joint actions ``{g: [E * copies, n_g]}`` of step ``t``
        given the scratch env's grouped observations and which rows already finished their episode;
        ``bootstrap(obs)`` (optional) returns values ``[E * copies]`` of the last observations.
        Returns (scores ``[E, copies]``, the first joint actions ``{g: [E, copies, n_g]}``).
        """
        if not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
        scratch = self.branch(env, copies)
        E, rows = env.num_envs, env.num_envs * copies
        obs = scratch.observe_grouped()
        score = np.zeros(rows)
        disc = np.ones(rows)
        ended = np.zeros(rows, dtype=bool)
        first: dict[str, np.ndarray] = {}
        for t in range(horizon):
            actions = choose(t, obs, ended.copy())
            if t == 0:
                first = {g: np.asarray(a).reshape(E, copies, *np.shape(a)[1:]) for g, a in actions.items()}
            obs, rew, term, trunc, infos = scratch.step_grouped(actions)
            self.env_steps += rows
            r = np.concatenate([np.asarray(rew[g], np.float64) for g in rew], axis=1).mean(axis=1)
            score += np.where(ended, 0.0, disc * r)
            disc *= self.gamma
            ended |= np.asarray(infos["done"], bool)
        if bootstrap is not None:
            score += np.where(ended, 0.0, disc * np.asarray(bootstrap(obs), np.float64))
        return score.reshape(E, copies), first

    def score_sequences(self, env: Any, actions: Mapping[str, np.ndarray]) -> np.ndarray:
        """Open-loop scores ``[E, K]`` of known joint action sequences ``{g: [E, K, H, n_g]}``."""
        groups = list(actions)
        shape = np.shape(actions[groups[0]])
        if len(shape) != 4:
            raise ValueError(f"actions[g] must have shape [num_envs, K, H, n_g], got {shape}")
        E, K, H = shape[:3]
        if E != env.num_envs:
            raise ValueError(f"actions are for {E} envs, the env has {env.num_envs}")

        def choose(t: int, obs: dict[str, np.ndarray], done: np.ndarray) -> dict[str, np.ndarray]:
            return {g: np.ascontiguousarray(np.asarray(a)[:, :, t].reshape(E * K, -1), dtype=np.int64) for g, a in actions.items()}

        return self.rollout(env, K, H, choose)[0]
