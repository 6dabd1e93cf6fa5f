"""genmarl export: AOTInductor packages of trained runs, run from Python and from C++ (genmarl::torch).

Trains three tiny runs (MAPPO, MAPPO with a GRU, the generative agent), exports each once, and
checks the packages against the learners they came from; the C++ half builds the test driver
``cpp/tests/torch_tool.cpp`` against the installed torch's libtorch (skipped without cmake/g++).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from genmarl.algos.config import GenRLConfig, PPOConfig  # noqa: E402
from genmarl.export import ExportError, ExportedWorldModel, _flatten, export, load, read_info  # noqa: E402
from genmarl.export.graphs import GenRLPolicyGraph, PPOPolicyGraph  # noqa: E402
from genmarl.training.runner import load_trained, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LBF_ID = "Foraging-8x8-2p-2f-coop-v3"
QUIET = dict(progress=False, tensorboard=False, eval_episodes=4)
GENRL_TINY = dict(
    num_envs=4, num_steps=5, total_steps=400, prefill_steps=40, replay_ratio=0.05, eval_every=200, checkpoint_every=200,
    batch_size=4, seq_len=4, horizon=3, deter_size=16, stoch_size=2, classes=4, hidden_size=16, ac_hidden_size=16,
    attention_heads=2, buffer_capacity=2000,
)  # fmt: skip


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """{kind: (run_dir, export_dir)} for mappo, gru (MAPPO with a GRU), genrl, cont (MAPPO on two
    groups with continuous actions) and lbf (MAPPO on Level-Based Foraging, with action masks)."""
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("export")
    configs = {
        "mappo": PPOConfig(env="simple_spread", total_steps=1600, num_envs=8, num_steps=25, seed=0, **QUIET),
        "gru": PPOConfig(env="simple_spread", total_steps=1600, num_envs=8, num_steps=25, use_gru=True, seed=1, **QUIET),
        # the world model's own reward head: the step graph's reward is what imagination scores with (the
        # default, rewards read from predicted observations, has its own test below)
        "genrl": GenRLConfig(env="simple_spread", seed=2, reward_from="latent", **QUIET, **GENRL_TINY),
        # two groups (adversary, agent) with continuous actions: group order and Gaussian means
        "cont": PPOConfig(env="simple_adversary", env_kwargs={"continuous_actions": True}, total_steps=1600, num_envs=8,
                          num_steps=25, seed=3, **QUIET),
        # an env that reports valid actions: the policy graph takes its masks (a registered id as the env name)
        "lbf": PPOConfig(env=LBF_ID, total_steps=1600, num_envs=8, num_steps=25, seed=4, **QUIET),
    }
    out = {}
    for kind, cfg in configs.items():
        run = base / f"run_{kind}"
        train(cfg, out=run)
        out[kind] = (run, export(run, base / f"export_{kind}"))
    return out


def _rollout_obs(run: Path, steps: int, num_envs: int = 5, seed: int = 11) -> tuple[list[dict[str, np.ndarray]], np.ndarray, list[dict[str, np.ndarray]]]:
    """Observations, reset flags and the learner's deterministic actions along ``steps`` steps
    (through at least one episode end: simple_spread's episodes last 25 steps)."""
    algo, _ = load_trained(run, num_envs=num_envs)
    algo.reset(seed=seed)
    obs, resets, actions = [], [], []
    o, reset = algo.obs, np.zeros(num_envs, bool)
    for _ in range(steps):
        a = algo.act(o, deterministic=True, reset=reset)
        obs.append({g: v.copy() for g, v in o.items()})
        resets.append(reset)
        actions.append(a)
        o, _, _, _, infos = algo.env.step_grouped(a)
        reset = infos["done"]
    return obs, np.stack(resets), actions


# ---- the export directory ------------------------------------------------------------------


def test_export_json_describes_the_packages(exported: dict[str, tuple[Path, Path]]) -> None:
    _, d = exported["genrl"]
    info = read_info(d)
    assert info["algo"] == "genrl" and info["env"] == "simple_spread" and info["device"] == "cpu"
    assert info["torch_version"] == torch.__version__
    assert info["groups"] == [{"name": "agent", "num_agents": 3, "obs_dim": 18, "action": {"type": "discrete", "n": 5, "low": 0.0, "high": 4.0}}]
    assert (d / "policy.pt2").is_file() and (d / "world_model.pt2").is_file()
    assert set(info["world_model"]["models"]) == {"filter", "actor", "step", "value", "behaviour"}
    names = [s["name"] for s in info["policy"]["inputs"]]
    assert names == ["obs/agent", "state/h", "reset", "noise/latent", "noise/action", "deterministic"]
    _, d = exported["mappo"]
    info = read_info(d)
    assert "world_model" not in info["files"] and not (d / "world_model.pt2").exists()
    assert [s["name"] for s in info["policy"]["outputs"]] == ["action/agent", "logits/agent"]
    assert [s["name"] for s in info["policy"]["inputs"]] == ["obs/agent", "reset", "noise/agent", "deterministic"]
    # masks come last, only for groups whose env reports valid actions
    info = read_info(exported["lbf"][1])
    assert info["env"] == LBF_ID
    assert [s for s in info["policy"]["inputs"] if s["name"] == "mask/agent"] == [{"name": "mask/agent", "dtype": "bool", "shape": [-1, 2, 6]}]
    assert info["policy"]["inputs"][-1]["name"] == "mask/agent"


def _assert_actions(got: np.ndarray, want: np.ndarray, msg: str) -> None:
    """Discrete actions equal; continuous ones (Gaussian means) to 1e-5."""
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape, want.dtype, want.shape)
    if want.dtype == np.float32:
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5, err_msg=msg)
    else:
        np.testing.assert_array_equal(got, want, err_msg=msg)


