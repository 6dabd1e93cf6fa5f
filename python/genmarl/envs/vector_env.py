"""VectorEnv: a batch of multi-agent environments stepped in C++.

Layout (see docs/api.md):

* per agent (PettingZoo style): ``obs[agent]: [num_envs, obs_dim] float32`` (or the group's
  observation dtype: a scenario may declare uint8 or int32 observations),
  ``rewards[agent]: [num_envs] float32``, ``terminated[agent]`` / ``truncated[agent]:
  [num_envs] bool``; these are *views* into the grouped arrays.
* per agent group (training code): ``obs[group]: [num_envs, agents_in_group, obs_dim]``
  contiguous float32, from :meth:`VectorEnv.reset_grouped` / :meth:`VectorEnv.step_grouped`.

Ownership rule: every ``reset``/``step`` returns freshly allocated arrays that the C++
core wrote into directly. The env never writes into an array after returning it, so
arrays (and ``torch.from_numpy`` tensors sharing their memory) stay valid and unchanged
for as long as the caller keeps them.
"""

from __future__ import annotations

import enum
import numbers
import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from genmarl import _core

_RENDER_MODES = (None, "rgb_array")

#: Gymnasium 0.29's names of the finished episodes' values -> Gymnasium 1.x's (used since genmarl 0.2)
DEPRECATED_INFO_KEYS = {"final_observation": "final_obs", "_final_observation": "_final_obs"}


class Infos(dict):
    """The ``infos`` dict of a step: a plain dict that still answers Gymnasium 0.29's names
    (``"final_observation"``, ``"_final_observation"``) with a ``DeprecationWarning``; they
    are kept for one release and are not among its keys."""

    __slots__ = ()

    @staticmethod
    def _new_key(key: Any) -> Any:
        new = DEPRECATED_INFO_KEYS.get(key) if isinstance(key, str) else None
        if new is None:
            return key
        warnings.warn(f'infos["{key}"] is deprecated; use infos["{new}"] (Gymnasium 1.x)', DeprecationWarning, stacklevel=3)
        return new

    def __getitem__(self, key: Any) -> Any:
        return dict.__getitem__(self, self._new_key(key))

    def __contains__(self, key: Any) -> bool:
        return dict.__contains__(self, self._new_key(key))

    def get(self, key: Any, default: Any = None) -> Any:
        return dict.get(self, self._new_key(key), default)

    def __reduce__(self) -> tuple:
        return (Infos, (dict(self),))


def final_obs(infos: Mapping[str, Any]) -> Any:
    """``infos["final_obs"]`` of a step, or Gymnasium 0.29's ``"final_observation"`` from an env
    that still uses it (users' Python envs); None when no episode finished."""
    if "final_obs" in infos:
        return infos["final_obs"]
    return None if isinstance(infos, Infos) else infos.get("final_observation")


def obs_after_step(obs: Mapping[str, np.ndarray], infos: Mapping[str, Any]) -> Mapping[str, np.ndarray]:
    """Per group, the observation each env's step led to: ``infos["final_obs"]`` where the episode
    ended (the env has already started its next one), ``obs`` elsewhere; ``obs`` itself when no
    episode ended. Observations of any rank (``[num_envs, n, *obs_shape]``)."""
    done, final = infos.get("done"), final_obs(infos)
    if final is None or done is None or not done.any():
        return obs
    return {g: np.where(done.reshape(-1, *([1] * (o.ndim - 1))), final[g], o) for g, o in obs.items()}


def refuse_python_env(name: str, what: str) -> None:
    """Raises ``ValueError`` when ``name`` is a Python env registered with ``genmarl.register``:
    ``what`` steps genmarl's C++ environments only (built-in ones and registered C++ modules)."""
    from genmarl.envs import registry

    if name.rpartition(":")[2] in registry.python_envs():  # ("pkg:env": make() imported pkg already)
        raise ValueError(
            f"{name!r} is a Python env registered with genmarl.register; {what} steps genmarl's C++ environments only "
            f"(built-in ones and C++ modules loaded with genmarl.register_module). genmarl.make({name!r}) returns the "
            "Python env itself, which genmarl train/eval and genmarl.torchrl.GenmarlEnv accept"
        )


