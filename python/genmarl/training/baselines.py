"""Reference policies for evaluation: uniformly random, and scripted heuristics where one is obvious.

Heuristics (discrete actions; mpe2's moves: 1 = -x, 2 = +x, 3 = -y, 4 = +y):

- simple_spread: agent i heads for landmark i (a fixed assignment, so every landmark is covered).
- simple_tag, adversaries: chase the nearest good agent.
- simple_speaker_listener: the speaker says the goal's index (argmax of the goal colour); the
  listener heads for the landmark its message names.

There is no obvious heuristic for simple_reference (each agent must both say the other's goal and
decode its own from a 10-symbol channel jointly with moving), so only the random baseline applies.
"""

from __future__ import annotations

from typing import Any

import numpy as np

HEURISTICS = {
    ("simple_spread", "agent"),
    ("simple_tag", "adversary"),
    ("simple_speaker_listener", "speaker"),
    ("simple_speaker_listener", "listener"),
}


def has_heuristic(env_name: str, group: str) -> bool:
    return (env_name, group) in HEURISTICS


def move_towards(rel: np.ndarray, tolerance: float = 0.02) -> np.ndarray:
    """rel: [..., 2] target minus position -> discrete move along the larger axis (0 when close)."""
    dx, dy = rel[..., 0], rel[..., 1]
    horizontal = np.abs(dx) >= np.abs(dy)
    a = np.where(horizontal, np.where(dx < 0, 1, 2), np.where(dy < 0, 3, 4))
    return np.where(np.maximum(np.abs(dx), np.abs(dy)) < tolerance, 0, a).astype(np.int64)


def heuristic_actions(env: Any, group: str, obs: np.ndarray) -> np.ndarray:
    """Scripted discrete actions ``[num_envs, n]`` for ``group`` from its observations ``[num_envs, n, d]``."""
    name = env.name
    if name == "simple_spread" and group == "agent":
        n = obs.shape[1]
        idx = np.arange(n)
        rel = obs[:, idx, :][:, :, 4:][:, np.arange(n), :].reshape(obs.shape[0], n, -1)
        target = np.stack([rel[:, i, 2 * i : 2 * i + 2] for i in range(n)], 1)
        return move_towards(target)
    if name == "simple_tag" and group == "adversary":
        n_adv = obs.shape[1]
        n_good = len(env.group_agents["agent"])
        num_landmarks = (obs.shape[2] - 4 - 2 * (n_adv - 1 + n_good) - 2 * n_good) // 2
        start = 4 + 2 * num_landmarks + 2 * (n_adv - 1)
        good = obs[:, :, start : start + 2 * n_good].reshape(obs.shape[0], n_adv, n_good, 2)
        nearest = np.linalg.norm(good, axis=-1).argmin(-1)
        target = np.take_along_axis(good, nearest[..., None, None].repeat(2, -1), 2)[:, :, 0]
        return move_towards(target, tolerance=0.0)
    if name == "simple_speaker_listener" and group == "speaker":
        return obs[:, :, :3].argmax(-1).astype(np.int64)
    if name == "simple_speaker_listener" and group == "listener":
        said = obs[:, :, 8:11]
        k = said.argmax(-1)  # [E, 1]
        landmarks = obs[:, :, 2:8].reshape(obs.shape[0], obs.shape[1], 3, 2)
        target = np.take_along_axis(landmarks, k[..., None, None].repeat(2, -1), 2)[:, :, 0]
        return move_towards(target)
    raise ValueError(f"no heuristic policy for group {group!r} of {name!r}")


def random_actions(env: Any, group: str, rng: np.random.Generator, mask: np.ndarray | None = None) -> np.ndarray:
    """Uniformly random actions of one group for every env; with ``mask`` ([num_envs, n,
    num_actions] bool, ``infos["action_mask"][group]``) uniform among the valid actions."""
    from gymnasium import spaces

    space = env.group_action_space(group)
    if isinstance(space, spaces.Box):
        return rng.random((env.num_envs, *space.shape), dtype=np.float32)
    if mask is not None:
        from genmarl.envs.vector_env import sample_valid

        return sample_valid(rng, mask)
    return rng.integers(0, space.nvec[0], size=(env.num_envs, len(space.nvec)), dtype=np.int64)
