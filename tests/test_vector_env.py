"""VectorEnv API: spaces, kwargs, determinism, auto-reset, state, ownership, grouped views."""

from __future__ import annotations

import numpy as np
import pytest

import genmarl
from genmarl.testing import MPE2_MODULES, mpe2_module

ALL_ENVS = sorted(MPE2_MODULES)


def rollout(env, steps, seed, grouped=False):
    """Steps with seeded random actions; returns a list of every output array."""
    rng = np.random.default_rng(seed)
    out = []
    obs, _ = env.reset_grouped(seed=seed) if grouped else env.reset(seed=seed)
    out += [np.array(v) for v in obs.values()]
    for _ in range(steps):
        acts = env.sample_actions(rng, grouped=grouped)
        res = env.step_grouped(acts) if grouped else env.step(acts)
        for d in res[:4]:
            out += [np.array(v) for v in d.values()]
    return out


def test_list_envs_has_all_mpe2_scenarios():
    assert sorted(genmarl.list_envs("mpe")) == ALL_ENVS
    assert set(ALL_ENVS) | {"lbf", "rware"} <= set(genmarl.list_envs())  # plus users' envs registered by other tests
    assert genmarl.list_envs("lbf") == ["lbf"] and genmarl.list_envs("rware") == ["rware"]


@pytest.mark.parametrize("name", ALL_ENVS)
@pytest.mark.parametrize("continuous", [False, True])
def test_spaces_and_agents_match_mpe2(name, continuous):
    ref = mpe2_module(name).parallel_env(continuous_actions=continuous)
    env = genmarl.make(name, continuous_actions=continuous)
    assert env.possible_agents == ref.possible_agents
    for a in env.possible_agents:
        assert env.observation_space(a).shape == ref.observation_space(a).shape
        assert env.observation_space(a).dtype == np.float32
        ra, ga = ref.action_space(a), env.action_space(a)
        assert type(ga).__name__ == type(ra).__name__
        if continuous:
            assert ga.shape == ra.shape
            np.testing.assert_array_equal(ga.low, ra.low)
            np.testing.assert_array_equal(ga.high, ra.high)
        else:
            assert ga.n == ra.n
    ref.close()


@pytest.mark.parametrize("name", ALL_ENVS)
def test_shapes_and_dtypes(name):
    env = genmarl.make(name, num_envs=5, seed=1)
    obs, infos = env.reset()
    assert set(obs) == set(env.possible_agents) == set(infos)
    obs, rew, term, trunc, infos = env.step(env.sample_actions(np.random.default_rng(0)))
    for a in env.possible_agents:
        assert obs[a].shape == (5,) + env.observation_space(a).shape and obs[a].dtype == np.float32
        assert rew[a].shape == (5,) and rew[a].dtype == np.float32
        assert term[a].shape == (5,) and term[a].dtype == np.bool_
        assert trunc[a].shape == (5,) and trunc[a].dtype == np.bool_
    gobs, grew, gterm, gtrunc, ginfo = env.step_grouped(env.sample_actions(np.random.default_rng(0), grouped=True))
    for g in env.groups:
        n_g = len(env.group_agents[g])
        assert gobs[g].shape == (5,) + env.group_observation_space(g).shape
        assert gobs[g].flags.c_contiguous
        assert grew[g].shape == gterm[g].shape == gtrunc[g].shape == (5, n_g)
    assert ginfo["done"].shape == (5,)


