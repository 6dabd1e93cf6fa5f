"""Multi-Robot Warehouse against the rware 2.0.0 package: from a copied state (the numpy
generator's included), both step with the same random actions for whole episodes and must give
the same observations, rewards and episode ends; plus ids, bad input, determinism, rules."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import genmarl
from genmarl.testing import sync_from_reference

warehouse = pytest.importorskip("rware.warehouse")
gym = pytest.importorskip("gymnasium")


def _reference(**kwargs):
    args = dict(
        shelf_columns=3, column_height=8, shelf_rows=1, n_agents=2, msg_bits=0, sensor_range=1,
        request_queue_size=2, max_inactivity_steps=None, max_steps=500, reward_type=warehouse.RewardType.INDIVIDUAL,
    )
    args.update(kwargs)
    return warehouse.Warehouse(**args), args


def _ref_state(u):
    return (
        [int(a.x) for a in u.agents], [int(a.y) for a in u.agents], [a.dir.value for a in u.agents],
        [0 if a.carrying_shelf is None else a.carrying_shelf.id for a in u.agents],
        [int(s.id) for s in u.request_queue],
    )


def _run(args, seed, steps, policy_bias=0.0):
    ref, _ = _reference(**args)
    obs_ref, _ = ref.reset(seed=seed)
    kwargs = {k: (v.value if hasattr(v, "value") else v) for k, v in args.items()}
    venv = genmarl.make("rware", num_envs=1, seed=seed, **kwargs)
    sync_from_reference(venv, 0, ref)
    np.testing.assert_array_equal(venv.observe_grouped()["agent"][0], np.stack(obs_ref), err_msg="reset obs")
    rng = np.random.default_rng(seed + 11)
    n = ref.n_agents
    delivered = 0
    total = np.zeros(n)
    for t in range(1, steps + 1):
        # mostly forward/turn with some loads: enough traffic for conflicts, pick-ups and deliveries
        actions = [int(a) for a in rng.choice(5, n, p=[0.1, 0.45, 0.15, 0.15, 0.15])]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            o_ref, r_ref, done_ref, trunc_ref, _ = ref.step(actions)
        assert trunc_ref is False
        o, r, te, tr, infos = venv.step_grouped({"agent": np.array([actions])})
        done = bool(infos["done"][0])
        got = infos["final_obs"]["agent"][0] if done else o["agent"][0]
        np.testing.assert_array_equal(got, np.stack(o_ref), err_msg=f"step {t} obs")
        np.testing.assert_array_equal(r["agent"][0], np.asarray(r_ref, np.float32), err_msg=f"step {t} rewards")
        delivered += int(np.sum(r_ref) > 0)
        total += np.asarray(r_ref)
        assert done == bool(done_ref), f"step {t}: done {done} vs reference {done_ref}"
        assert not te["agent"].any()  # rware has no terminal state: its ends are truncations
        assert bool(tr["agent"][0, 0]) == bool(done_ref)
        if done:
            np.testing.assert_allclose(infos["episode_return"]["agent"][0], total.astype(np.float32))
            return delivered
        state = venv.get_state()
        gs = ([int(v) for v in state["agent_x"][0]], [int(v) for v in state["agent_y"][0]],
              [int(v) for v in state["agent_dir"][0]], [int(v) for v in state["carrying"][0]],
              [int(v) for v in state["request_queue"][0]])
        assert gs == _ref_state(ref), f"step {t} state"
    return delivered


CONFIGS = [
    ({}, 300),
    ({"n_agents": 4, "shelf_rows": 2, "request_queue_size": 4}, 300),
    ({"n_agents": 8, "shelf_columns": 3, "column_height": 3, "shelf_rows": 1, "request_queue_size": 6}, 400),
    ({"n_agents": 12, "shelf_columns": 3, "column_height": 2, "shelf_rows": 2, "request_queue_size": 8,
      "reward_type": warehouse.RewardType.TWO_STAGE}, 400),
    ({"n_agents": 6, "shelf_columns": 5, "column_height": 2, "shelf_rows": 1, "request_queue_size": 5,
      "reward_type": warehouse.RewardType.GLOBAL, "sensor_range": 2}, 400),
    ({"n_agents": 3, "max_inactivity_steps": 40, "max_steps": 200, "sensor_range": 3}, 300),
    ({"n_agents": 5, "shelf_columns": 1, "column_height": 3, "shelf_rows": 1, "request_queue_size": 0,
      "max_steps": 60}, 100),
]


@pytest.mark.parametrize("config, steps", CONFIGS, ids=[str(i) for i in range(len(CONFIGS))])
def test_parity_with_rware(config, steps):
    for seed in range(6):
        _run(config, seed, steps)


def test_parity_covers_deliveries_and_full_episodes():
    delivered = 0
    for seed in range(4):
        delivered += _run({"n_agents": 10, "shelf_columns": 3, "column_height": 2, "shelf_rows": 2,
                           "request_queue_size": 8, "max_steps": 500}, seed, 501)
    assert delivered > 0


@pytest.mark.parametrize("env_id", ["rware-tiny-2ag-v2", "rware-small-4ag-v2", "rware-medium-6ag-hard-v2",
                                    "rware-large-19ag-easy-v2", "rware-tiny-1ag-hard-v2"])
def test_registered_ids_are_aliases(env_id):
    ref = gym.make(env_id).unwrapped
    venv = genmarl.make(env_id)
    assert venv.scenario == "rware" and venv.num_agents == ref.n_agents
    state = venv.get_state()
    assert state["shelf_x"].shape[1] == len(ref.shelfs) if hasattr(ref, "shelfs") else True
    assert state["request_queue"].shape[1] == ref.request_queue_size
    assert venv.max_cycles == ref.max_steps
    assert venv.observation_space("agent_0").shape == ref.observation_space[0].shape
    assert venv.action_space("agent_0") == ref.action_space[0]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"shelf_columns": 2}, "shelf_columns"),
        ({"n_agents": 0}, "n_agents"),
        ({"n_agents": 200, "column_height": 1}, "n_agents"),
        ({"request_queue_size": 32}, "request_queue_size"),
        ({"msg_bits": 1}, "msg_bits"),
        ({"observation_type": 2}, "observation_type"),
        ({"reward_type": 3}, "reward_type"),
        ({"max_inactivity_steps": 0}, "max_inactivity_steps"),
        ({"sensor_range": -1}, "sensor_range"),
    ],
)
def test_impossible_configurations_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        genmarl.make("rware", **kwargs)


def test_bad_ids_actions_and_states_raise():
    with pytest.raises(ValueError, match="unknown environment"):
        genmarl.make("rware-huge-2ag-v2")
    with pytest.raises(ValueError, match="unknown environment"):
        genmarl.make("rware-tiny-20ag-v2")
    venv = genmarl.make("rware", num_envs=2)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected an integer in \[0, 5\)"):
        venv.step_grouped({"agent": np.array([[0, 5], [0, 0]])})
    good = venv.get_state()
    for key, value, match in [("agent_x", 99, "on the"), ("carrying", 77, "carrying"), ("request_queue", 0, "request_queue"),
                              ("agent_dir", 4, "agent_dir")]:
        state = {k: v.copy() for k, v in good.items()}
        state[key][0, 0] = value
        with pytest.raises(ValueError, match=match):
            venv.set_state(state)
    state = {k: v.copy() for k, v in good.items()}
    state["agent_x"][0, 1], state["agent_y"][0, 1] = state["agent_x"][0, 0], state["agent_y"][0, 0]
    with pytest.raises(ValueError, match="two robots share a cell"):
        venv.set_state(state)
    np.testing.assert_array_equal(venv.get_state()["agent_x"], good["agent_x"])


def test_reward_type_accepts_the_reference_enum():
    assert genmarl.make("rware", reward_type=warehouse.RewardType.GLOBAL).resolved_params()["reward_type"] == 0


@pytest.mark.parametrize("threads", [2, 3])
def test_same_trajectories_for_any_thread_count(threads):
    def run(num_threads):
        venv = genmarl.make("rware-small-4ag-v2", num_envs=48, num_threads=num_threads, seed=9)
        obs, _ = venv.reset_grouped(seed=9)
        rng = np.random.default_rng(2)
        out = [obs["agent"]]
        for _ in range(150):
            obs, rew, term, trunc, infos = venv.step_grouped(venv.sample_actions(rng, True))
            out += [obs["agent"], rew["agent"], trunc["agent"]]
        return out

    for a, b in zip(run(1), run(threads)):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cols=st.sampled_from([1, 3, 5]),
    height=st.integers(1, 6),
    rows=st.integers(1, 3),
    agents=st.integers(1, 14),
    seed=st.integers(0, 2**32 - 1),
)
def test_generated_configurations_keep_the_rules(cols, height, rows, agents, seed):
    H, W = (height + 1) * rows + 2, 3 * cols + 1
    shelves = sum(1 for y in range(H) for x in range(W) if not (x % 3 == 0 or y % (height + 1) == 0 or y == H - 1 or
                  (y > H - (height + 3) and x in (W // 2 - 1, W // 2))))
    agents = min(agents, H * W)
    queue = min(agents, max(shelves - 1, 0))
    venv = genmarl.make("rware", num_envs=3, seed=seed, shelf_columns=cols, column_height=height, shelf_rows=rows,
                        n_agents=agents, request_queue_size=queue, max_steps=40)
    venv.reset_grouped(seed=seed)
    rng = np.random.default_rng(seed % 997)
    for _ in range(60):
        venv.step_grouped(venv.sample_actions(rng, True))
        s = venv.get_state()
        for e in range(3):
            cells = set(zip(s["agent_x"][e], s["agent_y"][e]))
            assert len(cells) == agents  # robots never share a cell
            shelf_cells = list(zip(s["shelf_x"][e], s["shelf_y"][e]))
            assert len(set(shelf_cells)) == len(shelf_cells)  # nor do shelves
            for i, c in enumerate(s["carrying"][e]):
                if c:
                    assert shelf_cells[c - 1] == (s["agent_x"][e, i], s["agent_y"][e, i])
            q = list(s["request_queue"][e])
            assert len(set(q)) == len(q)


def test_render_frame():
    venv = genmarl.make("rware-tiny-2ag-v2", render_mode="rgb_array")
    venv.reset(seed=0)
    frame = venv.render()
    assert frame.shape == (11 * 30, 10 * 30, 3) and frame.dtype == np.uint8
