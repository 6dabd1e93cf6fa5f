"""Gymnasium 1.x conventions, pickling/deep-copying and context managers (VectorEnv and the
PettingZoo adapters): a copy continues bitwise like the original."""

from __future__ import annotations

import copy
import multiprocessing as mp
import pickle
import warnings

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import genmarl
from genmarl.envs.vector_env import Infos, final_obs

FAMILIES = [("simple_spread", {}), ("Foraging-8x8-2p-2f-coop-v3", {}), ("rware-tiny-2ag-v2", {"max_steps": 30})]


def _assert_same_step(x: tuple, y: tuple) -> None:
    for part_x, part_y in zip(x[:4], y[:4], strict=True):
        assert part_x.keys() == part_y.keys()
        for g in part_x:
            np.testing.assert_array_equal(part_x[g], part_y[g])
    np.testing.assert_array_equal(x[4]["done"], y[4]["done"])
    assert ("final_obs" in x[4]) == ("final_obs" in y[4])
    if "final_obs" in x[4]:
        for g in x[4]["final_obs"]:
            np.testing.assert_array_equal(x[4]["final_obs"][g], y[4]["final_obs"][g])
        for k, v in x[4]["final_info"]["episode_return"].items():
            np.testing.assert_array_equal(v, y[4]["final_info"]["episode_return"][k])
    for g, m in x[4].get("action_mask", {}).items():
        np.testing.assert_array_equal(m, y[4]["action_mask"][g])


def _masked_actions(env, rng, infos):
    return env.sample_actions(rng, grouped=True, action_mask=infos.get("action_mask") or None)


@pytest.mark.parametrize(("name", "kwargs"), FAMILIES)
def test_pickle_and_deepcopy_continue_bitwise(name, kwargs):
    env = genmarl.make(name, num_envs=6, num_threads=2, seed=11, **kwargs)
    _, infos = env.reset_grouped(seed=11)
    rng = np.random.default_rng(0)
    for _ in range(7):  # mid-episode
        infos = env.step_grouped(_masked_actions(env, rng, infos))[4]
    copies = [pickle.loads(pickle.dumps(env)), copy.deepcopy(env)]
    for c in copies:
        assert (c.name, c.num_envs, c.num_threads, c.scenario_kwargs) == (env.name, 6, 2, kwargs)
        for k, v in env.get_state().items():
            np.testing.assert_array_equal(c.get_state()[k], v)
    ended = 0
    for _ in range(80):  # through episode ends and auto-resets (new random draws)
        acts = _masked_actions(env, rng, infos)
        ref = env.step_grouped(acts)
        for c in copies:
            _assert_same_step(ref, c.step_grouped(acts))
        infos = ref[4]
        ended += int(infos["done"].sum())
    assert ended > 0
    # the copies are independent of the original
    env.step_grouped(_masked_actions(env, rng, infos))
    assert any(not np.array_equal(v, copies[0].get_state()[k]) for k, v in env.get_state().items())


def _step_in_child(payload: bytes) -> bytes:
    env, actions = pickle.loads(payload)
    return pickle.dumps([env.step_grouped(a)[:4] for a in actions])


def test_env_crosses_a_spawned_process():
    env = genmarl.make("simple_tag", num_envs=4, seed=5)
    env.reset_grouped(seed=5)
    rng = np.random.default_rng(1)
    actions = [env.sample_actions(rng, grouped=True) for _ in range(30)]
    payload = pickle.dumps((env, actions))
    with mp.get_context("spawn").Pool(1) as pool:
        got = pickle.loads(pool.apply(_step_in_child, (payload,), ))
    for a, g in zip(actions, got, strict=True):
        ref = env.step_grouped(a)[:4]
        for x, y in zip(ref, g, strict=True):
            for k in x:
                np.testing.assert_array_equal(x[k], y[k])


def test_closed_env_stays_closed_when_copied():
    env = genmarl.make("simple", num_envs=2)
    env.close()
    c = pickle.loads(pickle.dumps(env))
    with pytest.raises(RuntimeError, match="closed"):
        c.reset()


