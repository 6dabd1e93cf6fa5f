"""Parity with the mpe2 package: same state, same actions -> same obs, rewards, dones."""

from __future__ import annotations

import importlib

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
