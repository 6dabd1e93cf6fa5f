"""genmarl.torchrl.GenmarlEnv: a batched TorchRL EnvBase over the grouped API (VMAS's layout),
checked with TorchRL's check_env_specs and against the VectorEnv it wraps."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchrl")
from tensordict import TensorDict  # noqa: E402
from torchrl.envs.utils import check_env_specs  # noqa: E402

import genmarl  # noqa: E402
from genmarl.torchrl import GenmarlEnv  # noqa: E402

CASES = [
    ("simple_spread", {}),
    ("simple_spread", {"continuous_actions": True}),
    ("simple_tag", {}),
    ("simple_speaker_listener", {}),
    ("Foraging-8x8-2p-2f-coop-v3", {}),
    ("rware-tiny-2ag-v2", {"max_steps": 40}),
]


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_check_env_specs_and_rollout(name, kwargs):
    env = GenmarlEnv(name, num_envs=4, seed=0, **kwargs)
    check_env_specs(env)
    ref = genmarl.make(name, num_envs=4, **kwargs)
    assert list(env.group_map) == ref.groups
    for g in ref.groups:
        n = len(ref.group_agents[g])
        assert env.observation_spec[g, "observation"].shape == (4, n, *ref.observation_space(ref.group_agents[g][0]).shape)
        assert env.full_reward_spec[g, "reward"].shape == (4, n, 1)
        assert env.full_done_spec[g, "truncated"].shape == (4, n, 1)
        assert (g, "action_mask") in env.observation_spec.keys(True) if g in ref.action_mask_groups else True
    assert env.full_done_spec["done"].shape == (4, 1)
    r = env.rollout(60, break_when_any_done=False)
    assert r.batch_size == (4, 60)
    assert r["next", "done"].any()


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_skipping_torchrls_post_step_pass_changes_nothing(name, kwargs):
    """GenmarlEnv skips EnvBase._step_proc_data (reward reshape, done completion) unless type checks
    are on: every step's output equals the one TorchRL's pass produces, entry by entry, with types."""
    from torchrl.envs import EnvBase

    env = GenmarlEnv(name, num_envs=3, seed=2, **kwargs)
    td = env.reset()
    for _ in range(30):
        td = env.rand_action(td)
        lean = env._step(td)
        full = EnvBase._step_proc_data(env, lean.clone())
        out = env._step_proc_data(lean.clone())
        assert set(out.keys(True, True)) == set(full.keys(True, True))
        for k in full.keys(True, True):
            assert out[k].dtype == full[k].dtype and out[k].shape == full[k].shape, k
            assert torch.equal(out[k], full[k]), k
        td = env.step_mdp(td.set("next", lean))
        if lean["done"].any():
            td = env.reset(td.set("_reset", lean["done"].clone()))
    env.run_type_checks = True  # then TorchRL's pass runs, with its type checks
    td = env.rand_action(env.reset())
    env.step(td)


def test_rollout_matches_the_vector_env_with_final_observations():
    E, T = 3, 30
    env = GenmarlEnv("simple_spread", num_envs=E, seed=5, max_cycles=7)
    ref = genmarl.make("simple_spread", num_envs=E, seed=5, max_cycles=7)
    obs, _ = ref.reset_grouped(seed=5)
    gen = torch.Generator().manual_seed(0)
    actions = torch.randint(0, 5, (T, E, 3), generator=gen)
    td = env.reset()
    np.testing.assert_array_equal(td["agent", "observation"].numpy(), obs["agent"])
    ends = 0
    for t in range(T):
        td["agent", "action"] = actions[t]
        out, td = env.step_and_maybe_reset(td)
        nxt, rew, term, trunc, infos = ref.step_grouped({"agent": actions[t].numpy()})
        done = infos["done"]
        np.testing.assert_array_equal(out["next", "agent", "reward"].squeeze(-1).numpy(), rew["agent"])
        np.testing.assert_array_equal(out["next", "done"].squeeze(-1).numpy(), done)
        np.testing.assert_array_equal(out["next", "agent", "truncated"].squeeze(-1).numpy(), trunc["agent"])
        # "next" shows the finished episodes' final observation ...
        want = np.where(done[:, None, None], infos["final_obs"]["agent"], nxt["agent"]) if done.any() else nxt["agent"]
        np.testing.assert_array_equal(out["next", "agent", "observation"].numpy(), want)
        # ... and the reset that follows starts from the episode genmarl already began
        np.testing.assert_array_equal(td["agent", "observation"].numpy(), nxt["agent"])
        ends += int(done.sum())
    assert ends == E * (T // 7)


@pytest.mark.filterwarnings("ignore:Creating .*WeightUpdater which inherits:DeprecationWarning")  # inside TorchRL's collector
def test_collector_and_seeding():
    import torchrl.collectors

    collector_cls = getattr(torchrl.collectors, "Collector", None) or torchrl.collectors.SyncDataCollector  # renamed in 0.14

    env = GenmarlEnv("Foraging-8x8-2p-2f-coop-v3", num_envs=8, seed=1)

    def policy(td):  # a valid random action under the env's masks
        mask = td["agent", "action_mask"]
        td["agent", "action"] = torch.where(mask, torch.rand(mask.shape), -1.0).argmax(-1)
        return td

    collector = collector_cls(env, policy, frames_per_batch=8 * 60, total_frames=8 * 120)
    batches = list(collector)
    assert len(batches) == 2 and batches[0].numel() == 8 * 60
    taken = batches[0]["agent", "action"]
    mask = batches[0]["agent", "action_mask"]
    assert mask.gather(-1, taken.unsqueeze(-1)).all()  # only valid actions were taken
    collector.shutdown()

    a, b = GenmarlEnv("simple_spread", num_envs=2), GenmarlEnv("simple_spread", num_envs=2)
    a.set_seed(7)
    b.set_seed(7)
    torch.manual_seed(0)
    ra = a.rollout(10)
    torch.manual_seed(0)
    rb = b.rollout(10)
    assert (ra["agent", "observation"] == rb["agent", "observation"]).all()


def test_partial_reset_of_a_running_env_is_refused():
    env = GenmarlEnv("simple_spread", num_envs=2, seed=0)
    td = env.reset()
    td["agent", "action"] = torch.zeros(2, 3, dtype=torch.long)
    env.step(td)
    reset = TensorDict({"_reset": torch.tensor([[True], [False]])}, batch_size=[2])
    with pytest.raises(RuntimeError, match="has not ended"):
        env.reset(reset)
    assert env.reset()["agent", "observation"].shape == (2, 3, 18)  # a full reset always works
    with pytest.raises(ValueError, match="num_envs"):
        GenmarlEnv("simple_spread", num_envs=0)


FAST_CASES = [
    ("simple_tag", {"max_cycles": 9}),  # two groups, ends together
    ("Foraging-5x5-2p-1f-v3", {}),  # action masks, episodes end at different steps
    ("rware-tiny-2ag-v2", {"max_steps": 12}),
]


@pytest.mark.parametrize(("name", "kwargs"), FAST_CASES)
def test_one_pass_step_and_maybe_reset_equals_torchrls_generic_path(name, kwargs, monkeypatch):
    """GenmarlEnv's own step_and_maybe_reset builds the next root directly; TorchRL's generic path
    (step, step_mdp, partial reset merged in) must give the same two TensorDicts, entry by entry with
    dtypes and shapes, with the policy's extra entries (root and per group) carried alike."""
    from genmarl.torchrl import _GENERIC_STEP_AND_MAYBE_RESET as generic

    one_pass = []
    build = GenmarlEnv._one_pass
    monkeypatch.setattr(GenmarlEnv, "_one_pass", lambda self, entries: one_pass.append(1) or build(self, entries))
    E = 6
    fast, slow = GenmarlEnv(name, num_envs=E, seed=3, **kwargs), GenmarlEnv(name, num_envs=E, seed=3, **kwargs)
    td_f, td_s = fast.reset(), slow.reset()
    gen = torch.Generator().manual_seed(0)
    partial = whole = 0
    for step in range(40):
        action = slow.full_action_spec.rand()
        extra = torch.randn(E, 2, generator=gen)
        for td in (td_f, td_s):
            td.update(action.clone())
            td["policy_extra"] = extra.clone()
            for g in slow.group_map:
                td[g, "logits"] = torch.full((E, len(slow.group_map[g]), 3), float(step))
        out_f, td_f = fast.step_and_maybe_reset(td_f)
        out_s, td_s = generic(slow, td_s)
        for a, b in ((out_f, out_s), (td_f, td_s)):
            assert set(a.keys(True, True)) == set(b.keys(True, True))
            for k in b.keys(True, True):
                assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
                assert torch.equal(a[k], b[k]), (step, k)
            assert a.batch_size == b.batch_size and a.device == b.device
        # the next root holds the very tensors of "next" exactly where TorchRL's path leaves them shared
        for k in td_s.keys(True, True):
            nk = ("next", *k) if isinstance(k, tuple) else ("next", k)
            if nk in out_s.keys(True, True):
                assert (td_f[k] is out_f[nk]) == (td_s[k] is out_s[nk]), (step, k)
        done = out_s["next", "done"].squeeze(-1)
        partial += int(done.any() and not done.all())
        whole += int(done.all())
    assert len(one_pass) == 40  # the one pass ran at every step
    assert partial + whole > 0  # the reset path ran
    if name.startswith("Foraging"):
        assert partial > 0  # and with envs ending at different steps


