"""The observation reward model (``reward_from="obs"``): the batched observation prediction it reads
equals the step-by-step one, the (next observation, reward) pairs respect episode boundaries, it
learns a reward that is a function of the next observation, imagination and planning use it, and
an agent with it trains, plans, saves and resumes."""

from __future__ import annotations

import copy
import csv
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from run_metrics import metrics_without_wall_clock  # noqa: E402
from test_generative import RUN, _one_thread, ring_agent  # noqa: E402, F401  (_one_thread: autouse, one torch thread)

import genmarl  # noqa: E402
from genmarl.algos.config import GenRLConfig, load_config  # noqa: E402
from genmarl.algos.learner import GroupInfo  # noqa: E402
from genmarl.generative import WorldModel  # noqa: E402
from genmarl.generative.reward_model import ObsRewardModel, reward_pairs  # noqa: E402

GROUPS = [GroupInfo("a", 2, 5, False, 3), GroupInfo("b", 1, 4, False, 2)]


@pytest.mark.parametrize("target", ["absolute", "delta", "both"])
@pytest.mark.parametrize("use_symlog", [False, True])
def test_predict_sequence_equals_the_step_by_step_prediction(target, use_symlog) -> None:
    torch.manual_seed(0)
    wm = WorldModel(GROUPS, deter_size=8, stoch_size=2, classes=2, hidden_size=8, attention_heads=2,
                    obs_target=target, obs_symlog=use_symlog)  # fmt: skip
    K, S = 5, 3
    feat = torch.randn(K, S, 3, wm.feat_size)
    start = {"a": torch.randn(S, 2, 5), "b": torch.randn(S, 1, 4)}
    seq = wm.predict_sequence(feat, start)
    prev = start
    for k in range(K):
        prev = wm.predict_obs(feat[k], prev)
        for g in start:
            torch.testing.assert_close(seq[g][k], prev[g], rtol=1e-5, atol=1e-5)


def test_reward_pairs_keep_steps_whose_successor_is_in_the_same_episode() -> None:
    obs = {"a": torch.arange(4 * 2 * 2 * 1, dtype=torch.float32).view(4, 2, 2, 1)}
    rewards = torch.arange(4 * 2 * 2, dtype=torch.float32).view(4, 2, 2)
    mask = torch.tensor([[True, True], [True, False], [True, True], [True, True]])
    is_first = torch.tensor([[False, False], [True, False], [False, True], [True, False]])
    next_obs, rew = reward_pairs(obs, rewards, mask, is_first)
    # window 1: no step 1 stored; window 2: step 1 starts a new episode
    torch.testing.assert_close(rew, rewards[[0, 3], 0])
    torch.testing.assert_close(next_obs["a"], obs["a"][[0, 3], 1])


@pytest.mark.parametrize("inputs", ["own", "joint"])
def test_reward_model_shapes_and_inputs(inputs) -> None:
    model = ObsRewardModel(GROUPS, hidden_size=16, layers=1, inputs=inputs)
    obs = {"a": torch.randn(7, 4, 2, 5), "b": torch.randn(7, 4, 1, 4)}
    assert model(obs).shape == (7, 4, 3)
    # with "own" inputs agent 0's reward ignores what the other group sees; with "joint" it does not
    changed = {"a": obs["a"], "b": obs["b"] + 1.0}
    same = torch.allclose(model(obs)[..., 0], model(changed)[..., 0])
    assert same == (inputs == "own")
    with pytest.raises(ValueError, match="reward inputs must be one of"):
        ObsRewardModel(GROUPS, inputs="everyone")


