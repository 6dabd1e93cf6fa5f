"""genmarl train --workers N: MAPPO rollouts and the generative agent's replay streams on Ray actors
(a local Ray cluster started by the test): it learns, a killed worker is replaced without losing the
learner, genrl's streamed experience does not depend on timing, resume works, bad input is refused first."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

pytest.importorskip("torch")
ray = pytest.importorskip("ray")

import genmarl  # noqa: E402
from genmarl.algos.config import PPOConfig, load_config  # noqa: E402
from genmarl.algos.learner import Learner  # noqa: E402
from genmarl.cli import main as cli  # noqa: E402
from genmarl.distributed import ReplayWorkersLearner, RolloutWorkersLearner, shard_sizes, worker_seed  # noqa: E402


def test_shards_and_seeds():
    assert shard_sizes(10, 3) == [4, 3, 3] and sum(shard_sizes(128, 2)) == 128
    with pytest.raises(ValueError, match="at least workers"):
        shard_sizes(2, 3)
    assert len({worker_seed(0, i) for i in range(4)} | {worker_seed(1, i) for i in range(4)}) == 8
    assert worker_seed(0, 1, restarts=1) != worker_seed(0, 1)


def test_a_killed_worker_is_replaced_and_the_learner_goes_on(local_ray):
    cfg = PPOConfig(num_envs=8, num_steps=10, workers=2, total_steps=1000, update_epochs=1).validate()
    env = genmarl.make(cfg.env, num_envs=cfg.num_envs, seed=0)
    algo = RolloutWorkersLearner(env, cfg)
    assert isinstance(algo, Learner)
    algo.reset()
    algo.collect()
    algo.update()
    weights = [p.detach().clone() for p in algo.local.actors.parameters()]
    pids = algo.worker_pids()
    os.kill(pids[1], signal.SIGKILL)
    stats = algo.collect()  # worker 1 is restarted and its collection retried
    assert algo.restarts == [0, 1] and algo.env_steps == 2 * 8 * 10
    assert algo.worker_pids()[1] != pids[1]
    assert set(stats) == {"episode_returns", "group_returns", "episode_lengths"}
    for a, b in zip(weights, algo.local.actors.parameters(), strict=True):  # the learner's state survived
        assert (a == b).all()
    algo.update()
    assert algo.updates == 2 and np.isfinite(algo.local.rollout["agent/advantage"]).all()


def test_workers_mappo_beats_random(local_ray, tmp_path):
    from genmarl.training.evaluate import evaluate

    cfg = load_config({"env": "simple_spread", "workers": 2}, overrides=[
        "total_steps=32000", "num_envs=32", "eval_every=0", "eval_episodes=50", "checkpoint_every=0",
        "progress=false", "tensorboard=false",
    ])  # fmt: skip
    result = genmarl.train(cfg, out=tmp_path / "run")
    random = evaluate(None, 50, env_name="simple_spread", seed=cfg.seed + 1_000_003, policies={"agent": "random"})
    assert result.summary["env_steps"] == 32000
    assert result.eval_return > random["return"]["mean"] + 2.0, (result.eval_return, random["return"]["mean"])


def test_bad_input_is_refused_before_anything_runs(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli(["train", "--workers", "0", "--out", str(tmp_path / "a")])
    assert "--workers" in capsys.readouterr().err
    for overrides, message in (
        (["workers=-1"], "workers must be >= 0"),
        (["algo=genrl", "workers=2", "num_envs=1"], "at least workers"),
        (["workers=4", "num_envs=2"], "at least workers"),
    ):
        with pytest.raises(ValueError, match=message):
            load_config(overrides=overrides)
    out = tmp_path / "never"
    assert cli(["train", "--workers", "2", "--ray-address", "127.0.0.1:1", "--out", str(out)]) == 2
    assert "cannot reach the Ray cluster" in capsys.readouterr().err and not out.exists()


# ---- the generative agent: workers stream steps into the learner's replay ----------------------

GENRL = [
    "algo=genrl", "workers=2", "num_envs=4", "num_steps=5", "total_steps=400", "prefill_steps=40", "replay_ratio=0.05",
    "eval_every=200", "eval_episodes=4", "checkpoint_every=200", "progress=false", "tensorboard=false", "batch_size=4",
    "seq_len=4", "horizon=3", "deter_size=16", "stoch_size=2", "classes=4", "hidden_size=16", "ac_hidden_size=16",
    "attention_heads=2", "reward_hidden_size=16", "buffer_capacity=2000",
]  # fmt: skip


def _genrl_learner() -> ReplayWorkersLearner:
    cfg = load_config(overrides=GENRL)
    algo = ReplayWorkersLearner(genmarl.make(cfg.env, num_envs=cfg.num_envs, seed=cfg.seed), cfg)
    assert isinstance(algo, Learner)
    algo.reset()
    return algo


def test_genrl_workers_stream_into_the_replay_and_survive_a_killed_worker(local_ray):
    algo = _genrl_learner()
    assert algo.pool.sizes == [2, 2]
    algo.collect()  # prefilling: random actions on both shards
    assert algo.env_steps == 20 and len(algo.local.buffer) == 20
    algo.collect()
    algo.update()  # past prefill_steps: gradient updates on the streamed steps
    assert algo.local.grad_steps == 2  # replay_ratio 0.05 x 40 env steps
    batch = algo.local.buffer.sample_sequences(64, 4, mode="pad")
    assert set(np.unique(batch["env_ids"])) == {0, 1, 2, 3}  # both shards' columns filled
    weights = [p.detach().clone() for p in algo.local.wm.parameters()]
    pids = algo.worker_pids()
    os.kill(pids[1], signal.SIGKILL)
    # a collection the worker had finished before it died is kept (Ray holds its result); the next one,
    # sent to the dead actor, is lost: the worker is restarted and that collection retried
    algo.collect()
    stats = algo.collect()
    assert algo.restarts == [0, 1] and algo.worker_pids()[1] != pids[1]
    assert algo.env_steps == 80 and len(algo.local.buffer) == 80
    assert set(stats) == {"episode_returns", "group_returns", "episode_lengths"}
    for a, b in zip(weights, algo.local.wm.parameters(), strict=True):  # collecting never touches the learner's state
        assert (a == b).all()
    before = algo.local.grad_steps
    algo.update()
    assert algo.local.grad_steps > before


def test_genrl_workers_experience_does_not_depend_on_timing(local_ray):
    """The steps streamed in are a function of the seeds and of the weights sent, not of when the
    workers' collections arrive: two learners fed alike hold the same replay, byte for byte."""
    buffers = []
    for _ in range(2):
        algo = _genrl_learner()
        for _ in range(3):  # the third collection acts with the policy
            algo.collect()
            algo.update()
        buffers.append(algo.local.buffer_bytes())
        assert algo.local.grad_steps > 0
    assert buffers[0] == buffers[1]