class ClosesOnExit:
    """``with env:`` closes ``env`` on exit (VectorEnv and the PettingZoo adapters)."""

    def __enter__(self):  # noqa: ANN204 - returns the env itself
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def list_envs(family: str | None = None) -> list[str]:
    """Names of the registered environments, e.g. ``["simple", "simple_spread", ..., "lbf"]``,
    built-in and users' own (C++ modules and Python factories); ``family`` (e.g. ``"mpe"``,
    ``"lbf"``, ``"python"``) keeps one family's. Registered ids of the reference packages
    (``"Foraging-8x8-2p-2f-coop-v3"``) are aliases, not listed."""
    from genmarl.envs.registry import python_envs

    names = [(n, _core.resolve_env(n)[1]) for n in _core.list_envs()] + list(python_envs().items())
    return [n for n, f in names if family is None or f == family]


def _env_params(name: str) -> list[tuple]:
    try:
        return list(_core.env_params(name))
    except ValueError as exc:  # unknown env
        raise ValueError(str(exc)) from None


def _resolve_kwargs(
    name: str, kwargs: dict[str, Any]
) -> tuple[dict[str, float], dict[str, list[float]], dict[str, str]]:
    """Type-checks ``kwargs`` against the env's arguments: ``(scalars, tuples, strings)`` for the
    core, which checks the values (ranges, impossible configurations). Enum members stand for
    their values (``rware.RewardType.INDIVIDUAL``, lists of ``rware.ImageLayer``)."""
    specs = {p[0]: p for p in _env_params(name)}
    accepted = ", ".join(specs)
    out: dict[str, float] = {}
    tuples: dict[str, list[float]] = {}
    strings: dict[str, str] = {}

    def is_int(v: Any) -> bool:
        return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))

    for key, value in kwargs.items():
        if key not in specs:
            raise TypeError(f"{name}: unexpected keyword argument '{key}'; accepted arguments: {accepted}")
        kind = specs[key][1]
        if isinstance(value, enum.Enum) and kind in ("int", "int_tuple"):  # e.g. rware.RewardType.INDIVIDUAL
            value = value.value
        if kind == "optional_int_list" and value is None:
            out[key] = -1.0
            continue
        if kind in ("int_tuple", "optional_int_list"):
            length = specs[key][4] if kind == "int_tuple" else 0
            if isinstance(value, (tuple, list)):
                value = [v.value if isinstance(v, enum.Enum) else v for v in value]
            items = [value] if is_int(value) else value
            if not isinstance(items, (tuple, list)) or not all(is_int(v) for v in items):
                want = f"an int or a tuple of {length} ints" if length else "an int or a list of ints"
                want += " or None" if kind == "optional_int_list" else ""
                raise TypeError(f"{name}: argument '{key}' must be {want}, got {value!r}")
            if len(items) == 1:
                out[key] = float(int(items[0]))
            else:
                tuples[key] = [float(int(v)) for v in items]
        elif kind == "string":
            if not isinstance(value, str):
                raise TypeError(f"{name}: argument '{key}' must be a str, got {type(value).__name__}")
            strings[key] = value
        elif kind == "bool":
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{name}: argument '{key}' must be a bool, got {type(value).__name__}")
            out[key] = float(bool(value))
        elif kind in ("int", "optional_int"):
            if value is None and kind == "optional_int":
                out[key] = -1.0
                continue
            if not is_int(value):
                want = "an int or None" if kind == "optional_int" else "an int"
                raise TypeError(f"{name}: argument '{key}' must be {want}, got {type(value).__name__}")
            if kind == "optional_int" and int(value) <= 0:
                raise ValueError(f"{name}: argument '{key}' must be a positive integer or None, got {value}")
            out[key] = float(int(value))
        else:
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
                raise TypeError(f"{name}: argument '{key}' must be a number, got {type(value).__name__}")
            if not np.isfinite(float(value)):
                raise ValueError(f"{name}: argument '{key}' must be finite, got {value}")
            out[key] = float(value)
    return out, tuples, strings