def test_reward_model_learns_a_function_of_the_next_observation() -> None:
    """A distance-to-target reward of 2-D positions: far better than the mean after a few hundred updates."""
    torch.manual_seed(0)
    groups = [GroupInfo("agent", 2, 4, False, 5)]
    model = ObsRewardModel(groups, hidden_size=64, layers=2, inputs="own")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def batch(n: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        o = torch.rand(n, 2, 4) * 2 - 1
        return {"agent": o}, -(o[..., :2] - o[..., 2:]).norm(dim=-1)

    for _ in range(600):
        o, r = batch(256)
        loss = model.loss(o, r)
        opt.zero_grad()
        loss.backward()
        opt.step()
    o, r = batch(2000)
    with torch.no_grad():
        mse = float(((model(o) - r) ** 2).mean())
    assert mse < 0.1 * float(r.var())


def obs_agent(**overrides):
    return ring_agent(reward_from="obs", reward_hidden_size=32, reward_updates=2, reward_batch_size=16, **overrides)


def test_imagination_reads_rewards_from_predicted_observations() -> None:
    agent = obs_agent()
    for _ in range(10):
        agent.collect()
    agent.update()
    h = agent.wm.initial_state(4)
    z = torch.zeros(4, 2, agent.wm.stoch_dim)
    start = {"agent": torch.zeros(4, 2, 12)}
    traj = agent.imagine(h, z, agent, horizon=3, start_obs=start)
    expected = agent.reward_model(agent.wm.predict_sequence(traj.feat[1:], start))
    torch.testing.assert_close(traj.rewards, expected)
    with pytest.raises(ValueError, match="pass start_obs"):
        agent.imagine(h, z, agent, horizon=3)


def test_obs_reward_agent_trains_and_plans() -> None:
    agent = obs_agent(seed=3)
    stats = {}
    for _ in range(12):
        agent.collect()
        stats = agent.update() or stats
    assert np.isfinite(stats["reward/loss"]) and stats["reward/loss"] > 0
    diag = agent.diagnostics(num_windows=16)
    assert np.isfinite(diag["wm/reward_error"]) and len(diag["wm/reward_error_k"]) == agent.cfg.horizon
    obs, _ = agent.env.reset_grouped(seed=1)
    h, z = agent.filter_state(obs)
    a = agent.plan(h, z, k=4, horizon=3, obs=obs)
    assert a.shape == (agent.num_envs, 2)
    with pytest.raises(ValueError, match="pass obs"):
        agent.plan(h, z, k=4, horizon=3)


def test_obs_reward_run_resumes_bitwise(tmp_path) -> None:
    cfg = load_config({"algo": "genrl"}, overrides=[*RUN, "reward_from=obs", "reward_hidden_size=16", "reward_updates=2"])
    full = genmarl.train(cfg, out=tmp_path / "full")
    assert np.isfinite(full.summary["wm/reward_error"])
    with open(full.run_dir / "metrics.csv", newline="") as fh:
        assert list(csv.DictReader(fh))[-1]["reward/loss"] != ""
    part = tmp_path / "part"
    shutil.copytree(full.run_dir, part)
    shutil.copy(part / "checkpoints" / "step_200.pt", part / "checkpoints" / "latest.pt")
    (part / "metrics.csv").unlink()
    genmarl.train(cfg, out=part, resume=True)
    assert metrics_without_wall_clock(part) == metrics_without_wall_clock(full.run_dir)


def test_config_rejects_bad_reward_settings() -> None:
    with pytest.raises(ValueError, match="reward_from must be 'latent' or 'obs'"):
        GenRLConfig(reward_from="head").validate()
    with pytest.raises(ValueError, match="reward_inputs must be 'own' or 'joint'"):
        GenRLConfig(reward_inputs="all").validate()
    with pytest.raises(ValueError, match="reward_lr"):
        GenRLConfig(reward_lr=0.0).validate()


# ---- distilling planning into the policy -----------------------------------------------------------


def test_distill_term_pulls_the_policy_toward_the_planned_actions() -> None:
    """The same actor-critic steps with and without the distillation term: with it, the policy's
    log-probability of the given actions ends far higher."""
    agent = ring_agent(seed=5, distill_coef=1.0, distill_starts=8, distill_k=4, distill_horizon=2, plan=1, actor_lr=3e-3)
    for _ in range(10):
        agent.collect()
    agent.update()
    h = agent.wm.initial_state(6).detach()
    z = torch.zeros(6, 2, agent.wm.stoch_dim)
    feat = torch.cat([h, z], -1)
    target = torch.tensor([[0, 2]] * 6)
    traj = agent.imagine(h, z, agent, horizon=2, start_obs={"agent": torch.zeros(6, 2, 12)})
    parts = ("actors", "critics", "target_critics", "actor_opt", "critic_opt")
    start = {k: copy.deepcopy(getattr(agent, k).state_dict()) for k in parts}
    scale = agent.return_scale.clone()

    def logp_after(distill) -> tuple[float, dict]:
        for k in parts:
            getattr(agent, k).load_state_dict(copy.deepcopy(start[k]))
        agent.return_scale = scale.clone()
        for _ in range(20):
            stats = agent.actor_critic_step(traj, distill)
        with torch.no_grad():
            lp = agent.logits(feat, agent.wm.others_probs(feat)).log_softmax(-1).gather(-1, target.unsqueeze(-1)).sum()
        return float(lp), stats

    with_term, stats = logp_after((feat, target))
    without, _ = logp_after(None)
    assert with_term > without + 1.0 and np.isfinite(stats["losses/distill"])


def test_distilling_agent_trains_and_reports_the_policy_alone(tmp_path) -> None:
    cfg = load_config({"algo": "genrl"}, overrides=[*RUN, "plan=2", "distill_coef=0.5", "distill_starts=4", "distill_k=2",
                                                    "distill_horizon=2"])  # fmt: skip
    full = genmarl.train(cfg, out=tmp_path / "run")
    with open(full.run_dir / "metrics.csv", newline="") as fh:
        last = list(csv.DictReader(fh))[-1]
    assert float(last["losses/distill"]) > 0
    # with plan > 0 the evaluations also act on the policy alone, on the same episodes
    assert np.isfinite(float(last["eval/policy_return_mean"])) and np.isfinite(float(last["eval/return_mean"]))


def test_config_rejects_bad_distill_settings() -> None:
    for key in ("distill_starts", "distill_k", "distill_horizon"):
        with pytest.raises(ValueError, match=key):
            GenRLConfig(**{key: 0}).validate()
    with pytest.raises(ValueError, match="distill_coef"):
        GenRLConfig(distill_coef=-1.0).validate()
