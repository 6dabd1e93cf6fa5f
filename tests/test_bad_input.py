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
        for name in genmarl.list_envs("mpe"):
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


# ---- the command line: bad input gives one "genmarl: error:" line, exit code 2, no traceback ----

TINY_RUN = ["total_steps=64", "num_envs=8", "num_steps=8", "eval_every=0", "eval_episodes=1", "checkpoint_every=0",
            "update_epochs=1", "progress=false", "tensorboard=false"]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    pytest.importorskip("torch")
    from genmarl.cli import main

    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "--out", str(out), *TINY_RUN]) == 0
    return out


def _cli_case(name, tmp, run):
    """(argv, needles) of one bad command line; ``tmp`` is a scratch directory, ``run`` a finished run."""
    (tmp / "adir").mkdir()
    (tmp / "afile").write_text("x")
    (tmp / "kwargs5.toml").write_text("env_kwargs = 5\n")
    (tmp / "broken.toml").write_text("lr = = 3\n")
    (tmp / "readonly").mkdir(mode=0o555)
    out = ["--out", str(tmp / "new")]
    return {
        "config_is_a_directory": (["train", "--config", str(tmp / "adir"), *out], ["is a directory", "expected a TOML file"]),
        "config_missing": (["train", "--config", str(tmp / "nope.toml"), *out], ["does not exist", "expected a TOML file"]),
        "config_not_toml": (["train", "--config", str(tmp / "broken.toml"), *out], ["not valid TOML"]),
        "env_kwargs_not_a_table": (["train", "--config", str(tmp / "kwargs5.toml"), *out], ["env_kwargs", "must be a table", "int 5"]),
        "out_is_a_file": (["train", "--out", str(tmp / "afile"), *TINY_RUN], ["is an existing file", "expected a new or existing directory"]),
        "out_under_a_file": (["train", "--out", str(tmp / "afile" / "sub"), *TINY_RUN], ["cannot create the run directory", "writable"]),
        "out_in_read_only_dir": (["train", "--out", str(tmp / "readonly" / "run"), *TINY_RUN], ["cannot create the run directory", "writable"]),
        "out_in_proc": (["train", "--out", "/proc/genmarl_run", *TINY_RUN], ["cannot create the run directory", "writable"]),
        "out_empty": (["train", "--out", "", *TINY_RUN], ["must not be empty"]),
        "env_argument_bad": (["train", *out, "env_kwargs.N=abc", *TINY_RUN], ["'N' must be an int"]),
        "device_unknown": (["train", *out, "device=gpu", *TINY_RUN], ["device must be", "'gpu'"]),
        "device_cuda_absent": (["train", *out, "device=cuda", *TINY_RUN], ["device 'cuda' is not available", "device=cpu"]),
        "device_cuda_index_absent": (["train", *out, "device=cuda:99", *TINY_RUN], ["'cuda:99' is not available"]),
        "resume_with_settings": (["train", "--resume", str(run), "lr=1"], ["--resume", "takes no other settings", "lr=1"]),
        "resume_empty": (["train", "--resume", ""], ["must not be empty"]),
        "eval_zero_episodes": (["eval", str(run), "--episodes", "0"], ["--episodes", "positive"]),
        "eval_unknown_group": (["eval", str(run), "--policy", "nogroup=random"], ["nogroup", "groups are ['agent']"]),
        "eval_policy_without_kind": (["eval", str(run), "--policy", "agent"], ["GROUP=KIND"]),
        "eval_unknown_policy": (["eval", str(run), "--policy", "agent=magic"], ["'magic'", "'random'"]),
        "eval_not_a_run": (["eval", str(tmp / "afile")], ["not a run directory"]),
        "eval_gif_in_missing_dir": (["eval", str(run), "--gif", str(tmp / "no" / "x.gif")], ["--gif", "does not exist"]),
        "plot_into_missing_dir": (["plot", str(run), "-o", str(tmp / "no" / "c.png")], ["does not exist"]),
    }[name]


CLI_CASES = [
    "config_is_a_directory", "config_missing", "config_not_toml", "env_kwargs_not_a_table", "out_is_a_file",
    "out_under_a_file", "out_in_read_only_dir", "out_in_proc", "out_empty", "env_argument_bad", "device_unknown", "device_cuda_absent", "device_cuda_index_absent",
    "resume_with_settings", "resume_empty", "eval_zero_episodes", "eval_unknown_group", "eval_policy_without_kind",
    "eval_unknown_policy", "eval_not_a_run", "eval_gif_in_missing_dir", "plot_into_missing_dir",
]  # fmt: skip


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_bad_input_is_one_error_line(case, tiny_run, tmp_path):
    import os

    import torch

    if case.startswith("device_cuda") and torch.cuda.is_available():
        if case == "device_cuda_absent":
            pytest.skip("CUDA is available here")
    if case == "out_in_proc" and not os.path.isdir("/proc"):
        pytest.skip("no /proc")
    if case == "out_in_read_only_dir" and os.geteuid() == 0:
        pytest.skip("root writes into a 0555 directory (out_under_a_file and out_in_proc cover root)")
    argv, needles = _cli_case(case, tmp_path, tiny_run)
    proc = subprocess.run([sys.executable, "-m", "genmarl.cli", *argv], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "error:" in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr)
    assert not (tmp_path / "new").exists()  # nothing half-made
    assert sorted(p.name for p in tmp_path.iterdir() if p.name not in ("adir", "afile", "kwargs5.toml", "broken.toml", "readonly")) == []
