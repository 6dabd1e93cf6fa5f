"""Hypothesis property tests: spaces, shapes, dtypes, auto-reset bookkeeping, state round trips."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import genmarl

ENVS = genmarl.list_envs("mpe")
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(
    name=st.sampled_from(ENVS),
    num_envs=st.integers(1, 9),
    num_threads=st.integers(1, 3),
    continuous=st.booleans(),
    max_cycles=st.integers(1, 12),
    seed=st.integers(0, 2**63),
    steps=st.integers(1, 30),
)
def test_rollout_invariants(name, num_envs, num_threads, continuous, max_cycles, seed, steps):
    env = genmarl.make(name, num_envs=num_envs, num_threads=num_threads, seed=seed,
                       continuous_actions=continuous, max_cycles=max_cycles)
    obs, _ = env.reset(seed=seed)
    for a in env.possible_agents:
        assert obs[a].shape == (num_envs,) + env.observation_space(a).shape
        assert obs[a].dtype == np.float32 and np.isfinite(obs[a]).all()
    rng = np.random.default_rng(seed % 2**32)
    t = 0
    returns = np.zeros((num_envs, env.num_agents))
    for _ in range(steps):
        acts = env.sample_actions(rng)
        for a in env.possible_agents:
            assert env.action_space(a).contains(acts[a][0])
        obs, rew, term, trunc, infos = env.step(acts)
        t += 1
        returns += np.stack([rew[a] for a in env.possible_agents], 1)
        a0 = env.possible_agents[0]
        done = term[a0] | trunc[a0]
        for a in env.possible_agents:
            assert np.isfinite(obs[a]).all() and np.isfinite(rew[a]).all()
            assert not (term[a] & trunc[a]).any()
            np.testing.assert_array_equal(term[a] | trunc[a], done)  # MPE agents finish together
        if done.any():
            info = infos[a0]
            np.testing.assert_array_equal(info["_final_obs"], done)
            assert (info["episode_length"][done] <= max_cycles).all()
            assert (info["episode_length"][~done] == 0).all()
            for i, a in enumerate(env.possible_agents):
                np.testing.assert_allclose(infos[a]["episode_return"][done], returns[done, i], rtol=1e-4, atol=1e-4)
            returns[done] = 0.0
        else:
            assert all(not infos[a] for a in env.possible_agents)
        # no early termination with default arguments: every env truncates exactly at max_cycles
        assert done.all() == done.any() == (t % max_cycles == 0)
        assert trunc[a0].all() == (t % max_cycles == 0)


@SETTINGS
@given(name=st.sampled_from(ENVS), num_envs=st.integers(1, 6), seed=st.integers(0, 1000), k=st.integers(0, 20))
def test_state_round_trip_between_envs(name, num_envs, seed, k):
    """A state copied into a second env makes it produce identical steps."""
    a = genmarl.make(name, num_envs=num_envs, seed=seed)
    b = genmarl.make(name, num_envs=num_envs, seed=seed + 1)
    a.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(k):
        a.step(a.sample_actions(rng))
    b.set_state(a.get_state())
    for _ in range(30):
        acts = a.sample_actions(rng)
        ra, rb = a.step(acts), b.step(acts)
        for da, db in zip(ra[:4], rb[:4]):
            for key in da:
                assert np.array_equal(da[key], db[key])


@SETTINGS
@given(name=st.sampled_from(ENVS), continuous=st.booleans())
def test_spaces_are_consistent(name, continuous):
    env = genmarl.make(name, continuous_actions=continuous)
    for g in env.groups:
        agents = env.group_agents[g]
        assert env.group_observation_space(g).shape == (len(agents),) + env.observation_space(agents[0]).shape
        for a in agents:
            assert env.observation_space(a) == env.observation_space(agents[0])
            assert env.action_space(a) == env.action_space(agents[0])
    assert sum(len(v) for v in env.group_agents.values()) == env.num_agents
