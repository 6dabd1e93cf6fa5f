"""MAPPO / IPPO: loss pieces against hand-computed values, configs, a coordination game learned
to its optimum, every network variant on real envs, determinism and resume equality."""

from __future__ import annotations

import csv
import json
import math
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import genmarl  # noqa: E402
from genmarl.algos import IPPO, MAPPO, PPOConfig, load_config  # noqa: E402
from genmarl.algos.networks import ValueNorm  # noqa: E402
from genmarl.algos.ppo import huber, policy_loss, value_loss  # noqa: E402
from genmarl.cli import main as cli  # noqa: E402
from run_metrics import metrics_without_wall_clock  # noqa: E402

# ---- loss pieces ----------------------------------------------------------------------


def test_policy_loss_hand_computed() -> None:
    # ratios 1.5 and 0.5, advantages +1 and -1, clip 0.2:
    # min(1.5, 1.2) = 1.2 and min(-0.5, -0.8) = -0.8 -> loss = -(1.2 - 0.8) / 2 = -0.2
    logp = torch.tensor([math.log(1.5), math.log(0.5)])
    loss, clipfrac, kl = policy_loss(logp, torch.zeros(2), torch.tensor([1.0, -1.0]), 0.2)
    assert loss.item() == pytest.approx(-0.2)
    assert clipfrac.item() == 1.0
    assert kl.item() == pytest.approx(((0.5 - math.log(1.5)) + (-0.5 - math.log(0.5))) / 2)
    # inside the clip range the loss is the plain surrogate -mean(r A)
    loss, clipfrac, _ = policy_loss(torch.tensor([math.log(1.1)]), torch.zeros(1), torch.tensor([2.0]), 0.2)
    assert loss.item() == pytest.approx(-2.2) and clipfrac.item() == 0.0


def test_value_losses_hand_computed() -> None:
    np.testing.assert_allclose(huber(torch.tensor([0.5, -3.0]), 1.0).numpy(), [0.125, 2.5])
    np.testing.assert_allclose(huber(torch.tensor([0.5, -3.0]), 0.0).numpy(), [0.125, 4.5])
    # prediction 2 from old value 1, target 3, clip 0.2: unclipped 0.5 * 1^2 = 0.5,
    # clipped prediction 1.2 -> 0.5 * 1.8^2 = 1.62; the max is taken
    v, old, target = torch.tensor([2.0]), torch.tensor([1.0]), torch.tensor([3.0])
    assert value_loss(v, old, target, 0.2, 0.0).item() == pytest.approx(1.62)
    assert value_loss(v, old, target, None, 0.0).item() == pytest.approx(0.5)
    # the clipped term only matters when it is larger
    assert value_loss(torch.tensor([2.0]), torch.tensor([1.9]), target, 0.2, 0.0).item() == pytest.approx(0.5)


def test_value_norm_tracks_mean_and_std() -> None:
    vn = ValueNorm(beta=0.9)
    gen = torch.Generator().manual_seed(0)
    for _ in range(300):
        vn.update(5.0 + 2.0 * torch.randn(4096, generator=gen))
    mean, std = vn.stats()
    assert mean.item() == pytest.approx(5.0, abs=0.05) and std.item() == pytest.approx(2.0, abs=0.05)
    x = torch.tensor([1.0, 7.0])
    np.testing.assert_allclose(vn.denormalize(vn.normalize(x)).numpy(), x.numpy(), rtol=1e-6)


# ---- configs --------------------------------------------------------------------------