def test_context_managers_close():
    from genmarl.pettingzoo import env as aec_env
    from genmarl.pettingzoo import parallel_env

    with genmarl.make("simple", num_envs=2) as env:
        env.reset()
    with pytest.raises(RuntimeError, match="closed"):
        env.reset()
    with parallel_env("simple_spread", seed=0) as par:
        par.reset(seed=0)
    with pytest.raises(RuntimeError, match="closed"):
        par.vector_env.reset()
    with aec_env("simple_spread", seed=0) as aec:
        aec.reset(seed=0)
    with pytest.raises(RuntimeError, match="closed"):
        aec.unwrapped.vector_env.reset()


def test_pettingzoo_adapters_pickle_and_continue():
    from genmarl.pettingzoo import env as aec_env
    from genmarl.pettingzoo import parallel_env

    par = parallel_env("Foraging-8x8-2p-2f-coop-v3", seed=2)
    _, infos = par.reset(seed=2)
    rng = np.random.default_rng(3)

    def acts(infos):
        return {a: int(rng.choice(np.flatnonzero(infos[a]["action_mask"]))) for a in par.agents}

    infos = par.step(acts(infos))[4]
    twin = pickle.loads(pickle.dumps(par))
    while par.agents:
        a = acts(infos)
        x, y = par.step(a), twin.step(a)
        for k in range(4):
            assert x[k].keys() == y[k].keys()
            for agent in x[k]:
                np.testing.assert_array_equal(x[k][agent], y[k][agent])
        infos = x[4]
    assert not twin.agents

    aec = aec_env("simple_spread", seed=4)
    aec.reset(seed=4)
    for _ in range(5):
        aec.step(1)
    copies = [copy.deepcopy(aec), pickle.loads(pickle.dumps(aec))]
    for t in range(40):
        for e in [aec, *copies]:
            e.step(t % 5)
        for c in copies:
            assert c.agent_selection == aec.agent_selection
            np.testing.assert_array_equal(c.observe(c.agent_selection), aec.observe(aec.agent_selection))


def test_gymnasium_1x_names_and_deprecated_aliases():
    env = genmarl.make("simple", num_envs=3, max_cycles=5)
    assert env.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(4):
        _, _, _, _, infos = env.step_grouped(env.sample_actions(rng, grouped=True))
        assert "final_obs" not in infos and final_obs(infos) is None
    obs, rew, term, trunc, infos = env.step_grouped(env.sample_actions(rng, grouped=True))
    assert infos["done"].all()
    assert {"final_obs", "_final_obs", "final_info", "_final_info"} <= set(infos)
    assert "final_observation" not in set(infos)  # an alias, not a key
    np.testing.assert_array_equal(infos["_final_obs"], infos["done"])
    assert infos["final_info"]["episode_length"].tolist() == [5, 5, 5]
    assert final_obs(infos) is infos["final_obs"]
    with pytest.warns(DeprecationWarning, match='use infos\\["final_obs"\\]'):
        old = infos["final_observation"]
    assert old is infos["final_obs"]
    with pytest.warns(DeprecationWarning):
        assert "_final_observation" in infos
    with pytest.warns(DeprecationWarning):
        assert infos.get("final_observation") is infos["final_obs"]
    # per-agent infos follow the same names
    env.reset(seed=0)
    for _ in range(5):
        _, _, _, _, agent_infos = env.step(env.sample_actions(rng))
    a = env.possible_agents[0]
    assert isinstance(agent_infos[a], Infos)
    assert agent_infos[a]["final_obs"].shape == (3, *env.observation_space(a).shape)
    assert agent_infos[a]["final_info"]["episode_return"].shape == (3,)
    with pytest.warns(DeprecationWarning):
        np.testing.assert_array_equal(agent_infos[a]["final_observation"], agent_infos[a]["final_obs"])
    # an env of a user's on Gymnasium 0.29's names is still read
    plain = {"final_observation": {"g": np.zeros(1)}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert final_obs(plain) is plain["final_observation"]
    assert pickle.loads(pickle.dumps(infos)).keys() == infos.keys()
