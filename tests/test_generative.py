"""The generative agent: world-model shapes and episode-boundary masking, lambda-returns against a
numpy reference, imagined-rollout sampling statistics, a tiny task on which the world model beats
the 'next = current' predictor within seconds, planning beating the untrained policy it samples
from, determinism, checkpoint resume and the CLI."""

from __future__ import annotations

import csv
import json
import math
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gymnasium import spaces  # noqa: E402

import genmarl  # noqa: E402
from genmarl.algos.config import GenRLConfig, PPOConfig, load_config  # noqa: E402
from genmarl.algos.learner import GroupInfo  # noqa: E402
from genmarl.cli import main as cli  # noqa: E402
from run_metrics import metrics_without_wall_clock  # noqa: E402
from genmarl.generative import GenerativeAgent, ImaginationRollout, WorldModel, lambda_returns  # noqa: E402

TINY = dict(
    deter_size=32, stoch_size=4, classes=4, hidden_size=32, ac_hidden_size=32, attention_heads=2,
    batch_size=8, seq_len=8, horizon=5, imagine_starts=32,
)  # fmt: skip


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class RingEnv:
    """A tiny two-agent task with genmarl's grouped interface (numpy).

    Each agent sits on a ring of ``size`` cells; its observation is the one-hot of its own cell
    and of the other agent's cell; actions move it left / stay / right. Both are rewarded
    ``-ring distance`` between them. Episodes are truncated after ``max_cycles`` steps. The next
    observation is never equal to the current one when an agent moves, so 'next = current' is a
    poor predictor while the dynamics are simple to learn.
    """

    groups = ["agent"]

    def __init__(self, num_envs: int = 8, size: int = 6, max_cycles: int = 12, seed: int = 0) -> None:
        self.num_envs, self.size, self.max_cycles = num_envs, size, max_cycles
        self.rng = np.random.default_rng(seed)
        self.pos = np.zeros((num_envs, 2), np.int64)
        self.t = np.zeros(num_envs, np.int64)
        self.ret = np.zeros((num_envs, 2))

    def group_observation_space(self, g: str) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (2, 2 * self.size), np.float32)

    def group_action_space(self, g: str) -> spaces.MultiDiscrete:
        return spaces.MultiDiscrete([3, 3])

    def _obs(self) -> dict[str, np.ndarray]:
        eye = np.eye(self.size, dtype=np.float32)
        own, other = eye[self.pos], eye[self.pos[:, ::-1]]
        return {"agent": np.concatenate([own, other], -1)}

    def reset_grouped(self, seed: int | None = None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.pos = self.rng.integers(0, self.size, (self.num_envs, 2))
        self.t[:] = 0
        self.ret[:] = 0
        return self._obs(), {}

    def sample_actions(self, rng: np.random.Generator, grouped: bool = True) -> dict[str, np.ndarray]:
        return {"agent": rng.integers(0, 3, (self.num_envs, 2))}

    def step_grouped(self, actions: dict[str, np.ndarray]):
        self.pos = (self.pos + np.asarray(actions["agent"]) - 1) % self.size
        d = np.abs(self.pos[:, 0] - self.pos[:, 1])
        rew = -np.minimum(d, self.size - d).astype(np.float32)[:, None].repeat(2, 1)
        self.ret += rew
        self.t += 1
        done = self.t >= self.max_cycles
        trunc = np.repeat(done[:, None], 2, 1)
        infos: dict = {"done": done}
        if done.any():
            infos["final_observation"] = self._obs()
            infos["episode_return"] = {"agent": self.ret.copy()}
            infos["episode_length"] = self.t.copy()
            self.pos[done] = self.rng.integers(0, self.size, (int(done.sum()), 2))
            self.t[done] = 0
            self.ret[done] = 0
        return self._obs(), {"agent": rew}, {"agent": np.zeros((self.num_envs, 2), bool)}, {"agent": trunc}, infos


def ring_agent(**overrides) -> GenerativeAgent:
    cfg = GenRLConfig(**{**TINY, "num_envs": 8, "num_steps": 12, "prefill_steps": 96, "total_steps": 10_000,
                         "model_lr": 3e-3, "progress": False, "tensorboard": False, **overrides})  # fmt: skip
    return GenerativeAgent(RingEnv(num_envs=cfg.num_envs, seed=cfg.seed), cfg)


def spread_groups() -> list[GroupInfo]:
    return [GroupInfo("agent", 3, 18, False, 5)]


# ---- world model ---------------------------------------------------------------------------


def test_world_model_shapes_and_loss() -> None:
    groups = [GroupInfo("speaker", 1, 3, False, 3), GroupInfo("listener", 2, 11, False, 5)]
    wm = WorldModel(groups, deter_size=16, stoch_size=3, classes=4, hidden_size=16, attention_heads=2)
    B, T = 4, 6
    obs = {"speaker": torch.randn(B, T, 1, 3), "listener": torch.randn(B, T, 2, 11)}
    actions = torch.cat([torch.randint(0, 3, (B, T, 1)), torch.randint(0, 5, (B, T, 2))], -1)
    out = wm.observe(obs, actions, torch.zeros(B, T, dtype=torch.bool))
    assert out.h.shape == (B, T, 3, 16) and out.z.shape == (B, T, 3, 12) and out.feat.shape == (B, T, 3, 28)
    torch.testing.assert_close(out.z.detach().sum(-1), torch.full((B, T, 3), 3.0))  # one class per categorical
    dec = wm.decode(out.feat)
    assert dec["speaker"].shape == (B, T, 1, 3) and dec["listener"].shape == (B, T, 2, 11)
    beh = wm.behaviour_logits(out.feat)
    assert beh.shape == (B, T, 3, 3, 5)
    assert torch.all(torch.isinf(beh[..., 0, 3:]))  # the speaker has 3 actions: 3 and 4 are masked
    others = wm.others_probs(out.feat)
    assert others.shape == (B, T, 3, 2 * 5)
    np.testing.assert_allclose(others.unflatten(-1, (2, 5)).sum(-1).detach().numpy(), 1.0, rtol=1e-5)
    loss, stats, _ = wm.loss(obs, actions, torch.randn(B, T, 3), torch.zeros(B, T, 3, dtype=torch.bool), torch.zeros(B, T, dtype=torch.bool))
    assert torch.isfinite(loss) and 0 <= stats["wm/behaviour_acc_train"] <= 1
    loss.backward()
    assert all(p.grad is not None for p in wm.parameters())


@pytest.mark.parametrize("n, heads", [(1, 2), (3, 4), (5, 1)])
def test_agent_attention_equals_multihead_attention(n: int, heads: int) -> None:
    """``WorldModel.attend`` (broadcast products over agent pairs) computes what the module whose
    weights it reads computes, values and gradients, to float32 rounding (1e-5)."""
    torch.manual_seed(0)
    wm = WorldModel([GroupInfo("agent", n, 4, False, 5)], deter_size=8, stoch_size=2, classes=2, hidden_size=16, attention_heads=heads)
    y = torch.randn(7, n, 16, requires_grad=True)
    ours = wm.attend(y)
    ref = wm.attn(y, y, y, need_weights=False)[0]
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(ours)
    grads = torch.autograd.grad(ours, [y, *wm.attn.parameters()], g)
    ref_grads = torch.autograd.grad(ref, [y, *wm.attn.parameters()], g)
    for a, b in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_continuous_actions_are_rejected() -> None:
    with pytest.raises(ValueError, match="discrete actions"):
        WorldModel([GroupInfo("agent", 2, 4, True, 5)])


def test_is_first_restarts_the_state() -> None:
    """A step flagged is_first starts from h_init whatever came before (deterministic latents)."""
    torch.manual_seed(0)
    wm = WorldModel(spread_groups(), deter_size=16, stoch_size=2, classes=4, hidden_size=16, attention_heads=2)
    B, T = 2, 7
    obs = {"agent": torch.randn(B, T, 3, 18)}
    actions = torch.randint(0, 5, (B, T, 3))
    first = torch.zeros(B, T, dtype=torch.bool)
    first[:, 4] = True
    other_obs = {"agent": obs["agent"].clone()}
    other_obs["agent"][:, :4] = torch.randn(B, 4, 3, 18)  # a different previous episode
    other_actions = actions.clone()
    other_actions[:, :4] = torch.randint(0, 5, (B, 4, 3))
    with torch.no_grad():
        a = wm.observe(obs, actions, first, deterministic=True)
        b = wm.observe(other_obs, other_actions, first, deterministic=True)
        h_init = wm.initial_state(B)
    assert not torch.allclose(a.h[:, 3], b.h[:, 3])
    torch.testing.assert_close(a.h[:, 4:], b.h[:, 4:])
    torch.testing.assert_close(a.h[:, 4], h_init)
    torch.testing.assert_close(a.h[:, 0], h_init)  # the window's first step starts there too


# ---- lambda-returns --------------------------------------------------------------------------


def numpy_lambda_returns(rewards, values, discounts, lam):
    """Reference: the lambda-return as the (1 - lam)-weighted mix of n-step returns, float64."""
    H = rewards.shape[0]
    out = np.zeros(rewards.shape)
    for t in range(H):
        total = np.zeros(rewards.shape[1:])
        for n in range(1, H - t + 1):  # n-step return G_t^n
            g = np.zeros(rewards.shape[1:])
            scale = np.ones(rewards.shape[1:])
            for k in range(n):
                g += scale * rewards[t + k]
                scale *= discounts[t + k]
            g += scale * values[t + n]
            weight = (1 - lam) * lam ** (n - 1) if n < H - t else lam ** (n - 1)
            total += weight * g
        out[t] = total
    return out


@pytest.mark.parametrize("lam", [0.0, 0.95, 1.0])
def test_lambda_returns_match_numpy(lam) -> None:
    rng = np.random.default_rng(1)
    H, S = 6, 5
    rewards = rng.normal(size=(H, S))
    values = rng.normal(size=(H + 1, S))
    discounts = 0.97 * (rng.random((H, S)) > 0.2)  # some episodes end inside the horizon
    got = lambda_returns(torch.tensor(rewards), torch.tensor(values), torch.tensor(discounts), lam).numpy()
    np.testing.assert_allclose(got, numpy_lambda_returns(rewards, values, discounts, lam), rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match=r"values \[H \+ 1"):
        lambda_returns(torch.tensor(rewards), torch.tensor(values[:-1]), torch.tensor(discounts), lam)


# ---- imagination ------------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", ["torch", "genmarl"])
def test_imagination_sampling_matches_the_distribution(sampler) -> None:
    from scipy import stats

    if sampler == "genmarl":
        pytest.importorskip("genmarl.sampling")
    wm = WorldModel(spread_groups(), deter_size=8, stoch_size=1, classes=4, hidden_size=8, attention_heads=2)
    roll = ImaginationRollout(wm, 3, sampler=sampler, seed=5)
    torch.manual_seed(0)
    raw = torch.tensor([[2.0, 0.5, -1.0, float("-inf"), 0.0]])
    for unimix in (0.0, 0.1):
        dist = torch.distributions.Categorical(probs=(1 - unimix) * raw.softmax(-1) + unimix / 5)
        probs = dist.probs[0].double().numpy()
        idx, lp = roll.sample(raw.expand(40_000, 5), unimix)
        counts = np.bincount(idx.numpy(), minlength=5)
        assert (counts[3] == 0) == (unimix == 0)
        keep = probs > 0
        assert stats.chisquare(counts[keep], probs[keep] / probs[keep].sum() * counts.sum()).pvalue > 1e-4
        torch.testing.assert_close(lp, dist.log_prob(idx))


def test_imagined_rollout_shapes() -> None:
    agent = ring_agent()
    S = 10
    h = agent.wm.initial_state(S).contiguous()
    z = torch.zeros(S, 2, agent.wm.stoch_dim)
    start = {"agent": torch.zeros(S, 2, 12)}  # the start states' observations (rewards are read from predicted ones)
    traj = agent.imagine(h, z, agent, start_obs=start)
    H = agent.cfg.horizon
    assert traj.feat.shape == (H + 1, S, 2, agent.wm.feat_size)
    assert traj.others.shape == (H + 1, S, 2, 3)
    assert traj.actions.shape == traj.log_probs.shape == traj.rewards.shape == traj.cont.shape == (H, S, 2)
    assert traj.actions.dtype == torch.int64 and int(traj.actions.max()) < 3
    assert torch.all((traj.cont >= 0) & (traj.cont <= 1))
    fixed = torch.full((S, 2), 2)
    assert torch.equal(agent.imagine(h, z, agent, first_actions=fixed, start_obs=start).actions[0], fixed)


def test_latent_mode_rolls_the_priors_most_likely_latents() -> None:
    """latent_mode: every imagined latent is the prior's argmax (the same for any seed), actions are
    still drawn; planning passes it with plan_latents='mode'."""
    agent = ring_agent(reward_from="latent")
    S = 6
    h = agent.wm.initial_state(S).contiguous()
    z = torch.zeros(S, 2, agent.wm.stoch_dim)
    first = torch.zeros(S, 2, dtype=torch.long)
    torch.manual_seed(0)
    a = agent.imagine(h, z, agent, first_actions=first, horizon=1, latent_mode=True)
    torch.manual_seed(1)
    b = agent.imagine(h, z, agent, first_actions=first, horizon=1, latent_mode=True)
    wm = agent.wm
    z1 = a.feat[1, ..., wm.deter_size :].unflatten(-1, (wm.stoch_size, wm.classes))
    mode = wm.prior_logits(a.h[1]).argmax(-1)
    assert torch.equal(z1.argmax(-1), mode) and torch.equal(z1.sum(-1), torch.ones_like(z1[..., 0]))
    torch.testing.assert_close(a.feat, b.feat)
    traj = agent.imagine(h.repeat(50, 1, 1), z.repeat(50, 1, 1), agent, horizon=2, latent_mode=True)
    assert len(torch.unique(traj.actions[0].flatten())) == 3  # actions are still sampled
    with pytest.raises(ValueError, match="plan_latents must be 'sample' or 'mode'"):
        GenRLConfig(plan_latents="mean").validate()


# ---- learning ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("target", "overshoot", "factor"), [("absolute", 0, 0.4), ("both", 8, 0.75)])
def test_world_model_beats_the_trivial_predictor_within_seconds(target, overshoot, factor) -> None:
    # The ring's observations are one-hot positions: absolute targets learn them fastest; the
    # default (delta + absolute heads, open-loop loss; made for continuous kinematics) must
    # still beat 'nothing changes' within the same budget. After 200 updates the absolute model's
    # ratio is 0.19-0.35 over seeds 3-5 (an untrained model is above 1), hence 0.4, not a bar one
    # seed's random stream happens to clear.
    # the world model's own reward head (reward_from="latent"); test_reward_model.py covers the other source
    agent = ring_agent(seed=3, batch_size=16, model_lr=5e-3, obs_target=target, overshoot=overshoot, reward_from="latent")
    while agent.env_steps < agent.cfg.prefill_steps:
        agent.collect()
    before = agent.diagnostics(num_windows=64)
    for _ in range(200):
        agent.train_step()
    after = agent.diagnostics(num_windows=128)
    assert after["wm/obs_error_trivial"] > 0.05
    assert after["wm/obs_error_k1"] < factor * after["wm/obs_error_trivial"], after
    # an untrained delta head already predicts about 'nothing changes', so 'before' is lower there
    assert after["wm/obs_error_k1"] < factor * before["wm/obs_error_k1"]
    # the reward head learns on filtered states and (the default) on open-loop ones: imagination reads
    # the latter, so their error must halve; the filtered one shares the head and must fall too
    assert np.nanmean(after["wm/reward_error_k"]) < 0.5 * np.nanmean(before["wm/reward_error_k"])
    assert after["wm/reward_error"] < 0.6 * before["wm/reward_error"]
    assert len(after["wm/obs_error_k"]) == agent.cfg.horizon == len(after["wm/reward_error_k"])


def _ring_return(agent: GenerativeAgent, plan: int, episodes_seed: int) -> float:
    env = RingEnv(num_envs=64, seed=episodes_seed)
    runner = GenerativeAgent.__new__(GenerativeAgent)
    runner.__dict__.update(agent.__dict__)
    runner.cfg = GenRLConfig(**{**agent.cfg.to_dict(), "plan": plan})
    runner.env, runner.num_envs = env, env.num_envs
    runner._hidden = runner._zero_hidden()
    obs, _ = env.reset_grouped(seed=episodes_seed)
    total, reset = 0.0, np.zeros(env.num_envs, bool)
    for _ in range(env.max_cycles):
        obs, rew, _, _, infos = env.step_grouped(runner.act(obs, reset=reset))
        total += float(rew["agent"].mean())
        reset = infos["done"]
    return total


def test_planning_beats_the_policy_it_samples_from() -> None:
    """With a trained world model and an untrained (uniform) actor, picking the best of K imagined
    futures approaches the other agent; acting on the actor alone is a random walk."""
    # absolute targets: the ring's one-hot observations are learnt fastest that way (see above)
    agent = ring_agent(seed=4, horizon=4, batch_size=16, model_lr=5e-3, obs_target="absolute", overshoot=0)
    while agent.env_steps < agent.cfg.prefill_steps:
        agent.collect()
    actor_state = {k: v.clone() for k, v in agent.actors.state_dict().items()}
    for _ in range(200):
        agent.train_step()
    agent.actors.load_state_dict(actor_state)  # keep the policy uniform: only planning can help
    torch.manual_seed(0)
    policy_only = _ring_return(agent, plan=0, episodes_seed=11)
    planned = _ring_return(agent, plan=16, episodes_seed=11)
    assert planned > policy_only + 3.0, (planned, policy_only)


@pytest.mark.parametrize("rho", [0.0, 0.5, 1.0])
def test_actor_objectives_update_only_the_actor_and_critic(rho) -> None:
    """REINFORCE, dynamics backpropagation and their mix all move the actor; the world model is
    left alone by the actor-critic step."""
    agent = ring_agent(seed=2, actor_dynamics=rho)  # rewards read from predicted observations (the default)
    while agent.env_steps < agent.cfg.prefill_steps:
        agent.collect()
    agent.train_step()
    wm_before = [p.detach().clone() for p in agent.wm.parameters()]
    actor_before = [p.detach().clone() for p in agent.actors.parameters()]
    h = agent.wm.initial_state(16).contiguous()
    z = torch.zeros(16, 2, agent.wm.stoch_dim)
    agent.wm.requires_grad_(rho == 0)
    agent.reward_model.requires_grad_(rho == 0)  # as train_step freezes both for dynamics backpropagation
    agent.reward_opt.zero_grad(set_to_none=True)
    traj = agent.imagine(h, z, agent, differentiable=rho > 0, start_obs={"agent": torch.zeros(16, 2, 12)})
    assert traj.rewards.requires_grad == (rho > 0)
    stats = agent.actor_critic_step(traj)
    agent.wm.requires_grad_(True)
    agent.reward_model.requires_grad_(True)
    assert np.isfinite(stats["losses/policy"]) and np.isfinite(stats["losses/value"])
    assert all(torch.equal(a, b) for a, b in zip(wm_before, agent.wm.parameters()))
    assert all(p.grad is None for p in agent.reward_model.parameters())  # frozen like the world model
    assert any(not torch.equal(a, b) for a, b in zip(actor_before, agent.actors.parameters()))


def _imagined(agent: GenerativeAgent):
    h = agent.wm.initial_state(16).contiguous()
    z = torch.zeros(16, 2, agent.wm.stoch_dim)
    with torch.no_grad():
        return agent.imagine(h, z, agent, start_obs={"agent": torch.zeros(16, 2, 12)})


def test_entropy_target_adapts_each_agents_coefficient_and_resumes() -> None:
    """entropy_target: the coefficients start at entropy_coef, fall while the policy's entropy is
    above the goal (a fraction of log(number of actions)), rise while it is below, stay within
    [1e-4, 1] and travel with checkpoints."""
    agent = ring_agent(seed=2, actor_dynamics=0.0, entropy_coef=0.1, entropy_target=0.5, entropy_target_lr=0.01)
    assert torch.allclose(agent.entropy_goal, torch.full((2,), 0.5 * math.log(3)))
    start = agent.log_alpha.detach().clone()
    assert torch.allclose(start.exp(), torch.full((2,), 0.1))
    stats = agent.actor_critic_step(_imagined(agent))  # a near-uniform policy: entropy ~log(3), above the goal
    assert stats["losses/entropy"] > 0.5 * math.log(3)
    assert (agent.log_alpha < start).all() and stats["losses/entropy_coef"] < 0.1
    rising = ring_agent(seed=2, actor_dynamics=0.0, entropy_coef=0.1, entropy_target=0.5, entropy_target_lr=0.01)
    rising.entropy_goal = torch.full((2,), math.log(3) + 0.1)  # above any entropy: the coefficients must rise
    rising.actor_critic_step(_imagined(rising))
    assert (rising.log_alpha > start).all()
    with torch.no_grad():
        agent.log_alpha.fill_(5.0)
    agent.actor_critic_step(_imagined(agent))
    assert (agent.log_alpha <= 0.0).all()  # clamped: the coefficient never exceeds 1
    state = agent.state_dict(include_env=False)
    resumed = ring_agent(seed=2, actor_dynamics=0.0, entropy_coef=0.1, entropy_target=0.5, entropy_target_lr=0.01)
    resumed.load_state_dict(state)
    assert torch.equal(resumed.log_alpha, agent.log_alpha)
    assert resumed.alpha_opt.state_dict()["state"][0]["step"] == agent.alpha_opt.state_dict()["state"][0]["step"]
    with pytest.raises(ValueError, match="trained without entropy_target"):
        resumed.load_state_dict(ring_agent(seed=2).state_dict(include_env=False))
    assert ring_agent(seed=2).log_alpha is None  # the fixed coefficient by default
    assert "losses/entropy_coef" in GenerativeAgent.csv_columns(agent.cfg)[0]
    with pytest.raises(ValueError, match=r"entropy_target must be in \[0, 1\)"):
        GenRLConfig(entropy_target=1.0).validate()
    with pytest.raises(ValueError, match="entropy_target needs entropy_coef > 0"):
        GenRLConfig(entropy_target=0.5, entropy_coef=0.0).validate()
    with pytest.raises(ValueError, match="entropy_target_lr must be a positive number"):
        GenRLConfig(entropy_target_lr=0.0).validate()


def test_act_rejects_bad_observations() -> None:
    agent = ring_agent()
    obs, _ = agent.env.reset_grouped(seed=0)
    assert agent.act(obs)["agent"].shape == (8, 2)
    with pytest.raises(ValueError, match=r"must map the agent groups \['agent'\]"):
        agent.act({"adversary": obs["agent"]})
    with pytest.raises(ValueError, match=r"shape \(num_envs, n, obs_dim\) = \(8, 2, 12\), got float32 \(4, 2, 12\)"):
        agent.act({"agent": obs["agent"][:4]})
    with pytest.raises(ValueError, match="numeric array"):
        agent.act({"agent": np.full((8, 2, 12), "x")})


def test_same_seed_same_training() -> None:
    def run() -> list[float]:
        agent = ring_agent(seed=7)
        losses = []
        for _ in range(12):
            agent.collect()
            out = agent.update()
            losses.append(out.get("wm/loss", 0.0))
        return losses

    a, b = run(), run()
    assert a == b and any(v != 0 for v in a)


def _prefilled(**overrides) -> GenerativeAgent:
    agent = ring_agent(seed=3, actor_dynamics=1.0, **overrides)
    while agent.env_steps < agent.cfg.prefill_steps + 48:
        agent.collect()
    return agent


def _networks(agent: GenerativeAgent) -> dict[str, torch.Tensor]:
    mods = {"wm": agent.wm, "actors": agent.actors, "critics": agent.critics, "target": agent.target_critics,
            "reward": agent.reward_model}  # fmt: skip
    return {f"{m}.{k}": v for m, mod in mods.items() for k, v in mod.state_dict().items()}


def test_overlapped_updates_equal_sequential_ones() -> None:
    """overlap_updates='on' runs each actor-critic update on the calling thread while a worker
    trains the world model on the next batch. The pairing of replayed states, models and policy
    is the sequential one's, and the two threads draw from separate random streams, so n
    overlapped updates plus ``flush_updates()`` leave every network bitwise equal to n sequential
    updates (the same replayed batches, imagination starts and draws)."""
    seq, ovl = _prefilled(overlap_updates="off"), _prefilled(overlap_updates="on")
    assert not seq.overlap and ovl.overlap
    torch.manual_seed(0)  # torch's generator is global: both agents start their updates from one state
    seq_stats = [seq.train_step() for _ in range(5)]
    torch.manual_seed(0)
    ovl_stats = [ovl.train_step() for _ in range(5)]
    assert "losses/policy" not in ovl_stats[0] and "wm/loss" in ovl_stats[0]  # the first call trains the model only
    ovl_stats.append(ovl.flush_updates())
    assert ovl.flush_updates() == {}  # nothing owed any more
    for i in range(5):  # the world model's statistics of update i, the actor-critic's one call later
        assert ovl_stats[i]["wm/loss"] == seq_stats[i]["wm/loss"]
        assert ovl_stats[i + 1]["losses/policy"] == seq_stats[i]["losses/policy"]
    a, b = _networks(seq), _networks(ovl)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert seq.imagine.stream == ovl.imagine.stream and seq.grad_steps == ovl.grad_steps == 5


def test_overlapped_updates_resume_with_the_update_owed() -> None:
    """A checkpoint taken between overlapped updates carries the starts of the actor-critic
    update still owed; the resumed agent continues bitwise like the uninterrupted one."""
    ref, part = _prefilled(overlap_updates="on"), _prefilled(overlap_updates="on")
    for agent in (ref, part):
        torch.manual_seed(0)
        for _ in range(3):
            agent.train_step()
    state = part.state_dict(include_env=False)  # (holds torch's generator state, which resumed restores)
    assert "pending_starts" in state
    resumed = ring_agent(seed=3, actor_dynamics=1.0, overlap_updates="on")
    resumed.load_state_dict(state)
    resumed.load_buffer_bytes(part.buffer_bytes())
    for agent in (ref, resumed):
        torch.set_rng_state(state["torch_rng"])
        for _ in range(2):
            agent.train_step()
        agent.flush_updates()
    a, b = _networks(ref), _networks(resumed)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_overlap_updates_needs_genmarls_sampler() -> None:
    with pytest.raises(ValueError, match="overlap_updates='on' needs imagination on the CPU with genmarl's sampling kernels"):
        ring_agent(overlap_updates="on", sampler="torch")
    assert not ring_agent(overlap_updates="auto", sampler="torch").overlap  # 'auto' falls back to sequential
    with pytest.raises(ValueError, match="overlap_updates must be 'auto', 'on' or 'off', got 'yes'"):
        GenRLConfig(overlap_updates="yes").validate()


# ---- runs, resume, CLI ------------------------------------------------------------------------

RUN = [
    "num_envs=4", "num_steps=5", "total_steps=400", "prefill_steps=40", "replay_ratio=0.05", "eval_every=200",
    "eval_episodes=4", "checkpoint_every=200", "progress=false", "tensorboard=false", "batch_size=4", "seq_len=4",
    "horizon=3", "deter_size=16", "stoch_size=2", "classes=4", "hidden_size=16", "ac_hidden_size=16",
    "attention_heads=2", "buffer_capacity=2000",
]  # fmt: skip


def test_run_writes_diagnostics_and_resumes_bitwise(tmp_path) -> None:
    cfg = load_config({"algo": "genrl"}, overrides=RUN)
    assert isinstance(cfg, GenRLConfig)
    full = genmarl.train(cfg, out=tmp_path / "full")
    for key in ("wm/obs_error_k1", "wm/obs_error_trivial", "wm/reward_error", "wm/behaviour_acc", "wm/behaviour_acc_baseline",
                "wm/behaviour_loglik", "wm/behaviour_loglik_uniform"):
        assert np.isfinite(full.summary[key]), key
    assert full.summary["wm/behaviour_loglik_uniform"] == pytest.approx(-np.log(5))
    assert full.summary["wm/behaviour_loglik"] < 0
    diags = json.loads((full.run_dir / "wm_diagnostics.json").read_text())
    assert len(diags) == 2 and len(diags[-1]["wm/obs_error_k"]) == 3
    with open(full.run_dir / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[-1]["wm/obs_error_k1"] != "" and rows[-1]["wm/loss"] != ""

    # stop after the 200-step checkpoint, then resume in a copy
    part = tmp_path / "part"
    shutil.copytree(full.run_dir, part)
    shutil.copy(part / "checkpoints" / "step_200.pt", part / "checkpoints" / "latest.pt")
    (part / "metrics.csv").unlink()
    resumed = genmarl.train(cfg, out=part, resume=True)
    assert metrics_without_wall_clock(part) == metrics_without_wall_clock(full.run_dir)
    assert resumed.summary["eval/return_mean"] == full.summary["eval/return_mean"]
    assert resumed.summary["wm/obs_error_k1"] == full.summary["wm/obs_error_k1"]

    # a shorter run of the same seed is a prefix of the longer one: nothing depends on total_steps
    short = genmarl.train(load_config({"algo": "genrl"}, overrides=[*RUN, "total_steps=200"]), out=tmp_path / "short")
    short_rows = metrics_without_wall_clock(short.run_dir)
    assert short_rows == metrics_without_wall_clock(full.run_dir)[: len(short_rows)]
    assert short_rows[-1]["eval/return_mean"] != ""


def test_cli_trains_evaluates_and_plans(tmp_path, capsys) -> None:
    out = tmp_path / "g"
    assert cli(["train", "--algo", "genrl", "--out", str(out), *RUN, "progress=true"]) == 0
    text = capsys.readouterr().out
    assert "world model: 1-step obs error" in text and "behaviour prediction accuracy" in text
    assert cli(["eval", str(out), "--episodes", "4", "--plan", "4"]) == 0
    assert "eval over 4 episodes" in capsys.readouterr().out
    assert cli(["plot", str(out), "-o", str(tmp_path / "g.png")]) == 0
    assert (tmp_path / "g_wm.png").stat().st_size > 0
    assert cli(["eval", str(out), "--plan", "-1"]) == 2
    assert "plan must be >= 0" in capsys.readouterr().err


def test_configs_pick_their_class_and_reject_bad_values(tmp_path) -> None:
    assert isinstance(load_config(), PPOConfig)
    toml = tmp_path / "g.toml"
    toml.write_text('algo = "genrl"\nhorizon = 7\n')
    cfg = load_config(toml_path=toml, overrides=["plan=8"])
    assert isinstance(cfg, GenRLConfig) and cfg.horizon == 7 and cfg.plan == 8
    with pytest.raises(KeyError, match="accepted keys: .*replay_ratio"):
        load_config({"algo": "genrl"}, overrides=["update_epochs=3"])
    with pytest.raises(ValueError, match="replay_ratio must be a finite number >= 0"):
        GenRLConfig(replay_ratio=-1.0).validate()
    with pytest.raises(ValueError, match="multiple of attention_heads"):
        GenRLConfig(hidden_size=30, attention_heads=4).validate()
    with pytest.raises(ValueError, match="unimix must be in"):
        GenRLConfig(unimix=1.0).validate()
    with pytest.raises(ValueError, match="sampler must be"):
        GenRLConfig(sampler="numpy").validate()
    with pytest.raises(ValueError, match="buffer_capacity"):
        GenRLConfig(buffer_capacity=10).validate()
    with pytest.raises(ValueError, match="algo must be one of"):
        load_config({"algo": "dreamer"})
    with pytest.raises(ValueError, match="discrete actions"):
        GenerativeAgent(genmarl.make("simple_spread", num_envs=2, continuous_actions=True), GenRLConfig(**TINY))


def test_genrl_config_works_without_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from genmarl.algos import load_config\n"
        "assert load_config({'algo': 'genrl'}, overrides=['plan=4']).plan == 4\n"
        "try:\n    import genmarl.generative\nexcept ImportError as e:\n    assert 'needs torch' in str(e), e\nelse:\n    raise SystemExit(1)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- world-model decoder targets and the open-loop loss -------------------------------------------


@pytest.mark.parametrize("target", ["absolute", "delta", "both"])
@pytest.mark.parametrize("use_symlog", [False, True])
def test_decoder_targets_invert(target, use_symlog) -> None:
    """recon_targets followed by obs_from_targets step by step gives the observations back."""
    from genmarl.algos.learner import GroupInfo
    from genmarl.generative.world_model import WorldModel

    torch.manual_seed(0)
    groups = [GroupInfo("a", 2, 5, False, 3), GroupInfo("b", 1, 4, False, 2)]
    wm = WorldModel(groups, deter_size=8, stoch_size=2, classes=2, hidden_size=8, attention_heads=2,
                    obs_target=target, obs_symlog=use_symlog)
    obs = {"a": torch.randn(3, 6, 2, 5) * 3, "b": torch.randn(3, 6, 1, 4) * 3}
    is_first = torch.zeros(3, 6, dtype=torch.bool)
    is_first[:, 0] = True
    is_first[1, 3] = True
    targets, valid = wm.recon_targets(obs, is_first)
    assert bool(valid.all())
    prev = None
    for t in range(6):
        got = wm.obs_from_targets({g: v[:, t] for g, v in targets.items()}, prev)
        for g in obs:
            # a fresh episode restarts from zeros (episode 1's step 3): the reconstruction is absolute there
            torch.testing.assert_close(got[g][1] if t == 3 else got[g], obs[g][1, t] if t == 3 else obs[g][:, t],
                                       rtol=1e-5, atol=1e-5)
        prev = {g: torch.where(is_first[:, min(t + 1, 5), None, None], torch.zeros_like(v), v) if t + 1 < 6 else v
                for g, v in got.items()}
    if target != "absolute":
        mid = torch.zeros(3, 6, dtype=torch.bool)
        _, valid = wm.recon_targets(obs, mid)
        assert not bool(valid[:, 0].any()) and bool(valid[:, 1:].all())


def test_deter_decoder_reads_only_h_and_overshoot_trains_the_transition() -> None:
    from genmarl.algos.learner import GroupInfo
    from genmarl.generative.world_model import WorldModel

    torch.manual_seed(0)
    wm = WorldModel([GroupInfo("a", 2, 5, False, 3)], deter_size=8, stoch_size=2, classes=2, hidden_size=8,
                    attention_heads=2, decoder_input="deter", obs_target="delta")
    feat = torch.randn(4, 2, wm.feat_size)
    other = feat.clone()
    other[..., wm.deter_size:] = torch.randn_like(other[..., wm.deter_size:])
    torch.testing.assert_close(wm.decode(feat)["a"], wm.decode(other)["a"])
    obs = {"a": torch.randn(3, 6, 2, 5)}
    actions = torch.randint(0, 3, (3, 6, 2))
    zeros = torch.zeros(3, 6, 2)
    first = torch.zeros(3, 6, dtype=torch.bool)
    torch.manual_seed(1)  # the same posterior samples in both calls
    loss0, stats0, _ = wm.loss(obs, actions, zeros, zeros, first)
    torch.manual_seed(1)
    loss, stats, _ = wm.loss(obs, actions, zeros, zeros, first, overshoot=4)
    assert "wm/overshoot_loss" not in stats0 and stats["wm/overshoot_loss"] > 0
    assert loss.item() == pytest.approx(loss0.item() + stats["wm/overshoot_loss"], rel=1e-5)
    loss.backward()
    assert wm.gru.weight_hh.grad is not None and wm.gru.weight_hh.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="decoder_input must be one of"):
        WorldModel([GroupInfo("a", 2, 5, False, 3)], decoder_input="z")


def test_both_targets_add_an_absolute_reconstruction_head() -> None:
    from genmarl.algos.learner import GroupInfo
    from genmarl.generative.world_model import WorldModel

    torch.manual_seed(0)
    kw = dict(deter_size=8, stoch_size=2, classes=2, hidden_size=8, attention_heads=2)
    both = WorldModel([GroupInfo("a", 2, 5, False, 3)], obs_target="both", **kw)
    assert WorldModel([GroupInfo("a", 2, 5, False, 3)], obs_target="delta", **kw).abs_decoders is None
    obs = {"a": torch.randn(3, 6, 2, 5)}
    zeros = torch.zeros(3, 6, 2)
    loss, _, _ = both.loss(obs, torch.randint(0, 3, (3, 6, 2)), zeros, zeros, torch.zeros(3, 6, dtype=torch.bool))
    loss.backward()
    assert both.abs_decoders["a"][0].weight.grad.abs().sum() > 0  # the absolute head is trained
    # predictions come from the delta head, as for obs_target="delta"
    feat = torch.randn(4, 2, both.feat_size)
    prev = {"a": torch.randn(4, 2, 5)}
    torch.testing.assert_close(both.predict_obs(feat, prev)["a"], prev["a"] + both.decode(feat)["a"])


def test_overshoot_trains_the_reward_head_on_open_loop_states() -> None:
    """The open-loop reward term equals a hand-rolled computation, stops at episode boundaries
    (a reward of a later episode in the window does not count; the last reward of an episode
    does), and adds to the loss with its coefficient."""
    from genmarl.algos.learner import GroupInfo
    from genmarl.generative.world_model import WorldModel, symlog

    torch.manual_seed(0)
    wm = WorldModel([GroupInfo("a", 2, 5, False, 3)], deter_size=8, stoch_size=2, classes=2, hidden_size=8, attention_heads=2)
    B, T, K = 3, 6, 4
    obs = {"a": torch.randn(B, T, 2, 5)}
    actions = torch.randint(0, 3, (B, T, 2))
    rewards = torch.randn(B, T, 2)
    zeros = torch.zeros(B, T, 2)
    first = torch.zeros(B, T, dtype=torch.bool)
    first[1, 3] = True  # window 1: a new episode starts at step 3 -> its rewards 0..2 count, 3.. do not
    out = wm.observe(obs, actions, first)
    _, rew_term = wm.overshoot_loss(out, obs, actions, first, K, rewards)
    h, z = out.h[:, 0], out.z[:, 0]
    expected = torch.zeros(())
    for k in range(1, K + 1):
        h = wm.transition(h, z, wm.one_hot_actions(actions[:, k - 1]))
        err = ((wm.reward_head(h).squeeze(-1) - symlog(rewards[:, k - 1])) ** 2).mean(-1)
        keep = torch.tensor([1.0, 1.0 if k - 1 < 3 else 0.0, 1.0])
        expected = expected + (keep * err).mean()
        z = wm.sample_z(wm.prior_logits(h), deterministic=True)
    torch.testing.assert_close(rew_term, expected / K, rtol=1e-5, atol=1e-6)
    # rewards of the later episode do not move the term
    changed = rewards.clone()
    changed[1, 3:] = 1e3
    torch.testing.assert_close(wm.overshoot_loss(out, obs, actions, first, K, changed)[1], rew_term)
    # and it is in the loss with its coefficient
    torch.manual_seed(1)
    loss0, _, _ = wm.loss(obs, actions, rewards, zeros, first, overshoot=K)
    torch.manual_seed(1)
    loss2, stats, _ = wm.loss(obs, actions, rewards, zeros, first, overshoot=K, overshoot_reward_coef=2.0)
    assert stats["wm/overshoot_reward_loss"] > 0
    assert loss2.item() == pytest.approx(loss0.item() + 2.0 * stats["wm/overshoot_reward_loss"], rel=1e-5)


def test_categorical_draw_matches_the_distribution_and_never_draws_zero_mass(monkeypatch: pytest.MonkeyPatch) -> None:
    from genmarl.generative import world_model
    from genmarl.generative.world_model import categorical_draw

    torch.manual_seed(0)
    probs = torch.tensor([0.1, 0.0, 0.2, 0.3, 0.4, 0.0])
    idx = categorical_draw(probs.expand(200_000, 6))
    freq = torch.bincount(idx, minlength=6).float() / idx.numel()
    torch.testing.assert_close(freq, probs, atol=5e-3, rtol=0)  # 5 sigma of 200k draws is < 5e-3
    # unnormalised rows of a batch, each its own distribution
    rows = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 5.0], [0.0, 3.0, 0.0]])
    assert categorical_draw(rows.expand(4, 3, 3)).tolist() == [[0, 2, 1]] * 4
    # the largest uniform torch can return, against a total mass that rounds: still a class with mass
    monkeypatch.setattr(world_model.torch, "rand_like", lambda t: torch.full_like(t, 1.0 - 2**-24))
    mixed = torch.softmax(torch.tensor([0.3, 1.7, -1e9, -1e9]), -1)
    assert categorical_draw(mixed.expand(10, 4)).tolist() == [1] * 10


