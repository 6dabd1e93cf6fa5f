"""Scenario success metrics for evaluation (numpy only).

They are read from observations, whose layout mpe2 documents, because a finished env has
already been reset when ``step`` returns (its last observation is ``infos["final_observation"]``).

simple_spread (mpe2's ``benchmark_data`` quantities): ``occupied_landmarks`` (landmarks with an
agent within 0.1 at the last step), ``min_dist_sum`` (sum over landmarks of the nearest agent's
distance at the last step) and ``collisions`` (agent pairs closer than the sum of their sizes,
summed over the episode's steps). simple_tag: ``tags`` (adversary-good collisions over the
episode: every adversary is rewarded +10 for each, so tags = adversary return / 10).
"""

from __future__ import annotations

from typing import Any

import numpy as np

SPREAD_AGENT_SIZE = 0.15  # mpe2 simple_spread: agent.size
SPREAD_OCCUPIED = 0.1  # mpe2 simple_spread benchmark_data: a landmark counts as occupied within 0.1


class EpisodeMetrics:
    """Accumulates per-episode metrics of every env of a batch."""

    def __init__(self, env: Any) -> None:
        self.env_name = getattr(env, "name", "")
        self.num_envs = int(env.num_envs)
        self.collisions = np.zeros(self.num_envs)
        self.num_landmarks = 0
        if self.env_name == "simple_spread":
            n, d = env.group_observation_space("agent").shape
            # obs = vel(2), pos(2), landmarks(2L), other agents(2(N-1)), comm(2(N-1))
            self.num_landmarks = (d - 4 - 4 * (n - 1)) // 2

    @property
    def names(self) -> list[str]:
        if self.env_name == "simple_spread":
            return ["occupied_landmarks", "min_dist_sum", "collisions"]
        if self.env_name == "simple_tag":
            return ["tags"]
        return []

    def step(self, obs_after: dict[str, np.ndarray], done: np.ndarray, episode_return: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
        """``obs_after``: each env's observation after the step (the final one where ``done``).
        Returns the metrics of the episodes that ended in this step (rows where ``done``)."""
        out: dict[str, np.ndarray] = {}
        if self.env_name == "simple_spread":
            o = obs_after["agent"]  # [E, N, d]
            N, L = o.shape[1], self.num_landmarks
            others = o[:, :, 4 + 2 * L : 4 + 2 * L + 2 * (N - 1)].reshape(len(o), N, N - 1, 2)
            close = np.linalg.norm(others, axis=-1) < 2 * SPREAD_AGENT_SIZE
            self.collisions += close.sum((1, 2)) / 2  # each pair is seen by both agents
            if done.any():
                land = np.linalg.norm(o[done, :, 4 : 4 + 2 * L].reshape(int(done.sum()), N, L, 2), axis=-1).min(1)
                out["occupied_landmarks"] = (land < SPREAD_OCCUPIED).sum(-1).astype(float)
                out["min_dist_sum"] = land.sum(-1)
                out["collisions"] = self.collisions[done].copy()
        elif self.env_name == "simple_tag" and done.any() and episode_return is not None:
            out["tags"] = episode_return["adversary"][done][:, 0] / 10.0
        self.collisions[done] = 0
        return out
