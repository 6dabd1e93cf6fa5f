"""genmarl.gymnasium.AgentVectorEnv: a Gymnasium 1.x VectorEnv whose sub-envs are the (env, agent)
pairs of one group, checked against the grouped VectorEnv it wraps, Gymnasium's wrappers and a
cleanrl-style PPO loop."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.wrappers.vector import NormalizeReward, RecordEpisodeStatistics

import genmarl
from genmarl.gymnasium import AgentVectorEnv

ROOT = Path(__file__).resolve().parents[1]


def test_sub_envs_are_the_group_agents_of_each_env():
    E = 5
    env = AgentVectorEnv("simple_spread", num_envs=E, seed=4, max_cycles=9)
    ref = genmarl.make("simple_spread", num_envs=E, seed=4, max_cycles=9)
    assert isinstance(env, VectorEnv) and env.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    assert env.num_envs == E * 3 and env.agents_per_env == 3
    assert env.single_observation_space == ref.observation_space("agent_0")
    assert env.single_action_space == spaces.Discrete(5)
    assert env.observation_space.shape == (E * 3, 18) and env.action_space == spaces.MultiDiscrete([5] * (E * 3))
    obs, infos = env.reset(seed=4)
    robs, _ = ref.reset_grouped(seed=4)
    np.testing.assert_array_equal(obs, robs["agent"].reshape(E * 3, 18))
    assert env.observation_space.contains(obs) and infos == {}
    rng = np.random.default_rng(0)
    finished = 0
    for t in range(20):
        acts = rng.integers(0, 5, E * 3)
        obs, rew, term, trunc, infos = env.step(acts)
        ro, rr, rt, rtr, rinf = ref.step_grouped({"agent": acts.reshape(E, 3)})
        np.testing.assert_array_equal(obs, ro["agent"].reshape(-1, 18))
        np.testing.assert_array_equal(rew, rr["agent"].reshape(-1))
        np.testing.assert_array_equal(term, rt["agent"].reshape(-1))
        np.testing.assert_array_equal(trunc, rtr["agent"].reshape(-1))
        assert obs.shape == (E * 3, 18) and rew.shape == term.shape == trunc.shape == (E * 3,)
        if rinf["done"].any():
            finished += 1
            done = np.repeat(rinf["done"], 3)
            np.testing.assert_array_equal(infos["_final_obs"], done)
            np.testing.assert_array_equal(infos["final_obs"], rinf["final_obs"]["agent"].reshape(-1, 18))
            fi = infos["final_info"]
            np.testing.assert_array_equal(fi["episode_return"], rinf["final_info"]["episode_return"]["agent"].reshape(-1))
            np.testing.assert_array_equal(fi["episode_length"], np.repeat(rinf["episode_length"], 3))
            assert set(fi["metrics"]) == set(ref.metric_names) and fi["metrics"]["collisions"].shape == (E * 3,)
        else:
            assert "final_obs" not in infos
    assert finished == 2  # steps 9 and 18


def test_record_episode_statistics_counts_every_sub_env_episode():
    env = RecordEpisodeStatistics(AgentVectorEnv("simple_spread", num_envs=4, seed=1, max_cycles=10))
    env.reset(seed=1)
    total = np.zeros(12)
    for t in range(10):
        _, rew, _, _, infos = env.step(env.action_space.sample())
        total += rew
    assert "episode" in infos and infos["_episode"].all()
    np.testing.assert_allclose(infos["episode"]["r"], total, rtol=1e-5)
    np.testing.assert_allclose(infos["episode"]["r"], infos["final_info"]["episode_return"], rtol=1e-5)
    assert (infos["episode"]["l"] == 10).all() and env.episode_count == 12
    # the next step starts new episodes (SAME_STEP autoreset): no stale returns carried over
    _, rew, _, _, infos = env.step(env.action_space.sample())
    np.testing.assert_allclose(env.episode_returns, rew, rtol=1e-6)
    # other vector wrappers compose (observation wrappers refuse SAME_STEP autoreset: documented)
    norm = NormalizeReward(AgentVectorEnv("simple_spread", num_envs=2, seed=0))
    norm.reset(seed=0)
    assert norm.step(norm.action_space.sample())[1].shape == (6,)


def test_action_masks_other_groups_and_pickling():
    env = AgentVectorEnv("Foraging-8x8-2p-2f-coop-v3", num_envs=3, seed=2)
    _, infos = env.reset(seed=2)
    assert infos["action_mask"].shape == (6, 6) and infos["action_mask"].dtype == np.bool_
    rng = np.random.default_rng(0)
    acts = np.array([rng.choice(np.flatnonzero(m)) for m in infos["action_mask"]])
    env.step(acts)
    twin = pickle.loads(pickle.dumps(env))
    for _ in range(30):
        a = env.action_space.sample()
        for x, y in zip(env.step(a)[:4], twin.step(a)[:4], strict=True):
            np.testing.assert_array_equal(x, y)
    # a multi-group env: the learning group is chosen, the others act by other_policy
    seen = []

    def chase(obs, masks):
        seen.append(obs["agent"].shape)
        return {"agent": np.zeros((2, 1), np.int64)}

    tag = AgentVectorEnv("simple_tag", num_envs=2, group="adversary", other_policy=chase, seed=0)
    assert tag.num_envs == 6 and tag.single_observation_space.shape == (16,)
    tag.reset(seed=0)
    tag.step(tag.action_space.sample())
    assert seen == [(2, 1, 14)]
    random_others = AgentVectorEnv("simple_tag", num_envs=2, group="agent", seed=0)
    random_others.reset(seed=0)
    assert random_others.step(random_others.action_space.sample())[0].shape == (2, 14)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="groups"):
        AgentVectorEnv("simple_tag")
    with pytest.raises(ValueError, match="unknown agent group"):
        AgentVectorEnv("simple_spread", group="nope")
    with pytest.raises(TypeError, match="other_policy"):
        AgentVectorEnv("simple_tag", group="agent", other_policy=3)
    env = AgentVectorEnv("simple_spread", num_envs=2)
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(np.zeros(6, np.int64))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        env.step(np.zeros(5, np.int64))
    with pytest.raises(TypeError, match="one seed"):
        env.reset(seed=[1, 2])
    bad = AgentVectorEnv("simple_tag", num_envs=1, group="adversary", other_policy=lambda o, m: {})
    bad.reset(seed=0)
    with pytest.raises(ValueError, match="no actions for groups"):
        bad.step(bad.action_space.sample())
    env.close()
    with pytest.raises(RuntimeError, match="closed"):
        env.reset()


def test_render_gives_one_frame_per_env():
    env = AgentVectorEnv("simple_spread", num_envs=2, render_mode="rgb_array")
    env.reset(seed=0)
    frames = env.render()
    assert len(frames) == 2 and frames[0].ndim == 3 and frames[0].dtype == np.uint8
    assert AgentVectorEnv("simple_spread").render() is None


def test_cleanrl_style_ppo_example_learns():
    pytest.importorskip("torch")
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "gymnasium_ppo.py"), "--num-envs", "32", "--total-steps", "96000"],
        check=True, capture_output=True, text=True, timeout=300,
    )
    last = out.stdout.strip().splitlines()[-1]
    first, final = (float(x.rstrip(",")) for x in (last.split()[3], last.split()[5]))
    assert final > first + 1.0, out.stdout
