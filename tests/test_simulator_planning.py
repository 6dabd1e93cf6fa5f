"""Planning with the true simulator (genmarl.generative.simulator_planning)."""

from __future__ import annotations

import numpy as np
import pytest

import genmarl
from genmarl.generative.simulator_planning import SimulatorPlanner, check_simulator_env


def brute_force_score(env, e: int, seq: dict[str, np.ndarray], gamma: float) -> float:
    """Return of env `e` under the joint action sequence seq[g]: [H, n_g], by stepping a
    one-env copy of it by hand."""
    one = genmarl.make(env.name, num_envs=1, **env.scenario_kwargs)
    state = env.get_state()
    one.set_state({k: (v[e : e + 1] if v.ndim else v) for k, v in state.items()})
    total, disc = 0.0, 1.0
    H = next(iter(seq.values())).shape[0]
    for t in range(H):
        _, rew, _, _, infos = one.step_grouped({g: a[t][None].astype(np.int64) for g, a in seq.items()})
        total += disc * float(np.concatenate([rew[g][0] for g in rew]).mean())
        disc *= gamma
        if infos["done"][0]:
            break
    return total


@pytest.mark.parametrize("name", ["simple", "simple_spread"])
def test_scores_equal_stepping_each_sequence_by_hand_and_best_is_found(name):
    env = genmarl.make(name, num_envs=3, seed=4)
    env.reset(seed=4)
    rng = np.random.default_rng(0)
    for _ in range(3):
        env.step_grouped(env.sample_actions(rng, grouped=True))
    K, H, gamma = 5, 6, 0.9
    seqs = {
        g: rng.integers(0, env.group_action_space(g).nvec[0] if hasattr(env.group_action_space(g), "nvec") else 5,
                        size=(3, K, H, len(agents)))
        for g, agents in env.group_agents.items()
    }
    planner = SimulatorPlanner(gamma)
    scores = planner.score_sequences(env, seqs)
    assert scores.shape == (3, K)
    want = np.array([[brute_force_score(env, e, {g: s[e, k] for g, s in seqs.items()}, gamma) for k in range(K)] for e in range(3)])
    np.testing.assert_allclose(scores, want, rtol=1e-6, atol=1e-6)
    assert np.array_equal(scores.argmax(1), want.argmax(1))
    assert planner.env_steps == 3 * K * H


def test_scripted_case_moving_towards_the_landmark_wins():
    # "simple": one agent, reward -distance^2 to the landmark. Of the five constant action
    # sequences (no-op, left, right, down, up), the best moves towards the landmark.
    env = genmarl.make("simple", num_envs=4, seed=1)
    env.reset(seed=1)
    K, H = 5, 8
    seqs = {"agent": np.broadcast_to(np.arange(K)[None, :, None, None], (4, K, H, 1)).copy()}
    scores = SimulatorPlanner(0.99).score_sequences(env, seqs)
    state = env.get_state()
    delta = state["pos"][:, 1] - state["pos"][:, 0]  # landmark - agent, [E, 2]
    # MPE discrete actions: 1 = -x, 2 = +x, 3 = -y, 4 = +y
    axis = np.abs(delta).argmax(1)
    want = np.where(axis == 0, np.where(delta[:, 0] < 0, 1, 2), np.where(delta[:, 1] < 0, 3, 4))
    assert np.array_equal(scores.argmax(1), want)


def test_planning_never_mutates_the_env_acted_in():
    env = genmarl.make("simple_world_comm", num_envs=2, seed=2)
    env.reset(seed=2)
    before = env.get_state()
    seqs = {g: np.zeros((2, 4, 30, len(a)), np.int64) for g, a in env.group_agents.items()}  # past the episode end
    SimulatorPlanner(0.99).score_sequences(env, seqs)
    after = env.get_state()
    assert before.keys() == after.keys()
    assert all(before[k].tobytes() == after[k].tobytes() for k in before)


def test_env_without_state_access_is_rejected():
    class Opaque:
        num_envs = 1

    with pytest.raises(ValueError, match="needs an env whose state can be copied.*plan_model='world'"):
        check_simulator_env(Opaque())
    with pytest.raises(ValueError, match="needs an env whose state can be copied"):
        SimulatorPlanner(0.9).score_sequences(Opaque(), {"agent": np.zeros((1, 2, 3, 1), np.int64)})


def test_bad_arguments():
    env = genmarl.make("simple", num_envs=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="gamma"):
        SimulatorPlanner(1.5)
    with pytest.raises(ValueError, match=r"\[num_envs, K, H, n_g\]"):
        SimulatorPlanner(0.9).score_sequences(env, {"agent": np.zeros((2, 3), np.int64)})
    with pytest.raises(ValueError, match="for 3 envs, the env has 2"):
        SimulatorPlanner(0.9).score_sequences(env, {"agent": np.zeros((3, 2, 2, 1), np.int64)})


