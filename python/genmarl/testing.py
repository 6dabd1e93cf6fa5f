"""Helpers for testing genmarl against the reference packages (mpe2, lbforaging, rware).

``sync_from_reference(vector_env, env_index, ref_env)`` copies the full state of a reset
reference env (an mpe2 parallel or AEC env, an lbforaging ``ForagingEnv`` or an rware
``Warehouse``) into one env
of a :class:`genmarl.VectorEnv`, so both can be stepped side by side with the same actions.
``sync_from_mpe2`` is the mpe2 case.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from genmarl.envs.vector_env import VectorEnv

# genmarl env name -> mpe2 module name
MPE2_MODULES = {
    "simple": "simple_v3",
    "simple_adversary": "simple_adversary_v3",
    "simple_crypto": "simple_crypto_v3",
    "simple_push": "simple_push_v3",
    "simple_reference": "simple_reference_v3",
    "simple_speaker_listener": "simple_speaker_listener_v4",
    "simple_spread": "simple_spread_v3",
    "simple_tag": "simple_tag_v3",
    "simple_world_comm": "simple_world_comm_v3",
    "simple_line": "simple_line_v1",
    "simple_formation": "simple_formation_v1",
    "collect_treasure": "collect_treasure_v1",
}


def mpe2_module(name: str) -> Any:
    """The mpe2 module of a genmarl env name (imports mpe2)."""
    if name not in MPE2_MODULES:
        raise ValueError(f"no mpe2 counterpart for {name!r}; known: {sorted(MPE2_MODULES)}")
    return importlib.import_module(f"mpe2.{MPE2_MODULES[name]}")


def _raw(mpe2_env: Any) -> Any:
    raw = getattr(mpe2_env, "unwrapped", mpe2_env)
    if not hasattr(raw, "world"):
        raise TypeError(f"expected an mpe2 env (parallel or AEC), got {type(mpe2_env).__name__}")
    return raw


def _opt(value: Any) -> float:
    return np.nan if value is None else float(value)


def sync_from_mpe2(vector_env: VectorEnv, env_index: int, mpe2_env: Any) -> None:
    """Copies the state of ``mpe2_env`` into env ``env_index`` of ``vector_env``.

    Entity positions, velocities and physical properties, agents' communication state,
    the step counter, the curriculum stage and the scenario's own state (goals, colours,
    treasures, …) are copied; the env's episode counter and random stream are kept.
    """
    if not isinstance(vector_env, VectorEnv):
        raise TypeError("vector_env must be a genmarl.VectorEnv")
    if not 0 <= env_index < vector_env.num_envs:
        raise IndexError(f"env_index must be in [0, {vector_env.num_envs}), got {env_index}")
    raw = _raw(mpe2_env)
    world = raw.world
    names = [a.name for a in world.agents]
    if names != vector_env.possible_agents:
        raise ValueError(f"agents differ: mpe2 has {names}, genmarl has {vector_env.possible_agents}")
    state = vector_env.get_state()
    entities = list(world.agents) + list(world.landmarks)
    if len(entities) != state["pos"].shape[1]:
        raise ValueError(f"entity counts differ: mpe2 {len(entities)}, genmarl {state['pos'].shape[1]}")
    e = env_index
    for n, ent in enumerate(entities):
        state["pos"][e, n] = ent.state.p_pos
        state["vel"][e, n] = ent.state.p_vel
        state["size"][e, n] = ent.size
        state["mass"][e, n] = ent.mass
        state["accel"][e, n] = _opt(ent.accel)
        state["max_speed"][e, n] = _opt(ent.max_speed)
        state["color"][e, n] = np.asarray(ent.color)[:3]  # simple_crypto uses dim_c-long colours
        state["movable"][e, n] = ent.movable
        state["collide"][e, n] = ent.collide
        state["silent"][e, n] = getattr(ent, "silent", False)
    if state["comm"].shape[2] > 0:
        for i, agent in enumerate(world.agents):
            state["comm"][e, i] = agent.state.c
    state["steps"][e] = raw.steps
    try:
        sync = importlib.import_module(f"genmarl._sync.{vector_env.scenario}")
    except ModuleNotFoundError:
        sync = None
    if sync is not None:
        sync.sync_aux(state, e, raw)
    vector_env.set_state(state)
    stage = getattr(raw.scenario, "curriculum_stage", 0)
    vector_env.set_curriculum_stage(int(stage))


def sync_from_reference(vector_env: VectorEnv, env_index: int, ref_env: Any) -> None:
    """Copies the state of a reset reference env into env ``env_index`` of ``vector_env``.

    The reference is recognised by its type: mpe2 envs (see :func:`sync_from_mpe2`),
    lbforaging 2.0.0 ``ForagingEnv`` (field, players' positions and levels, the food level
    spawned and the step counter) and rware 2.0.0 ``Warehouse`` (robots, shelves, request queue,
    the robots' messages, counters and the numpy generator's state). The env must have been made
    with the same arguments (layout, message bits and observation type included).
    """
    if not isinstance(vector_env, VectorEnv):
        raise TypeError("vector_env must be a genmarl.VectorEnv")
    if not 0 <= env_index < vector_env.num_envs:
        raise IndexError(f"env_index must be in [0, {vector_env.num_envs}), got {env_index}")
    raw = getattr(ref_env, "unwrapped", ref_env)
    module = type(raw).__module__
    if hasattr(raw, "world") and module.startswith("mpe2"):
        if vector_env.family != "mpe":
            raise ValueError(f"an mpe2 reference needs an MPE env, got family {vector_env.family!r}")
        sync_from_mpe2(vector_env, env_index, ref_env)
    elif module.startswith("rware"):
        if vector_env.family != "rware":
            raise ValueError(f"an rware reference needs an rware env, got family {vector_env.family!r}")
        from genmarl._sync.rware import sync_rware

        sync_rware(vector_env, env_index, ref_env)
    elif module.startswith("lbforaging"):
        if vector_env.family != "lbf":
            raise ValueError(f"an lbforaging reference needs an lbf env, got family {vector_env.family!r}")
        from genmarl._sync.lbf import sync_lbf

        sync_lbf(vector_env, env_index, ref_env)
    else:
        raise TypeError(f"no reference sync for {type(raw).__module__}.{type(raw).__name__}; supported: mpe2, lbforaging, rware")