def test_open_loop_reward_errors_align_with_the_step_rewarded() -> None:
    """A reward head fixed at c scores (c - r[k-1])^2 at k, over the windows whose episode has not
    restarted in steps 1..k-1 (and whose step k-1 is real)."""
    from genmarl.algos.learner import GroupInfo
    from genmarl.generative.world_model import WorldModel, symlog

    torch.manual_seed(0)
    wm = WorldModel([GroupInfo("a", 2, 5, False, 3)], deter_size=8, stoch_size=2, classes=2, hidden_size=8, attention_heads=2)
    c = -1.5
    with torch.no_grad():
        wm.reward_head[-1].weight.zero_()
        wm.reward_head[-1].bias.fill_(float(symlog(torch.tensor(c))))
    B, H = 4, 3
    obs = {"a": torch.randn(B, H + 1, 2, 5)}
    actions = torch.randint(0, 3, (B, H + 1, 2))
    rewards = torch.randn(B, H + 1, 2)
    first = torch.zeros(B, H + 1, dtype=torch.bool)
    first[1, 2] = True  # window 1 restarts at step 2: its rewards of steps 0, 1 count, of step 2 not
    mask = torch.ones(B, H + 1, dtype=torch.bool)
    mask[3, 2:] = False  # window 3 is padded from step 2
    res = wm.open_loop_errors(obs, actions, first, mask, H, rewards=rewards)
    sq = ((c - rewards) ** 2).mean(-1)  # [B, T]
    keep = {1: [0, 1, 2, 3], 2: [0, 1, 2, 3], 3: [0, 2]}
    for k in range(1, H + 1):
        assert res["reward_error_k"][k - 1] == pytest.approx(float(sq[keep[k], k - 1].mean()), rel=1e-5)


