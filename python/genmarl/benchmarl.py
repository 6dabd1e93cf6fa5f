"""genmarl environments as BenchMARL tasks (needs ``benchmarl``; its envs are :class:`genmarl.torchrl.GenmarlEnv`).

>>> from benchmarl.algorithms import MappoConfig
>>> from benchmarl.experiment import Experiment, ExperimentConfig
>>> from benchmarl.models.mlp import MlpConfig
>>> from genmarl.benchmarl import GenmarlTask
>>> task = GenmarlTask.SIMPLE_SPREAD.get_task()             # config: {"max_steps": 25}
>>> task = GenmarlTask.LBF.get_task({"env": "Foraging-8x8-2p-2f-coop-v3", "max_steps": 50})
>>> Experiment(task=task, algorithm_config=MappoConfig.get_from_yaml(), model_config=MlpConfig.get_from_yaml(),
...            critic_model_config=MlpConfig.get_from_yaml(), seed=0, config=ExperimentConfig.get_from_yaml()).run()

A task's ``config`` holds ``max_steps`` (the episode length: MPE's ``max_cycles``, LBF's
``max_episode_steps``, rware's ``max_steps``; also BenchMARL's evaluation rollout length), optionally
``env`` (a genmarl name or registered id; default: the member's scenario, e.g. ``simple_spread``)
and any other scenario arguments, passed to :func:`genmarl.make`. The envs are batched in C++
(``num_envs`` per collector), so BenchMARL does not wrap them in ``SerialEnv``/``ParallelEnv``.
Action masks (LBF, rware) are declared, so BenchMARL's policies take only valid actions.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from benchmarl.environments.common import Task, TaskClass
from torchrl.data import Composite
from torchrl.envs import EnvBase

import genmarl
from genmarl.torchrl import GenmarlEnv

# the argument that sets each family's episode length (BenchMARL's max_steps)
_LENGTH_ARG = {"mpe": "max_cycles", "lbf": "max_episode_steps", "rware": "max_steps"}


class GenmarlTaskClass(TaskClass):
    """BenchMARL's task interface for one genmarl environment (see the module docstring)."""

    def _env_and_kwargs(self, continuous_actions: bool | None = None) -> tuple[str, dict[str, Any]]:
        config = copy.deepcopy(self.config)
        name = config.pop("env", self.name.lower())
        steps = config.pop("max_steps", None)
        probe = genmarl.make(name)
        arg = _LENGTH_ARG.get(probe.family)
        if steps is not None:
            if arg is None or arg not in probe.resolved_params():
                raise ValueError(f"max_steps: {name} (family {probe.family!r}) has no episode-length argument genmarl knows")
            config[arg] = int(steps)
        if continuous_actions and "continuous_actions" in probe.resolved_params():
            config["continuous_actions"] = True
        genmarl.make(name, **config)  # bad arguments fail here, before BenchMARL builds anything
        return name, config

    def get_env_fun(self, num_envs: int, continuous_actions: bool, seed: int | None, device: Any) -> Callable[[], EnvBase]:
        name, kwargs = self._env_and_kwargs(continuous_actions)
        return lambda: GenmarlEnv(name, num_envs=num_envs, seed=0 if seed is None else seed, device=device, **kwargs)

    def supports_continuous_actions(self) -> bool:
        name, _ = self._env_and_kwargs()
        return "continuous_actions" in genmarl.make(name).resolved_params()

    def supports_discrete_actions(self) -> bool:
        return True

    def max_steps(self, env: EnvBase) -> int:
        return int(env.vector_env.max_cycles)

    def has_render(self, env: EnvBase) -> bool:
        return False

    def group_map(self, env: EnvBase) -> dict[str, list[str]]:
        return dict(env.group_map)

    def observation_spec(self, env: EnvBase) -> Composite:
        spec = env.full_observation_spec_unbatched.clone()
        for group in env.group_map:
            if "action_mask" in spec[group].keys():
                del spec[(group, "action_mask")]
        return spec

    def action_mask_spec(self, env: EnvBase) -> Composite | None:
        spec = env.full_observation_spec_unbatched.clone()
        masked = [g for g in env.group_map if "action_mask" in spec[g].keys()]
        if not masked:
            return None
        for group in env.group_map:
            del spec[(group, "observation")]
            if group not in masked:
                del spec[group]
        return spec

    def info_spec(self, env: EnvBase) -> Composite | None:
        return None

    def state_spec(self, env: EnvBase) -> Composite | None:
        return None

    def action_spec(self, env: EnvBase) -> Composite:
        return env.full_action_spec_unbatched

    @staticmethod
    def env_name() -> str:
        return "genmarl"


class GenmarlTask(Task):
    """genmarl's scenarios as BenchMARL tasks (pass a config: there are no BenchMARL yaml files
    for them; ``LBF`` and ``RWARE`` take the registered id as ``config["env"]``)."""

    SIMPLE = None
    SIMPLE_ADVERSARY = None
    SIMPLE_CRYPTO = None
    SIMPLE_PUSH = None
    SIMPLE_REFERENCE = None
    SIMPLE_SPEAKER_LISTENER = None
    SIMPLE_SPREAD = None
    SIMPLE_TAG = None
    SIMPLE_WORLD_COMM = None
    LBF = None
    RWARE = None

    @staticmethod
    def associated_class() -> type[TaskClass]:
        return GenmarlTaskClass

    def get_from_yaml(self, path: str | None = None) -> TaskClass:
        """BenchMARL ships no yaml for genmarl: ``path`` loads one, otherwise the scenario's own
        defaults are used (``{}``)."""
        if path is None:
            return self.get_task(config={})
        return super().get_from_yaml(path)
