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
    with warnings.catch_warnings():  # gymnasium's Box precision warning for normalised coordinates
        warnings.simplefilter("ignore")
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
    bits = ref.msg_bits
    assert venv.action_space("agent_0") == gym.spaces.Discrete(5 * 2**bits)
    delivered = 0
    total = np.zeros(n)
    for t in range(1, steps + 1):
        # mostly forward/turn with some loads: enough traffic for conflicts, pick-ups and deliveries
        moves = [int(a) for a in rng.choice(5, n, p=[0.1, 0.45, 0.15, 0.15, 0.15])]
        messages = rng.integers(0, 2, (n, bits))
        # genmarl's action is the row-major index of the reference's MultiDiscrete([5, 2, ..., 2])
        actions = [int(np.ravel_multi_index((m, *b), (5,) + (2,) * bits)) for m, b in zip(moves, messages)]
        ref_actions = [[m, *map(int, b)] for m, b in zip(moves, messages)] if bits else moves
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            o_ref, r_ref, done_ref, trunc_ref, _ = ref.step(ref_actions)
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
    # message bits: MultiDiscrete([5, 2, ...]) actions, messages in the neighbours' observations
    ({"n_agents": 6, "msg_bits": 1, "column_height": 3, "request_queue_size": 3}, 300),
    ({"n_agents": 4, "msg_bits": 3, "sensor_range": 2, "normalised_coordinates": True}, 300),
    # custom layouts (the reference's own example, and several goals in odd places)
    ({"n_agents": 4, "request_queue_size": 3, "layout": """
        .......
        ...x...
        ..x.x..
        .x...x.
        ..x.x..
        ...x...
        .g...g.
    """}, 300),
    ({"n_agents": 6, "request_queue_size": 4, "layout": "g..XX..\n..xXX.g\n.......\nxx.g.xx\nxx...xx"}, 300),
    # image observations (directional or not; every layer but the two the reference transposes)
    ({"n_agents": 6, "column_height": 3, "request_queue_size": 3,
      "observation_type": warehouse.ObservationType.IMAGE}, 300),
    ({"n_agents": 5, "column_height": 3, "request_queue_size": 3, "sensor_range": 2,
      "observation_type": warehouse.ObservationType.IMAGE, "image_observation_directional": False,
      "image_observation_layers": [warehouse.ImageLayer.ACCESSIBLE, warehouse.ImageLayer.GOALS,
                                   warehouse.ImageLayer.SHELVES, warehouse.ImageLayer.REQUESTS]}, 300),
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
        ({"msg_bits": 9}, "msg_bits"),
        ({"msg_bits": -1}, "msg_bits"),
        ({"observation_type": 0}, "observation_type"),
        ({"observation_type": 3}, "observation_type"),
        ({"observation_type": 2, "image_observation_layers": [0, 7]}, "image_observation_layers"),
        ({"layout": "x.x\n.g"}, "rectangular"),
        ({"layout": "x.x\n..."}, "goal"),
        ({"layout": "x.y\n.g."}, "'y'"),
        ({"layout": "   \n  "}, "empty"),
        ({"layout": "xg", "n_agents": 3}, "n_agents"),
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


def _window_layer(grid, x, y, r, direction, directional):
    """One image layer of the window around (x, y), as the reference builds its layers (zero
    padding, then np.rot90 by the heading), from a [H, W] layer indexed (y, x)."""
    win = np.pad(grid, r)[y : y + 2 * r + 1, x : x + 2 * r + 1]
    if directional:
        win = np.rot90(win, k={0: 0, 1: 2, 2: 3, 3: 1}[int(direction)])
    return win