# ---- through the generative agent ------------------------------------------------------------

torch = pytest.importorskip("torch")

from genmarl.algos.config import GenRLConfig  # noqa: E402
from genmarl.generative.agent import GenerativeAgent  # noqa: E402

TINY = dict(
    deter_size=16, stoch_size=4, classes=4, hidden_size=16, ac_hidden_size=16, attention_heads=2,
    batch_size=4, seq_len=4, horizon=3, imagine_starts=8, tensorboard=False, progress=False,
)  # fmt: skip


def make_agent(env, **kw) -> GenerativeAgent:
    torch.manual_seed(0)
    return GenerativeAgent(env, GenRLConfig(env=env.name, num_envs=env.num_envs, **{**TINY, **kw}))


def episode_return(agent: GenerativeAgent, env) -> float:
    obs, _ = env.reset_grouped(seed=5)
    agent._hidden = agent._zero_hidden()
    total, reset = 0.0, np.zeros(env.num_envs, bool)
    for _ in range(env.max_cycles):
        obs, rew, _, _, infos = env.step_grouped(agent.act(obs, reset=reset))
        total += float(np.mean(rew["agent"]))
        reset = infos["done"]
    return total


def test_agent_plans_in_the_simulator_without_touching_the_env():
    env = genmarl.make("simple_spread", num_envs=4, seed=1)
    agent = make_agent(env, plan=4, plan_horizon=3, plan_model="simulator")
    obs, _ = env.reset_grouped(seed=1)
    before = env.get_state()
    actions = agent.act(obs)
    after = env.get_state()
    assert all(before[k].tobytes() == after[k].tobytes() for k in before)
    assert actions["agent"].shape == (4, 3)
    assert agent.simulator_planner.env_steps == 4 * 4 * 3
    assert agent.env_steps == 0  # planning steps are never counted as experience


def test_simulator_planning_beats_the_untrained_policy_it_samples_from():
    # The actor starts uniform; choosing the best of 16 sampled futures in the real simulator
    # must cover the landmarks far better than acting on the actor alone.
    env = genmarl.make("simple_spread", num_envs=8, seed=2)
    policy = episode_return(make_agent(env), env)
    planned = episode_return(make_agent(env, plan=16, plan_horizon=5, plan_model="simulator"), env)
    assert planned > policy + 3.0, (planned, policy)


def test_simulator_planning_needs_an_env_with_state():
    from test_generative import RingEnv

    env = RingEnv(num_envs=4, seed=0)
    agent = GenerativeAgent(env, GenRLConfig(env="simple_spread", num_envs=4, **{**TINY, "plan": 2, "plan_model": "simulator"}))
    obs, _ = env.reset_grouped(seed=0)
    with pytest.raises(ValueError, match="needs an env whose state can be copied.*RingEnv lacks"):
        agent.act(obs)


def test_plan_model_is_validated():
    with pytest.raises(ValueError, match="plan_model must be 'world' or 'simulator'"):
        GenRLConfig(plan_model="oracle").validate()
    with pytest.raises(ValueError, match="obs_target must be 'absolute', 'delta' or 'both'"):
        GenRLConfig(obs_target="residual").validate()