def test_unknown_kwarg_names_accepted_ones():
    with pytest.raises(TypeError, match="accepted arguments: .*local_ratio"):
        genmarl.make("simple_spread", n_agents=3)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"N": 2.5}, TypeError, "must be an int"),
        ({"N": True}, TypeError, "must be an int"),
        ({"local_ratio": "a"}, TypeError, "must be a number"),
        ({"local_ratio": 1.5}, ValueError, "local_ratio"),
        ({"curriculum": 1}, TypeError, "must be a bool"),
        ({"num_agent_neighbors": 0}, ValueError, "positive integer or None"),
        ({"N": 0}, ValueError, "N must be"),
        ({"max_cycles": 0}, ValueError, "max_cycles"),
    ],
)
def test_bad_kwargs(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        genmarl.make("simple_spread", **kwargs)


@pytest.mark.parametrize("num_envs", [0, -3, 2.0, None])
def test_bad_num_envs(num_envs):
    with pytest.raises(ValueError, match="num_envs must be a positive integer"):
        genmarl.make("simple_spread", num_envs=num_envs)


def test_unknown_env():
    with pytest.raises(ValueError, match="unknown environment 'nope'; known: .*simple_spread"):
        genmarl.make("nope")


@pytest.mark.parametrize("name", ["simple_spread", "simple_tag", "simple_world_comm", "collect_treasure"])
@pytest.mark.parametrize("continuous", [False, True])
def test_determinism_across_threads(name, continuous):
    runs = []
    for threads in (1, 2, 4):
        env = genmarl.make(name, num_envs=37, num_threads=threads, seed=5, continuous_actions=continuous)
        out = rollout(env, 60, seed=11)
        runs.append((out, env.get_state()))
    for out, state in runs[1:]:
        assert len(out) == len(runs[0][0])
        for x, y in zip(out, runs[0][0]):
            assert np.array_equal(x, y)  # bitwise
        for k in state:
            assert np.array_equal(state[k], runs[0][1][k], equal_nan=True), k


def test_different_seeds_differ():
    a = rollout(genmarl.make("simple_spread", num_envs=4), 5, seed=1)
    b = rollout(genmarl.make("simple_spread", num_envs=4), 5, seed=2)
    assert not np.array_equal(a[0], b[0])


def test_envs_in_a_batch_differ():
    env = genmarl.make("simple_spread", num_envs=8)
    obs, _ = env.reset(seed=0)
    assert len({obs["agent_0"][i].tobytes() for i in range(8)}) == 8


def test_unseeded_reset_starts_new_episodes():
    env = genmarl.make("simple_spread", num_envs=2, seed=3)
    o1, _ = env.reset(seed=3)
    o2, _ = env.reset()
    assert not np.array_equal(o1["agent_0"], o2["agent_0"])
    o3, _ = env.reset(seed=3)
    np.testing.assert_array_equal(o1["agent_0"], o3["agent_0"])


def test_auto_reset_bookkeeping():
    env = genmarl.make("simple_spread", num_envs=3, max_cycles=7)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    total = np.zeros((3, env.num_agents), np.float64)
    for t in range(1, 8):
        obs, rew, term, trunc, infos = env.step(env.sample_actions(rng))
        total += np.stack([rew[a] for a in env.possible_agents], 1)
        a0 = env.possible_agents[0]
        if t < 7:
            assert not trunc[a0].any() and infos[a0] == {}
    for i, a in enumerate(env.possible_agents):
        assert trunc[a].all() and not term[a].any()
        assert infos[a]["_final_obs"].all()
        np.testing.assert_array_equal(infos[a]["episode_length"], 7)
        np.testing.assert_allclose(infos[a]["episode_return"], total[:, i], rtol=1e-5)
        # the returned obs is the first observation of the new episode, not the final one
        assert not np.array_equal(obs[a], infos[a]["final_obs"])
    state = env.get_state()
    np.testing.assert_array_equal(state["steps"], 0)
    np.testing.assert_array_equal(state["episode"], 1)


def test_terminate_on_success_and_final_obs_matches_state():
    env = genmarl.make("simple_spread", num_envs=1, N=1, terminate_on_success=True, max_cycles=1000)
    env.reset(seed=0)
    state = env.get_state()
    state["pos"][0, 0] = state["pos"][0, 1]  # agent on its landmark
    env.set_state(state)
    obs, rew, term, trunc, infos = env.step({"agent_0": np.array([0])})
    assert term["agent_0"][0] and not trunc["agent_0"][0]
    assert infos["agent_0"]["episode_length"][0] == 1


def test_state_round_trip_reproduces_trajectory():
    env = genmarl.make("simple_tag", num_envs=6, seed=2)
    env.reset(seed=2)
    rng = np.random.default_rng(0)
    for _ in range(10):
        env.step(env.sample_actions(rng))
    saved = env.get_state()
    acts = [env.sample_actions(rng) for _ in range(30)]
    first = [env.step(a) for a in acts]
    env.set_state(saved)
    second = [env.step(a) for a in acts]
    for r1, r2 in zip(first, second):
        for d1, d2 in zip(r1[:4], r2[:4]):
            for k in d1:
                assert np.array_equal(d1[k], d2[k])


def test_observe_after_set_state():
    a = genmarl.make("simple_tag", num_envs=3, seed=1)
    b = genmarl.make("simple_tag", num_envs=3, seed=2)
    obs_a, _ = a.reset(seed=1)
    b.set_state(a.get_state())
    for agent, v in b.observe().items():
        np.testing.assert_array_equal(v, obs_a[agent])
    grouped = b.observe_grouped()
    np.testing.assert_array_equal(grouped["adversary"][:, 1], obs_a["adversary_1"])


def test_get_state_returns_copies():
    env = genmarl.make("simple_spread")
    s = env.get_state()
    s["pos"][:] = 123.0
    assert not np.any(env.get_state()["pos"] == 123.0)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda s: s.pop("pos"), "expects exactly the arrays"),
        (lambda s: s.__setitem__("pos", s["pos"][:, :1]), "'pos' must have dtype <f8 and shape"),
        (lambda s: s.__setitem__("pos", s["pos"].astype(np.float32)), "'pos' must have dtype <f8"),
        (lambda s: s["vel"].__setitem__((0, 0, 0), np.nan), "'vel' contains a non-finite value"),
        (lambda s: s["mass"].__setitem__((0, 0), -1.0), "'mass' > 0"),
        (lambda s: s["steps"].__setitem__(0, -1), "'steps' must be non-negative"),
        (lambda s: s["movable"].__setitem__((0, 0), False), "cannot change"),
        (lambda s: s.__setitem__("bogus", s.pop("seed")), "missing array 'seed'"),
    ],
)
def test_bad_set_state_leaves_env_unchanged(mutate, match):
    env = genmarl.make("simple_spread", num_envs=2)
    env.reset(seed=0)
    before = env.get_state()
    bad = env.get_state()
    mutate(bad)
    with pytest.raises(ValueError, match=match):
        env.set_state(bad)
    after = env.get_state()
    for k in before:
        assert np.array_equal(before[k], after[k], equal_nan=True)


