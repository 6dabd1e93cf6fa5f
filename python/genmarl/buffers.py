"""Experience buffers backed by the C++ core (``cpp/include/genmarl/buffer/``).

Four kinds of storage, all columnar (one contiguous array per field) with the agent
dimension as an ordinary leading entry of a field's shape:

* :class:`ReplayBuffer` -- uniform replay, optional n-step returns.
* :class:`PrioritizedReplayBuffer` -- proportional prioritized replay (sum tree).
* :class:`EpisodeBuffer` -- episodes from many parallel envs, sampled as ``[B, L, ...]`` sequences.
* :class:`RolloutBuffer` -- on-policy ``[num_steps, num_envs, ...]`` storage with GAE.

A *spec* maps field names to ``(shape, dtype)``, e.g.
``{"obs": ((3, 18), np.float32), "action": ((3,), np.int64), "reward": ((3,), np.float32)}``;
dtypes are float32, float16, int64, int32, uint8 or bool. Batches go in and come out as
``dict[str, np.ndarray]`` with a leading batch dimension. Every sampled array is freshly
allocated and owned by the caller (C++ gathers straight into it); :func:`to_torch` turns a
batch into tensors without copying on CPU.

Thread safety: each buffer locks itself for every call, so any calls on one buffer may come
from any threads (one at a time; a sample sees an ``add`` entirely or not at all); sequences of
calls are not atomic. The GIL is released while C++ samples, saves and loads, so those overlap
with Python work in other threads. See docs/buffers.md, "Concurrency contract".

Memory: a buffer checks the bytes it reserves against the machine's (or process's) memory limit
and raises :class:`BufferMemoryError` (a MemoryError) when they cannot fit; what fits is
reserved lazily.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from genmarl import _core
from genmarl._core import BufferFileError, BufferMemoryError

__all__ = [
    "BufferFileError",
    "BufferMemoryError",
    "EpisodeBuffer",
    "PrioritizedReplayBuffer",
    "ReplayBuffer",
    "RolloutBuffer",
    "env_spec",
    "to_torch",
    "transition_from_step",
]

_DTYPES = ("float32", "float16", "int64", "int32", "uint8", "bool")

Spec = Mapping[str, tuple[Any, Any]]
Batch = dict[str, np.ndarray]


def _normalize_spec(spec: Spec) -> list[tuple[str, tuple[int, ...], str]]:
    """Checks a spec and returns it as ``[(name, shape, dtype name), ...]``."""
    if not isinstance(spec, Mapping):
        raise TypeError(f"spec must be a dict mapping field name -> (shape, dtype), got {type(spec).__name__}")
    if not spec:
        raise ValueError("spec must have at least one field")
    out = []
    for name, entry in spec.items():
        if not isinstance(name, str):
            raise TypeError(f"field names must be strings, got {name!r}")
        if not (isinstance(entry, tuple | list) and len(entry) == 2):
            raise TypeError(f"field {name!r}: expected (shape, dtype), got {entry!r}")
        shape, dtype = entry
        if isinstance(shape, int | np.integer) and not isinstance(shape, bool):
            shape = (shape,)
        if not isinstance(shape, tuple | list) or not all(
            isinstance(d, int | np.integer) and not isinstance(d, bool | np.bool_) for d in shape
        ):
            raise TypeError(f"field {name!r}: shape must be a tuple of ints, got {shape!r}")
        shape = tuple(int(d) for d in shape)
        if any(d <= 0 for d in shape):
            raise ValueError(f"field {name!r}: every dimension must be positive, got shape {shape}")
        if any(d > 2**40 for d in shape):
            raise ValueError(f"field {name!r}: shape {shape} is too large (one item must fit in 1 GiB)")
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"field {name!r}: {dtype!r} is not a dtype") from None
        if dt.name not in _DTYPES:
            raise TypeError(f"field {name!r}: dtype {dt.name} is not supported; use one of {', '.join(_DTYPES)}")
        out.append((name, shape, dt.name))
    return out


def _spec_dict(core_spec: list) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    return {name: (tuple(shape), np.dtype(dt)) for name, shape, dt in core_spec}


def _seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an int in [0, 2**64), got {seed!r}")
    return int(seed)


def _int(value: Any, name: str, minimum: int = 1, maximum: int = 2**62) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return int(value)


def _unit(value: Any, name: str) -> float:
    """A number in [0, 1] (discounts, lambdas)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return float(value)