def test_cli_eval_plans_in_the_simulator(tmp_path):
    import subprocess
    import sys

    run = tmp_path / "run"
    train = [sys.executable, "-m", "genmarl.cli", "train", "--algo", "genrl", "--total-steps", "800", "--num-envs", "4",
             "--out", str(run), "prefill_steps=400", "eval_every=0", "eval_episodes=2", "tensorboard=false", "progress=false",
             *[f"{k}={v}" for k, v in TINY.items() if k not in ("tensorboard", "progress")]]
    proc = subprocess.run(train, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    ev = [sys.executable, "-m", "genmarl.cli", "eval", str(run), "--episodes", "2", "--plan", "3", "--plan-model", "simulator"]
    proc = subprocess.run(ev, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "planning in the simulator took" in proc.stdout
    world = [*ev[:-2], "--plan-horizon", "2", "--plan-latents", "mode", "--plan-unimix", "0.5"]
    proc = subprocess.run(world, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    bad = subprocess.run([*ev[:-2], "--plan-horizon=-1"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "expected a plan horizon >= 0" in bad.stderr
    bad = subprocess.run([*ev[:-1], "oracle"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "invalid choice: 'oracle'" in bad.stderr


def test_candidate_mixing_keeps_each_groups_missing_actions_masked():
    env = genmarl.make("simple_speaker_listener", num_envs=4, seed=0)
    agent = make_agent(env, plan_unimix=0.5)
    feat = torch.randn(4, agent.num_agents, agent.wm.feat_size)
    with torch.no_grad():
        others = agent.wm.others_probs(feat)
        probs = agent.candidate_logits(feat, others).softmax(-1)
        policy = agent.logits(feat, others).softmax(-1)
    mask = agent.wm.action_mask
    assert float(probs[:, ~mask].max()) < 1e-12  # the speaker's padded actions are never drawn
    n_valid = mask.sum(-1, keepdim=True).to(probs.dtype)
    torch.testing.assert_close(probs[:, mask], (0.5 * policy + 0.5 / n_valid.expand_as(policy))[:, mask])
    none = make_agent(env, plan_unimix=0.0)
    with torch.no_grad():
        torch.testing.assert_close(none.candidate_logits(feat, others), none.logits(feat, others))
    with pytest.raises(ValueError, match="plan_unimix must be in"):
        GenRLConfig(plan_unimix=1.5).validate()


def test_simulator_planning_with_mixed_candidates_acts_in_multi_group_envs():
    env = genmarl.make("simple_speaker_listener", num_envs=3, seed=1)
    agent = make_agent(env, plan=4, plan_horizon=2, plan_model="simulator", plan_unimix=0.9)
    obs, _ = env.reset_grouped(seed=1)
    for _ in range(5):
        actions = agent.act(obs)
        assert all(int(a.max()) < env.group_action_space(g).nvec[0] if hasattr(env.group_action_space(g), "nvec") else True
                   for g, a in actions.items())
        obs, *_ = env.step_grouped(actions)


def _benchmark_module(name: str):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_plan_ranking_scores_the_models_candidates_in_the_simulator():
    """benchmarks/plan_ranking.py: rank correlation is exact on known orders; a probe scores the
    model's own K candidates in the simulator (the pick is never better than the best, the mean
    lies between the worst and the best)."""
    pr = _benchmark_module("plan_ranking")
    a = np.array([[1.0, 3.0, 2.0, 5.0], [0.1, 0.2, 0.3, 0.4]])
    np.testing.assert_allclose(pr.spearman(a, a), [1.0, 1.0])
    np.testing.assert_allclose(pr.spearman(a, -a), [-1.0, -1.0])
    np.testing.assert_allclose(pr.spearman(a, np.array([[2.0, 1.0, 3.0, 4.0], [4.0, 3.0, 1.0, 2.0]])), [0.4, -0.8])
    env = genmarl.make("simple_spread", num_envs=4, seed=0)
    agent = make_agent(env, plan_unimix=0.5)
    r = pr.probe(agent, env, t0=2, K=5, H=3, seed=1)
    assert r["pick_rewards"] <= r["best"] + 1e-12 and r["pick_return"] <= r["best"] + 1e-12
    assert r["mean"] <= r["best"] and -1.0 <= r["spearman_rewards"] <= 1.0


def test_message_info_measures_what_the_speaker_says_about_the_goal(tmp_path):
    """benchmarks/genrl_message_info.py: I(goal; message) is log 3 for a one-to-one code and 0 for
    a message that ignores the goal; on a saved model it counts every step of every episode and
    matches the model's own deterministic actions; a model of another scenario is refused."""
    mi = _benchmark_module("genrl_message_info")
    assert mi.mutual_information(5.0 * np.eye(3)) == pytest.approx(np.log(3), rel=1e-12)
    assert mi.mutual_information(np.outer([1.0, 2.0, 3.0], [4.0, 1.0, 5.0])) == pytest.approx(0.0, abs=1e-12)
    assert mi.mutual_information(np.array([[4.0, 0, 0], [0, 0, 4.0], [0, 0, 4.0]])) == pytest.approx(np.log(3) - 2 / 3 * np.log(2))
    env = genmarl.make("simple_speaker_listener", num_envs=4, seed=0)
    agent = make_agent(env)
    agent.save(str(tmp_path / "model.pt"))
    r = mi.measure(tmp_path, episodes=20, seed=3, num_envs=4)
    assert r["counts"].sum() == 20 * env.max_cycles  # 5 batches of 4 envs, every step
    assert 0.0 <= r["mi"] <= np.log(3) + 1e-12 and np.isfinite(r["return"])
    assert r["mi"] == pytest.approx(mi.mutual_information(r["counts"].astype(float)))
    assert 0.0 <= r["mi_first"] <= r["mi_max"] <= np.log(3) + 1e-12 and 0 <= r["mi_max_step"] < env.max_cycles
    again = mi.measure(tmp_path, episodes=20, seed=3, num_envs=4)
    np.testing.assert_array_equal(again["counts"], r["counts"])  # deterministic acting: the same messages
    spread = make_agent(genmarl.make("simple_spread", num_envs=4, seed=0))
    spread.save(str(tmp_path / "spread.pt"))
    with pytest.raises(ValueError, match="simple_spread"):
        mi.load_learner(tmp_path / "spread.pt", 4)