def test_returned_arrays_are_never_overwritten():
    env = genmarl.make("simple_spread", num_envs=4, max_cycles=3)
    obs0, _ = env.reset(seed=0)
    keep = {a: obs0[a].copy() for a in obs0}
    rng = np.random.default_rng(0)
    res1 = env.step(env.sample_actions(rng))
    keep1 = [{a: v.copy() for a, v in d.items()} for d in res1[:4]]
    for _ in range(5):  # includes an auto-reset
        env.step(env.sample_actions(rng))
        env.reset()
    for a in obs0:
        np.testing.assert_array_equal(obs0[a], keep[a])
    for d, k in zip(res1[:4], keep1):
        for a in d:
            np.testing.assert_array_equal(d[a], k[a])


def test_large_arrays_recycle_memory_only_after_they_are_freed():
    # 1024 envs: observations (and final observations) are large enough to take recycled blocks
    env = genmarl.make("simple_spread", num_envs=1024, num_threads=2, max_cycles=4)
    twin = genmarl.make("simple_spread", num_envs=1024, num_threads=1, max_cycles=4)
    rng = np.random.default_rng(0)
    env.reset_grouped(seed=3)
    twin.reset_grouped(seed=3)
    kept, copies = [], []
    for t in range(12):  # some results are dropped (their blocks come back), some kept
        acts = env.sample_actions(rng, grouped=True)
        res = env.step_grouped(acts)
        ref = twin.step_grouped(acts)
        np.testing.assert_array_equal(res[0]["agent"], ref[0]["agent"])
        if "final_obs" in res[4]:
            np.testing.assert_array_equal(res[4]["final_obs"]["agent"], ref[4]["final_obs"]["agent"])
            assert not res[4]["final_obs"]["agent"][~res[4]["done"]].any()  # rows of unfinished envs are zero
        if t % 3 == 0:
            kept.append(res)
            copies.append((res[0]["agent"].copy(), res[1]["agent"].copy()))
    for res, (obs, rew) in zip(kept, copies):
        np.testing.assert_array_equal(res[0]["agent"], obs)
        np.testing.assert_array_equal(res[1]["agent"], rew)
    assert kept[0][0]["agent"].flags.writeable and kept[0][0]["agent"].flags.c_contiguous


