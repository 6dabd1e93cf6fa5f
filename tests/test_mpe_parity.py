"""Parity with the mpe2 package: same state, same actions -> same obs, rewards, dones."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import genmarl

from parity import run_parity_episode

pytest.importorskip("mpe2")

# Extra constructor arguments exercised per scenario (defaults are always tested).
VARIANTS: dict[str, list[dict]] = {
    "simple_adversary": [
        {"N": 4},
        {"N": 1},
        {"N": 3, "num_agent_neighbors": 2, "num_landmark_neighbors": 2},
        {"num_agent_neighbors": 5, "num_landmark_neighbors": 1, "max_cycles": 10},
    ],
    "simple_reference": [
        {"local_ratio": 0.0},
        {"local_ratio": 0.8, "max_cycles": 40},
    ],
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
    "simple_line": [
        {"N": 1},
        {"N": 2},
        {"N": 9, "max_cycles": 30},
        {"terminate_on_success": True, "max_cycles": 100},
    ],
    "simple_formation": [
        {"N": 1},
        {"N": 3},
        {"N": 9, "max_cycles": 30},
        {"terminate_on_success": True, "max_cycles": 100},
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


CASES = [(n, kw) for n in genmarl.list_envs("mpe") for kw in [{}] + VARIANTS.get(n, [])]


@pytest.mark.parametrize("continuous", [False, True], ids=["discrete", "continuous"])
@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=[f"{n}-{i}" for n, _ in CASES for i in [0]] if False else None)
def test_parity(name, kwargs, continuous):
    for seed in SEEDS:
        steps = run_parity_episode(name, seed, continuous, kwargs, resync=_resync(name))
        assert steps >= 1


def _formation_targets(name, raw):
    """Target positions of mpe2's simple_line / simple_formation in its current state."""
    if name == "simple_line":
        return np.array(raw.scenario._expected_positions)
    n = len(raw.world.agents)
    center = raw.world.landmarks[0].state.p_pos
    angles = 0.3 + np.arange(n) * (2 * np.pi / n)
    return center + 0.5 * np.stack([np.cos(angles), np.sin(angles)], axis=1)


# Random actions never reach success, so termination is checked from states placed next to the
# targets (agents permuted over them): within 0.05 of every target terminates, 0.07 off one does not.
# (simple_formation re-anchors its circle at the smallest agent angle, so its offsets are radial.)
@pytest.mark.parametrize("name", ["simple_line", "simple_formation"])
@pytest.mark.parametrize("N", [1, 3, 5])
@pytest.mark.parametrize("offset", [0.03, 0.07])
def test_terminate_on_success(name, N, offset):
    from genmarl.testing import mpe2_module, sync_from_mpe2

    for seed in range(4):
        penv = mpe2_module(name).parallel_env(N=N, terminate_on_success=True, max_cycles=50)
        penv.reset(seed=seed)
        raw = penv.unwrapped
        rng = np.random.default_rng(seed)
        targets = _formation_targets(name, raw)
        perm = rng.permutation(N)
        for i, agent in enumerate(raw.world.agents):
            d = offset if i == 0 else 0.03
            if name == "simple_formation":  # radial offsets keep the circle's anchor angle
                u = targets[perm[i]] - raw.world.landmarks[0].state.p_pos
                step = d * rng.choice([-1.0, 1.0]) * u / np.linalg.norm(u)
            else:
                phi = rng.uniform(0, 2 * np.pi)
                step = d * np.array([np.cos(phi), np.sin(phi)])
            agent.state.p_pos = targets[perm[i]] + step
        venv = genmarl.make(name, num_envs=1, seed=seed, N=N, terminate_on_success=True, max_cycles=50)
        venv.reset(seed=seed)
        sync_from_mpe2(venv, 0, penv)
        actions = {a: 0 for a in penv.agents}
        _, r_ref, te_ref, _, _ = penv.step(actions)
        _, rew, term, _, _ = venv.step({a: np.asarray(v)[None] for a, v in actions.items()})
        assert all(te_ref.values()) == (offset < 0.05)
        for a in venv.possible_agents:
            assert bool(term[a][0]) == bool(te_ref[a]), f"{name} seed {seed} terminated {a}"
            np.testing.assert_allclose(rew[a][0], r_ref[a], rtol=1e-5, atol=1e-5)
        penv.close()


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
