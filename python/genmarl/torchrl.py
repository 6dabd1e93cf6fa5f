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
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from genmarl.envs.vector_env import make, obs_after_step

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
        self.group_map: dict[str, list[str]] = {g: list(env.group_agents[g]) for g in env.groups}
        self._groups = tuple((g, len(a)) for g, a in self.group_map.items())  # (name, agents), for the step
        self._mask_groups = set(env.action_mask_groups)
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
        env, E = self._env, self._env.num_envs
        dev = self.device
        obs_spec, act_spec, rew_spec, done_spec = Composite(shape=(E,)), Composite(shape=(E,)), Composite(shape=(E,)), Composite(shape=(E,))
        for g, agents in self.group_map.items():
            n = len(agents)
            space = env.observation_space(agents[0])
            shape = (E, n, *space.shape)
            dtype = torch.from_numpy(np.zeros(0, space.dtype)).dtype  # float32, or uint8 / int32 where declared
            if np.isfinite(space.low).all() and np.isfinite(space.high).all():
                low = torch.as_tensor(np.broadcast_to(space.low, shape).copy())
                high = torch.as_tensor(np.broadcast_to(space.high, shape).copy())
                o = Bounded(low, high, shape, dtype=dtype, device=dev)
            else:
                o = Unbounded(shape, dtype=dtype, device=dev)
            group_obs = Composite(observation=o, shape=(E, n))
            aspace = env.action_space(agents[0])
            if hasattr(aspace, "n"):
                a = Categorical(int(aspace.n), (E, n), dtype=torch.int64, device=dev)
                if g in self._mask_groups:
                    group_obs["action_mask"] = Categorical(2, (E, n, int(aspace.n)), dtype=torch.bool, device=dev)
            else:
                a = Bounded(0.0, 1.0, (E, n, *aspace.shape), dtype=torch.float32, device=dev)
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
        obs, rew, term, trunc, infos = self._env.step_grouped(actions)
        masks = infos.get("action_mask", {})
        self._last.update(obs=obs, masks=masks, done=infos["done"])
        shown = obs_after_step(obs, infos)  # the finished envs show their episode's final observation
        return self._build(shown, masks, term, trunc, rew)

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
        nxt = self._step(tensordict)
        tensordict._set_str("next", nxt, validated=True, inplace=False)
        return tensordict, self._next_root(entries)

    _NOT_CARRIED = frozenset(("next", "done", "terminated", "truncated", "reward", "_reset"))

    def _next_root(self, entries: dict[str, Any]) -> TensorDictBase:
        """The root of the next step (see :meth:`_step_and_maybe_reset`) from the entries of the
        step's input."""
        E, last, skip, t, dev = self.num_envs, self._last, self._NOT_CARRIED, self._t, self.device
        obs, masks, done = last["obs"], last["masks"], last["done"]
        last["done"] = np.zeros(E, bool)  # every finished env has been "reset" (genmarl already did)
        # TorchRL's partial reset pads what a reset does not return (the action, the policy's
        # outputs) with zeros in the envs it reset; a reset of every env leaves them as they were
        pad = torch.from_numpy(done).to(dev) if done.any() and not done.all() else None

        def carry(v: Any) -> Any:
            if isinstance(v, TensorDictBase):
                v = v.copy()
                return v if pad is None else v.apply(lambda x: x.masked_fill(pad.view(E, *[1] * (x.ndim - 1)), 0))
            return v if pad is None else v.masked_fill(pad.view(E, *[1] * (v.ndim - 1)), 0)

        out: dict[str, Any] = {}
        for key, value in entries.items():
            if key not in skip and key not in self.group_map:
                out[key] = carry(value)
        for g, n in self._groups:
            carried = entries.get(g)
            d: dict[str, Any] = {}
            if isinstance(carried, TensorDictBase):
                for k, v in carried.items():
                    if k not in skip:
                        d[k] = carry(v)
            elif carried is not None:  # a plain tensor under a group's name: kept, as step_mdp does
                out[g] = carry(carried)
                continue
            d["observation"] = t(obs[g])
            if g in self._mask_groups:
                d["action_mask"] = t(masks[g])
            z = np.zeros((3, E, n, 1), bool)  # fresh flags, one allocation (numpy's is the cheaper one)
            d["done"], d["terminated"], d["truncated"] = t(z[0]), t(z[1]), t(z[2])
            out[g] = _new_td(d, batch_size=torch.Size((E, n)), device=dev)
        z = np.zeros((3, E, 1), bool)
        out["done"], out["terminated"], out["truncated"] = t(z[0]), t(z[1]), t(z[2])
        return _new_td(out, batch_size=self.batch_size, device=dev)

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
        return f"GenmarlEnv({self._env.name!r}, num_envs={self.num_envs}, groups={list(self.group_map)}, device={self.device})"


if not hasattr(EnvBase, "_step_and_maybe_reset"):  # older TorchRL (0.12 and before): the public method is the one to replace
    GenmarlEnv.step_and_maybe_reset = GenmarlEnv._step_and_maybe_reset
