"""collect_treasure: copies mpe2's scenario state into genmarl's aux arrays.

Layout (see cpp/include/genmarl/envs/mpe/collect_treasure.hpp):

* ``aux_i``: holding per agent (-1: nothing), treasure type, treasure alive, pending respawn type
* ``aux_f``: step pickup reward, step delivery reward, then per treasure: respawn probability,
  pending respawn draw u, pending x, pending y

mpe2 draws a dead treasure's respawn (u, position, type) from ``world.np_random`` inside the
step that respawns it; genmarl keeps the same draws in its state one step ahead. ``sync_aux``
and ``resync`` therefore fill genmarl's pending draws with the ones mpe2 *will* make, read from
a copy of mpe2's generator, so the respawn step — including its rewards, which depend on the
respawned positions — is compared exactly.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

# Counts of events seen by resync, so tests can check that respawns were exercised.
stats = {"pickups": 0, "respawns": 0, "deliveries": 0}
_last: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # id(raw) -> (alive, holding) after the last step


def _flags(raw: Any) -> tuple[np.ndarray, np.ndarray]:
    world = raw.world
    alive = np.array([bool(lm.alive) for lm in world.landmarks])
    holding = np.array([a.holding is not None for a in world.agents])
    return alive, holding


def _layout(raw: Any) -> tuple[int, int, int]:
    world = raw.world
    return len(world.agents), len(world.landmarks), len(world.treasure_types)


def _predict_respawns(raw: Any) -> dict[int, tuple[float, np.ndarray, int]]:
    """The draws mpe2's next post_step makes for each treasure that is dead now."""
    world = raw.world
    out: dict[int, tuple[float, np.ndarray, int]] = {}
    if world._np_random is None:
        return out
    rng = copy.deepcopy(world._np_random)
    bound = 0.95
    for t, lm in enumerate(world.landmarks):
        if lm.alive:
            continue  # alive treasures draw nothing (a pickup does not draw either)
        u = rng.uniform()
        pos, typ = np.zeros(2), 0
        if u <= lm.respawn_prob:
            pos = rng.uniform(-bound, bound, world.dim_p)
            typ = int(rng.integers(0, len(world.treasure_types)))
        out[t] = (float(u), pos, typ)
    return out


def _write_pending(state: dict, e: int, raw: Any) -> None:
    A, T, _ = _layout(raw)
    for t, (u, pos, typ) in _predict_respawns(raw).items():
        state["aux_i"][e, A + 2 * T + t] = typ
        state["aux_f"][e, 2 + T + t] = u
        state["aux_f"][e, 2 + 2 * T + t] = pos[0]
        state["aux_f"][e, 2 + 3 * T + t] = pos[1]


def sync_aux(state: dict, e: int, raw: Any) -> None:
    world, scenario = raw.world, raw.scenario
    A, T, _ = _layout(raw)
    for i, agent in enumerate(world.agents):
        state["aux_i"][e, i] = -1 if agent.holding is None else int(agent.holding)
    for t, lm in enumerate(world.landmarks):
        state["aux_i"][e, A + t] = int(lm.type)
        state["aux_i"][e, A + T + t] = int(bool(lm.alive))
        state["aux_f"][e, 2 + t] = float(lm.respawn_prob)
    state["aux_f"][e, 0] = float(getattr(scenario, "_cached_global_collecting", None) or 0.0)
    state["aux_f"][e, 1] = float(getattr(scenario, "_cached_global_deposit", None) or 0.0)
    _write_pending(state, e, raw)
    _last[id(raw)] = _flags(raw)


def resync(penv: Any, venv: Any, e: int = 0) -> None:
    """After a step: give genmarl the respawn draws mpe2 will make in the next step.

    Only the random draws are copied; alive flags, types, positions and rewards of the
    respawn step itself are compared by the parity test.
    """
    raw = penv.unwrapped
    A, T, _ = _layout(raw)
    state = venv.get_state()
    alive, holding = _flags(raw)
    if id(raw) in _last:
        prev_alive, prev_holding = _last[id(raw)]
        stats["pickups"] += int(np.sum(prev_alive & ~alive))
        stats["respawns"] += int(np.sum(~prev_alive & alive))
        stats["deliveries"] += int(np.sum(prev_holding & ~holding))
    _last[id(raw)] = (alive, holding)
    _write_pending(state, e, raw)
    venv.set_state(state)