def test_genrl_trains_on_grid_observations(tmp_path) -> None:
    # LBF's [3, 2s+1, 2s+1] layers: replay batches keep the observation shape and are flattened per agent
    cfg = load_config({"algo": "genrl", "env": "lbf", "env_kwargs": {"grid_observation": True, "sight": 2}},
                      overrides=[*RUN, "total_steps=200"])
    result = genmarl.train(cfg, out=tmp_path / "grid")
    assert np.isfinite(result.summary["wm/obs_error_k1"])


@pytest.mark.parametrize("mixing", [True, False])
def test_agent_mixing_decides_whether_an_agent_state_reads_the_others(tmp_path, mixing: bool) -> None:
    """With ``agent_mixing`` the listener's filtered states depend on the speaker's observation and
    action (the transition's attention); without it they depend on the listener's own observations
    and actions only, to float32 rounding, and the model holds no attention parameters. A short
    training run and a saved model's evaluation work without it too."""
    torch.manual_seed(0)
    env = genmarl.make("simple_speaker_listener", num_envs=2, seed=0)
    agent = GenerativeAgent(env, GenRLConfig(env=env.name, num_envs=2, agent_mixing=mixing, **TINY))
    wm = agent.wm
    assert (wm.attn is not None) == mixing and any("attn" in n for n, _ in wm.named_parameters()) == mixing
    B, T = 3, 6
    gen = torch.Generator().manual_seed(1)
    obs = {g.name: torch.randn(B, T, g.num_agents, g.obs_dim, generator=gen) for g in agent.groups}
    actions = torch.stack([torch.randint(0, 3, (B, T), generator=gen), torch.randint(0, 5, (B, T), generator=gen)], -1)
    first = torch.zeros(B, T, dtype=torch.bool)
    first[:, 0] = True
    other_obs = {**obs, "speaker": torch.randn(B, T, 1, obs["speaker"].shape[-1], generator=gen)}
    other_actions = actions.clone()
    other_actions[..., 0] = (actions[..., 0] + 1) % 3  # the speaker says something else
    with torch.no_grad():
        a = wm.observe(obs, actions, first, deterministic=True)
        b = wm.observe(other_obs, other_actions, first, deterministic=True)
    listener = slice(1, 2)
    diff = (a.h[:, 1:, listener] - b.h[:, 1:, listener]).abs().max().item()
    if mixing:
        assert diff > 1e-3  # the speaker's observation and message reach the listener's state
    else:
        assert diff < 1e-6
        torch.testing.assert_close(a.feat[..., listener, :], b.feat[..., listener, :], rtol=0, atol=1e-6)
        assert (a.h[:, 1:, :1] - b.h[:, 1:, :1]).abs().max().item() > 1e-3  # the speaker's own state does change
    with pytest.raises(TypeError, match="agent_mixing"):
        GenRLConfig(agent_mixing="no").validate()
    if not mixing:
        out = tmp_path / "solo"
        assert cli(["train", "--algo", "genrl", "--env", "simple_speaker_listener", "--out", str(out), *RUN, "agent_mixing=false"]) == 0
        assert cli(["eval", str(out), "--episodes", "2", "--policy", "speaker=random"]) == 0