def test_one_pass_step_falls_back_to_the_generic_path():
    """Inputs the one pass does not cover take TorchRL's path: a preset "next" entry that the step
    does not compute is kept, and with type checks on the step's output is checked against the specs."""
    env = GenmarlEnv("simple_spread", num_envs=2, seed=0)
    td = env.rand_action(env.reset())
    td["next", "extra"] = torch.full((2, 4), 7.0)
    out, _ = env.step_and_maybe_reset(td)
    assert (out["next", "extra"] == 7.0).all()  # TorchRL's rule for a preset "next"
    assert out["next", "agent", "observation"].shape == (2, 3, 18)
    env.run_type_checks = True
    out, _ = env.step_and_maybe_reset(env.rand_action(env.reset()))
    assert out["next", "agent", "reward"].shape == (2, 3, 1)


class WalkEnv:
    """A Python env registered with genmarl.register (the grouped interface only): two agents walk
    right (action 1) or stay (0, 2); an env's episode ends when both reach cell 3 or after 4 + e % 3
    steps (so envs end at different steps). Rewards come as float64 and actions as a MultiDiscrete
    space; finished episodes are reported under Gymnasium 0.29's "final_observation"."""

    def __init__(self, num_envs, num_threads=None, seed=0):
        from gymnasium import spaces

        self.num_envs, self.groups = num_envs, ["walker"]
        self._obs_space, self._act_space = spaces.Box(0.0, 3.0, (2, 1), np.float32), spaces.MultiDiscrete([3, 3])
        self.pos = np.zeros((num_envs, 2))
        self.t = np.zeros(num_envs, np.int64)
        self.limit = 4 + np.arange(num_envs) % 3

    def group_observation_space(self, g):
        return self._obs_space

    def group_action_space(self, g):
        return self._act_space

    def sample_actions(self, rng, grouped=True, action_mask=None):
        return {"walker": rng.integers(0, 3, (self.num_envs, 2))}

    def _obs(self):
        return {"walker": self.pos[..., None].copy()}  # float64: GenmarlEnv casts to the space's dtype

    def reset_grouped(self, seed=None):
        self.pos[:] = 0
        self.t[:] = 0
        return self._obs(), {}

    def step_grouped(self, actions):
        a = np.asarray(actions["walker"])
        self.pos = np.minimum(self.pos + (a == 1), 3)
        self.t += 1
        term = (self.pos == 3).all(1)
        trunc = ~term & (self.t >= self.limit)
        done = term | trunc
        rew = np.repeat(term[:, None], 2, 1).astype(np.float64)
        infos = {"done": done}
        if done.any():
            infos["final_observation"] = self._obs()
            self.pos[done] = 0
            self.t[done] = 0
        return self._obs(), {"walker": rew}, {"walker": np.repeat(term[:, None], 2, 1)}, {"walker": np.repeat(trunc[:, None], 2, 1)}, infos