def test_genrl_workers_run_resumes(local_ray, tmp_path):
    cfg = load_config(overrides=GENRL)
    full = genmarl.train(cfg, out=tmp_path / "full")
    assert full.summary["env_steps"] == 400 and np.isfinite(full.eval_return)
    part = tmp_path / "part"  # stopped after the 200-step checkpoint, resumed with fresh workers
    import shutil

    shutil.copytree(full.run_dir, part)
    shutil.copy(part / "checkpoints" / "step_200.pt", part / "checkpoints" / "latest.pt")
    from genmarl.training import checkpoints

    state = checkpoints.load(part / "checkpoints" / "latest.pt", map_location="cpu")
    assert len(state["algo"]["buffer"]) > 0  # the replay travels with the checkpoint
    resumed = genmarl.train(cfg, out=part, resume=True)
    assert resumed.summary["env_steps"] == 400 and np.isfinite(resumed.eval_return)


def test_an_env_registered_at_run_time_reaches_the_workers(local_ray):
    """genmarl.register'ed factories travel to the workers (pickled), which could not make the env otherwise."""
    from genmarl.envs.registry import registration

    seen = []

    def factory(num_envs, num_threads=None, seed=0, **kwargs):  # a closure: pickled by value
        seen.append(num_envs)
        return genmarl.make("simple_spread", num_envs=num_envs, num_threads=num_threads, seed=seed, **kwargs)

    genmarl.register("spread_from_python", factory, overwrite=True)
    try:
        assert registration("spread_from_python")["factory"] is factory and registration("simple_spread") is None
        cfg = PPOConfig(env="spread_from_python", num_envs=4, num_steps=5, workers=2, total_steps=40, update_epochs=1).validate()
        algo = RolloutWorkersLearner(genmarl.make(cfg.env, num_envs=cfg.num_envs, seed=0), cfg)
        algo.reset()
        algo.collect()
        assert algo.env_steps == 20 and seen == [4]  # the workers' shards were made in their own processes
    finally:
        genmarl.unregister("spread_from_python")


def test_mappo_workers_run_resumes(local_ray, tmp_path):
    import shutil

    cfg = PPOConfig(num_envs=8, num_steps=10, workers=2, total_steps=480, update_epochs=1, eval_every=0, eval_episodes=4,
                    checkpoint_every=240, progress=False, tensorboard=False).validate()  # fmt: skip
    full = genmarl.train(cfg, out=tmp_path / "full")
    part = tmp_path / "part"  # stopped after the 240-step checkpoint, resumed with fresh workers
    shutil.copytree(full.run_dir, part)
    shutil.copy(part / "checkpoints" / "step_240.pt", part / "checkpoints" / "latest.pt")
    resumed = genmarl.train(cfg, out=part, resume=True)
    assert resumed.summary["env_steps"] == 480 and np.isfinite(resumed.eval_return)
    with open(part / "metrics.csv") as fh:
        assert sum(1 for _ in fh) == 1 + 480 // 80  # one row per update, none repeated
