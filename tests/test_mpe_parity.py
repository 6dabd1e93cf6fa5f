"""Parity with the mpe2 package: same state, same actions -> same obs, rewards, dones."""

from __future__ import annotations

import importlib

import pytest

import genmarl

from parity import run_parity_episode

pytest.importorskip("mpe2")

# Extra constructor arguments exercised per scenario (defaults are always tested).
VARIANTS: dict[str, list[dict]] = {
    "simple_spread": [
        {"N": 4, "local_ratio": 0.25},
        {"num_agent_neighbors": 1, "num_landmark_neighbors": 2},
        {"terminate_on_success": True, "max_cycles": 40},
        {"curriculum": True},
    ],
    "simple_tag": [
        {"num_good": 2, "num_adversaries": 2, "num_obstacles": 3},
        {"num_agent_neighbors": 2, "num_landmark_neighbors": 1},
        {"curriculum": True, "terminate_on_success": True},
    ],
    "simple_world_comm": [
        {"num_good": 3, "num_adversaries": 2, "num_obstacles": 2, "num_food": 3, "num_forests": 1},
        {"num_good": 1, "num_adversaries": 1, "num_obstacles": 0, "num_food": 1, "num_forests": 0},
        {"num_forests": 4, "max_cycles": 40},
    ],
    "collect_treasure": [
        {"num_collectors": 3, "num_deposits": 3, "num_treasures": 10},
        {"num_collectors": 10, "num_deposits": 1, "num_treasures": 20, "max_cycles": 50},
        {"num_collectors": 1, "num_deposits": 6, "num_treasures": 1},
    ],
}

SEEDS = range(8)


def _resync(name):
    try:
        return importlib.import_module(f"genmarl._sync.{name}").resync
    except (ModuleNotFoundError, AttributeError):
        return None


CASES = [(n, kw) for n in genmarl.list_envs() for kw in [{}] + VARIANTS.get(n, [])]


@pytest.mark.parametrize("continuous", [False, True], ids=["discrete", "continuous"])
@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=[f"{n}-{i}" for n, _ in CASES for i in [0]] if False else None)
def test_parity(name, kwargs, continuous):
    for seed in SEEDS:
        steps = run_parity_episode(name, seed, continuous, kwargs, resync=_resync(name))
        assert steps >= 1


# ---- collect_treasure: rare events staged in mpe2 before syncing ---------------------------


def _stage_deliveries(penv):
    """Every collector holds a treasure and starts on top of the deposit of its type."""
    world = penv.unwrapped.world
    deposits = [a for a in world.agents if not a.collector]
    for k, c in enumerate(a for a in world.agents if a.collector):
        d = deposits[k % len(deposits)]
        c.holding = d.d_i
        c.color = 0.85 * world.treasure_colors[d.d_i]
        c.state.p_pos = d.state.p_pos + 0.02 * (k + 1)


def _half_respawn(penv):
    for lm in penv.unwrapped.world.landmarks:
        lm.respawn_prob = 0.5


@pytest.mark.parametrize("continuous", [False, True], ids=["discrete", "continuous"])
@pytest.mark.parametrize(
    ("kwargs", "prepare", "event"),
    [
        ({"num_collectors": 10, "num_deposits": 1, "num_treasures": 20, "max_cycles": 50}, None, "respawns"),
        ({"num_collectors": 10, "num_deposits": 1, "num_treasures": 20, "max_cycles": 50}, _half_respawn, "respawns"),
        ({"num_collectors": 4, "num_deposits": 2, "num_treasures": 6}, _stage_deliveries, "deliveries"),
    ],
    ids=["respawn", "respawn_prob_0.5", "deliveries"],
)
def test_collect_treasure_events(kwargs, prepare, event, continuous):
    """Pickups, respawns (the respawn step's rewards included) and deliveries are compared."""
    sync = importlib.import_module("genmarl._sync.collect_treasure")
    sync.stats.update(pickups=0, respawns=0, deliveries=0)
    for seed in SEEDS:
        run_parity_episode("collect_treasure", seed, continuous, kwargs, resync=sync.resync, prepare=prepare)
    assert sync.stats["pickups"] > 0 and sync.stats[event] > 0, sync.stats