@pytest.fixture
def walk_env():
    genmarl.register("torchrl_walk", WalkEnv)
    yield "torchrl_walk"
    genmarl.unregister("torchrl_walk")


def test_python_registered_env(walk_env):
    """A Python env registered with genmarl.register works as a GenmarlEnv: specs from its grouped
    spaces, outputs cast to the specs' dtypes, final observations in "next", and the one-pass
    step_and_maybe_reset equal to TorchRL's generic path."""
    from genmarl.torchrl import _GENERIC_STEP_AND_MAYBE_RESET as generic

    env = GenmarlEnv(walk_env, num_envs=5, seed=0)
    check_env_specs(env)
    assert env.group_map == {"walker": ["walker_0", "walker_1"]}
    assert env.observation_spec["walker", "observation"].dtype == torch.float32
    fast, slow = GenmarlEnv(walk_env, num_envs=5), GenmarlEnv(walk_env, num_envs=5)
    td_f, td_s = fast.reset(), slow.reset()
    gen = torch.Generator().manual_seed(0)
    partial = 0
    for step in range(30):
        action = torch.randint(0, 3, (5, 2), generator=gen)
        for td in (td_f, td_s):
            td["walker", "action"] = action.clone()
        out_f, td_f = fast.step_and_maybe_reset(td_f)
        out_s, td_s = generic(slow, td_s)
        for a, b in ((out_f, out_s), (td_f, td_s)):
            assert set(a.keys(True, True)) == set(b.keys(True, True))
            for k in b.keys(True, True):
                assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and torch.equal(a[k], b[k]), (step, k)
        done = out_f["next", "done"].squeeze(-1)
        partial += int(done.any() and not done.all())
        # an episode ended by reaching cell 3 shows that final observation, not the next episode's 0
        term = out_f["next", "terminated"].squeeze(-1)
        assert (out_f["next", "walker", "observation"][term] == 3).all()
        assert (td_f["walker", "observation"][done] == 0).all()
    assert partial > 0


