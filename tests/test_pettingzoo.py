"""The PettingZoo adapters pass PettingZoo's own API, seed and max_cycles tests."""

from __future__ import annotations

import functools
import types
import warnings

import numpy as np
import pytest

pytest.importorskip("pettingzoo")
from pettingzoo.test import api_test, max_cycles_test, parallel_api_test, parallel_seed_test, seed_test  # noqa: E402

import genmarl  # noqa: E402
import genmarl.pettingzoo as gpz  # noqa: E402

ENVS = genmarl.list_envs("mpe")
GRID_ENVS = {
    "Foraging-8x8-2p-2f-coop-v3": {},
    "Foraging-2s-10x10-3p-3f-v3": {},
    "lbf": {"grid_observation": True, "sight": 2, "players": 3, "max_num_food": 3, "penalty": 0.1},
    "rware-tiny-2ag-v2": {},
    "rware": {"n_agents": 5, "reward_type": 2, "max_inactivity_steps": 30, "max_steps": 100},
}


@pytest.fixture(autouse=True)
def _quiet_api_test_warnings():
    # api_test warns about legitimately different observation sizes between agents.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


@pytest.mark.parametrize("continuous", [False, True], ids=["discrete", "continuous"])
@pytest.mark.parametrize("name", ENVS)
def test_pettingzoo_api(name, continuous):
    parallel_api_test(gpz.parallel_env(name, continuous_actions=continuous), num_cycles=60)
    api_test(gpz.env(name, continuous_actions=continuous), num_cycles=60)
    parallel_seed_test(functools.partial(gpz.parallel_env, name, continuous_actions=continuous), num_cycles=60)
    seed_test(functools.partial(gpz.env, name, continuous_actions=continuous), num_cycles=60)


@pytest.mark.parametrize("name", ENVS)
def test_max_cycles(name):
    mod = types.SimpleNamespace(
        parallel_env=functools.partial(gpz.parallel_env, name), env=functools.partial(gpz.env, name)
    )
    max_cycles_test(mod)


def test_parallel_episode_ends_with_final_observation():
    env = gpz.parallel_env("simple_spread", max_cycles=3)
    env.reset(seed=0)
    for _ in range(3):
        obs, rew, term, trunc, info = env.step({a: 0 for a in env.agents})
    assert env.agents == [] and all(trunc.values())
    assert set(obs) == set(env.possible_agents)
    assert env.state().shape == env.state_space.shape
    with pytest.raises(RuntimeError, match="reset"):
        env.step({a: 0 for a in env.possible_agents})


def test_parallel_render():
    env = gpz.parallel_env("simple_tag", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (700, 700, 3) and frame.dtype == np.uint8


@pytest.mark.parametrize("name", list(GRID_ENVS))
def test_pettingzoo_api_masked_envs(name):
    kwargs = GRID_ENVS[name]
    parallel_api_test(gpz.parallel_env(name, **kwargs), num_cycles=120)
    api_test(gpz.env(name, **kwargs), num_cycles=120)
    parallel_seed_test(functools.partial(gpz.parallel_env, name, **kwargs), num_cycles=120)
    seed_test(functools.partial(gpz.env, name, **kwargs), num_cycles=120)


def test_pettingzoo_action_mask_matches_valid_moves():
    env = gpz.parallel_env("lbf", field_size=(5, 5), players=2, max_num_food=1)
    obs, infos = env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(30):
        if not env.agents:
            break
        for a in env.agents:
            mask = infos[a]["action_mask"]
            assert mask.dtype == np.int8 and mask.shape == (6,) and mask[0] == 1
        actions = {a: int(rng.choice(np.flatnonzero(infos[a]["action_mask"]))) for a in env.agents}
        obs, rew, term, trunc, infos = env.step(actions)