def sample_valid(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """Uniform draws among the valid actions: ``mask [..., num_actions] bool`` -> ``[...] int64``
    (the argmax of uniform keys, with invalid actions keyed below every valid one)."""
    return np.where(mask, rng.random(mask.shape), -1.0).argmax(-1).astype(np.int64)


def param_value(kind: str, value: Any, length: int = 0) -> Any:
    """A scenario argument as Python sees it, from the core's encoding (``env_params`` kinds:
    optional_int None is -1, bools and ints are floats, an int_tuple may be one int; a list
    argument's length is 0; an optional_int_list is None, one int or a tuple)."""
    if isinstance(value, enum.Enum):
        value = value.value
    if kind == "int_tuple":
        if isinstance(value, (tuple, list)):
            return tuple(int(x.value if isinstance(x, enum.Enum) else x) for x in value)
        return tuple([int(value)] * max(length, 1))
    if kind == "optional_int_list":  # None, one int, or a tuple
        if value is None:
            return None
        items = [int(x) for x in value] if isinstance(value, (tuple, list)) else [int(value)]
        if len(items) == 1:
            return None if items[0] < 0 else items[0]
        return tuple(items)
    if kind == "string":
        return str(value)
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return int(value)
    if kind == "optional_int":
        return None if value is None or value < 0 else int(value)
    return float(value)


def _default_threads(num_envs: int) -> int:
    cores = os.cpu_count() or 1
    return max(1, min(cores, num_envs // 256))


class VectorEnv(ClosesOnExit):
    """``num_envs`` copies of a multi-agent environment, stepped together in C++.

    Finished envs reset automatically inside the same ``step`` (Gymnasium's ``SAME_STEP``
    autoreset mode); the observation of the finished episode is returned in ``infos``
    (``"final_obs"``, and ``"final_info"``) so truncated episodes can be bootstrapped.

    A VectorEnv pickles and deep-copies: the copy is rebuilt from the name, arguments and seed
    and given the full simulator state (random streams included), so it continues bitwise like
    the original. It is a context manager (``with genmarl.make(...) as env:`` closes it).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10, "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(
        self,
        name: str,
        num_envs: int = 1,
        num_threads: int | None = None,
        seed: int = 0,
        render_mode: str | None = None,
        **scenario_kwargs: Any,
    ) -> None:
        if not isinstance(name, str):
            raise TypeError(f"env name must be a str, got {type(name).__name__}")
        refuse_python_env(name, "VectorEnv (and genmarl.pettingzoo, built on it)")
        if isinstance(num_envs, bool) or not isinstance(num_envs, numbers.Integral) or not 0 < num_envs < 2**31:
            raise ValueError(f"num_envs must be a positive integer below 2**31, got {num_envs!r}")
        if num_threads is None:
            num_threads = _default_threads(int(num_envs))
        max_threads = _core.MAX_THREADS
        if isinstance(num_threads, bool) or not isinstance(num_threads, numbers.Integral) or not 0 < num_threads <= max_threads:
            raise ValueError(f"num_threads must be a positive integer at most {max_threads} or None, got {num_threads!r}")
        seed = self._check_seed(seed)
        if render_mode not in _RENDER_MODES:
            raise ValueError(f"render_mode must be one of {_RENDER_MODES}, got {render_mode!r}")
        params, tuples, strings = _resolve_kwargs(name, scenario_kwargs)
        self._env = _core.BatchedEnv(name, params, tuples, strings, int(num_envs), int(num_threads), seed)
        self._fixed: dict[str, np.ndarray] | None = None  # the scenario's fixed arrays (layout), read once
        #: the name or registered id given to make() (make(name, **scenario_kwargs) recreates the env)
        self.name = name
        #: the scenario it resolved to (e.g. "lbf" for "Foraging-8x8-2p-2f-coop-v3") and its family
        self.scenario = self._env.name
        self.family = self._env.family
        #: per-episode metrics the scenario computes (``infos["metrics"]`` when episodes end)
        self.metric_names: list[str] = list(self._env.metric_names)
        self.render_mode = render_mode
        self.scenario_kwargs = dict(scenario_kwargs)
        self._agent_info = list(self._env.agents)
        self._group_info = list(self._env.groups)
        self.possible_agents: list[str] = [a["name"] for a in self._agent_info]
        self.agents: list[str] = list(self.possible_agents)
        self.groups: list[str] = [g["name"] for g in self._group_info]
        self.group_agents: dict[str, list[str]] = {
            g["name"]: self.possible_agents[g["first_agent"] : g["first_agent"] + g["num_agents"]]
            for g in self._group_info
        }
        # (group, its agents' columns in the [num_envs, num_agents] reward/done arrays)
        self._group_slices = [
            (g["name"], slice(g["first_agent"], g["first_agent"] + g["num_agents"])) for g in self._group_info
        ]
        group_index = {g: k for k, g in enumerate(self.groups)}
        # (agent, agent index, group index, index in group)
        self._layout = []
        for i, a in enumerate(self._agent_info):
            g = group_index[a["group"]]
            self._layout.append((a["name"], i, g, i - self._group_info[g]["first_agent"]))
        self._observation_spaces = {a["name"]: self._make_observation_space(a) for a in self._agent_info}
        self._mask_groups = [k for k, g in enumerate(self._group_info) if g["action_mask"]]
        self._action_spaces = {a["name"]: self._make_action_space(a) for a in self._agent_info}
        self._closed = False

    # ---- spaces and properties -------------------------------------------------
    @staticmethod
    def _check_seed(seed: Any) -> int:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= int(seed) < 2**64:
            raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
        return int(seed)

    @staticmethod
    def _make_observation_space(info: dict) -> spaces.Box:
        shape = tuple(info["obs_shape"])
        dtype = np.dtype(info.get("obs_dtype", "float32"))
        if not info["obs_low"]:
            if dtype.kind == "f":
                return spaces.Box(-np.inf, np.inf, shape, dtype)
            limits = np.iinfo(dtype)  # unbounded integers: the dtype's range
            return spaces.Box(int(limits.min), int(limits.max), shape, dtype)
        low = np.asarray(info["obs_low"], np.float64).reshape(shape).astype(dtype)
        high = np.asarray(info["obs_high"], np.float64).reshape(shape).astype(dtype)
        return spaces.Box(low, high, shape, dtype)

    @staticmethod
    def _make_action_space(info: dict) -> spaces.Space:
        if info["continuous"]:
            return spaces.Box(info["action_low"], info["action_high"], (info["action_n"],), np.float32)
        return spaces.Discrete(info["action_n"])

    @property
    def num_envs(self) -> int:
        return self._env.num_envs

    @property
    def num_threads(self) -> int:
        return self._env.num_threads

    @property
    def num_agents(self) -> int:
        return len(self.possible_agents)

    @property
    def max_cycles(self) -> int:
        return self._env.max_cycles

    @property
    def unwrapped(self) -> VectorEnv:
        return self

    @property
    def has_action_masks(self) -> bool:
        """Whether some group's actions come with masks (``infos["action_mask"]``)."""
        return bool(self._mask_groups)

    @property
    def action_mask_groups(self) -> list[str]:
        """The groups whose actions come with masks (from the spec; nothing is stepped or observed)."""
        return [self.groups[k] for k in self._mask_groups]

    def observation_space(self, agent: str) -> spaces.Space:
        """Observation space of one agent in one env: ``Box(low, high, obs_shape, dtype)``
        (``(obs_dim,)`` for vector observations; unbounded where the scenario states no bounds;
        ``dtype`` float32 unless the scenario declares uint8 or int32 observations)."""
        return self._observation_spaces[self._check_agent(agent)]

    def action_space(self, agent: str) -> spaces.Space:
        """Action space of one agent in one env: ``Discrete(n)`` or ``Box(0, 1, (n,), float32)``."""
        return self._action_spaces[self._check_agent(agent)]

    def group_observation_space(self, group: str) -> spaces.Box:
        """Space of one env's grouped observation: ``[agents_in_group, *obs_shape]`` of the group's dtype."""
        info = self._group_info[self._check_group(group)]
        space = self.observation_space(self.group_agents[info["name"]][0])
        n = info["num_agents"]
        return spaces.Box(np.stack([space.low] * n), np.stack([space.high] * n), (n, *space.shape), space.dtype)

    def group_obs_dtype(self, group: str) -> np.dtype:
        """Element type of a group's observations (float32 unless the scenario declares another)."""
        return np.dtype(self._group_info[self._check_group(group)]["obs_dtype"])

    def group_action_space(self, group: str) -> spaces.Space:
        """Space of one env's grouped action: ``MultiDiscrete`` or ``Box(0, 1, (n_g, act_dim))``."""
        info = self._group_info[self._check_group(group)]
        if info["continuous"]:
            return spaces.Box(0.0, 1.0, (info["num_agents"], info["action_n"]), np.float32)
        return spaces.MultiDiscrete([info["action_n"]] * info["num_agents"])

    def _check_agent(self, agent: str) -> str:
        if agent not in self._observation_spaces:
            raise KeyError(f"unknown agent {agent!r}; agents: {self.possible_agents}")
        return agent

    def _check_group(self, group: str) -> int:
        if group not in self.groups:
            raise KeyError(f"unknown agent group {group!r}; groups: {self.groups}")
        return self.groups.index(group)

    # ---- curriculum ----------------------------------------------------------------
    @property
    def curriculum_stage(self) -> int:
        """Current curriculum stage (0-indexed); scenarios without a curriculum have one stage."""
        return self._env.curriculum_stage

    @property
    def num_curriculum_stages(self) -> int:
        return self._env.num_curriculum_stages

    def set_curriculum_stage(self, stage: int) -> None:
        """Jump to a curriculum stage (clamped to the valid range), for every env in the batch."""
        if isinstance(stage, bool) or not isinstance(stage, numbers.Integral):
            raise TypeError(f"stage must be an int, got {type(stage).__name__}")
        self._env.curriculum_stage = max(0, min(int(stage), self.num_curriculum_stages - 1))

    def advance_curriculum(self) -> None:
        """Move to the next curriculum stage; no-op at the last one."""
        self.set_curriculum_stage(self.curriculum_stage + 1)

    # ---- reset / step ------------------------------------------------------------
    def reset_grouped(self, seed: int | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Resets every env. ``seed=None`` starts each env's next episode without reseeding.

        Returns ``(obs, infos)`` with ``obs[group]: [num_envs, agents_in_group, *obs_shape] float32``
        and, for envs with action masks, ``infos["action_mask"][group]: [num_envs,
        agents_in_group, num_actions] bool``.
        """
        self._check_open()
        obs, masks = self._env.reset(None if seed is None else self._check_seed(seed))
        return dict(zip(self.groups, obs)), self._grouped_mask_info(masks)

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """Resets every env; returns ``(obs, infos)`` keyed by agent (``obs[a]: [num_envs,
        *obs_shape]``; ``infos[a]["action_mask"]: [num_envs, num_actions]`` where the env has masks)."""
        self._check_open()
        obs, masks = self._env.reset(None if seed is None else self._check_seed(seed))
        return self._per_agent(obs), self._agent_mask_info(masks)

    def observe(self) -> dict[str, np.ndarray]:
        """Observations of the current state without stepping, keyed by agent (``[num_envs,
        *obs_shape]``), e.g. after :meth:`set_state`."""
        self._check_open()
        obs, _ = self._env.observe()
        return self._per_agent(obs)

    def observe_grouped(self) -> dict[str, np.ndarray]:
        """Observations of the current state keyed by group (``[num_envs, agents_in_group, *obs_shape]``)."""
        self._check_open()
        obs, _ = self._env.observe()
        return dict(zip(self.groups, obs))

    def action_masks(self) -> dict[str, np.ndarray]:
        """Valid actions in the current state, keyed by group (``[num_envs, agents_in_group,
        num_actions] bool``), for the groups that have masks."""
        self._check_open()
        _, masks = self._env.observe()
        return self._group_masks(masks)

    def _group_masks(self, masks: list | None) -> dict[str, np.ndarray]:
        """The core's per-group mask list (None when the env has no masks) as {group: mask}."""
        return {} if masks is None else {self.groups[k]: masks[k] for k in self._mask_groups}

    def _grouped_mask_info(self, masks: list | None) -> dict[str, Any]:
        return {} if masks is None else {"action_mask": self._group_masks(masks)}

    def _agent_mask_info(self, masks: list | None) -> dict[str, dict]:
        if masks is None:
            return {a: {} for a, _, _, _ in self._layout}
        return {a: ({"action_mask": masks[g][:, j]} if masks[g] is not None else {}) for a, _, g, j in self._layout}

    def _per_agent(self, group_obs: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Per-agent views ``[num_envs, obs_dim]`` into the grouped observation arrays."""
        return {a: group_obs[g][:, j] for a, _, g, j in self._layout}

    def step(self, actions: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        """Steps every env with one action array per agent.

        ``actions[agent]``: ``[num_envs]`` integers (Discrete) or ``[num_envs, act_dim]`` floats
        (Box; values outside [0, 1] are clipped as mpe2 does). Returns dicts keyed by agent:
        ``obs, rewards, terminated, truncated, infos``. For envs that finished this step,
        ``infos[agent]`` holds ``final_obs [num_envs, *obs_shape]`` (rows valid where
        ``_final_obs [num_envs] bool``), ``episode_return``, ``episode_length`` and (scenarios
        with metrics) ``metrics``, the last three also as ``final_info`` (rows valid where
        ``_final_info``). Gymnasium 0.29's names ``final_observation`` / ``_final_observation``
        still answer, with a ``DeprecationWarning``.
        """
        fast = self._dispatch(self._env.step_agents, self._step_agents_checked, actions)
        obs_d, rew_d, term_d, trunc_d, infos, done, final_obs, final_ret, final_len, final_met = fast
        if final_obs is not None:
            metrics = self._metrics(final_met)
            for a, i, g, j in self._layout:
                final_info = {"episode_return": final_ret[:, i], "episode_length": final_len}
                if metrics:
                    final_info["metrics"] = metrics
                infos[a] = Infos(infos[a], final_obs=final_obs[g][:, j], _final_obs=done, **final_info)
                infos[a]["final_info"], infos[a]["_final_info"] = final_info, done
        return obs_d, rew_d, term_d, trunc_d, infos

    def _dispatch(self, fast: Any, checked: Any, actions: Any) -> tuple:
        """A step's dicts of views, built in C++ (the one-env loop's hot path) when ``actions`` is a
        dict with exactly the expected keys; other mappings and wrong keys take the Python route,
        which names what is wrong."""
        if self._closed:
            raise RuntimeError("this VectorEnv is closed")
        out = fast(actions) if type(actions) is dict else None
        return checked(actions) if out is None else out

    def _step_agents_checked(self, actions: Mapping[str, Any]) -> tuple:
        """``_core.BatchedEnv.step_agents`` for any mapping, with errors naming missing or unknown agents."""
        if not isinstance(actions, Mapping):
            raise TypeError(f"actions must be a dict keyed by agent name, got {type(actions).__name__}")
        try:
            arrays = [actions[a] for a in self.possible_agents]
        except KeyError:
            missing = [a for a in self.possible_agents if a not in actions]
            raise KeyError(f"actions are missing agents {missing}; expected exactly {self.possible_agents}") from None
        if len(actions) != len(arrays):
            extra = [a for a in actions if a not in self._observation_spaces]
            raise KeyError(f"actions contain unknown agents {extra}; expected exactly {self.possible_agents}")
        obs, rew, term, trunc, done, final_obs, final_ret, final_len, masks, final_met = self._env.step(arrays, False)
        layout = self._layout
        return (self._per_agent(obs), {a: rew[:, i] for a, i, _, _ in layout}, {a: term[:, i] for a, i, _, _ in layout},
                {a: trunc[:, i] for a, i, _, _ in layout}, self._agent_mask_info(masks), done, final_obs, final_ret,
                final_len, final_met)

    def _metrics(self, final_metrics: np.ndarray) -> dict[str, np.ndarray]:
        return {m: final_metrics[:, k] for k, m in enumerate(self.metric_names)}

    def step_grouped(self, actions: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        """Steps every env with one action array per agent group (the zero-copy training path).

        ``actions[group]``: ``[num_envs, agents_in_group]`` integers or
        ``[num_envs, agents_in_group, act_dim]`` floats. Returns ``obs[group]: [num_envs,
        agents_in_group, *obs_shape]`` and ``rewards/terminated/truncated[group]: [num_envs,
        agents_in_group]``; ``infos`` holds ``"done" [num_envs] bool``, ``"action_mask"`` (per
        group, for envs with masks) and, when some env finished, ``"final_obs"`` (per
        group), ``"episode_return"`` (per group), ``"episode_length" [num_envs]`` and
        ``"metrics"`` (``{name: [num_envs] float64}``, for scenarios with metrics), the last
        three also as ``"final_info"``; rows of the final values are valid where ``done`` (also
        given as ``"_final_obs"`` and ``"_final_info"``). Gymnasium 0.29's ``"final_observation"``
        still answers, with a ``DeprecationWarning``.
        """
        fast = self._dispatch(self._env.step_groups, self._step_groups_checked, actions)
        obs_d, rew_d, term_d, trunc_d, infos, done, final_obs, final_ret, final_len, final_met = fast
        if final_obs is not None:
            final_info: dict[str, Any] = {
                "episode_return": {g: final_ret[:, s] for g, s in self._group_slices},
                "episode_length": final_len,
            }
            if self.metric_names:
                final_info["metrics"] = self._metrics(final_met)
            infos = Infos(infos, final_obs=dict(zip(self.groups, final_obs)), _final_obs=done, **final_info)
            infos["final_info"], infos["_final_info"] = final_info, done
        return obs_d, rew_d, term_d, trunc_d, infos

    def _step_groups_checked(self, actions: Mapping[str, Any]) -> tuple:
        """``_core.BatchedEnv.step_groups`` for any mapping, with errors naming missing or unknown groups."""
        if not isinstance(actions, Mapping):
            raise TypeError(f"actions must be a dict keyed by group name, got {type(actions).__name__}")
        try:
            arrays = [actions[g] for g in self.groups]
        except KeyError:
            missing = [g for g in self.groups if g not in actions]
            raise KeyError(f"actions are missing groups {missing}; expected exactly {self.groups}") from None
        if len(actions) != len(arrays):
            extra = [g for g in actions if g not in self.groups]
            raise KeyError(f"actions contain unknown groups {extra}; expected exactly {self.groups}")
        obs, rew, term, trunc, done, final_obs, final_ret, final_len, masks, final_met = self._env.step(arrays, True)
        infos: dict[str, Any] = {"done": done, **self._grouped_mask_info(masks)}
        return (dict(zip(self.groups, obs)), {g: rew[:, s] for g, s in self._group_slices},
                {g: term[:, s] for g, s in self._group_slices}, {g: trunc[:, s] for g, s in self._group_slices},
                infos, done, final_obs, final_ret, final_len, final_met)

    def sample_actions(
        self, rng: np.random.Generator | None = None, grouped: bool = False, action_mask: Mapping[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        """Uniformly random actions for every env, keyed by agent (or by group). With
        ``action_mask`` (grouped, as in ``infos["action_mask"]``) only valid actions are drawn."""
        rng = rng if rng is not None else np.random.default_rng()
        E = self.num_envs
        if grouped:
            out = {}
            for g in self._group_info:
                if g["continuous"]:
                    out[g["name"]] = rng.random((E, g["num_agents"], g["action_n"]), dtype=np.float32)
                elif action_mask is not None and g["name"] in action_mask:
                    mask = np.asarray(action_mask[g["name"]])
                    want = (E, g["num_agents"], g["action_n"])
                    if mask.shape != want or mask.dtype != np.bool_:
                        raise ValueError(
                            f"action_mask of group {g['name']!r} must be a bool array of shape {want}, "
                            f"got {mask.dtype} {mask.shape}"
                        )
                    out[g["name"]] = sample_valid(rng, mask)
                else:
                    out[g["name"]] = rng.integers(0, g["action_n"], (E, g["num_agents"]), dtype=np.int64)
            return out
        out = {}
        for a in self._agent_info:
            if a["continuous"]:
                out[a["name"]] = rng.random((E, a["action_n"]), dtype=np.float32)
            else:
                out[a["name"]] = rng.integers(0, a["action_n"], E, dtype=np.int64)
        return out

    # ---- state ------------------------------------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        """Full simulator state of every env (fresh arrays, env batch first)."""
        self._check_open()
        return dict(self._env.get_state())

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Restores a state from :meth:`get_state`. Wrong names, dtypes or shapes raise
        ``ValueError`` and leave the env unchanged."""
        self._check_open()
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be a dict of numpy arrays, got {type(state).__name__}")
        self._env.set_state(dict(state))

    @property
    def layout(self) -> dict[str, np.ndarray]:
        """The scenario's fixed arrays (read-only; empty when it has none): what renderers and tools
        need beyond :meth:`get_state`, constant for the env's life. rware: ``highway`` ``[rows, cols]``
        bool (corridor cells) and ``goals`` ``[n, 2]`` int64 (x, y)."""
        if self._fixed is None:
            self._check_open()
            arrays = dict(self._env.layout())
            for a in arrays.values():
                a.flags.writeable = False
            self._fixed = arrays
        return self._fixed

    def resolved_params(self) -> dict[str, Any]:
        """Every scenario argument with its value: defaults, then the alias's, then those given."""
        specs = {p[0]: p for p in _env_params(self.scenario)}
        out = {name: param_value(p[1], p[2], p[4]) for name, p in specs.items()}
        given = {**_core.resolve_env(self.name)[2], **self.scenario_kwargs}
        for k, v in given.items():
            out[k] = param_value(specs[k][1], v, specs[k][4])
        return out

    # ---- rendering --------------------------------------------------------------------
    def render(self, env_index: int = 0) -> np.ndarray:
        """``[H, W, 3] uint8`` frame of env ``env_index`` (needs ``render_mode="rgb_array"``),
        drawn by the env family's renderer."""
        self._check_open()
        if self.render_mode != "rgb_array":
            raise RuntimeError('render() needs render_mode="rgb_array" in genmarl.make(...)')
        if isinstance(env_index, bool) or not isinstance(env_index, numbers.Integral) or not 0 <= env_index < self.num_envs:
            raise IndexError(f"env_index must be in [0, {self.num_envs}), got {env_index!r}")
        from genmarl.envs.render import renderer

        return renderer(self.family)(self._env.get_state(), int(env_index), self)

    def close(self) -> None:
        self._closed = True

    # ---- pickling and copying -----------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """What rebuilds this env: constructor arguments and (while open) the full simulator
        state; a C++ env module's path, so that a fresh process can load it."""
        from genmarl.envs.registry import module_of

        return {
            "name": self.name,
            "num_envs": self.num_envs,
            "num_threads": self.num_threads,
            "seed": int(self._env.seed),
            "render_mode": self.render_mode,
            "scenario_kwargs": self.scenario_kwargs,
            "env_module": module_of(self.scenario),
            "state": None if self._closed else self.get_state(),
            "agents": list(self.agents),
        }

    def __setstate__(self, st: dict[str, Any]) -> None:
        from genmarl.envs.registry import ensure_module

        if st["env_module"] is not None:
            ensure_module(st["env_module"])
        self.__init__(
            st["name"], num_envs=st["num_envs"], num_threads=st["num_threads"], seed=st["seed"],
            render_mode=st["render_mode"], **st["scenario_kwargs"],
        )  # fmt: skip
        if st["state"] is None:
            self._closed = True
        else:
            self.set_state(st["state"])
        self.agents = list(st["agents"])

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this VectorEnv is closed")

    def __repr__(self) -> str:
        return f"VectorEnv({self.name!r}, num_envs={self.num_envs}, num_threads={self.num_threads}, agents={self.possible_agents})"


def make(
    name: str,
    num_envs: int = 1,
    num_threads: int | None = None,
    seed: int = 0,
    render_mode: str | None = None,
    **scenario_kwargs: Any,
) -> VectorEnv:
    """Creates ``num_envs`` copies of environment ``name`` stepped in C++.

    ``num_threads=None`` picks ``min(cpu_count, num_envs // 256)`` (at least 1). Results are
    bitwise identical for any ``num_threads``. Unknown ``scenario_kwargs`` raise ``TypeError``
    naming the accepted ones (see :func:`list_envs` and ``docs/environments.md``).

    ``name`` may be a reference package's registered id (``"Foraging-8x8-2p-2f-coop-v3"``), a
    Python environment registered with :func:`genmarl.register` (its factory's object is
    returned), or ``"module:name"``, which imports ``module`` first (it registers its envs).
    """
    from genmarl.envs import registry

    if isinstance(name, str):
        name = registry.split_module(name)
        if name in registry.python_envs():
            return registry.make_python_env(name, num_envs, num_threads, seed, render_mode, scenario_kwargs)
    return VectorEnv(name, num_envs=num_envs, num_threads=num_threads, seed=seed, render_mode=render_mode, **scenario_kwargs)
