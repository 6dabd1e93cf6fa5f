"""Level-Based Foraging against the lbforaging 2.0.0 package: same state, same actions ->
same observations, action masks, rewards and episode ends; plus ids, bad input, determinism
and generated configurations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import genmarl
from genmarl.testing import sync_from_reference

lbf_ref = pytest.importorskip("lbforaging.foraging.environment")
gym = pytest.importorskip("gymnasium")


def _reference(**kwargs):
    args = dict(
        players=2,
        min_player_level=1,
        max_player_level=2,
        min_food_level=1,
        max_food_level=None,
        field_size=(8, 8),
        max_num_food=2,
        sight=8,
        max_episode_steps=50,
        force_coop=False,
    )
    args.update(kwargs)
    env = lbf_ref.ForagingEnv(**args)
    # The reference resolves loads in the order a Python set pops its Player objects (memory
    # addresses); genmarl resolves them in agent order. Hashing players by index pins the
    # reference's set order to agent order (small-int hashes pop in ascending order).
    for i, p in enumerate(env.players):
        p._index = i
    return env, args


def _hash_by_index(monkeypatch):
    monkeypatch.setattr(lbf_ref.Player, "__hash__", lambda self: getattr(self, "_index", id(self)), raising=False)


def _genmarl_kwargs(args):
    out = dict(args)
    out["field_size"] = tuple(args["field_size"])
    return out


def _ref_mask(env):
    return np.array([[a in env._valid_actions[p] for a in lbf_ref.Action] for p in env.players])


def _run_episode(args, seed, valid_bias=0.8):
    ref, _ = _reference(**args)
    obs_ref, _ = ref.reset(seed=seed)
    venv = genmarl.make("lbf", num_envs=1, seed=seed, **_genmarl_kwargs({**_reference(**args)[1]}))
    venv.reset(seed=seed)
    sync_from_reference(venv, 0, ref)
    obs = venv.observe_grouped()["agent"][0]
    np.testing.assert_array_equal(obs, np.stack(obs_ref), err_msg="reset obs")
    np.testing.assert_array_equal(venv.action_masks()["agent"][0], _ref_mask(ref), err_msg="reset mask")
    rng = np.random.default_rng(seed + 7)
    steps = 0
    total_ref = np.zeros(len(ref.players))
    while True:
        mask = _ref_mask(ref)
        actions = []
        for i in range(len(ref.players)):
            if rng.random() < valid_bias:
                actions.append(int(rng.choice(np.flatnonzero(mask[i]))))
            else:
                actions.append(int(rng.integers(6)))  # may be invalid: both treat it as NONE
        o_ref, r_ref, done_ref, trunc_ref, _ = ref.step(actions)
        assert trunc_ref is False  # the reference never truncates
        o, r, te, tr, infos = venv.step_grouped({"agent": np.array([actions])})
        steps += 1
        total_ref += np.asarray(r_ref, dtype=np.float64)
        done = bool(infos["done"][0])
        got = infos["final_obs"]["agent"][0] if done else o["agent"][0]
        np.testing.assert_array_equal(got, np.stack(o_ref), err_msg=f"step {steps} obs")
        np.testing.assert_allclose(r["agent"][0], np.asarray(r_ref, np.float32), rtol=0, atol=0, err_msg=f"step {steps} reward")
        assert done == bool(done_ref), f"step {steps}: done {done} vs reference {done_ref}"
        food_left = ref.field.sum() > 0
        # The reference's done covers both ends; genmarl splits them (see docs/environments.md).
        assert bool(te["agent"][0, 0]) == (done_ref and not food_left)
        assert bool(tr["agent"][0, 0]) == (steps >= args.get("max_episode_steps", 50))
        if done:
            np.testing.assert_allclose(infos["episode_return"]["agent"][0], total_ref.astype(np.float32), rtol=1e-6)
            assert infos["metrics"]["food_collected"][0] == pytest.approx(1.0 - ref.field.sum() / ref._food_spawned)
            return steps
        np.testing.assert_array_equal(infos["action_mask"]["agent"][0], _ref_mask(ref), err_msg=f"step {steps} mask")


CONFIGS = [
    {},
    {"force_coop": True},
    {"players": 3, "field_size": (10, 10), "max_num_food": 3},
    {"players": 4, "field_size": (15, 15), "max_num_food": 4, "sight": 2},
    {"players": 3, "field_size": (6, 9), "max_num_food": 2, "sight": 1, "max_episode_steps": 30},
    {"players": 2, "field_size": (5, 5), "max_num_food": 1, "force_coop": True, "penalty": 0.1},
    {"players": 5, "field_size": (7, 7), "max_num_food": 3, "normalize_reward": False, "max_player_level": 3},
    {"players": 3, "field_size": (8, 8), "max_num_food": 3, "observe_agent_levels": False, "sight": 3},
    {"players": 6, "field_size": (6, 6), "max_num_food": 2, "max_food_level": 2, "min_food_level": 2, "penalty": 0.25},
    # the reference's per-player and per-food level lists
    {"players": 3, "min_player_level": [1, 2, 3], "max_player_level": [2, 2, 4], "max_num_food": 2,
     "min_food_level": [1, 2], "max_food_level": [3, 6]},
    {"players": 2, "min_player_level": [1, 3], "max_player_level": [1, 3], "force_coop": True, "max_num_food": 3,
     "field_size": (9, 9), "min_food_level": [1, 1, 2]},
]


@pytest.mark.parametrize("config", CONFIGS, ids=[str(i) for i in range(len(CONFIGS))])
def test_parity_with_lbforaging(config, monkeypatch):
    _hash_by_index(monkeypatch)
    steps = 0
    for seed in range(12):
        steps += _run_episode(config, seed)
    assert steps >= 12


def test_parity_covers_loads_and_all_food_eaten(monkeypatch):
    """Small crowded fields load often: check that episodes end by eating all food too."""
    _hash_by_index(monkeypatch)
    ended_early = 0
    for seed in range(30):
        steps = _run_episode({"players": 4, "field_size": (5, 5), "max_num_food": 2, "max_episode_steps": 80}, seed, 0.95)
        ended_early += steps < 80
    assert ended_early > 0


def test_grid_observation_matches_reference_layers(monkeypatch):
    """The reference builds grid observations but its observation space is broken with current
    gymnasium (Box shape (3,) for (3, h, w) bounds), so its layer code is called directly."""
    _hash_by_index(monkeypatch)
    for sight, size, seed in [(1, (6, 6), 0), (2, (8, 8), 1), (3, (7, 9), 2), (5, (8, 8), 3)]:
        ref, args = _reference(players=3, field_size=size, max_num_food=3, sight=sight)
        ref.reset(seed=seed)
        ref._grid_observation = True
        g = 2 * sight + 1
        space = gym.spaces.Box(-np.inf, np.inf, (3, g, g), np.float32)
        ref.observation_space = gym.spaces.Tuple([space] * 3)
        venv = genmarl.make("lbf", seed=seed, **{**_genmarl_kwargs(args), "grid_observation": True})
        sync_from_reference(venv, 0, ref)
        rng = np.random.default_rng(seed)
        for step in range(20):
            np.testing.assert_array_equal(venv.observe_grouped()["agent"][0], np.stack(ref._make_gym_obs()), err_msg=f"step {step}")
            actions = [int(rng.choice(np.flatnonzero(m))) for m in _ref_mask(ref)]
            ref.step(actions)
            _, _, _, _, infos = venv.step_grouped({"agent": np.array([actions])})
            if infos["done"][0]:
                break


@pytest.mark.parametrize(
    "env_id",
    [
        "Foraging-8x8-2p-2f-coop-v3",
        "Foraging-10x10-3p-3f-v3",
        "Foraging-2s-15x15-4p-4f-v3",
        "Foraging-5x5-9p-1f-coop-v3",
        "Foraging-19x19-2p-4f-v3",
    ],
)
def test_registered_ids_are_aliases(env_id):
    ref = gym.make(env_id).unwrapped
    venv = genmarl.make(env_id)
    assert venv.scenario == "lbf" and venv.name == env_id
    state = venv.get_state()
    assert state["field"].shape[1:] == ref.field.shape
    assert state["pos"].shape[1] == len(ref.players)
    assert venv.max_cycles == ref._max_episode_steps
    assert venv.observation_space("agent_0") == ref.observation_space[0]
    assert venv.action_space("agent_0") == ref.action_space[0]
    # arguments override the alias's
    assert genmarl.make(env_id, max_episode_steps=7).max_cycles == 7


def test_grid_ids_after_register_grid_envs():
    venv = genmarl.make("Foraging-grid-2s-8x8-3p-2f-coop-v3")
    assert venv.observation_space("agent_0").shape == (3, 5, 5)
    assert genmarl.make("Foraging-grid-8x8-2p-1f-v3").observation_space("agent_0").shape == (3, 17, 17)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"players": 10, "field_size": 3}, "players"),
        ({"players": 0}, "players"),
        ({"field_size": (2, 8)}, "field_size"),
        ({"field_size": (8, 8, 8)}, "field_size"),
        ({"max_num_food": 0}, "max_num_food"),
        ({"max_num_food": 10, "field_size": 4}, "max_num_food"),
        ({"min_player_level": 3, "max_player_level": 2}, "player levels"),
        ({"max_player_level": 2**20 + 1}, "player levels"),
        ({"min_food_level": 3, "max_food_level": 2}, "max_food_level"),
        ({"players": 3, "min_player_level": [1, 2]}, "one per player"),
        ({"players": 2, "max_player_level": [2, 2, 2]}, "one per player"),
        ({"players": 2, "min_player_level": [1, 3], "max_player_level": [2, 2]}, "player levels"),
        ({"max_num_food": 2, "min_food_level": [1, 2, 3]}, "one per food item"),
        ({"max_num_food": 2, "max_food_level": [4]}, None),  # one value for every item: fine
        ({"max_num_food": 2, "min_food_level": [1, 3], "max_food_level": [2, 2]}, "max_food_level"),
        ({"max_num_food": 2, "min_food_level": [0, 1]}, "min_food_level"),
        ({"sight": 0, "grid_observation": True}, "sight"),
        ({"max_episode_steps": 0}, "max_episode_steps"),
        ({"penalty": float("nan")}, "penalty"),
    ],
)
def test_impossible_configurations_raise(kwargs, match):
    if match is None:
        genmarl.make("lbf", **kwargs)
        return
    with pytest.raises(ValueError, match=match):
        genmarl.make("lbf", **kwargs)


LEVEL_LISTS = [
    {"players": 3, "min_player_level": [1, 2, 3], "max_player_level": [2, 2, 4], "max_num_food": 2,
     "min_food_level": [1, 2], "max_food_level": [3, 6]},
    {"players": 2, "min_player_level": [1, 3], "max_player_level": [1, 3], "max_num_food": 3, "field_size": (9, 9),
     "min_food_level": [1, 1, 2]},
    {"players": 4, "max_player_level": [1, 5, 2, 2], "force_coop": True},
    {"players": 2, "max_player_level": [3, 1], "observe_agent_levels": False, "max_food_level": [7, 2]},
]


@pytest.mark.parametrize("config", LEVEL_LISTS, ids=[str(i) for i in range(len(LEVEL_LISTS))])
def test_level_lists_give_the_references_spaces_and_draws(config):
    """Per-player and per-food level ranges (the reference's lists): the observation space equals
    the reference's, and over many resets both libraries draw from the same outcomes (player
    levels, food levels) -- the ranges go to players and food items in a random order."""
    import itertools

    ref, args = _reference(**config)
    n, E = len(ref.players), 400
    venv = genmarl.make("lbf", num_envs=E, seed=1, **_genmarl_kwargs(args))
    assert venv.observation_space("agent_0") == ref.observation_space[0]
    state = venv.get_state()

    def outcome(levels, field):
        return tuple(int(x) for x in levels), tuple(sorted(int(x) for x in field[field > 0]))

    ours = {outcome(state["level"][e], state["field"][e]) for e in range(E)}
    theirs = set()
    for seed in range(E):
        ref.reset(seed=seed)
        theirs.add(outcome([p.level for p in ref.players], ref.field))
    assert len(ours & theirs) >= 0.5 * max(len(ours), len(theirs)), (sorted(ours), sorted(theirs))
    lo = np.broadcast_to(np.asarray(args["min_player_level"]), (n,))
    hi = np.broadcast_to(np.asarray(args["max_player_level"]), (n,))
    for levels, _ in ours:  # some assignment of the ranges to the players holds every level
        assert any(all(lo[j] <= levels[i] <= hi[j] for i, j in enumerate(perm)) for perm in itertools.permutations(range(n)))


def test_level_lists_round_trip_through_resolved_params():
    venv = genmarl.make("lbf", players=2, min_player_level=[1, 2], max_player_level=3, max_food_level=None)
    params = venv.resolved_params()
    assert params["min_player_level"] == (1, 2) and params["max_player_level"] == (3,)  # one value stands for all
    assert params["max_food_level"] is None and params["min_food_level"] == (1,)
    again = genmarl.make("lbf", **params)
    assert again.resolved_params() == params
    assert genmarl.make("lbf", max_num_food=2, max_food_level=[3, 4]).resolved_params()["max_food_level"] == (3, 4)
    with pytest.raises(TypeError, match="list of ints or None"):
        genmarl.make("lbf", max_food_level=[1.5, 2])
    grid = genmarl.make("lbf", players=3, max_player_level=[1, 5, 2], grid_observation=True, sight=2)
    high = grid.observation_space("agent_0").high
    assert high[0].max() == 5 and high[1].max() == 1 + 2 + 5  # agent levels; the sum of the three max levels


def test_bad_ids_and_arguments_raise():
    with pytest.raises(ValueError, match="unknown environment"):
        genmarl.make("Foraging-4x4-2p-2f-v3")  # the reference registers sizes 5..19 only
    with pytest.raises(ValueError, match="unknown environment"):
        genmarl.make("Foraging-8x8-2p-2f-coop-v2")
    with pytest.raises(TypeError, match="field_size"):
        genmarl.make("lbf", field_size="8x8")
    with pytest.raises(TypeError, match="continuous_actions"):
        genmarl.make("lbf", continuous_actions=True)


def test_invalid_actions_and_masks_raise():
    venv = genmarl.make("lbf", num_envs=2)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected an integer in \[0, 6\)"):
        venv.step_grouped({"agent": np.array([[0, 6], [0, 0]])})
    with pytest.raises(ValueError, match="shape"):
        venv.step_grouped({"agent": np.zeros((2, 3), np.int64)})
    with pytest.raises(ValueError, match="action_mask"):
        venv.sample_actions(grouped=True, action_mask={"agent": np.ones((2, 2, 5), bool)})


def test_state_validation():
    venv = genmarl.make("lbf", num_envs=1)
    venv.reset(seed=0)
    good = venv.get_state()
    state = {k: v.copy() for k, v in good.items()}
    state["pos"][0, 1] = (8, 0)
    with pytest.raises(ValueError, match="on the grid"):
        venv.set_state(state)
    state = {k: v.copy() for k, v in good.items()}
    r, c = np.argwhere(state["field"][0] > 0)[0]
    state["pos"][0, 0] = (r, c)
    with pytest.raises(ValueError, match="on food"):
        venv.set_state(state)
    np.testing.assert_array_equal(venv.get_state()["pos"], good["pos"])  # unchanged after errors


@pytest.mark.parametrize("threads", [2, 3])
def test_same_trajectories_for_any_thread_count(threads):
    def run(num_threads):
        venv = genmarl.make("Foraging-10x10-3p-3f-v3", num_envs=64, num_threads=num_threads, seed=5)
        obs, infos = venv.reset_grouped(seed=5)
        rng = np.random.default_rng(1)
        out = [obs["agent"]]
        for _ in range(120):
            obs, rew, term, trunc, infos = venv.step_grouped(venv.sample_actions(rng, True, infos["action_mask"]))
            out += [obs["agent"], rew["agent"], term["agent"], trunc["agent"], infos["action_mask"]["agent"]]
        return out

    for a, b in zip(run(1), run(threads)):
        np.testing.assert_array_equal(a, b)


def test_masked_sampling_only_picks_valid_actions():
    venv = genmarl.make("lbf", num_envs=256, players=3, field_size=6, max_num_food=3)
    _, infos = venv.reset_grouped(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(60):
        actions = venv.sample_actions(rng, grouped=True, action_mask=infos["action_mask"])
        mask = infos["action_mask"]["agent"]
        assert np.take_along_axis(mask, actions["agent"][..., None], -1).all()
        _, _, _, _, infos = venv.step_grouped(actions)


def _check_moves(before, actions, after):
    """The move rule (all actions here are valid): a player moves to its target iff no other
    player claims that cell (staying players claim their own)."""
    delta = {0: (0, 0), 1: (-1, 0), 2: (1, 0), 3: (0, -1), 4: (0, 1), 5: (0, 0)}
    targets = [tuple(p + delta[int(a)]) for p, a in zip(before, actions)]
    for i, t in enumerate(targets):
        expected = t if targets.count(t) == 1 else tuple(before[i])
        assert tuple(after[i]) == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.integers(3, 12),
    cols=st.integers(3, 12),
    players=st.integers(1, 6),
    food=st.integers(1, 5),
    sight=st.integers(0, 6),
    max_level=st.integers(1, 4),
    coop=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_generated_configurations_keep_the_rules(rows, cols, players, food, sight, max_level, coop, seed):
    players = min(players, rows * cols)
    food = min(food, (rows - 2) * (cols - 2))
    venv = genmarl.make(
        "lbf", num_envs=4, seed=seed, field_size=(rows, cols), players=players, max_num_food=food, sight=sight,
        max_player_level=max_level, force_coop=coop, max_episode_steps=25,
    )
    _, infos = venv.reset_grouped(seed=seed)
    rng = np.random.default_rng(seed % 1000)
    returns = np.zeros((4, players))
    state = venv.get_state()
    for _ in range(40):
        for e in range(4):
            pos, field = state["pos"][e], state["field"][e]
            assert all(field[r, c] == 0 for r, c in pos)  # never on food
            assert (field[0] == 0).all() and (field[-1] == 0).all() and (field[:, 0] == 0).all() and (field[:, -1] == 0).all()
            assert infos["action_mask"]["agent"][e, :, 0].all()  # NONE is always valid
        actions = venv.sample_actions(rng, True, infos["action_mask"])
        _, rew, term, trunc, infos = venv.step_grouped(actions)
        after = venv.get_state()
        for e in np.flatnonzero(~infos["done"]):
            _check_moves(state["pos"][e], actions["agent"][e], after["pos"][e])
        state = after
        assert (rew["agent"] >= 0).all()  # no penalty configured
        returns += rew["agent"]
        done = infos["done"]
        if done.any():
            # normalised rewards of an episode sum to the share of food collected, at most 1
            total = returns[done].sum(-1)
            np.testing.assert_allclose(total, infos["metrics"]["food_collected"][done], atol=1e-5)
            returns[done] = 0
        assert (term["agent"].all(-1) | ~term["agent"].any(-1)).all()


def test_render_frame():
    venv = genmarl.make("lbf", field_size=(6, 7), render_mode="rgb_array")
    venv.reset(seed=0)
    frame = venv.render()
    assert frame.shape == (6 * 40, 7 * 40, 3) and frame.dtype == np.uint8
    assert (frame == (40, 80, 200)).all(-1).any()  # players drawn