@pytest.mark.parametrize("kind", ["mappo", "gru", "genrl", "cont"])
def test_exported_policy_acts_as_the_run(exported: dict[str, tuple[Path, Path]], kind: str) -> None:
    """Deterministic actions equal the learner's over 30 steps (an episode end included)."""
    run, d = exported[kind]
    obs, resets, actions = _rollout_obs(run, 30)
    policy = load(d)
    for t in range(30):
        got = policy.act(obs[t], deterministic=True, reset=resets[t])
        assert list(got) == list(actions[t])
        for g, a in actions[t].items():
            _assert_actions(got[g], a, f"{kind} {g} step {t}")


@pytest.mark.parametrize("kind", ["mappo", "genrl"])
def test_package_equals_the_eager_graph_with_the_same_noise(exported: dict[str, tuple[Path, Path]], kind: str) -> None:
    """Stochastic actions: the compiled package and the traced module give the same draws and
    logits (atol 1e-5) for the same observations and noise."""
    run, d = exported[kind]
    algo, _ = load_trained(run, num_envs=64)
    graph = (GenRLPolicyGraph(algo) if kind == "genrl" else PPOPolicyGraph(algo)).eval()
    policy = load(d)
    rng = np.random.default_rng(0)
    B = 64
    obs = [torch.as_tensor(rng.normal(size=(B, 3, 18)).astype(np.float32))]
    state = [torch.as_tensor(rng.normal(size=(B, *s["shape"][1:])).astype(np.float32)) for s in policy.inputs if s["name"].startswith("state/")]
    noise = [torch.as_tensor(rng.random((B, *s["shape"][1:]), np.float32)) for s in policy.inputs if s["name"].startswith("noise/")]
    reset = torch.as_tensor(rng.random(B) < 0.5)
    det = torch.tensor(False)
    with torch.no_grad():
        want = list(_flatten(graph(obs, state, reset, noise, det)))
        got = list(_flatten(policy.model(obs, state, reset, noise, det)))
    for w, g, spec in zip(want, got, policy.outputs, strict=True):
        if w.dtype == torch.int64:
            assert torch.equal(w, g), spec["name"]
        else:
            torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5, msg=spec["name"])


