"""One run's rollouts on Ray actors (``genmarl train --workers N [--ray-address ADDR]``; MAPPO/IPPO).

``workers`` actors each own a shard of the run's ``num_envs`` envs (a batched C++ env) and a copy of
the policy. Every update is synchronous, as PPO needs: the learner puts its current weights
(actors, critics, value normalisers) in Ray's object store, every worker collects ``num_steps``
steps of its shard with them and returns the steps and the values of its last observations, and
the learner writes them side by side into its own rollout buffer, computes GAE and runs the PPO
epochs. The learner (``RolloutWorkersLearner``) implements the learner protocol, so training,
evaluation, checkpoints and ``--resume`` go through the same runner.

Seeds: worker ``i`` seeds its env shard and its action sampling with ``run seed * 1000 + i + 1``
(``worker_seed``), so a run with workers is reproducible for a fixed number of workers and envs,
but differs from the in-process run and from other worker counts. A worker restarted after a
failure starts a fresh episode on its shard with ``worker_seed + 1000 * restarts``; ``--resume``
restores the learner (networks, optimisers, counters) and starts fresh worker shards, so a resumed
run continues but is not bitwise equal to an uninterrupted one.

Failure: a worker that dies (its process killed, its node lost) is replaced by a new actor and its
collection retried, up to ``max_restarts`` times per worker; the learner's state is never lost.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


def check_address(address: str, timeout: float = 5.0) -> None:
    """Fails fast (ConnectionError) when a Ray address (``host:port`` or ``ray://host:port``) does not
    accept connections; ``auto`` and ``local`` are left to Ray."""
    import socket

    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--ray-address must look like HOST:PORT or ray://HOST:PORT (or auto), got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ConnectionError(f"cannot reach the Ray cluster at {address!r} ({exc}); is `ray start --head` running there?") from None


def init_ray(address: str | None = None) -> None:
    """Connects to the Ray cluster at ``address`` (``HOST:PORT``; see :func:`check_address`) or
    starts a local one; nothing when Ray is already up in this process."""
    import ray

    if ray.is_initialized():
        return
    if address:
        try:
            ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConnectionError(f"cannot reach the Ray cluster at {address!r}: {exc}") from None
    else:
        ray.init(log_to_driver=False, include_dashboard=False)


def worker_seed(run_seed: int, index: int, restarts: int = 0) -> int:
    return int(run_seed) * 1000 + index + 1 + 1000 * restarts


def shard_sizes(num_envs: int, workers: int) -> list[int]:
    """Envs of each worker: as even as possible, every worker at least one."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if num_envs < workers:
        raise ValueError(f"num_envs ({num_envs}) must be at least workers ({workers}): every worker steps one env or more")
    base, extra = divmod(num_envs, workers)
    return [base + (1 if i < extra else 0) for i in range(workers)]


class _Worker:
    """A Ray actor: a MAPPO learner on one env shard, used only to collect."""

    def __init__(self, config: dict[str, Any], num_envs: int, seed: int) -> None:
        import torch

        import genmarl
        from genmarl.algos.config import config_from_dict
        from genmarl.algos.ppo import MAPPO

        cfg = config_from_dict({**config, "num_envs": num_envs, "seed": seed, "workers": 0, "ray_address": ""})
        torch.set_num_threads(max(cfg.torch_threads, 1))
        env = genmarl.make(cfg.env, num_envs=num_envs, num_threads=cfg.num_threads or None, seed=seed, **cfg.env_kwargs)
        self.learner = MAPPO(env, cfg)
        self.learner.reset(seed=seed)

    def pid(self) -> int:
        import os

        return os.getpid()

    def collect(self, weights: dict[str, Any]) -> dict[str, Any]:
        learner = self.learner
        learner.actors.load_state_dict(weights["actors"])
        learner.critics.load_state_dict(weights["critics"])
        learner.value_norms.load_state_dict(weights["value_norms"])
        stats = learner.collect()
        rollout = learner.rollout
        return {
            "steps": {k: rollout[k] for k in rollout.spec},
            "last_values": learner.values(learner.obs),
            "stats": stats,
            "env_steps": learner.cfg.num_steps * learner.num_envs,
        }


class RolloutWorkersLearner:
    """MAPPO/IPPO whose rollouts come from Ray actors (see the module docstring). Built like any
    learner: ``RolloutWorkersLearner(env, config)`` with ``config.workers >= 1``; ``env`` (the
    run's env, never stepped here) gives the spaces and hosts evaluation copies."""

    max_restarts = 3

    def __init__(self, env: Any, config: Any) -> None:
        from genmarl.algos.ppo import MAPPO

        self.local = MAPPO(env, config)  # the learner proper: networks, optimisers, rollout buffer
        self.cfg = config
        self.sizes = shard_sizes(config.num_envs, config.workers)
        self.restarts = [0] * config.workers
        self._workers: list[Any] = [None] * config.workers

    # ---- the learner protocol: delegated to the local learner ---------------------------------
    @property
    def env(self) -> Any:
        return self.local.env

    @property
    def num_envs(self) -> int:
        return self.local.num_envs

    @property
    def env_steps(self) -> int:
        return self.local.env_steps

    @property
    def updates(self) -> int:
        return self.local.updates

    @property
    def planning_env_steps(self) -> int:
        return 0

    @classmethod
    def csv_columns(cls, config: Any) -> tuple[list[str], list[str]]:
        from genmarl.algos.ppo import MAPPO

        return MAPPO.csv_columns(config)

    def act(self, *args: Any, **kwargs: Any) -> dict[str, np.ndarray]:
        return self.local.act(*args, **kwargs)

    def for_env(self, env: Any) -> Any:
        return self.local.for_env(env)

    def evaluation_diagnostics(self) -> dict[str, Any]:
        return {}

    def set_progress(self, fraction_done: float) -> None:
        self.local.set_progress(fraction_done)

    def update(self) -> dict[str, float]:
        return self.local.update()

    def state_dict(self, include_env: bool = True) -> dict[str, Any]:
        return self.local.state_dict(include_env=False)  # the workers' shards are not part of a checkpoint

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.local.load_state_dict(state)

    def save(self, path: str) -> None:
        self.local.save(path)

    def load(self, path: str) -> None:
        self.local.load(path)

    def reset(self, seed: int | None = None) -> None:
        """Starts (or restarts) the workers; their envs reset with their own seeds."""
        for i in range(len(self._workers)):
            self._start(i)

    # ---- workers -------------------------------------------------------------------------------
    def _start(self, i: int) -> None:
        import ray

        init_ray(self.cfg.ray_address or None)
        actor = ray.remote(num_cpus=1)(_Worker)
        config = dataclasses.asdict(self.cfg)
        self._workers[i] = actor.remote(config, self.sizes[i], worker_seed(self.cfg.seed, i, self.restarts[i]))

    def worker_pids(self) -> list[int]:
        import ray

        return ray.get([w.pid.remote() for w in self._workers])

    def collect(self) -> dict[str, Any]:
        """One synchronous collection: the current weights to every worker, their steps into the
        rollout buffer side by side, GAE. Returns finished-episode statistics as MAPPO.collect."""
        import ray
        from ray.exceptions import ActorDiedError, RayActorError

        from genmarl.algos.learner import FinishedEpisodes

        if any(w is None for w in self._workers):
            self.reset()
        local = self.local
        weights = ray.put({
            "actors": local.actors.state_dict(), "critics": local.critics.state_dict(), "value_norms": local.value_norms.state_dict(),
        })  # fmt: skip
        pending = {i: w.collect.remote(weights) for i, w in enumerate(self._workers)}
        results: dict[int, dict[str, Any]] = {}
        while pending:
            i, ref = next(iter(pending.items()))
            try:
                results[i] = ray.get(ref)
                del pending[i]
            except (RayActorError, ActorDiedError):
                if self.restarts[i] >= self.max_restarts:
                    raise RuntimeError(f"rollout worker {i} died {self.restarts[i] + 1} times; giving up") from None
                self.restarts[i] += 1
                self._start(i)
                pending[i] = self._workers[i].collect.remote(weights)
        parts = [results[i] for i in range(len(self._workers))]
        rollout = local.rollout
        rollout.reset()
        for t in range(self.cfg.num_steps):
            rollout.add({k: np.concatenate([p["steps"][k][t] for p in parts]) for k in parts[0]["steps"]})
        last = {g: np.concatenate([p["last_values"][g] for p in parts]) for g in parts[0]["last_values"]}
        rollout.compute_gae(last, gamma=self.cfg.gamma, gae_lambda=self.cfg.gae_lambda)
        local.env_steps += sum(p["env_steps"] for p in parts)
        finished = FinishedEpisodes([g.name for g in local.groups])
        for p in parts:
            finished.add_summary(p["stats"])
        return finished.summary()
