"""One run's rollouts on Ray actors (``genmarl train --workers N [--ray-address ADDR]``).

``workers`` actors each own a shard of the run's ``num_envs`` envs (a batched env, shards as even
as possible) and a copy of the acting networks. Two learners use them:

- **MAPPO/IPPO** (:class:`RolloutWorkersLearner`): every update is synchronous, as PPO needs. The
  learner puts its current weights (actors, critics, value normalisers) in Ray's object store,
  every worker collects ``num_steps`` steps of its shard with them and returns the steps and the
  values of its last observations, and the learner writes them side by side into its own rollout
  buffer, computes GAE and runs the PPO epochs.
- **The generative agent** (:class:`ReplayWorkersLearner`): workers stream steps into the learner's
  replay while the learner trains. Each worker always has one collection of ``num_steps`` steps
  in flight; ``collect()`` takes every worker's finished collection, writes it into the replay
  buffer (the worker's shard's columns), and at once sends each worker its next collection with
  the current weights, so the workers step their envs while the learner runs its gradient
  updates. The acting policy is one collection older than in a run without workers.

Both implement the learner protocol, so training, evaluation, checkpoints and ``--resume`` go
through the same runner.

Seeds: worker ``i`` seeds its env shard and its action sampling with ``run seed * 1000 + i + 1``
(``worker_seed``), so a run with workers is reproducible for a fixed number of workers and envs
(for the generative agent too: what a collection returns does not depend on timing), but differs
from the in-process run and from other worker counts. A worker restarted after a failure starts
a fresh episode on its shard with ``worker_seed + 1000 * restarts``; ``--resume`` restores the
learner (networks, optimisers, counters; the generative agent's replay buffer too) and starts
fresh worker shards, so a resumed run continues but is not bitwise equal to an uninterrupted one.

Failure: a worker that dies (its process killed, its node lost) is replaced by a new actor and its
collection retried, up to ``max_restarts`` times per worker; the learner's state is never lost.
An env registered at run time (``genmarl.register``, ``genmarl.register_module``) is registered in
the workers too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
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


def _worker_config(config: dict[str, Any], num_envs: int, seed: int, **extra: Any) -> Any:
    from genmarl.algos.config import config_from_dict

    return config_from_dict({**config, "num_envs": num_envs, "seed": seed, "workers": 0, "ray_address": "", **extra})


def _worker_env(cfg: Any, registration: dict[str, Any] | None) -> Any:
    import torch

    import genmarl
    from genmarl.envs.registry import restore_registration

    restore_registration(registration)
    torch.set_num_threads(max(cfg.torch_threads, 1))
    return genmarl.make(cfg.env, num_envs=cfg.num_envs, num_threads=cfg.num_threads or None, seed=cfg.seed, **cfg.env_kwargs)


class _RolloutWorker:
    """A Ray actor: a MAPPO learner on one env shard, used only to collect."""

    def __init__(self, config: dict[str, Any], num_envs: int, seed: int, registration: dict[str, Any] | None) -> None:
        from genmarl.algos.ppo import MAPPO

        cfg = _worker_config(config, num_envs, seed)
        self.learner = MAPPO(_worker_env(cfg, registration), cfg)
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


class _ReplayWorker:
    """A Ray actor: a generative agent on one env shard that acts (its own replay buffer unused)."""

    def __init__(self, config: dict[str, Any], num_envs: int, seed: int, registration: dict[str, Any] | None) -> None:
        from genmarl.generative.agent import GenerativeAgent

        seq = int(config.get("seq_len", 16))
        cfg = _worker_config(config, num_envs, seed, buffer_capacity=num_envs * (seq + 1))  # the smallest valid one
        self.agent = GenerativeAgent(_worker_env(cfg, registration), cfg)
        self.agent.reset(seed=seed)

    def pid(self) -> int:
        import os

        return os.getpid()

    def collect(self, weights: dict[str, Any], random_actions: bool) -> dict[str, Any]:
        """``num_steps`` steps of the shard with ``weights`` (uniformly random actions when
        ``random_actions``: the run is still prefilling): the steps stacked ``{field: [num_steps,
        shard, ...]}``, finished-episode statistics and simulator-planning env steps."""
        agent = self.agent
        agent.load_acting_weights(weights)
        steps: list[dict[str, np.ndarray]] = []
        planned = agent.planning_env_steps
        stats = agent.step_envs(lambda step: steps.append({k: np.array(v) for k, v in step.items()}), lambda: random_actions)
        return {
            "steps": {k: np.stack([s[k] for s in steps]) for k in steps[0]},
            "stats": stats,
            "planning_env_steps": agent.planning_env_steps - planned,
        }


class _WorkerPool:
    """``config.workers`` Ray actors of class ``actor_cls``, one env shard each: started,
    replaced after a failure (``max_restarts`` per worker), their results gathered."""

    def __init__(self, config: Any, actor_cls: type, max_restarts: int) -> None:
        self.cfg = config
        self.actor_cls = actor_cls
        self.max_restarts = max_restarts
        self.sizes = shard_sizes(config.num_envs, config.workers)
        self.offsets = np.cumsum([0, *self.sizes])
        self.restarts = [0] * config.workers
        self.actors: list[Any] = [None] * config.workers

    @property
    def started(self) -> bool:
        return all(a is not None for a in self.actors)

    def env_ids(self, i: int) -> np.ndarray:
        """The run's env indices that worker ``i``'s shard steps."""
        return np.arange(self.offsets[i], self.offsets[i + 1])

    def start(self, i: int) -> None:
        import ray

        from genmarl.envs.registry import registration

        init_ray(self.cfg.ray_address or None)
        actor = ray.remote(num_cpus=1)(self.actor_cls)
        config = dataclasses.asdict(self.cfg)
        seed = worker_seed(self.cfg.seed, i, self.restarts[i])
        self.actors[i] = actor.remote(config, self.sizes[i], seed, registration(self.cfg.env))

    def start_all(self) -> None:
        """Starts (or restarts) every worker; their envs reset with their own seeds."""
        for i in range(len(self.actors)):
            self.start(i)

    def pids(self) -> list[int]:
        import ray

        return ray.get([a.pid.remote() for a in self.actors])

    def gather(
        self, pending: dict[int, Any], retry: Callable[[int], Any], on_restart: Callable[[int], None] = lambda i: None
    ) -> dict[int, Any]:
        """The results of ``pending`` ({worker: object ref}). A worker that died is replaced
        (``on_restart(i)`` is told) and ``retry(i)`` submits its task again to the new actor."""
        import ray
        from ray.exceptions import ActorDiedError, RayActorError

        pending = dict(pending)
        results: dict[int, Any] = {}
        while pending:
            i, ref = next(iter(pending.items()))
            try:
                results[i] = ray.get(ref)
                del pending[i]
            except (RayActorError, ActorDiedError):
                if self.restarts[i] >= self.max_restarts:
                    raise RuntimeError(f"rollout worker {i} died {self.restarts[i] + 1} times; giving up") from None
                self.restarts[i] += 1
                self.start(i)
                on_restart(i)
                pending[i] = retry(i)
        return results


class _DelegatingLearner:
    """The learner protocol of a workers learner, delegated to its in-process learner ``local``
    (``config.algo``'s learner, which owns the networks, optimisers and buffers and evaluates);
    ``worker_cls`` is the Ray actor class of its workers. Built like any learner:
    ``Learner(env, config)`` with ``config.workers >= 1``; ``env`` (the run's env, never stepped
    here) gives the spaces and hosts evaluation copies."""

    worker_cls: type
    max_restarts = 3

    def __init__(self, env: Any, config: Any) -> None:
        from genmarl.algos.learner import learner_class

        self.local = learner_class(config.algo)(env, config)
        self.cfg = config
        self.pool = _WorkerPool(config, self.worker_cls, self.max_restarts)

    @classmethod
    def csv_columns(cls, config: Any) -> tuple[list[str], list[str]]:
        from genmarl.algos.learner import learner_class

        return learner_class(config.algo).csv_columns(config)

    @property
    def planning_env_steps(self) -> int:
        return self.local.planning_env_steps

    def evaluation_diagnostics(self) -> dict[str, Any]:
        return self.local.evaluation_diagnostics()

    def reset(self, seed: int | None = None) -> None:
        """Starts (or restarts) the workers; their envs reset with their own seeds."""
        self.pool.start_all()

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
    def restarts(self) -> list[int]:
        """Restarts of each worker so far."""
        return self.pool.restarts

    def worker_pids(self) -> list[int]:
        return self.pool.pids()

    def act(self, *args: Any, **kwargs: Any) -> dict[str, np.ndarray]:
        return self.local.act(*args, **kwargs)

    def for_env(self, env: Any) -> Any:
        return self.local.for_env(env)

    def set_progress(self, fraction_done: float) -> None:
        self.local.set_progress(fraction_done)

    def update(self) -> dict[str, float]:
        return self.local.update()

    def save(self, path: str) -> None:
        self.local.save(path)

    def load(self, path: str) -> None:
        self.local.load(path)


class RolloutWorkersLearner(_DelegatingLearner):
    """MAPPO/IPPO whose rollouts come from Ray actors (see the module docstring); ``local`` is the
    learner proper (networks, optimisers, rollout buffer)."""

    worker_cls = _RolloutWorker

    def state_dict(self, include_env: bool = True) -> dict[str, Any]:
        return self.local.state_dict(include_env=False)  # the workers' shards are not part of a checkpoint

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.local.load_state_dict(state)

    def collect(self) -> dict[str, Any]:
        """One synchronous collection: the current weights to every worker, their steps into the
        rollout buffer side by side, GAE. Returns finished-episode statistics as MAPPO.collect."""
        import ray

        from genmarl.algos.learner import FinishedEpisodes

        if not self.pool.started:
            self.reset()
        local = self.local
        weights = ray.put({
            "actors": local.actors.state_dict(), "critics": local.critics.state_dict(), "value_norms": local.value_norms.state_dict(),
        })  # fmt: skip
        actors = self.pool.actors
        results = self.pool.gather({i: a.collect.remote(weights) for i, a in enumerate(actors)}, lambda i: actors[i].collect.remote(weights))
        parts = [results[i] for i in range(len(actors))]
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


class ReplayWorkersLearner(_DelegatingLearner):
    """The generative agent whose experience comes from Ray actors, streamed into its replay
    while it trains (see the module docstring); ``local`` is the agent proper (models,
    optimisers, replay buffer)."""

    worker_cls = _ReplayWorker

    def __init__(self, env: Any, config: Any) -> None:
        super().__init__(env, config)
        self._in_flight: dict[int, tuple[Any, Any, bool]] = {}  # worker -> (result ref, weights ref, random actions)
        self._worker_planning_steps = 0

    @property
    def planning_env_steps(self) -> int:
        """Simulator-planning env steps of the workers (training) and of this process (evaluation)."""
        return self._worker_planning_steps + self.local.planning_env_steps

    def state_dict(self, include_env: bool = True) -> dict[str, Any]:
        """The local agent's state with its replay buffer (the workers' shards are not part of a
        checkpoint; a resumed run starts fresh ones)."""
        state = self.local.state_dict(include_env=False)
        if include_env:
            state["buffer"] = self.local.buffer_bytes()
        state["worker_planning_env_steps"] = self._worker_planning_steps
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.local.load_state_dict(state)
        if "buffer" in state:
            self.local.load_buffer_bytes(state["buffer"])
            self.local.buffer.end_episode(np.arange(self.num_envs))  # fresh worker shards start new episodes
        self._worker_planning_steps = int(state.get("worker_planning_env_steps", 0))
        self._in_flight = {}

    def reset(self, seed: int | None = None) -> None:
        """Starts (or restarts) the workers (their envs reset with their own seeds); nothing in flight."""
        super().reset(seed)
        self._in_flight = {}

    def _send(self, i: int, weights: Any, random_actions: bool) -> Any:
        """Sends worker ``i`` its next collection; returns the result's ref."""
        ref = self.pool.actors[i].collect.remote(weights, random_actions)
        self._in_flight[i] = (ref, weights, random_actions)
        return ref

    def _send_all(self) -> None:
        import ray

        weights = ray.put(self.local.acting_weights())
        for i in range(len(self.pool.actors)):
            self._send(i, weights, self.local.env_steps < self.cfg.prefill_steps)

    def collect(self) -> dict[str, Any]:
        """Every worker's collection in flight (sent with the weights of the previous call; on the
        first call, sent now) into the replay buffer, worker by worker; then each worker's next
        collection is sent with the current weights. Returns finished-episode statistics as
        :meth:`GenerativeAgent.collect`."""
        from genmarl.algos.learner import FinishedEpisodes

        if not self.pool.started:
            self.reset()
        local = self.local
        if not self._in_flight:
            self._send_all()
        sent = dict(self._in_flight)

        def restarted(i: int) -> None:  # the dead worker's episodes end where its steps stopped
            local.buffer.end_episode(self.pool.env_ids(i))

        retry = lambda i: self._send(i, *sent[i][1:])  # noqa: E731 - the same weights and prefill flag, to the new actor
        results = self.pool.gather({i: ref for i, (ref, _, _) in sent.items()}, retry, restarted)
        self._in_flight = {}
        finished = FinishedEpisodes([g.name for g in local.groups])
        for i in range(len(self.pool.actors)):
            r = results[i]
            local.ingest(r["steps"], self.pool.env_ids(i))
            self._worker_planning_steps += r["planning_env_steps"]
            finished.add_summary(r["stats"])
        self._send_all()
        stats = finished.summary()
        local.record_finished(stats)
        return stats


# algo -> the learner that runs its rollouts on workers
WORKER_LEARNERS = {"mappo": RolloutWorkersLearner, "ippo": RolloutWorkersLearner, "genrl": ReplayWorkersLearner}


def workers_learner(env: Any, config: Any) -> Any:
    """The learner of ``config.algo`` with its rollouts on ``config.workers`` Ray actors."""
    if config.algo not in WORKER_LEARNERS:
        raise ValueError(f"no rollout workers for algo {config.algo!r}; known: {sorted(WORKER_LEARNERS)}")
    return WORKER_LEARNERS[config.algo](env, config)