def test_stochastic_actions_follow_the_policy(exported: dict[str, tuple[Path, Path]]) -> None:
    """Sampled actions of one observation repeated 20000 times match its softmax (3 sigma)."""
    _, d = exported["mappo"]
    policy = load(d, seed=5)
    B = 20000
    obs = {"agent": np.repeat(np.random.default_rng(1).normal(size=(1, 3, 18)).astype(np.float32), B, 0)}
    actions, logits = policy.act(obs, deterministic=False, return_logits=True)
    probs = torch.as_tensor(logits["agent"][0]).softmax(-1).numpy()  # [3, 5]
    for i in range(3):
        freq = np.bincount(actions["agent"][:, i], minlength=5) / B
        assert np.all(np.abs(freq - probs[i]) < 3 * np.sqrt(probs[i] * (1 - probs[i]) / B) + 1e-3), (freq, probs[i])


def _masked_rollout(run: Path, steps: int, num_envs: int = 6, seed: int = 5) -> tuple[list[dict[str, np.ndarray]], np.ndarray, list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]]:
    """Observations, reset flags, masks and the learner's stochastic-free (deterministic) actions along
    ``steps`` steps of an env with action masks. Each step's mask is the env's, with a random half of
    the valid actions also removed (where an agent keeps one), so that the masks decide many choices."""
    algo, _ = load_trained(run, num_envs=num_envs)
    algo.reset(seed=seed)
    rng = np.random.default_rng(seed)
    obs, resets, masks, actions = [], [], [], []
    o, reset, env_mask = algo.obs, np.zeros(num_envs, bool), algo.masks
    for _ in range(steps):
        m = {}
        for g, v in env_mask.items():
            cut = v & (rng.random(v.shape) < 0.5)
            m[g] = np.where(cut.any(-1, keepdims=True), cut, v)
        a = algo.act(o, deterministic=True, reset=reset, action_mask=m)
        obs.append({g: v.copy() for g, v in o.items()})
        resets.append(reset)
        masks.append(m)
        actions.append(a)
        o, _, _, _, infos = algo.env.step_grouped(a)
        reset, env_mask = infos["done"], infos["action_mask"]
    return obs, np.stack(resets), masks, actions


def test_exported_policy_respects_action_masks(exported: dict[str, tuple[Path, Path]]) -> None:
    """On LBF the package takes the env's masks: deterministic actions equal the learner's under the
    same masks (60 steps, masks narrowed at random), every action valid; stochastic draws never pick a
    masked action; without masks the same package picks masked ones (so the masks decide)."""
    run, d = exported["lbf"]
    obs, resets, masks, actions = _masked_rollout(run, 60)
    policy = load(d, seed=3)
    assert policy.mask_groups == ["agent"]
    for t in range(60):
        got = policy.act(obs[t], deterministic=True, reset=resets[t], action_mask=masks[t])
        np.testing.assert_array_equal(got["agent"], actions[t]["agent"], err_msg=f"step {t}")
        assert np.take_along_axis(masks[t]["agent"], got["agent"][..., None], -1).all()
    B = 4000
    o = {"agent": np.repeat(obs[5]["agent"][:1], B, 0)}
    m = np.repeat(masks[5]["agent"][:1], B, 0)
    sampled = load(d, seed=4).act(o, deterministic=False, action_mask={"agent": m})["agent"]
    assert np.take_along_axis(m, sampled[..., None], -1).all()
    free = load(d, seed=4).act(o, deterministic=False)["agent"]
    assert not np.take_along_axis(m, free[..., None], -1).all()


def test_exported_policy_mask_errors(exported: dict[str, tuple[Path, Path]]) -> None:
    policy = load(exported["lbf"][1])
    obs = {"agent": np.zeros((3, 2, policy._group["agent"]["obs_dim"]), np.float32)}
    with pytest.raises(ExportError, match=r"action_mask\['agent'\] must be a bool array of shape \(3, 2, 6\)"):
        policy.act(obs, action_mask={"agent": np.ones((3, 2, 5), bool)})
    with pytest.raises(ExportError, match="bool array"):
        policy.act(obs, action_mask={"agent": np.ones((3, 2, 6), np.int64)})
    with pytest.raises(ExportError, match="unknown groups"):
        policy.act(obs, action_mask={"adversary": np.ones((3, 2, 6), bool)})
    assert policy.act(obs, action_mask={})["agent"].shape == (3, 2)  # a group left out: every action valid