def test_config_sources_and_errors(tmp_path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('algo = "ippo"\nlr = 1e-3\nnum_envs = 32\n[env_kwargs]\nN = 4\n')
    cfg = load_config({"seed": 3}, toml_path=toml, overrides=["total_steps=2e6", "use_gru=true", "env_kwargs.local_ratio=0.25"])
    assert (cfg.algo, cfg.lr, cfg.num_envs, cfg.seed, cfg.total_steps, cfg.use_gru) == ("ippo", 1e-3, 32, 3, 2_000_000, True)
    assert cfg.env_kwargs == {"N": 4, "local_ratio": 0.25}
    with pytest.raises(KeyError, match="unknown config key 'learning_rate'.*accepted keys: algo, env"):
        load_config(overrides=["learning_rate=1"])
    with pytest.raises(KeyError, match=r"unknown config key 'batch' \(in .*c2.toml\)"):
        (tmp_path / "c2.toml").write_text("batch = 3\n")
        load_config(toml_path=tmp_path / "c2.toml")
    with pytest.raises(TypeError, match="num_envs must be an int, got '1.5'"):
        load_config(overrides=["num_envs=1.5"])
    with pytest.raises(TypeError, match="use_gru must be a bool"):
        load_config(overrides=["use_gru=maybe"])
    with pytest.raises(TypeError, match="lr must be float, got str"):
        PPOConfig(lr="fast").validate()  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="algo must be one of"):
        PPOConfig(algo="qmix").validate()
    with pytest.raises(ValueError, match=r"total_steps \(100\) is less than one rollout"):
        PPOConfig(total_steps=100).validate()
    with pytest.raises(ValueError, match=r"num_minibatches \(200\) > num_envs \(128\)"):
        PPOConfig(use_gru=True, num_minibatches=200).validate()
    with pytest.raises(ValueError, match="gamma must be in"):
        PPOConfig(gamma=1.5).validate()
    with pytest.raises(ValueError, match="override 'lr' must look like key=value"):
        load_config(overrides=["lr"])


# ---- a tiny coordination task ---------------------------------------------------------


class CoordinationGame:
    """Two agents each pick one of three actions and both get ``PAYOFF[a0, a1]``; one-step
    episodes. The optimum is (0, 0) = 10; (2, 2) = 5 is a weaker equilibrium."""

    PAYOFF = np.array([[10.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 5.0]], np.float32)
    groups = ["agent"]
    name = "coordination"

    def __init__(self, num_envs: int) -> None:
        self.num_envs = num_envs
        self._obs = np.ones((num_envs, 2, 1), np.float32)

    def group_observation_space(self, g):
        from gymnasium import spaces

        return spaces.Box(-np.inf, np.inf, (2, 1), np.float32)

    def group_action_space(self, g):
        from gymnasium import spaces

        return spaces.MultiDiscrete([3, 3])

    def reset_grouped(self, seed=None):
        return {"agent": self._obs.copy()}, {}

    def step_grouped(self, actions):
        a = np.asarray(actions["agent"])
        r = self.PAYOFF[a[:, 0], a[:, 1]]
        rew = np.repeat(r[:, None], 2, 1)
        done = np.ones(self.num_envs, bool)
        infos = {
            "done": done,
            "final_observation": {"agent": self._obs.copy()},
            "episode_return": {"agent": rew.copy()},
            "episode_length": np.ones(self.num_envs, np.int64),
        }
        return {"agent": self._obs.copy()}, {"agent": rew}, {"agent": np.ones((self.num_envs, 2), bool)}, {"agent": np.zeros((self.num_envs, 2), bool)}, infos


@pytest.mark.parametrize("algo", ["mappo", "ippo"])
def test_coordination_game_learned_to_optimum(algo: str) -> None:
    torch.set_num_threads(1)
    env = CoordinationGame(64)
    cfg = PPOConfig(algo=algo, num_envs=64, num_steps=4, total_steps=64 * 4 * 60, update_epochs=4, lr=3e-3, critic_lr=3e-3, seed=1)
    learner = MAPPO(env, cfg)
    for i in range(cfg.num_updates):
        learner.set_progress(i / cfg.num_updates)
        stats = learner.collect()
        learner.update()
    greedy = learner.act(env.reset_grouped()[0], deterministic=True)["agent"]
    assert (greedy == 0).all(), np.unique(greedy, axis=0)
    assert stats["episode_returns"].mean() > 9.0


