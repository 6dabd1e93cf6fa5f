"""genmarl train --workers N: MAPPO rollouts on Ray actors (a local Ray cluster started by the test):
it learns, a killed worker is replaced without losing the learner, bad input is refused first."""

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
from genmarl.distributed import RolloutWorkersLearner, shard_sizes, worker_seed  # noqa: E402


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
        (["algo=genrl", "workers=2"], "genrl does not support workers"),
        (["workers=4", "num_envs=2"], "at least workers"),
    ):
        with pytest.raises(ValueError, match=message):
            load_config(overrides=overrides)
    out = tmp_path / "never"
    assert cli(["train", "--workers", "2", "--ray-address", "127.0.0.1:1", "--out", str(out)]) == 2
    assert "cannot reach the Ray cluster" in capsys.readouterr().err and not out.exists()
