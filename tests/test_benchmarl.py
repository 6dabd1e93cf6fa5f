"""genmarl.benchmarl: genmarl envs as BenchMARL tasks (BenchMARL pins its own TorchRL, so CI runs
this file in a separate venv with benchmarl; elsewhere it is skipped)."""

from __future__ import annotations

import pytest

pytest.importorskip("benchmarl")
import torch  # noqa: E402

from genmarl.benchmarl import GenmarlTask  # noqa: E402


def test_task_specs_follow_the_env():
    task = GenmarlTask.SIMPLE_TAG.get_task({"max_steps": 20})
    env = task.get_env_fun(num_envs=4, continuous_actions=False, seed=0, device="cpu")()
    assert env.batch_size == (4,) and env.vector_env.max_cycles == 20 and task.max_steps(env) == 20
    assert task.group_map(env) == {"adversary": ["adversary_0", "adversary_1", "adversary_2"], "agent": ["agent_0"]}
    assert task.observation_spec(env)["adversary", "observation"].shape == (3, 16)
    assert task.action_spec(env)["agent", "action"].shape == (1,)
    assert task.action_mask_spec(env) is None and task.supports_continuous_actions()
    cont = task.get_env_fun(num_envs=2, continuous_actions=True, seed=0, device="cpu")()
    assert cont.full_action_spec["agent", "action"].shape == (2, 1, 5)

    lbf = GenmarlTask.LBF.get_task({"env": "Foraging-8x8-2p-2f-coop-v3", "max_steps": 30})
    env = lbf.get_env_fun(num_envs=2, continuous_actions=False, seed=1, device="cpu")()
    assert env.vector_env.max_cycles == 30 and not lbf.supports_continuous_actions()
    assert "action_mask" not in lbf.observation_spec(env)["agent"].keys()
    assert lbf.action_mask_spec(env)["agent", "action_mask"].shape == (2, 6)
    with pytest.raises(TypeError, match="accepted arguments"):
        GenmarlTask.SIMPLE_SPREAD.get_task({"bogus": 1}).get_env_fun(1, False, 0, "cpu")


# BenchMARL 1.5 and its TorchRL 0.11 warn about their own deprecated internals (SyncDataCollector,
# size_average in a loss): shown, not errors, in this test of a third-party training loop
@pytest.mark.filterwarnings("default")
def test_benchmarl_mappo_runs_on_a_genmarl_task(tmp_path):
    from benchmarl.algorithms import MappoConfig
    from benchmarl.experiment import Experiment, ExperimentConfig
    from benchmarl.models.mlp import MlpConfig

    cfg = ExperimentConfig.get_from_yaml()
    cfg.max_n_frames = cfg.on_policy_collected_frames_per_batch  # one iteration
    cfg.on_policy_n_minibatch_iters = 1
    cfg.evaluation = True
    cfg.evaluation_interval = cfg.on_policy_collected_frames_per_batch
    cfg.evaluation_episodes = 4
    cfg.prefer_continuous_actions = False
    cfg.loggers = ["csv"]
    cfg.render = False
    cfg.checkpoint_interval = 0
    cfg.checkpoint_at_end = False
    cfg.save_folder = str(tmp_path)
    cfg.sampling_device = cfg.train_device = cfg.buffer_device = "cpu"
    task = GenmarlTask.LBF.get_task({"env": "Foraging-8x8-2p-2f-coop-v3", "max_steps": 25})
    exp = Experiment(task=task, algorithm_config=MappoConfig.get_from_yaml(), model_config=MlpConfig.get_from_yaml(),
                     critic_model_config=MlpConfig.get_from_yaml(), seed=0, config=cfg)
    exp.run()
    assert exp.total_frames == cfg.on_policy_collected_frames_per_batch
    assert list(tmp_path.rglob("eval_reward_episode_reward_mean.csv"))
    assert torch.isfinite(torch.tensor(exp.mean_return))