# ---- every variant on real envs --------------------------------------------------------


@pytest.mark.parametrize(
    "env_name, kwargs, overrides",
    [
        ("simple_tag", {}, {"algo": "ippo"}),  # two groups, separate policies
        ("simple_spread", {"continuous_actions": True}, {}),
        ("simple_reference", {}, {"use_gru": True, "num_minibatches": 2}),  # communication, GRU
        ("simple_speaker_listener", {}, {"agent_id": False, "value_norm": False, "adv_norm": False, "clip_value_loss": False, "huber_delta": 0.0}),
    ],
)
def test_variants_run_and_change_the_policy(env_name: str, kwargs: dict, overrides: dict) -> None:
    torch.set_num_threads(1)
    env = genmarl.make(env_name, num_envs=8, seed=0, **kwargs)
    cfg = PPOConfig(env=env_name, env_kwargs=kwargs, num_envs=8, num_steps=10, total_steps=160, update_epochs=2, **overrides)
    learner = MAPPO(env, cfg)
    before = {k: v.clone() for k, v in learner.actors.state_dict().items()}
    stats = learner.collect()
    losses = learner.update()
    assert all(np.isfinite(v) for v in losses.values())
    assert any(not torch.equal(before[k], v) for k, v in learner.actors.state_dict().items())
    obs, _ = env.reset_grouped(seed=1)
    acts = learner.act(obs, reset=np.ones(8, bool))
    env.step_grouped(learner.env_actions(acts))
    for g in env.groups:
        assert learner.rollout[f"{g}/advantage"].shape == (10, 8, len(env.group_agents[g]))
    assert stats["episode_lengths"].size == 0  # 10 steps < max_cycles


def test_ippo_factory_and_save_load(tmp_path) -> None:
    env = genmarl.make("simple_spread", num_envs=4, seed=0)
    a = IPPO(env, PPOConfig(num_envs=4, num_steps=5, total_steps=20))
    assert a.cfg.algo == "ippo"
    a.collect()
    a.update()
    a.save(str(tmp_path / "m.pt"))
    b = IPPO(env, PPOConfig(num_envs=4, num_steps=5, total_steps=20, seed=9))
    b.load(str(tmp_path / "m.pt"))
    obs, _ = env.reset_grouped(seed=3)
    for k, v in a.actors.state_dict().items():
        assert torch.equal(v, b.actors.state_dict()[k])
    np.testing.assert_array_equal(a.act(obs, deterministic=True)["agent"], b.act(obs, deterministic=True)["agent"])


# ---- whole runs: determinism, resume, CLI ----------------------------------------------

RUN = ["total_steps=6400", "num_envs=32", "num_steps=25", "eval_every=3200", "eval_episodes=8",
       "checkpoint_every=2400", "update_epochs=2", "progress=false", "tensorboard=false"]