def _nonneg(value: Any, name: str) -> float:
    """A finite number >= 0 (alpha, beta, eps)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return float(value)


def env_spec(
    env: Any,
    *,
    next_obs: bool = False,
    action_extras: bool = False,
    value_fields: bool = False,
) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """The per-group fields of a :class:`genmarl.VectorEnv`'s transitions.

    For each agent group ``g`` (``n`` agents, observation shape ``s``): ``g/obs (n, *s)`` of the
    group's observation dtype (float32, or uint8 / int32 where the scenario declares it),
    ``g/action (n,) int64`` (discrete) or ``(n, act_dim) float32`` (continuous),
    ``g/reward``, ``g/terminated``, ``g/truncated`` (``(n,)``), plus ``g/next_obs`` when
    ``next_obs``; ``g/log_prob`` (and ``g/action_mask (n, num_actions) bool`` for groups with
    action masks) when ``action_extras``; ``g/value`` and ``g/final_value`` when ``value_fields``.
    """
    from gymnasium import spaces

    masked = set(getattr(env, "action_mask_groups", ()))
    spec: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    for g in env.groups:
        obs_space = env.group_observation_space(g)
        obs_shape, obs_dtype = tuple(obs_space.shape), np.dtype(obs_space.dtype)
        if obs_dtype not in (np.dtype(np.uint8), np.dtype(np.int32)):
            obs_dtype = np.dtype(np.float32)
        n = obs_shape[0]
        spec[f"{g}/obs"] = (obs_shape, obs_dtype)
        act = env.group_action_space(g)
        if isinstance(act, spaces.Box):
            spec[f"{g}/action"] = (tuple(act.shape), np.dtype(np.float32))
        else:
            spec[f"{g}/action"] = ((n,), np.dtype(np.int64))
        if action_extras:
            spec[f"{g}/log_prob"] = ((n,), np.dtype(np.float32))
            if g in masked:
                spec[f"{g}/action_mask"] = ((n, int(act.nvec[0])), np.dtype(np.bool_))
        spec[f"{g}/reward"] = ((n,), np.dtype(np.float32))
        spec[f"{g}/terminated"] = ((n,), np.dtype(np.bool_))
        spec[f"{g}/truncated"] = ((n,), np.dtype(np.bool_))
        if value_fields:
            spec[f"{g}/value"] = ((n,), np.dtype(np.float32))
            spec[f"{g}/final_value"] = ((n,), np.dtype(np.float32))
        if next_obs:
            spec[f"{g}/next_obs"] = (obs_shape, obs_dtype)
    return spec


def transition_from_step(
    obs: Mapping[str, np.ndarray],
    actions: Mapping[str, np.ndarray],
    next_obs: Mapping[str, np.ndarray] | None,
    rewards: Mapping[str, np.ndarray],
    terminated: Mapping[str, np.ndarray],
    truncated: Mapping[str, np.ndarray],
    infos: Mapping[str, Any],
) -> Batch:
    """A batch in :func:`env_spec`'s layout from one ``VectorEnv.step_grouped`` call.

    ``next_obs`` is the observation ``step_grouped`` returned; where an env finished, its row
    is replaced by ``infos["final_obs"]`` (the env has already been reset), so
    ``g/next_obs`` is always the true successor. Pass ``next_obs=None`` for buffers without
    a next_obs field.
    """
    from genmarl.envs.vector_env import obs_after_step

    batch: Batch = {}
    successors = obs_after_step(next_obs, infos) if next_obs is not None else None
    for g in obs:
        batch[f"{g}/obs"] = obs[g]
        batch[f"{g}/action"] = np.asarray(actions[g])
        batch[f"{g}/reward"] = rewards[g]
        batch[f"{g}/terminated"] = terminated[g]
        batch[f"{g}/truncated"] = truncated[g]
        if successors is not None:
            batch[f"{g}/next_obs"] = successors[g]
    return batch


def to_torch(batch: Mapping[str, np.ndarray], device: Any = None) -> dict[str, Any]:
    """Tensors for a sampled batch: ``torch.from_numpy`` (no copy), then moved to ``device``."""
    import torch  # lazy: genmarl's envs and buffers work without torch

    out = {}
    for k, v in batch.items():
        t = torch.from_numpy(v)
        out[k] = t if device is None else t.to(device, non_blocking=True)
    return out


def _core_property(name: str, convert: Callable[[Any], Any], doc: str | None = None) -> property:
    """A read-only property that forwards to the C++ buffer's attribute ``name``."""
    return property(lambda self: convert(getattr(self._b, name)), doc=doc)


