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

    def _observation_td(self, obs: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for g in self.group_map:
            d = {"observation": self._t(obs[g])}
            if g in self._mask_groups:
                d["action_mask"] = self._t(masks[g])
            out[g] = d
        return out

    def _dones(self, out: dict[str, Any], term: dict[str, np.ndarray], trunc: dict[str, np.ndarray]) -> dict[str, Any]:
        """Adds the done flags of every group and of the root to ``out``. genmarl terminates and
        truncates whole envs (the scenario contract's ``is_terminal``/``is_truncated`` take the
        env's state), so every agent carries its env's flags and the root reads the first agent's."""
        for g in self.group_map:
            tm, tr = term[g][..., None], trunc[g][..., None]
            out[g].update(terminated=self._t(tm), truncated=self._t(tr), done=self._t(tm | tr))
        first = next(iter(self.group_map))
        tm, tr = term[first][:, :1], trunc[first][:, :1]
        out.update(terminated=self._t(tm), truncated=self._t(tr), done=self._t(tm | tr))
        return out

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
        zeros = {g: np.zeros((E, len(a)), bool) for g, a in self.group_map.items()}
        return self._td(self._dones(self._observation_td(obs, masks), zeros, zeros))

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        actions = {g: tensordict.get((g, "action")).cpu().numpy() for g in self.group_map}
        obs, rew, term, trunc, infos = self._env.step_grouped(actions)
        masks = infos.get("action_mask", {})
        self._last.update(obs=obs, masks=masks, done=infos["done"])
        shown = obs_after_step(obs, infos)  # the finished envs show their episode's final observation
        out = self._dones(self._observation_td(shown, masks), term, trunc)
        for g in self.group_map:
            out[g]["reward"] = self._t(rew[g][..., None])
        return self._td(out)

    def _step_proc_data(self, next_tensordict_out: TensorDictBase) -> TensorDictBase:
        """TorchRL's post-step pass reshapes rewards to the spec and completes missing done entries
        (``_complete_done`` walks every group's done spec, about 100 us per step). :meth:`_step`
        already builds every reward and done entry of the specs with their shapes and dtypes (a test
        checks the output equals TorchRL's pass), so the pass runs only when ``run_type_checks`` asks
        for its type checks."""
        if self.run_type_checks:
            return super()._step_proc_data(next_tensordict_out)
        return next_tensordict_out

    def _td(self, out: dict[str, Any]) -> TensorDict:
        """Nested dicts -> a TensorDict [num_envs] with one [num_envs, n] sub-TensorDict per group.
        The tensors are built here with the specs' shapes and dtypes, so the unchecked constructor
        (as TorchRL's own brax and mujoco_playground wrappers use it) is safe."""
        E = self.num_envs
        for g, agents in self.group_map.items():
            out[g] = _new_td(out[g], batch_size=torch.Size((E, len(agents))), device=self.device)
        return _new_td(out, batch_size=self.batch_size, device=self.device)

    def _set_seed(self, seed: int | None) -> None:
        self._seed = None if seed is None else int(seed) % 2**64

    def close(self, *, raise_if_closed: bool = True) -> None:
        self._env.close()
        super().close(raise_if_closed=raise_if_closed)

    def __repr__(self) -> str:
        return f"GenmarlEnv({self._env.name!r}, num_envs={self.num_envs}, groups={list(self.group_map)}, device={self.device})"
