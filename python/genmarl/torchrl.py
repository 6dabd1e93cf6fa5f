"""A batched TorchRL environment over genmarl's grouped API, in VMAS's layout.

>>> from genmarl.torchrl import GenmarlEnv
>>> env = GenmarlEnv("simple_spread", num_envs=1024, seed=0)
>>> rollout = env.rollout(25)          # TensorDict [1024, 25]
>>> rollout["agent", "observation"].shape
torch.Size([1024, 25, 3, 18])

Keys (``batch_size = [num_envs]``; ``n`` agents in group ``g``):

* ``(g, "observation")`` ``[num_envs, n, *obs_shape]`` float32, ``(g, "action")`` ``[num_envs, n]``
  int64 (categorical) or ``[num_envs, n, act_dim]`` float32 in [0, 1], ``(g, "reward")``
  ``[num_envs, n, 1]``; ``(g, "action_mask")`` ``[num_envs, n, num_actions]`` bool for groups with
  action masks;
* ``done`` / ``terminated`` / ``truncated`` ``[num_envs, 1]`` bool at the root and
  ``[num_envs, n, 1]`` per group.

genmarl resets a finished env inside the step. This env keeps TorchRL's semantics on top of it:
``("next", g, "observation")`` of a finished env is the *final* observation of its episode (what
bootstrapping a truncated episode needs), and the first observation of the next episode -- already
simulated -- is what the following partial ``reset`` (TorchRL's ``step_and_maybe_reset`` /
collectors) returns for that env. A partial reset of an env whose episode has not ended is refused
(genmarl resets single envs only at episode ends; a full ``reset()`` restarts all of them).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from genmarl.envs.vector_env import VectorEnv, make, obs_after_step

_new_td = getattr(TensorDict, "_new_unsafe", TensorDict)  # the validating constructor where tensordict lacks it
# TorchRL's generic step-then-reset (a private hook in recent releases, 0.14 included; the public method in 0.12)
_GENERIC_STEP_AND_MAYBE_RESET = getattr(EnvBase, "_step_and_maybe_reset", EnvBase.step_and_maybe_reset)


class GenmarlEnv(EnvBase):
    """``num_envs`` copies of genmarl env ``name`` as one batched TorchRL env
    (``scenario_kwargs`` as for :func:`genmarl.make`)."""

    def __init__(
        self,
        name: str,
        num_envs: int = 1,
        seed: int = 0,
        num_threads: int | None = None,
        device: str | torch.device = "cpu",
        **scenario_kwargs: Any,
    ) -> None:
        env = make(name, num_envs=num_envs, num_threads=num_threads, seed=seed, **scenario_kwargs)
        super().__init__(device=device, batch_size=torch.Size([env.num_envs]))
        self._env = env
        self._seed = int(seed)
        # genmarl's C++ envs (built-in and modules), whose every agent carries its env's flags;
        # anything else is a Python env registered with genmarl.register, read through the
        # registered interface, its outputs checked each step and its flags taken per agent
        self._native = isinstance(env, VectorEnv)
        named = getattr(env, "group_agents", None)
        self.group_map: dict[str, list[str]] = {}
        for g in env.groups:
            n = int(env.group_observation_space(g).shape[0])
            self.group_map[g] = list(named[g]) if named is not None else [f"{g}_{i}" for i in range(n)]
        self._groups = tuple((g, len(a)) for g, a in self.group_map.items())  # (name, agents), for the step
        self._mask_groups = set(getattr(env, "action_mask_groups", ()))
        self._on_cpu = self.device is None or torch.device(self.device).type == "cpu"
        self._make_specs()
        # what the last step left (a plain dict: EnvBase's attribute setter is slow): the current
        # observations -- the first ones of the episodes it auto-started -- their masks, and
        # which envs finished (a partial reset may restart only those)
        self._last: dict[str, Any] = {"obs": None, "masks": {}, "done": np.zeros(env.num_envs, bool)}

    @property
    def vector_env(self):  # noqa: ANN201 - genmarl.VectorEnv
        """The genmarl ``VectorEnv`` underneath."""
        return self._env

    @property
    def num_envs(self) -> int:
        return self._env.num_envs

    # ---- specs ---------------------------------------------------------------------------
    def _make_specs(self) -> None:
        """Specs from the env's grouped spaces (``group_observation_space``: ``Box [n, *obs_shape]``;
        ``group_action_space``: ``MultiDiscrete`` of one size or ``Box [n, act_dim]``)."""
        env, E = self._env, self._env.num_envs
        dev = self.device
        obs_spec, act_spec, rew_spec, done_spec = Composite(shape=(E,)), Composite(shape=(E,)), Composite(shape=(E,)), Composite(shape=(E,))
        # a Python env's arrays are checked against these each step (C++ envs' arrays match by construction)
        self._obs_layout: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
        self._mask_shapes: dict[str, tuple[int, int, int]] = {}
        for g, agents in self.group_map.items():
            n = len(agents)
            space = env.group_observation_space(g)
            shape = (E, *space.shape)
            self._obs_layout[g] = (np.dtype(space.dtype), shape)
            dtype = torch.from_numpy(np.zeros(0, space.dtype)).dtype  # float32, or uint8 / int32 where declared
            if np.isfinite(space.low).all() and np.isfinite(space.high).all():
                low = torch.as_tensor(np.broadcast_to(space.low, shape).copy())
                high = torch.as_tensor(np.broadcast_to(space.high, shape).copy())
                o = Bounded(low, high, shape, dtype=dtype, device=dev)
            else:
                o = Unbounded(shape, dtype=dtype, device=dev)
            group_obs = Composite(observation=o, shape=(E, n))
            aspace = env.group_action_space(g)
            nvec = getattr(aspace, "nvec", None)
            if nvec is not None:
                nvec = np.asarray(nvec)
                if nvec.shape != (n,) or (nvec != nvec[0]).any():
                    raise ValueError(
                        f"GenmarlEnv: group {g!r} has action space {aspace}; expected one Discrete size for all {n} agents "
                        "(MultiDiscrete([k] * n)) or a Box [n, act_dim]"
                    )
                a = Categorical(int(nvec[0]), (E, n), dtype=torch.int64, device=dev)
                if g in self._mask_groups:
                    self._mask_shapes[g] = (E, n, int(nvec[0]))
                    group_obs["action_mask"] = Categorical(2, self._mask_shapes[g], dtype=torch.bool, device=dev)
            elif isinstance(aspace, spaces.Box) and len(aspace.shape) == 2 and aspace.shape[0] == n:
                ashape = (E, *aspace.shape)
                a = Bounded(torch.as_tensor(np.broadcast_to(aspace.low, ashape).astype(np.float32)),
                            torch.as_tensor(np.broadcast_to(aspace.high, ashape).astype(np.float32)), ashape,
                            dtype=torch.float32, device=dev)
            else:
                raise ValueError(f"GenmarlEnv: group {g!r} has action space {aspace}; expected MultiDiscrete([k] * {n}) or Box [{n}, act_dim]")
            obs_spec[g] = group_obs
            act_spec[g] = Composite(action=a, shape=(E, n))
            rew_spec[g] = Composite(reward=Unbounded((E, n, 1), dtype=torch.float32, device=dev), shape=(E, n))
            done_spec[g] = Composite(
                {k: Categorical(2, (E, n, 1), dtype=torch.bool, device=dev) for k in ("done", "terminated", "truncated")}, shape=(E, n)
            )
        for k in ("done", "terminated", "truncated"):
            done_spec[k] = Categorical(2, (E, 1), dtype=torch.bool, device=dev)
        self.observation_spec = obs_spec
        self.action_spec = act_spec
        self.reward_spec = rew_spec
        self.done_spec = done_spec

    def _checked_obs(self, obs: dict) -> dict:
        """A Python env's observations in the specs' dtypes, their shapes checked."""
        out = {}
        for g, _ in self._groups:
            dtype, want = self._obs_layout[g]
            o = np.ascontiguousarray(obs[g], dtype=dtype)
            if o.shape != want:
                raise ValueError(f"{self._env!r}: observations of group {g!r} have shape {o.shape}; expected {want}")
            out[g] = o
        return out

    def _checked_step(self, rew: dict, term: dict, trunc: dict) -> tuple[dict, dict, dict]:
        """A Python env's rewards (float32) and flags (bool), their shapes checked."""
        E, checked = self.num_envs, []
        for arrays, dtype, what in ((rew, np.float32, "rewards"), (term, bool, "terminated"), (trunc, bool, "truncated")):
            d = {}
            for g, n in self._groups:
                x = np.asarray(arrays[g], dtype=dtype)
                if x.shape != (E, n):
                    raise ValueError(f"{self._env!r}: {what} of group {g!r} have shape {x.shape}; expected {(E, n)}")
                d[g] = x
            checked.append(d)
        return checked[0], checked[1], checked[2]

    def _checked_masks(self, masks: dict) -> dict:
        """A Python env's action masks (``infos["action_mask"]``) as bool arrays, shapes checked."""
        out = {}
        for g, want in self._mask_shapes.items():
            if g not in masks:
                raise ValueError(f"{self._env!r}: group {g!r} is in action_mask_groups but infos['action_mask'] has no {g!r}")
            m = np.asarray(masks[g], dtype=bool)
            if m.shape != want:
                raise ValueError(f"{self._env!r}: action masks of group {g!r} have shape {m.shape}; expected {want}")
            out[g] = m
        return out

    def _env_step(self, actions: dict[str, np.ndarray]) -> tuple:
        """One step of the env underneath: (obs, shown, masks, rewards, terminated, truncated, done,
        ended). ``shown`` is what the step led to: the finished envs' final observations (``obs``
        itself when no episode ended, ``ended`` False)."""
        obs, rew, term, trunc, infos = self._env.step_grouped(actions)
        masks = infos.get("action_mask", {})
        done = infos["done"]
        ended = bool(done.any())
        shown = obs_after_step(obs, infos) if ended else obs
        if not self._native:
            checked = self._checked_obs(obs)
            shown = self._checked_obs(shown) if ended else checked
            obs, masks = checked, self._checked_masks(masks)
            rew, term, trunc = self._checked_step(rew, term, trunc)
        return obs, shown, masks, rew, term, trunc, done, ended

    # ---- conversion --------------------------------------------------------------------------
    def _t(self, x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(x)  # shares the fresh array genmarl returned (any strides)
        return t if self._on_cpu else t.to(self.device, non_blocking=True)

    # ---- EnvBase -----------------------------------------------------------------------------
    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs: Any) -> TensorDictBase:
        E = self.num_envs
        mask = None
        if tensordict is not None and "_reset" in tensordict.keys():
            mask = tensordict.get("_reset").reshape(E).cpu().numpy()
        last = self._last
        if mask is None or last["obs"] is None:
            obs, infos = self._env.reset_grouped(seed=self._seed)
            self._seed = None  # later full resets continue the random streams
            masks = infos.get("action_mask", {})
            if not self._native:
                obs, masks = self._checked_obs(obs), self._checked_masks(masks)
        else:
            stale = mask & ~last["done"]
            if stale.any():
                raise RuntimeError(
                    f"partial reset of envs {np.flatnonzero(stale)[:8].tolist()} whose episode has not ended: genmarl resets a "
                    "single env only when its episode ends (call reset() without '_reset' to restart every env)"
                )
            obs, masks = last["obs"], last["masks"]
        last.update(obs=obs, masks=masks, done=np.zeros(E, bool))
        zeros = {g: np.zeros((E, n), bool) for g, n in self._groups}
        return self._build(obs, masks, zeros, zeros, None)

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        actions = {g: tensordict.get((g, "action")).cpu().numpy() for g, _ in self._groups}
        obs, shown, masks, rew, term, trunc, done, _ = self._env_step(actions)
        self._last.update(obs=obs, masks=masks, done=done)
        return self._build(shown, masks, term, trunc, rew)  # the finished envs show their final observation

    def _build(self, obs: dict, masks: dict, term: dict, trunc: dict, rew: dict | None) -> TensorDict:
        """One step's (or reset's) arrays -> a TensorDict [num_envs] with one [num_envs, n]
        sub-TensorDict per group. The tensors share genmarl's fresh arrays and have the specs'
        shapes and dtypes, so the unchecked constructor (as TorchRL's own brax and
        mujoco_playground wrappers use it) is safe. genmarl terminates and truncates whole envs
        (the scenario contract's ``is_terminal``/``is_truncated`` take the env's state), so every
        agent carries its env's flags and the root reads the first agent's."""
        t, dev = self._t, self.device
        out: dict[str, Any] = {}
        for g, n in self._groups:
            tm, tr = term[g][..., None], trunc[g][..., None]
            d = {"observation": t(obs[g]), "terminated": t(tm), "truncated": t(tr), "done": t(tm | tr)}
            if rew is not None:
                d["reward"] = t(rew[g][..., None])
            if g in self._mask_groups:
                d["action_mask"] = t(masks[g])
            out[g] = _new_td(d, batch_size=torch.Size((self.num_envs, n)), device=dev)
        first = self._groups[0][0]
        tm, tr = term[first][:, :1], trunc[first][:, :1]
        out.update(terminated=t(tm), truncated=t(tr), done=t(tm | tr))
        return _new_td(out, batch_size=self.batch_size, device=dev)

    def _step_and_maybe_reset(self, tensordict: TensorDictBase) -> tuple[TensorDictBase, TensorDictBase]:
        """What TorchRL's collectors and ``rollout`` call each step, in one pass.

        genmarl has already started the next episode of every env that finished, so TorchRL's
        generic path -- ``step``, ``step_mdp``, then a partial ``reset`` merged in with ``torch.where``
        -- only rebuilds what this step returned. Here the root of the next step is built directly:
        the input's entries except ``"next"``, rewards, done flags and ``_reset`` (the action and the
        policy's outputs stay, as in ``step_mdp``), each group's current observations and masks, and
        done flags that are all false. A test checks the result equals the generic path's entry by
        entry. The generic path still runs for anything this does not cover: type checks, post-step
        hooks, TorchRL's native autoreset, partial steps (``"_step"``), a preset ``"next"``, another
        device or batch size, or any input but a plain ``TensorDict``. (In TorchRL releases
        without this private hook, 0.12 and older, it replaces the public ``step_and_maybe_reset``.)"""
        entries = getattr(tensordict, "_tensordict", None) if type(tensordict) is TensorDict else None
        if (
            entries is None
            or "next" in entries
            or "_step" in entries
            or self.run_type_checks
            or getattr(self, "_post_step_mdp_hooks", None) is not None
            or self.__dict__.get("_torchrl_native_autoreset", False)
            or tensordict.batch_size != self.batch_size
            or tensordict.device != self.device
        ):
            return _GENERIC_STEP_AND_MAYBE_RESET(self, tensordict)
        nxt, root = self._one_pass(entries)
        tensordict._set_str("next", nxt, validated=True, inplace=False)
        return tensordict, root

    _NOT_CARRIED = frozenset(("next", "done", "terminated", "truncated", "reward", "_reset"))
    _REPLACED = frozenset(("observation", "action_mask"))  # a group's entries the step writes anew

    def _one_pass(self, entries: dict[str, Any]) -> tuple[TensorDictBase, TensorDictBase]:
        """The step's ``"next"`` TensorDict and the root of the next step (see
        :meth:`_step_and_maybe_reset`) from the entries of the step's input.

        When no episode ended -- most steps -- the next root holds the very tensors of ``"next"``
        (observations, masks and the all-false done flags), as TorchRL's ``step_mdp`` leaves them;
        only the policy's entries are carried over. When some ended, ``"next"`` shows their final
        observations and the next root gets the new episodes' first ones and fresh false flags,
        with the carried entries zeroed in the envs that were reset (TorchRL's partial reset)."""
        E, dev, t, groups = self.num_envs, self.device, self._t, self._groups
        actions = {}
        for g, _ in groups:
            sub = entries.get(g)
            a = sub._tensordict.get("action") if type(sub) is TensorDict else None
            if a is None:  # not a plain TensorDict: TorchRL's lookup (and its error for a missing action)
                a = TensorDict._new_unsafe(entries, batch_size=self.batch_size).get((g, "action"))
            actions[g] = (a if self._on_cpu else a.cpu()).numpy()
        obs, shown, masks, rew, term, trunc, done, ended = self._env_step(actions)
        # some flag is set: an episode ended or (a Python env may flag single agents) an agent's flags are
        flagged = ended or (not self._native and any(term[g].any() or trunc[g].any() for g, _ in groups))
        self._last.update(obs=obs, masks=masks, done=np.zeros(E, bool) if ended else done)
        skip, replaced = self._NOT_CARRIED, self._REPLACED
        pad = torch.from_numpy(done).to(dev) if ended and not done.all() else None

        def carry(v: Any) -> Any:
            if isinstance(v, TensorDictBase):
                v = v.copy()
                return v if pad is None else v.apply(lambda x: x.masked_fill(pad.view(E, *[1] * (x.ndim - 1)), 0))
            return v if pad is None else v.masked_fill(pad.view(E, *[1] * (v.ndim - 1)), 0)

        def false_flags(*shape: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            z = np.zeros((3, *shape), bool)  # done, terminated, truncated: one allocation (numpy's is the cheaper one)
            return t(z[0]), t(z[1]), t(z[2])

        root: dict[str, Any] = {}
        for key, value in entries.items():
            if key not in skip and key not in self.group_map:
                root[key] = carry(value)
        # a step with a flag set has its own flags (and observations and masks: _build); otherwise
        # every flag is false and the next root shares the step's tensors (as step_mdp leaves them)
        nxt = self._build(shown, masks, term, trunc, rew) if flagged else {}
        for g, n in groups:
            size = torch.Size((E, n))
            fresh = false_flags(E, n, 1)
            root_g: dict[str, Any] = {}
            carried = entries.get(g)
            if isinstance(carried, TensorDictBase):
                for k, v in carried.items():
                    if k not in skip and k not in replaced:
                        root_g[k] = carry(v)
            elif carried is not None:  # a plain tensor under a group's name: kept, as step_mdp does
                root[g] = carry(carried)
            root_g["observation"] = t(obs[g])
            if g in self._mask_groups:
                root_g["action_mask"] = t(masks[g])
            root_g["done"], root_g["terminated"], root_g["truncated"] = fresh
            if not flagged:
                step_g = {"observation": root_g["observation"], "reward": t(rew[g][..., None])}
                if g in self._mask_groups:
                    step_g["action_mask"] = root_g["action_mask"]
                step_g["done"], step_g["terminated"], step_g["truncated"] = fresh
                nxt[g] = _new_td(step_g, batch_size=size, device=dev)
            if carried is None or isinstance(carried, TensorDictBase):
                root[g] = _new_td(root_g, batch_size=size, device=dev)
        root["done"], root["terminated"], root["truncated"] = fresh = false_flags(E, 1)
        if not flagged:
            nxt["done"], nxt["terminated"], nxt["truncated"] = fresh
            nxt = _new_td(nxt, batch_size=self.batch_size, device=dev)
        return nxt, _new_td(root, batch_size=self.batch_size, device=dev)

    def _step_proc_data(self, next_tensordict_out: TensorDictBase) -> TensorDictBase:
        """TorchRL's post-step pass reshapes rewards to the spec and completes missing done entries
        (``_complete_done`` walks every group's done spec, about 100 us per step). :meth:`_step`
        already builds every reward and done entry of the specs with their shapes and dtypes (a test
        checks the output equals TorchRL's pass), so the pass runs only when ``run_type_checks`` asks
        for its type checks."""
        if self.run_type_checks:
            return super()._step_proc_data(next_tensordict_out)
        return next_tensordict_out

    def _set_seed(self, seed: int | None) -> None:
        self._seed = None if seed is None else int(seed) % 2**64

    def close(self, *, raise_if_closed: bool = True) -> None:
        self._env.close()
        super().close(raise_if_closed=raise_if_closed)

    def __repr__(self) -> str:
        return f"GenmarlEnv({getattr(self._env, 'name', type(self._env).__name__)!r}, num_envs={self.num_envs}, groups={list(self.group_map)}, device={self.device})"


if not hasattr(EnvBase, "_step_and_maybe_reset"):  # older TorchRL (0.12 and before): the public method is the one to replace
    GenmarlEnv.step_and_maybe_reset = GenmarlEnv._step_and_maybe_reset