def test_per_agent_arrays_are_views_of_grouped_arrays():
    env = genmarl.make("simple_tag", num_envs=3)
    env.reset(seed=0)
    res = env.step(env.sample_actions(np.random.default_rng(0)))
    obs = res[0]
    base = obs["adversary_0"].base
    assert base is not None and base.shape == (3, 3, 16)
    assert obs["adversary_0"].base is obs["adversary_2"].base
    assert res[1]["adversary_0"].base is res[1]["agent_0"].base
    obs["adversary_2"][1, 0] = 42.0  # writes through to the grouped array
    assert base[1, 2, 0] == 42.0


def test_grouped_and_per_agent_paths_agree():
    a = genmarl.make("simple_world_comm", num_envs=4, seed=1)
    b = genmarl.make("simple_world_comm", num_envs=4, seed=1)
    a.reset(seed=1)
    b.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(30):
        g = a.sample_actions(rng, grouped=True)
        per_agent = {}
        for grp, names in a.group_agents.items():
            for j, name in enumerate(names):
                per_agent[name] = g[grp][:, j]
        go, gr, _, _, _ = a.step_grouped(g)
        po, pr, _, _, _ = b.step(per_agent)
        for grp, names in a.group_agents.items():
            for j, name in enumerate(names):
                np.testing.assert_array_equal(go[grp][:, j], po[name])
                np.testing.assert_array_equal(gr[grp][:, j], pr[name])


def test_torch_from_numpy_shares_memory():
    torch = pytest.importorskip("torch")
    env = genmarl.make("simple_spread", num_envs=4)
    obs, _ = env.reset_grouped(seed=0)
    t = torch.from_numpy(obs["agent"])
    assert t.data_ptr() == obs["agent"].ctypes.data
    per_agent, _ = env.reset(seed=0)
    t2 = torch.from_numpy(per_agent["agent_1"])
    assert t2.data_ptr() == per_agent["agent_1"].ctypes.data
    assert t2.shape == (4, 18)


def test_import_does_not_need_torch():
    import subprocess
    import sys

    code = "import sys; sys.modules['torch'] = None; import genmarl; genmarl.make('simple').reset()"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_curriculum_stage():
    env = genmarl.make("simple_tag", curriculum=True, num_envs=2)
    assert env.num_curriculum_stages == 3 and env.curriculum_stage == 0
    env.reset(seed=0)
    assert np.allclose(env.get_state()["max_speed"][:, 3], 1.3 * 0.5)
    env.advance_curriculum()
    env.set_curriculum_stage(10)
    assert env.curriculum_stage == 2
    env.reset(seed=0)
    assert np.allclose(env.get_state()["max_speed"][:, 3], 1.3)


def test_render_rgb_array():
    env = genmarl.make("simple_spread", num_envs=2, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render(1)
    assert frame.shape == (700, 700, 3) and frame.dtype == np.uint8
    assert (frame != 255).any()
    with pytest.raises(IndexError):
        env.render(2)
    with pytest.raises(RuntimeError, match="render_mode"):
        genmarl.make("simple").render()
    with pytest.raises(ValueError, match="render_mode"):
        genmarl.make("simple", render_mode="human")


def test_curriculum_stage_is_part_of_the_state():
    env = genmarl.make("simple_spread", num_envs=2, curriculum=True)
    env.reset(seed=0)
    assert env.num_curriculum_stages == 2
    state = env.get_state()
    assert int(state["curriculum_stage"]) == 0
    env.set_curriculum_stage(1)
    env.set_state(state)  # back to stage 0 with the rest of the state
    assert env.curriculum_stage == 0
    state["curriculum_stage"] = np.array(5)
    with pytest.raises(ValueError, match="curriculum_stage"):
        env.set_state(state)
    assert env.curriculum_stage == 0