def test_python_env_with_bad_outputs_raises(walk_env):
    class Bad(WalkEnv):
        def step_grouped(self, actions):
            obs, rew, term, trunc, infos = super().step_grouped(actions)
            return obs, {"walker": rew["walker"][:, :1]}, term, trunc, infos

    genmarl.register("torchrl_bad", Bad)
    try:
        env = GenmarlEnv("torchrl_bad", num_envs=3)
        with pytest.raises(ValueError, match="rewards of group 'walker' have shape"):
            env.rollout(2)
    finally:
        genmarl.unregister("torchrl_bad")


class MaskedWalkEnv(WalkEnv):
    """WalkEnv with action masks given as 0/1 integers (walking right is refused at cell 3)."""

    action_mask_groups = ["walker"]

    def _masks(self):
        m = np.ones((self.num_envs, 2, 3), np.uint8)
        m[..., 1] = self.pos < 3
        return {"walker": m}

    def reset_grouped(self, seed=None):
        obs, infos = super().reset_grouped(seed)
        return obs, {"action_mask": self._masks()}

    def step_grouped(self, actions):
        out = super().step_grouped(actions)
        out[4]["action_mask"] = self._masks()
        return out


def test_python_env_action_masks_are_cast_and_checked():
    genmarl.register("torchrl_masked_walk", MaskedWalkEnv)
    try:
        env = GenmarlEnv("torchrl_masked_walk", num_envs=4)
        check_env_specs(env)
        td = env.reset()
        for _ in range(4):
            td["walker", "action"] = torch.ones(4, 2, dtype=torch.int64)
            out, td = env.step_and_maybe_reset(td)
            mask = td["walker", "action_mask"]
            assert mask.dtype == torch.bool and mask.shape == (4, 2, 3)
            assert torch.equal(mask[..., 1], td["walker", "observation"][..., 0] < 3)
    finally:
        genmarl.unregister("torchrl_masked_walk")