@pytest.mark.parametrize("directional", [True, False])
def test_direction_and_load_layers_are_written_at_the_robots_cells(directional):
    # The reference writes AGENT_DIRECTION and AGENT_LOAD at [x, y] (transposed; IndexError on this
    # 11 x 10 grid); genmarl writes them at [y, x], checked here against numpy built from the state.
    L = warehouse.ImageLayer
    venv = genmarl.make("rware", num_envs=4, seed=3, n_agents=8, column_height=8, request_queue_size=4, sensor_range=2,
                        observation_type=2, image_observation_directional=directional,
                        image_observation_layers=[L.AGENT_DIRECTION, L.AGENT_LOAD, L.AGENTS])
    rng = np.random.default_rng(0)
    loaded = 0
    for _ in range(120):
        obs, *_ = venv.step_grouped(venv.sample_actions(rng, True))
        s = venv.get_state()
        for e in range(4):
            direction, load = np.zeros((11, 10)), np.zeros((11, 10))
            for i in range(8):
                x, y = s["agent_x"][e, i], s["agent_y"][e, i]
                direction[y, x] = s["agent_dir"][e, i] + 1
                load[y, x] = float(s["carrying"][e, i] > 0)
            for i in range(8):
                x, y, d = s["agent_x"][e, i], s["agent_y"][e, i], s["agent_dir"][e, i]
                got = obs["agent"][e, i]
                np.testing.assert_array_equal(got[0], _window_layer(direction, x, y, 2, d, directional))
                np.testing.assert_array_equal(got[1], _window_layer(load, x, y, 2, d, directional))
                np.testing.assert_array_equal(got[2], got[0] > 0)
                assert got[0][2, 2] == d + 1  # the robot itself, at the centre
            loaded += int(s["carrying"][e].astype(bool).sum())
    assert loaded > 0


def test_message_bits_are_actions_state_and_observations():
    venv = genmarl.make("rware", num_envs=1, seed=0, n_agents=2, msg_bits=2, sensor_range=1)
    assert venv.action_space("agent_0").n == 20
    venv.reset_grouped(seed=0)
    # move NOOP (0) with messages 0b10 and 0b01
    venv.step_grouped({"agent": np.array([[0 * 4 + 2, 0 * 4 + 1]])})
    s = venv.get_state()
    assert list(s["message"][0]) == [2, 1] and list(s["action"][0]) == [0, 0]
    obs = venv.observe_grouped()["agent"][0]
    centre = 8 + 4 * (7 + 2)  # the robot's own cell in its 3 x 3 window
    np.testing.assert_array_equal(obs[0, centre + 5 : centre + 7], [1.0, 0.0])
    np.testing.assert_array_equal(obs[1, centre + 5 : centre + 7], [0.0, 1.0])
    bad = {k: v.copy() for k, v in s.items()}
    bad["message"][0, 0] = 4
    with pytest.raises(ValueError, match="'message' must be in \\[0, 4\\)"):
        venv.set_state(bad)
    with pytest.raises(ValueError, match=r"\[0, 20\)"):
        venv.step_grouped({"agent": np.array([[20, 0]])})


def test_layout_arguments_are_strings_and_lists():
    with pytest.raises(TypeError, match="'layout' must be a str"):
        genmarl.make("rware", layout=3)
    with pytest.raises(TypeError, match="'image_observation_layers' must be an int or a list of ints"):
        genmarl.make("rware", image_observation_layers=["SHELVES"])
    venv = genmarl.make("rware", layout="xx.\n..g", n_agents=1, request_queue_size=1, observation_type=2,
                        image_observation_layers=warehouse.ImageLayer.GOALS)
    assert venv.resolved_params()["image_observation_layers"] == (5,)
    assert venv.observation_space("agent_0").shape == (1, 3, 3)
    assert venv.get_state()["shelf_x"].shape == (1, 2)


def test_render_frame_of_a_custom_layout():
    venv = genmarl.make("rware", layout="x.x.g\n.....\nxx..x", n_agents=2, request_queue_size=1, render_mode="rgb_array")
    venv.reset(seed=0)
    frame = venv.render()
    assert frame.shape == (3 * 30, 5 * 30, 3)
    assert tuple(frame[15, 4 * 30 + 15]) in {(240, 220, 80), (60, 110, 230), (20, 40, 140)}  # the goal (or a robot on it)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        dict(shelf_columns=5, column_height=8, shelf_rows=2, n_agents=4),
        dict(shelf_columns=3, column_height=3, shelf_rows=3, n_agents=2),
        dict(layout="x.x.g\n.....\nxx..x\ng...x", n_agents=2, request_queue_size=1),
    ],
)
def test_layout_is_the_references_grid_and_goals(kwargs):
    ref, args = _reference(**kwargs)
    venv = genmarl.make("rware", **{k: v for k, v in args.items() if k != "reward_type"})
    layout = venv.layout
    assert layout["highway"].dtype == np.bool_ and layout["goals"].dtype == np.int64
    np.testing.assert_array_equal(layout["highway"], ref.highways.astype(bool))
    np.testing.assert_array_equal(layout["goals"], np.asarray(ref.goals, np.int64).reshape(-1, 2))
    with pytest.raises(ValueError):
        layout["highway"][0, 0] = not layout["highway"][0, 0]  # read-only: the env's constant
    assert genmarl.make("simple_spread").layout == {}