def test_same_seed_same_metrics_and_resume_equality(tmp_path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli(["train", "--env", "simple_spread", "--seed", "0", "--out", str(a), *RUN]) == 0
    assert cli(["train", "--env", "simple_spread", "--seed", "0", "--out", str(b), *RUN]) == 0
    assert metrics_without_wall_clock(a) == metrics_without_wall_clock(b)
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    assert sa["eval/return_mean"] == sb["eval/return_mean"] and sa["env_steps"] == 6400
    for key in ("env_steps", "wall_time_s", "eval/return_mean", "eval/return_std"):
        assert key in sa
    # Interrupted after the checkpoint at 2,400 env steps: resume from it in a new directory.
    c = tmp_path / "c"
    (c / "checkpoints").mkdir(parents=True)
    shutil.copy(a / "checkpoints" / "step_2400.pt", c / "checkpoints" / "latest.pt")
    assert cli(["train", "--resume", str(c)]) == 0
    assert metrics_without_wall_clock(c) == metrics_without_wall_clock(a)
    assert json.loads((c / "summary.json").read_text())["eval/return_mean"] == sa["eval/return_mean"]
    for name in ("config.toml", "metrics.csv", "summary.json", "marl_eval.json", "eval.json", "model.pt", "curves.png"):
        assert (a / name).exists(), name
    marl = json.loads((a / "marl_eval.json").read_text())
    assert marl["mpe"]["simple_spread"]["mappo"]["seed_0"]["absolute_metrics"]["return"] == [sa["eval/return_mean"]]
    # eval and plot on the finished runs
    assert cli(["eval", str(a), "--episodes", "4", "--deterministic", "--gif", str(tmp_path / "ep.gif")]) == 0
    assert (tmp_path / "ep.gif").stat().st_size > 1000
    assert cli(["plot", str(a), str(b), "-o", str(tmp_path / "curves.png")]) == 0
    assert (tmp_path / "curves.png").exists()


def test_cli_rejects_bad_configs(tmp_path, capsys) -> None:
    assert cli(["train", "--out", str(tmp_path / "x"), "nope=1"]) == 2
    assert "unknown config key 'nope'" in capsys.readouterr().err
    assert cli(["train", "--out", str(tmp_path / "x"), "--num-envs", "0"]) == 2
    assert "num_envs must be >= 1" in capsys.readouterr().err
    assert cli(["train", "--out", str(tmp_path / "x"), "total_steps=10"]) == 2
    assert "less than one rollout" in capsys.readouterr().err
    assert cli(["train", "--resume", str(tmp_path / "missing")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert cli(["eval", str(tmp_path / "missing")]) == 2
    assert cli(["plot", str(tmp_path / "missing"), "-o", str(tmp_path / "p.png")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert cli(["train", "--env", "simple_spread", "--out", str(tmp_path / "y"), *RUN[:-2], "progress=false", "tensorboard=false", "env_kwargs.bogus=1"]) == 2
    assert "bogus" in capsys.readouterr().err


def test_two_group_run_logs_each_group(tmp_path) -> None:
    cfg = load_config({"env": "simple_tag", "algo": "ippo"}, overrides=RUN)
    result = genmarl.train(cfg, out=tmp_path / "tag")
    with open(result.run_dir / "metrics.csv", newline="") as fh:
        header = next(csv.reader(fh))
    assert "charts/adversary/episode_return" in header and "charts/agent/episode_return" in header
    assert set(result.evaluation["groups"]) == {"adversary", "agent"}
    assert "tags" in result.evaluation["metrics"]
    assert result.summary["eval/adversary/return_mean"] == result.evaluation["groups"]["adversary"]["mean"]
    assert cli(["plot", str(result.run_dir), "-o", str(tmp_path / "tag.png")]) == 0


def test_buffers_and_configs_work_without_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import genmarl, genmarl.buffers\n"
        "from genmarl.algos import PPOConfig, load_config\n"
        "assert load_config(overrides=['total_steps=1e6']).total_steps == 10**6\n"
        "try:\n    genmarl.algos.MAPPO\nexcept ImportError as e:\n    assert 'needs torch' in str(e), e\nelse:\n    raise SystemExit(1)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_flags_override_a_config_file_only_when_given(tmp_path, monkeypatch) -> None:
    import genmarl.training.runner as runner

    seen = []
    monkeypatch.setattr(runner, "train", lambda cfg, out=None, resume=False: seen.append(cfg) or runner.RunResult(tmp_path, {}, {}))
    toml = tmp_path / "c.toml"
    toml.write_text('env = "simple_tag"\n')
    assert cli(["train", "--config", str(toml)]) == 0
    assert cli(["train", "--config", str(toml), "--env", "simple_adversary"]) == 0
    assert [c.env for c in seen] == ["simple_tag", "simple_adversary"]


def test_cli_tooling_version_keys_eval_protocol_plot_and_tensorboard(tmp_path, capsys, monkeypatch) -> None:
    import importlib.util

    from genmarl.algos.config import GenRLConfig, PPOConfig, config_keys

    with pytest.raises(SystemExit) as exit_:
        cli(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"genmarl {genmarl.__version__}"
    # every key with type, default and meaning
    assert cli(["train", "--list-keys", "--algo", "genrl"]) == 0
    out = capsys.readouterr().out
    for name, _, _, meaning in config_keys(GenRLConfig):
        assert name in out and meaning
    assert all(meaning for *_, meaning in config_keys(PPOConfig))
    # help shows defaults and no reST backticks
    with pytest.raises(SystemExit):
        cli(["demo", "--help"])
    help_text = capsys.readouterr().out
    assert "(default: 4096)" in help_text
    with pytest.raises(SystemExit):
        cli(["--help"])
    assert "``" not in capsys.readouterr().out
    # a missing extra is reported with its install command before any work
    orig = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tomli_w" else orig(name, *a))
    assert cli(["train", "--out", str(tmp_path / "never")]) == 2
    assert "needs tomli_w: pip install 'genmarl[train]'" in capsys.readouterr().err and not (tmp_path / "never").exists()
    monkeypatch.setattr(importlib.util, "find_spec", orig)
    # eval defaults to training's protocol and says so; plot writes into the run
    run = tmp_path / "run"
    assert cli(["train", "--env", "simple_spread", "--out", str(run), *RUN[:-2], "progress=false", "tensorboard=true",
                "eval_episodes=6"]) == 0
    capsys.readouterr()
    assert cli(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    assert "protocol: deterministic actions, 6 episodes, seed 1000003 (training's final evaluation)" in out
    saved = json.loads((run / "eval_cli.json").read_text())
    assert saved["return"]["mean"] == json.loads((run / "eval.json").read_text())["return"]["mean"]
    assert cli(["eval", str(run), "--sample", "--episodes", "3"]) == 0
    assert "sampled actions, 3 episodes" in capsys.readouterr().out
    assert cli(["eval", str(run), "--sample", "--deterministic"]) == 2
    (run / "curves.png").unlink()
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cli(["plot", str(run)]) == 0
    assert (run / "curves.png").exists() and not (elsewhere / "curves.png").exists()
    # TensorBoard got the final evaluation
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run))
    acc.Reload()
    assert "eval/return_mean" in acc.Tags()["scalars"]
    assert acc.Scalars("eval/return_mean")[-1].value == pytest.approx(saved["return"]["mean"], rel=1e-6)


def test_weights_and_biases_offline_and_missing(tmp_path, monkeypatch, capsys) -> None:
    import importlib.util

    orig = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else orig(name, *a))
    assert cli(["train", "--track", "--out", str(tmp_path / "never"), *RUN]) == 2
    assert "pip install 'genmarl[track]'" in capsys.readouterr().err and not (tmp_path / "never").exists()
    monkeypatch.setattr(importlib.util, "find_spec", orig)
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))  # no login: auto mode runs offline, without network
    run = tmp_path / "tracked"
    assert cli(["train", "--track", "--env", "simple_spread", "--out", str(run), *RUN, "tensorboard=false"]) == 0
    (offline,) = (run / "wandb").glob("offline-run-*")
    assert (run / "wandb_id.txt").read_text().strip() in offline.name  # --resume continues this W&B run
    (log,) = offline.glob("run-*.wandb")  # W&B's record log (protobuf): the keys are in it as text
    data = log.read_bytes()
    for key in (b"charts/episode_return", b"eval/return_mean", b"losses/", b"simple_spread"):
        assert key in data, key
    with pytest.raises(ValueError, match="wandb_mode"):
        load_config(overrides=["wandb_mode=cloud"])