def test_genrl_policy_graph_masks_as_the_agent_does() -> None:
    """The generative agent's policy graph (eager) masks actions as GenerativeAgent.act does."""
    torch.set_num_threads(1)
    import genmarl
    from genmarl.generative.agent import GenerativeAgent

    cfg = GenRLConfig(env=LBF_ID, seed=6, **QUIET, **GENRL_TINY).validate()
    env = genmarl.make(LBF_ID, num_envs=6, seed=0)
    agent = GenerativeAgent(env, cfg)
    graph = GenRLPolicyGraph(agent).eval()
    assert [s.name for s in graph.input_specs()][-1] == "mask/agent"
    obs, infos = env.reset_grouped(seed=1)
    noise = [torch.rand(6, 2, cfg.stoch_size), torch.rand(6, 2)]

    def graph_actions(mask: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            a, _, _ = graph([torch.as_tensor(obs["agent"]).float()], [torch.zeros(6, 2, cfg.deter_size)], torch.ones(6, dtype=torch.bool),
                            noise, torch.tensor(True), [torch.as_tensor(mask)])  # fmt: skip
        return a[0].numpy()

    free = graph_actions(np.ones((6, 2, 6), bool))
    # the env's masks, less the action the policy would pick unmasked (where another stays valid)
    m = infos["action_mask"]["agent"].copy()
    drop = np.zeros_like(m)
    np.put_along_axis(drop, free[..., None], True, -1)
    m = np.where((m & ~drop).any(-1, keepdims=True), m & ~drop, m)
    got = graph_actions(m)
    want = agent.act(obs, deterministic=True, reset=np.ones(6, bool), action_mask={"agent": m})["agent"]
    np.testing.assert_array_equal(got, want)
    assert np.take_along_axis(m, got[..., None], -1).all()
    assert (got != free).sum() >= 6, (got, free)


def test_world_model_graphs_equal_the_agent(exported: dict[str, tuple[Path, Path]]) -> None:
    run, d = exported["genrl"]
    agent, _ = load_trained(run, num_envs=1)
    wm = agent.wm
    models = ExportedWorldModel(d)
    inputs = _wm_inputs(wm, B=7)
    want = _wm_reference(agent, inputs)
    got = _wm_python(models, inputs)
    for k in want:
        torch.testing.assert_close(got[k], want[k], atol=1e-5, rtol=1e-5, msg=k)


def _wm_inputs(wm, B: int):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(3)
    z_idx = torch.randint(wm.classes, (B, wm.num_agents, wm.stoch_size), generator=g)
    return {
        "obs/agent": torch.randn(B, 3, 18, generator=g),
        "h": torch.randn(B, wm.num_agents, wm.deter_size, generator=g),
        "reset": torch.tensor([True, False] * (B // 2) + [True] * (B % 2)),
        "z": torch.nn.functional.one_hot(z_idx, wm.classes).float().flatten(-2),
        "action": torch.randint(5, (B, wm.num_agents), generator=g),
    }


@torch.no_grad()
def _wm_reference(agent, x):  # type: ignore[no-untyped-def]
    wm = agent.wm
    h = torch.where(x["reset"][:, None, None], wm.initial_state(x["h"].shape[0]), x["h"])
    feat = torch.cat([h, x["z"]], -1)
    h_next = wm.transition(h, x["z"], wm.one_hot_actions(x["action"]))
    return {
        "h": h,
        "posterior": wm.posterior_logits(h, wm.embed({"agent": x["obs/agent"]})),
        "logits": agent.logits(feat, wm.others_probs(feat)),
        "h_next": h_next,
        "prior": wm.prior_logits(h_next),
        "reward": wm.reward(h_next),
        "cont": torch.sigmoid(wm.cont_logit(h_next)),
        "value": agent.values(feat, target=True),
        "behaviour": wm.behaviour_logits(feat).softmax(-1),
    }


@torch.no_grad()
def _wm_python(models, x):  # type: ignore[no-untyped-def]
    h, post = models.model("filter")([x["obs/agent"]], x["h"], x["reset"])
    step = models.model("step")(h, x["z"], x["action"])
    return {
        "h": h, "posterior": post, "logits": models.model("actor")(h, x["z"]), "h_next": step[0], "prior": step[1],
        "reward": step[2], "cont": step[3], "value": models.model("value")(h, x["z"]), "behaviour": models.model("behaviour")(h, x["z"]),
    }  # fmt: skip


# ---- bad input -------------------------------------------------------------------------------


def test_bad_export_directories_raise_export_error(exported: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    _, good = exported["mappo"]
    with pytest.raises(ExportError, match="not a directory"):
        load(tmp_path / "missing")
    with pytest.raises(ExportError, match="holds no export.json"):
        load(tmp_path)
    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    (bad / "export.json").write_text("{not json")
    with pytest.raises(ExportError, match="damaged"):
        load(bad)
    info = json.loads((good / "export.json").read_text())
    (bad / "export.json").write_text(json.dumps({**info, "format": 99}))
    with pytest.raises(ExportError, match="format 99"):
        load(bad)
    (bad / "export.json").write_text(json.dumps(info))
    (bad / "policy.pt2").write_bytes(b"garbage" * 100)
    with pytest.raises(ExportError, match="cannot be loaded"):
        load(bad)
    (bad / "policy.pt2").write_bytes((good / "policy.pt2").read_bytes()[:50_000])
    with pytest.raises(ExportError, match="cannot be loaded"):
        load(bad)
    (bad / "policy.pt2").unlink()
    with pytest.raises(ExportError, match="missing"):
        load(bad)
    with pytest.raises(ExportError, match="only genrl exports"):
        ExportedWorldModel(good)


def test_bad_observations_raise_export_error(exported: dict[str, tuple[Path, Path]]) -> None:
    policy = load(exported["gru"][1])
    with pytest.raises(ExportError, match=r"shape \(batch, 3, 18\)"):
        policy.act({"agent": np.zeros((2, 3, 17), np.float32)})
    with pytest.raises(ExportError, match="float array"):
        policy.act({"agent": np.zeros((2, 3, 18), np.int64)})
    with pytest.raises(ExportError, match="agent groups"):
        policy.act({"adversary": np.zeros((2, 3, 18), np.float32)})
    with pytest.raises(ExportError, match="reset must be"):
        policy.act({"agent": np.zeros((2, 3, 18), np.float32)}, reset=np.zeros(3, bool))


def test_export_refuses_bad_targets(exported: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    run, _ = exported["mappo"]
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ExportError, match="not empty"):
        export(run, tmp_path / "full")
    with pytest.raises(ExportError, match="device must be"):
        export(run, tmp_path / "o", device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ExportError, match="needs a CUDA device"):
            export(run, tmp_path / "o", device="cuda")
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        export(tmp_path / "nothing", tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_cli_export_errors_are_one_line(exported: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "genmarl.cli", "export", str(tmp_path / "nope"), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2 and "not a run directory" in proc.stderr and "Traceback" not in proc.stderr


# ---- C++: genmarl::torch ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tool() -> Path:
    """Builds cpp/tests/torch_tool.cpp with genmarl::torch against this torch's libtorch."""
    if shutil.which("cmake") is None or shutil.which("g++") is None and shutil.which("c++") is None:
        pytest.skip("cmake and a C++ compiler are needed to build genmarl::torch")
    given = os.environ.get("GENMARL_TORCH_TOOL")
    if given:
        return Path(given)
    build = ROOT / "build" / "torch-tests"
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    cfg = ["cmake", "-S", str(ROOT), "-B", str(build), *gen, "-DCMAKE_BUILD_TYPE=Release", "-DGENMARL_WITH_TORCH=ON",
           "-DGENMARL_BUILD_TESTS=OFF", f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}"]  # fmt: skip
    for cmd in (cfg, ["cmake", "--build", str(build), "--target", "genmarl_torch_tool", "-j", "2"]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return build / "genmarl_torch_tool"


def _run_tool(tool: Path, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(tool), *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("kind", ["mappo", "gru", "genrl", "cont"])
def test_cpp_policy_acts_as_the_run(exported: dict[str, tuple[Path, Path]], tool: Path, tmp_path: Path, kind: str) -> None:
    """C++ Policy::act, deterministic, over 30 steps with resets: the learner's actions; logits equal
    the Python package's (atol 1e-5)."""
    run, d = exported[kind]
    obs, resets, actions = _rollout_obs(run, 30)
    groups = list(actions[0])
    inp = {f"obs/{g}": torch.as_tensor(np.stack([o[g] for o in obs])) for g in groups}
    inp.update({"reset": torch.as_tensor(resets), "deterministic": torch.tensor(True), "seed": torch.tensor(0)})
    torch.save(inp, tmp_path / "in.pt")
    proc = _run_tool(tool, "act", d, tmp_path / "in.pt", tmp_path / "out.pt")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = dict(torch.load(tmp_path / "out.pt", weights_only=True))
    policy = load(d)
    for g in groups:
        _assert_actions(out[f"action/{g}"].numpy(), np.stack([a[g] for a in actions]), f"{kind} {g}")
    for t in range(30):
        _, lg = policy.act(obs[t], deterministic=True, reset=resets[t], return_logits=True)
        for g in groups:
            np.testing.assert_allclose(out[f"logits/{g}"][t].numpy(), lg[g], atol=1e-5, rtol=1e-5)


def test_cpp_policy_respects_action_masks(exported: dict[str, tuple[Path, Path]], tool: Path, tmp_path: Path) -> None:
    """C++ Policy::act with masks: the learner's deterministic actions under the same masks; and
    Policy::act_in, stochastic, in the export's env (made from the registered id): the env's own
    masks reach the policy and no action is masked out."""
    run, d = exported["lbf"]
    obs, resets, masks, actions = _masked_rollout(run, 40)
    torch.save({"obs/agent": torch.as_tensor(np.stack([o["agent"] for o in obs])), "mask/agent": torch.as_tensor(np.stack([m["agent"] for m in masks])),
                "reset": torch.as_tensor(resets), "deterministic": torch.tensor(True), "seed": torch.tensor(0)}, tmp_path / "in.pt")  # fmt: skip
    proc = _run_tool(tool, "act", d, tmp_path / "in.pt", tmp_path / "out.pt")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = dict(torch.load(tmp_path / "out.pt", weights_only=True))
    np.testing.assert_array_equal(out["action/agent"].numpy(), np.stack([a["agent"] for a in actions]))
    proc = _run_tool(tool, "maskact", d, 60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fields = dict(kv.split("=") for kv in proc.stdout.split())
    assert fields["takes_mask"] == "1" and fields["invalid"] == "0" and int(fields["checked"]) == 60 * 16 * 2 and int(fields["masked_out"]) > 100


def test_cpp_stochastic_actions_follow_the_policy(exported: dict[str, tuple[Path, Path]], tool: Path, tmp_path: Path) -> None:
    _, d = exported["mappo"]
    B = 20000
    o = np.repeat(np.random.default_rng(1).normal(size=(1, 1, 3, 18)).astype(np.float32), B, 1)
    torch.save({"obs/agent": torch.as_tensor(o), "reset": torch.zeros(1, B, dtype=torch.bool), "deterministic": torch.tensor(False),
                "seed": torch.tensor(9)}, tmp_path / "in.pt")  # fmt: skip
    proc = _run_tool(tool, "act", d, tmp_path / "in.pt", tmp_path / "out.pt")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = dict(torch.load(tmp_path / "out.pt", weights_only=True))
    probs = out["logits/agent"][0, 0].softmax(-1).numpy()
    a = out["action/agent"][0].numpy()
    for i in range(3):
        freq = np.bincount(a[:, i], minlength=5) / B
        assert np.all(np.abs(freq - probs[i]) < 3 * np.sqrt(probs[i] * (1 - probs[i]) / B) + 1e-3), (freq, probs[i])


def test_cpp_world_model_graphs_equal_the_agent(exported: dict[str, tuple[Path, Path]], tool: Path, tmp_path: Path) -> None:
    run, d = exported["genrl"]
    agent, _ = load_trained(run, num_envs=1)
    x = _wm_inputs(agent.wm, B=6)
    torch.save(x, tmp_path / "in.pt")
    proc = _run_tool(tool, "graphs", d, tmp_path / "in.pt", tmp_path / "out.pt")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = dict(torch.load(tmp_path / "out.pt", weights_only=True))
    for k, w in _wm_reference(agent, x).items():
        torch.testing.assert_close(got[k], w, atol=1e-5, rtol=1e-5, msg=k)


def test_cpp_deterministic_imagination_equals_python(exported: dict[str, tuple[Path, Path]], tool: Path, tmp_path: Path) -> None:
    """Greedy actions and the prior's mode: the C++ ImaginationRollout and a Python loop over the
    agent's own networks give the same trajectory from the same start states."""
    run, d = exported["genrl"]
    agent, _ = load_trained(run, num_envs=1)
    wm = agent.wm
    x = _wm_inputs(wm, B=5)
    H = 6
    with torch.no_grad():
        h, z = x["h"], x["z"]
        hs, zs, acts, rews, conts = [h], [z], [], [], []
        for _ in range(H):
            feat = torch.cat([h, z], -1)
            a = agent.logits(feat, wm.others_probs(feat)).argmax(-1)
            h = wm.transition(h, z, wm.one_hot_actions(a))
            z = torch.nn.functional.one_hot(wm.prior_logits(h).argmax(-1), wm.classes).float().flatten(-2)
            acts.append(a), rews.append(wm.reward(h)), conts.append(torch.sigmoid(wm.cont_logit(h))), hs.append(h), zs.append(z)
        values = agent.values(torch.cat([torch.stack(hs), torch.stack(zs)], -1), target=True)
    torch.save({"h": x["h"], "z": x["z"], "horizon": torch.tensor(H)}, tmp_path / "in.pt")
    proc = _run_tool(tool, "imagine", d, tmp_path / "in.pt", tmp_path / "out.pt")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = dict(torch.load(tmp_path / "out.pt", weights_only=True))
    assert torch.equal(got["actions"], torch.stack(acts)) and torch.equal(got["z"], torch.stack(zs))
    for k, w in (("h", torch.stack(hs)), ("rewards", torch.stack(rews)), ("cont", torch.stack(conts)), ("values", values)):
        torch.testing.assert_close(got[k], w, atol=1e-4, rtol=1e-4, msg=k)


def test_cpp_simulator_planner_leaves_the_env_unchanged(exported: dict[str, tuple[Path, Path]], tool: Path) -> None:
    proc = _run_tool(tool, "simplan", exported["genrl"][1], 4, 5)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "unchanged=1 env_steps=80 action_shape=4,3 scores_finite=1" in proc.stdout


def test_cpp_bad_input_raises(exported: dict[str, tuple[Path, Path]], tool: Path, tmp_path: Path) -> None:
    proc = _run_tool(tool, "badobs", exported["mappo"][1])
    assert proc.returncode == 0 and "caught=4" in proc.stdout, proc.stdout + proc.stderr
    assert "got shape [2, 3, 19]" in proc.stdout and "exported for env 'simple_spread', not 'simple_tag'" in proc.stdout
    for name, data in (("garbage", b"x" * 1000), ("truncated", (exported["mappo"][1] / "policy.pt2").read_bytes()[:40_000])):
        d = tmp_path / name
        d.mkdir()
        (d / "policy.pt2").write_bytes(data)
        proc = _run_tool(tool, "load", d)
        assert proc.returncode == 3 and "cannot be loaded" in proc.stdout, proc.stdout + proc.stderr
    proc = _run_tool(tool, "load", tmp_path / "none")
    assert proc.returncode == 3 and "not a directory" in proc.stdout
    # a world-model package where the policy was expected
    d = tmp_path / "swapped"
    d.mkdir()
    shutil.copy(exported["genrl"][1] / "world_model.pt2", d / "policy.pt2")
    proc = _run_tool(tool, "load", d)
    assert proc.returncode == 3 and "ExportError" in proc.stdout, proc.stdout + proc.stderr


def test_two_runs_of_one_architecture_export_their_own_weights(exported: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    """Regression: inductor's compile cache keyed by graph once handed a second export of the same
    architecture the first one's weights; export disables the caches."""
    run = tmp_path / "other"
    train(PPOConfig(env="simple_spread", total_steps=800, num_envs=8, num_steps=25, seed=7, **QUIET), out=run)
    d = export(run, tmp_path / "other_x")
    obs = {"agent": np.random.default_rng(2).normal(size=(4, 3, 18)).astype(np.float32)}
    for r, x in ((run, d), exported["mappo"]):
        algo, _ = load_trained(r, num_envs=4)
        _, lg = load(x).act(obs, deterministic=True, return_logits=True)
        with torch.no_grad():
            feats, _ = algo.actors["agent"].features(algo._with_id(torch.as_tensor(obs["agent"]), "agent").reshape(12, -1), None)
            want = algo.actors["agent"].head(feats).reshape(4, 3, 5).numpy()
        np.testing.assert_allclose(lg["agent"], want, atol=1e-5, rtol=1e-5)


def test_cmake_package_ships_with_the_wheel() -> None:
    """A wheel install carries the CMake package, headers and sources for genmarl::core/torch; an
    editable install says where to look instead."""
    import genmarl

    try:
        d = Path(genmarl.get_cmake_dir())
    except FileNotFoundError as exc:
        assert "not installed from a wheel" in str(exc)
        return
    assert (d / "genmarlConfig.cmake").is_file() and (d / "genmarlConfigVersion.cmake").is_file()
    inc = Path(genmarl.get_include())
    assert (inc / "genmarl" / "torch" / "policy.hpp").is_file() and (inc / "genmarl" / "envs" / "registry.hpp").is_file()
    src = d.parents[1] / "genmarl" / "src"
    assert (src / "registry.cpp").is_file() and (src / "torch" / "world_model.cpp").is_file()


def test_cpp_imagination_with_observation_rewards_equals_python(tool: Path, tmp_path: Path) -> None:
    """reward_from='obs': the export records it and carries the obs_reward graph; the C++ rollout
    (greedy actions, the prior's mode) carries predicted observations from the start ones and scores
    each step with the agent's reward network, as Python's imagination does; without start
    observations it raises."""
    torch.set_num_threads(1)
    cfg = GenRLConfig(env="simple_spread", seed=4, reward_from="obs", reward_hidden_size=16, reward_updates=1, **QUIET, **GENRL_TINY)
    run = tmp_path / "run"
    train(cfg, out=run)
    d = export(run, tmp_path / "exp")
    assert json.loads((d / "export.json").read_text())["planning"]["reward_from"] == "obs"
    agent, _ = load_trained(run, num_envs=1)
    wm = agent.wm
    x = _wm_inputs(wm, B=5)
    start = {"agent": torch.randn(5, 3, 18)}
    H = 4
    with torch.no_grad():
        h, z, obs = x["h"], x["z"], start
        rews = []
        for _ in range(H):
            feat = torch.cat([h, z], -1)
            a = agent.logits(feat, wm.others_probs(feat)).argmax(-1)
            h = wm.transition(h, z, wm.one_hot_actions(a))
            z = torch.nn.functional.one_hot(wm.prior_logits(h).argmax(-1), wm.classes).float().flatten(-2)
            obs = wm.predict_obs(torch.cat([h, z], -1), obs)
            rews.append(agent.reward_model(obs))
        ref = agent.imagine(x["h"], x["z"], agent, horizon=H, latent_mode=True, start_obs=start)  # (sampled actions)
    assert ref.rewards.shape == (H, 5, 3)
    torch.save({"h": x["h"], "z": x["z"], "horizon": torch.tensor(H)}, tmp_path / "no_obs.pt")
    proc = _run_tool(tool, "imagine", d, tmp_path / "no_obs.pt", tmp_path / "out.pt")
    assert proc.returncode == 3 and "ImagineOptions::start_obs" in proc.stdout, proc.stdout + proc.stderr
    torch.save({"h": x["h"], "z": x["z"], "horizon": torch.tensor(H), "obs/agent": start["agent"]}, tmp_path / "in.pt")
    proc = _run_tool(tool, "imagine", d, tmp_path / "in.pt", tmp_path / "out.pt")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = dict(torch.load(tmp_path / "out.pt", weights_only=True))
    torch.testing.assert_close(got["rewards"], torch.stack(rews), atol=1e-4, rtol=1e-4)
