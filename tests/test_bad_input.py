"""Bad actions raise clear Python exceptions, never crash, and leave the env unchanged."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import genmarl


def good_actions(env):
    return env.sample_actions(np.random.default_rng(0))


CASES = [
    # (name, continuous, mutate(actions, env), exception, message)
    ("simple_spread", False, lambda a, e: a.pop("agent_1"), KeyError, "missing agents \\['agent_1'\\]"),
    ("simple_spread", False, lambda a, e: a.__setitem__("agent_9", a["agent_0"]), KeyError, "unknown agents \\['agent_9'\\]"),
    ("simple_spread", False, lambda a, e: a.__setitem__("agent_0", a["agent_0"][:1]), ValueError, "must have shape \\(3,\\), got \\(1,\\)"),
    ("simple_spread", False, lambda a, e: a.__setitem__("agent_0", a["agent_0"].reshape(3, 1)), ValueError, "must have shape"),
    ("simple_spread", False, lambda a, e: a.__setitem__("agent_0", a["agent_0"].astype(np.float32)), TypeError, "must be an integer array"),
    ("simple_spread", False, lambda a, e: a.__setitem__("agent_0", np.array([0, 5, 1])), ValueError, "is 5; expected an integer in \\[0, 5\\)"),
    ("simple_spread", False, lambda a, e: a.__setitem__("agent_2", np.array([0, -1, 1])), ValueError, "is -1; expected"),
    ("simple_spread", False, lambda a, e: a.__setitem__("agent_0", np.array(["a", "b", "c"])), TypeError, "integer array"),
    ("simple_spread", False, lambda a, e: a.__setitem__("agent_0", object()), ValueError, "must have shape \\(3,\\), got \\(\\)"),
    ("simple_spread", True, lambda a, e: a["agent_0"].__setitem__((1, 2), np.nan), ValueError, "not finite"),
    ("simple_spread", True, lambda a, e: a["agent_1"].__setitem__((0, 0), np.inf), ValueError, "not finite"),
    ("simple_spread", True, lambda a, e: a.__setitem__("agent_0", np.zeros((3, 4), np.float32)), ValueError, "must have shape \\(3, 5\\)"),
    ("simple_spread", True, lambda a, e: a.__setitem__("agent_0", np.zeros((3, 5), np.int64)), TypeError, "must be a float array"),
]


@pytest.mark.parametrize(("name", "continuous", "mutate", "exc", "match"), CASES)
def test_bad_actions_raise_and_leave_env_unchanged(name, continuous, mutate, exc, match):
    env = genmarl.make(name, num_envs=3, continuous_actions=continuous)
    env.reset(seed=0)
    before = env.get_state()
    actions = good_actions(env)
    mutate(actions, env)
    with pytest.raises(exc, match=match):
        env.step(actions)
    after = env.get_state()
    for k in before:
        assert np.array_equal(before[k], after[k], equal_nan=True), k
    env.step(good_actions(env))  # still usable


def test_actions_not_a_dict():
    env = genmarl.make("simple_spread")
    env.reset()
    with pytest.raises(TypeError, match="dict keyed by agent name"):
        env.step([0, 0, 0])
    with pytest.raises(TypeError, match="dict keyed by group name"):
        env.step_grouped(np.zeros((1, 3)))


def test_bad_grouped_actions():
    env = genmarl.make("simple_tag", num_envs=2)
    env.reset()
    acts = env.sample_actions(np.random.default_rng(0), grouped=True)
    acts["adversary"] = acts["adversary"][:, :2]
    with pytest.raises(ValueError, match="group 'adversary' must have shape \\(2, 3\\)"):
        env.step_grouped(acts)


def test_out_of_range_continuous_actions_are_clipped_like_mpe2():
    a = genmarl.make("simple", continuous_actions=True)
    b = genmarl.make("simple", continuous_actions=True)
    a.reset(seed=0)
    b.reset(seed=0)
    oa = a.step({"agent_0": np.array([[0.2, 3.0, -2.0, 0.5, 7.0]], np.float32)})[0]
    ob = b.step({"agent_0": np.array([[0.2, 1.0, 0.0, 0.5, 1.0]], np.float32)})[0]
    np.testing.assert_array_equal(oa["agent_0"], ob["agent_0"])


def test_bad_input_never_crashes_the_process():
    """Every bad call in a fresh interpreter: the process must survive and report OK."""
    script = textwrap.dedent(
        """
        import numpy as np, genmarl
        bad = calls = 0
        def expect(fn):
            global bad, calls
            calls += 1
            try:
                fn()
            except (ValueError, TypeError, KeyError, IndexError, RuntimeError):
                bad += 1
        for name in genmarl.list_envs():
            for cont in (False, True):
                env = genmarl.make(name, num_envs=2, continuous_actions=cont)
                env.reset(seed=0)
                acts = env.sample_actions(np.random.default_rng(0))
                a0 = env.possible_agents[0]
                for junk in (None, 1.5, "x", np.zeros(0), np.zeros((2, 99)), np.full((2, 5), np.nan),
                             np.full(2, 10**12), np.full(2, -7), np.zeros((2, 5), np.complex64), [[1, 2], [3]]):
                    a = dict(acts); a[a0] = junk
                    expect(lambda: env.step(a))
                expect(lambda: env.step({}))
                expect(lambda: env.set_state({}))
                expect(lambda: env.set_state({k: v[:1] for k, v in env.get_state().items()}))
                expect(lambda: env.set_state({k: np.zeros(3) for k in env.get_state()}))
                env.step(env.sample_actions(np.random.default_rng(1)))
        for kw in ({"num_envs": 0}, {"num_envs": -1}, {"num_threads": 0}, {"seed": -1}, {"bogus": 1}):
            expect(lambda: genmarl.make("simple_spread", **kw))
        print("OK", bad, calls)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("OK")
    _, raised, calls = proc.stdout.split()
    assert raised == calls  # every bad call raised a Python exception