def _path(path: Any) -> str:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    p = os.fspath(path)
    if ("\0" if isinstance(p, str) else b"\0") in p:
        raise ValueError(f"path {p!r} contains a NUL byte; file names cannot hold one")
    return p


def _load(core_cls: Any, path: Any) -> Any:
    p = _path(path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"no buffer file at {p!r}")
    return core_cls.load(p)


class _Buffer:
    """Shared Python-side pieces: spec access, size, persistence."""

    _core_cls: Any = None
    _b: Any

    @classmethod
    def _wrap(cls, core: Any) -> Any:
        obj = cls.__new__(cls)
        obj._b = core
        return obj

    @property
    def spec(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Field name -> (shape, dtype)."""
        return _spec_dict(self._b.spec)

    nbytes = _core_property("nbytes", int, "Bytes of storage the buffer holds (fields, plus trees / metadata).")

    def save(self, path: str | os.PathLike) -> None:
        """Writes the whole buffer (data, positions, RNG state) atomically: a unique temp file
        next to ``path``, fsync, rename. Safe to call concurrently to one path."""
        self._b.save(_path(path))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Any:
        """Reads a file written by :meth:`save`; raises :class:`BufferFileError` if it is
        truncated, corrupted, not a regular file, of another buffer kind or of another format
        version, and :class:`BufferMemoryError` if its capacity cannot fit in memory."""
        return cls._wrap(_load(cls._core_cls, path))


class ReplayBuffer(_Buffer):
    """Uniform replay over a fixed-capacity ring.

    ``num_envs``: when each added batch is whole steps of ``num_envs`` parallel envs (row
    ``k`` of a step is env ``k``), n-step returns follow each env's own time line.
    """

    _core_cls = _core.ReplayBuffer

    def __init__(self, capacity: int, spec: Spec, seed: int = 0, *, num_envs: int = 1) -> None:
        self._b = _core.ReplayBuffer(
            _normalize_spec(spec), _int(capacity, "capacity"), _seed(seed), _int(num_envs, "num_envs")
        )

    @classmethod
    def for_env(cls, env: Any, capacity: int, seed: int = 0) -> ReplayBuffer:
        """A buffer for ``env``'s transitions (:func:`env_spec` with ``next_obs``), one row per
        env per step; ``capacity`` is rounded down to a multiple of ``env.num_envs``."""
        capacity = _int(capacity, "capacity")
        if capacity < env.num_envs:
            raise ValueError(f"capacity ({capacity}) must hold at least one step of num_envs={env.num_envs}")
        capacity -= capacity % env.num_envs
        return cls(capacity, env_spec(env, next_obs=True), seed, num_envs=env.num_envs)

    capacity = _core_property("capacity", int)

    num_envs = _core_property("num_envs", int)

    def __len__(self) -> int:
        return int(len(self._b))

    def add(self, batch: Mapping[str, np.ndarray]) -> None:
        """Adds ``batch[field]: [B, *shape]`` for every field (exact dtypes; ``B <= capacity``)."""
        self._b.add(batch)

    def sample(
        self, batch_size: int, *, n_step: int | None = None, gamma: float = 0.99, return_indices: bool = False
    ) -> Batch:
        """``batch_size`` uniformly drawn items: ``{field: [batch_size, *shape]}``.

        With ``n_step`` given (``>= 1``) every reward field (``reward`` or ``g/reward``) holds the discounted
        sum of up to ``n_step`` rewards along the item's env, stopping after a step whose
        done/terminated/truncated flag is set or at the newest step; ``next_*`` and flag fields
        come from the last step summed, and ``"discount"`` ``[batch_size] float32`` is
        ``gamma**m`` (``m`` steps summed) or 0 when the window ended on done/terminated.
        """
        n_step = 0 if n_step is None else _int(n_step, "n_step")
        return self._b.sample(_int(batch_size, "batch_size"), n_step, _unit(gamma, "gamma"), bool(return_indices))

    def __repr__(self) -> str:
        return f"ReplayBuffer(capacity={self.capacity}, size={len(self)}, fields={list(self.spec)})"


class PrioritizedReplayBuffer(_Buffer):
    """Proportional prioritized replay (Schaul et al. 2016) on a sum tree.

    Item ``i`` is drawn with probability ``(p_i + eps)**alpha / sum_j (p_j + eps)**alpha``
    (stratified over ``batch_size`` equal-mass segments); ``weights = (N P(i))**-beta``
    normalised by their maximum over the buffer. New items get the largest priority seen so far.
    """

    _core_cls = _core.PrioritizedReplayBuffer

    def __init__(
        self, capacity: int, spec: Spec, alpha: float = 0.6, beta: float = 0.4, eps: float = 1e-6, seed: int = 0
    ) -> None:
        self._b = _core.PrioritizedReplayBuffer(
            _normalize_spec(spec),
            _int(capacity, "capacity"),
            _nonneg(alpha, "alpha"),
            _nonneg(beta, "beta"),
            _nonneg(eps, "eps"),
            _seed(seed),
        )

    capacity = _core_property("capacity", int)

    alpha = _core_property("alpha", float)

    beta = _core_property("beta", float)

    @beta.setter
    def beta(self, value: float) -> None:
        self._b.beta = _nonneg(value, "beta")

    max_priority = _core_property("max_priority", float)

    def __len__(self) -> int:
        return int(len(self._b))

    def add(self, batch: Mapping[str, np.ndarray], priorities: np.ndarray | None = None) -> None:
        """Adds a batch; items get the running max priority unless ``priorities [B]`` is given."""
        self._b.add(batch, priorities)

    def sample(self, batch_size: int, *, beta: float | None = None) -> Batch:
        """Fields plus ``"indices" [B] int64`` and ``"weights" [B] float32``."""
        return self._b.sample(_int(batch_size, "batch_size"), None if beta is None else _nonneg(beta, "beta"))

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """Sets priorities (finite, >= 0) of the given slots; nothing changes if any is invalid."""
        self._b.update_priorities(indices, priorities)

    def priorities(self, indices: np.ndarray) -> np.ndarray:
        """``(p + eps)**alpha`` of the given slots, as used for sampling."""
        return self._b.priorities(indices)

    def __repr__(self) -> str:
        return f"PrioritizedReplayBuffer(capacity={self.capacity}, size={len(self)}, alpha={self.alpha}, beta={self.beta})"


class EpisodeBuffer(_Buffer):
    """Episodes of ``num_envs`` parallel envs, stored step by step, sampled as sequences.

    Each env keeps its last ``capacity_steps // num_envs`` steps. An episode ends after a step
    in which any done/terminated/truncated field (or ``g/...``) is set, or at
    :meth:`end_episode`; with a :class:`genmarl.VectorEnv`'s auto-reset that is exactly the
    env's episode boundary.
    """

    _core_cls = _core.EpisodeBuffer

    def __init__(self, capacity_steps: int, spec: Spec, seed: int = 0, *, num_envs: int = 1) -> None:
        self._b = _core.EpisodeBuffer(
            _normalize_spec(spec), _int(capacity_steps, "capacity_steps"), _int(num_envs, "num_envs"), _seed(seed)
        )

    @classmethod
    def for_env(cls, env: Any, capacity_steps: int, seed: int = 0, **spec_options: bool) -> EpisodeBuffer:
        """A buffer for ``env``'s steps (:func:`env_spec`; no next_obs: the next step has it)."""
        return cls(capacity_steps, env_spec(env, **spec_options), seed, num_envs=env.num_envs)

    capacity = _core_property("capacity", int)

    num_envs = _core_property("num_envs", int)

    steps_per_env = _core_property("steps_per_env", int)

    num_episodes = _core_property("num_episodes", int, "Episodes finished so far (including ones since overwritten).")

    def __len__(self) -> int:
        return int(len(self._b))

    def add_step(self, step: Mapping[str, np.ndarray], env_ids: np.ndarray | None = None) -> None:
        """Adds one step: ``step[field]: [num_envs, *shape]``, or ``[len(env_ids), *shape]``
        for the listed envs only."""
        self._b.add_step(step, env_ids)

    def end_episode(self, env_ids: np.ndarray) -> None:
        """The listed envs' next steps start new episodes (e.g. after a manual reset)."""
        self._b.end_episode(np.atleast_1d(env_ids))

    def sample_sequences(self, batch_size: int, length: int, *, mode: str = "pad") -> Batch:
        """``batch_size`` windows of ``length`` consecutive steps of one env: ``{field: [B, L, *shape]}``
        plus ``"mask" [B, L] bool``, ``"is_first" [B, L] bool`` (first step of an episode),
        ``"env_ids" [B]`` and ``"starts" [B]`` (position of step 0 in that env's storage).

        ``mode="pad"``: a window starts at any stored step (uniformly) and stops at the end of
        its episode or the newest step; the rest is zeros with ``mask`` False.
        ``mode="stitch"``: any ``length`` consecutive stored steps (uniformly); a window may run
        into the next episode, whose first step has ``is_first`` True; ``mask`` is all True.
        """
        return self._b.sample_sequences(_int(batch_size, "batch_size"), _int(length, "length"), str(mode))

    def __repr__(self) -> str:
        return f"EpisodeBuffer(capacity={self.capacity}, num_envs={self.num_envs}, size={len(self)})"


class RolloutBuffer(_Buffer):
    """On-policy storage ``[num_steps, num_envs, ...]`` with GAE computed in C++.

    GAE runs for every reward field (``reward`` or ``g/reward``) and reads, with the same
    prefix, ``value`` (float32, reward's shape), ``terminated`` and ``truncated`` (one flag per
    env or per reward element) and ``final_value`` (value of the final observation where the
    episode was truncated; required if any step is truncated). The results are ``advantage``
    and ``return`` fields with the same prefix.
    """

    _core_cls = _core.RolloutBuffer

    def __init__(self, num_steps: int, num_envs: int, spec: Spec) -> None:
        self._b = _core.RolloutBuffer(_normalize_spec(spec), _int(num_steps, "num_steps"), _int(num_envs, "num_envs"))

    @classmethod
    def for_env(cls, env: Any, num_steps: int, extra_fields: Spec | None = None) -> RolloutBuffer:
        """PPO storage for ``env``: :func:`env_spec` with log_prob, value and final_value per
        group, plus ``extra_fields`` (e.g. a global state for a centralised critic)."""
        spec = env_spec(env, action_extras=True, value_fields=True)
        for k, v in (extra_fields or {}).items():
            if k in spec:
                raise ValueError(f"extra field {k!r} is already part of the env's fields")
            spec[k] = v
        return cls(num_steps, env.num_envs, spec)

    num_steps = _core_property("num_steps", int)

    num_envs = _core_property("num_envs", int)

    step = _core_property("step", int, "Steps added since the last :meth:`reset`.")

    full = _core_property("full", bool)

    gae_prefixes = _core_property("gae_prefixes", list)

    def __len__(self) -> int:
        return self.step * self.num_envs

    def add(self, step: Mapping[str, np.ndarray]) -> None:
        """Writes one step: ``step[field]: [num_envs, *shape]``."""
        self._b.add(step)

    def reset(self) -> None:
        """Starts a new rollout, keeping the storage."""
        self._b.reset()

    def compute_gae(
        self, last_values: np.ndarray | Mapping[str, np.ndarray], gamma: float = 0.99, gae_lambda: float = 0.95
    ) -> None:
        """GAE(gamma, lambda) and lambda-returns for a full rollout.

        ``last_values``: values of the observations after the final step, ``[num_envs, *reward
        shape]``; a dict keyed by group (``"adversary"`` or ``"adversary/"``) when the spec has
        several reward fields. Next-state value of step ``t``: 0 if terminated, ``final_value[t]``
        if truncated, else ``value[t + 1]``.
        """
        prefixes = self.gae_prefixes
        if not prefixes:
            raise ValueError(f"compute_gae needs a 'reward' (or 'group/reward') field; the spec has {list(self.spec)}")
        if isinstance(last_values, Mapping):
            by_prefix = {(k if k == "" or k.endswith("/") else k + "/"): v for k, v in last_values.items()}
            if set(by_prefix) != set(prefixes):
                raise KeyError(f"last_values must be keyed by {[p.rstrip('/') for p in prefixes]}, got {list(last_values)}")
            arrays = [by_prefix[p] for p in prefixes]
        else:
            if len(prefixes) != 1:
                raise TypeError(f"several reward fields: pass last_values as a dict keyed by {[p.rstrip('/') for p in prefixes]}")
            arrays = [last_values]
        spec = self.spec
        checked = []
        for p, a in zip(prefixes, arrays, strict=True):
            a = np.asarray(a)
            want = (self.num_envs, *spec[p + "reward"][0])
            if a.shape != want:
                raise ValueError(f"last_values for {p + 'reward'!r} has shape {a.shape}; expected {want}")
            if a.dtype.kind not in "fiu":
                raise TypeError(f"last_values must be numbers, got dtype {a.dtype}")
            a = np.ascontiguousarray(a, dtype=np.float32)
            if not np.isfinite(a).all():
                raise ValueError(f"last_values for {p + 'reward'!r} holds NaN or inf")
            checked.append(a)
        self._b.compute_gae(checked, _unit(gamma, "gamma"), _unit(gae_lambda, "gae_lambda"))

    def __getitem__(self, name: str) -> np.ndarray:
        """A copy of one field over the filled steps: ``[step, num_envs, *shape]``."""
        return self._b.field(name)

    def keys(self) -> list[str]:
        return list(self.spec) + [name for name, _, _ in self._b.derived_spec]

    def minibatches(
        self, num_minibatches: int, *, rng: np.random.Generator | int | None = None, by_env: bool = False
    ) -> Iterator[Batch]:
        """Shuffled minibatches covering the rollout once (one PPO epoch).

        Flat (default): ``num_steps * num_envs`` rows split into ``num_minibatches`` dicts of
        ``[rows, *shape]`` (sizes differ by at most one). ``by_env=True`` (recurrent policies):
        envs are shuffled and split, each minibatch keeps time: ``[num_steps, envs, *shape]``.
        Advantages/returns are included once :meth:`compute_gae` ran.
        """
        num_minibatches = _int(num_minibatches, "num_minibatches")
        if not self.full:
            raise ValueError(f"minibatches need a full rollout: {self.step} of {self.num_steps} steps were added")
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        with_gae = bool(self._b.gae_ready)
        T, E = self.num_steps, self.num_envs
        if by_env:
            if num_minibatches > E:
                raise ValueError(f"num_minibatches ({num_minibatches}) > num_envs ({E}) with by_env=True")
            for envs in np.array_split(gen.permutation(E), num_minibatches):
                rows = (np.arange(T)[:, None] * E + envs[None, :]).reshape(-1)
                batch = self._b.gather(rows, with_gae)
                yield {k: v.reshape(T, len(envs), *v.shape[1:]) for k, v in batch.items()}
        else:
            if num_minibatches > T * E:
                raise ValueError(f"num_minibatches ({num_minibatches}) > rows in the rollout ({T * E})")
            for rows in np.array_split(gen.permutation(T * E), num_minibatches):
                yield self._b.gather(rows, with_gae)

    def __repr__(self) -> str:
        return f"RolloutBuffer(num_steps={self.num_steps}, num_envs={self.num_envs}, step={self.step})"
