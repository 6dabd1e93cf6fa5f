"""How much a trained speaker's message says about the goal (simple_speaker_listener).

    python benchmarks/genrl_message_info.py RUN_OR_CHECKPOINT [...] [--episodes 96] [--seed 777]

Each argument is a run directory (its ``model.pt``) or a checkpoint file of ``genmarl train``
(``RUN/checkpoints/step_N.pt``). The learner acts deterministically, as in the training
evaluations, for ``--episodes`` episodes on fresh envs (rounded up to whole batches of 16 envs). The speaker observes only the goal's colour
(a one-hot of 3); its action is the message the listener hears. Printed per model: the mutual
information I(goal; message) in nats (log 3 = 1.099 when each goal gets its own message, 0 when the
message ignores the goal) over all steps, at the first step, and at the step t where it is largest
(the speaker is recurrent, so it may signal at some steps only), the goal x message counts, and the
mean return per agent. (A plug-in estimate of I(goal; whole message sequence) is not printed: with
~100 episodes and dozens of distinct sequences it is biased far upwards.)

A listener can only learn to go to the goal once the message carries it, so a speaker with
I(goal; message) near 0 explains a return stuck near that of ignoring the message.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import genmarl
from genmarl.algos.config import config_from_dict
from genmarl.algos.learner import env_actions
from genmarl.training import checkpoints
from genmarl.training.runner import make_learner


def load_learner(path: Path, num_envs: int):
    """The learner of a run directory's model.pt or of a training checkpoint, on a fresh env."""
    file = path / "model.pt" if path.is_dir() else path
    state = checkpoints.load(file, what="a model.pt or checkpoint written by genmarl train")
    state = state["algo"] if "algo" in state else state  # a checkpoint nests the learner's state
    cfg = config_from_dict(state["config"])
    if cfg.env != "simple_speaker_listener":
        raise ValueError(f"{file} was trained on {cfg.env}; this measures simple_speaker_listener's message")
    env = genmarl.make(cfg.env, num_envs=num_envs, seed=cfg.seed, **cfg.env_kwargs)
    algo = make_learner(env, cfg)
    algo.load_acting_weights(state)
    return algo, env


def mutual_information(counts: np.ndarray) -> float:
    """I(X; Y) in nats of a joint count table."""
    p = counts / counts.sum()
    px, py = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log(p[nz] / (px @ py)[nz])).sum())


def measure(path: Path, episodes: int, seed: int, num_envs: int = 16) -> dict:
    algo, env = load_learner(path, num_envs)
    steps = int(env.max_cycles)
    per_step = np.zeros((steps, 3, 3))  # [t, goal, message]
    returns = []
    for batch in range(-(-episodes // num_envs)):
        obs, _ = env.reset_grouped(seed=seed + batch)
        reset = np.ones(num_envs, bool)
        total = np.zeros(num_envs)
        for t in range(steps):
            actions = algo.act(obs, deterministic=True, reset=reset)
            goal = np.asarray(obs["speaker"])[:, 0, :3].argmax(-1)
            np.add.at(per_step[t], (goal, np.asarray(actions["speaker"])[:, 0]), 1)
            obs, rew, *_ = env.step_grouped(env_actions(actions))
            total += np.asarray(rew["listener"])[:, 0]  # shared reward: the listener's is everyone's
            reset = np.zeros(num_envs, bool)
        returns.append(total)
    counts = per_step.sum(0)
    at_t = np.array([mutual_information(c) for c in per_step])
    return {"mi": mutual_information(counts), "mi_first": float(at_t[0]), "mi_max": float(at_t.max()),
            "mi_max_step": int(at_t.argmax()), "counts": counts.astype(int), "return": float(np.concatenate(returns).mean())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", type=Path)
    p.add_argument("--episodes", type=int, default=96)
    p.add_argument("--seed", type=int, default=777)
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f"I(goal; message) in nats (max log 3 = {np.log(3):.3f}), deterministic acting, {args.episodes} episodes")
    for path in args.models:
        r = measure(path, args.episodes, args.seed)
        rows = " ".join("[" + " ".join(f"{c:4d}" for c in row) + "]" for row in r["counts"])
        print(f"{str(path):60s} I all steps {r['mi']:.3f}, first {r['mi_first']:.3f}, max {r['mi_max']:.3f} "
              f"(t={r['mi_max_step']})  return {r['return']:7.2f}  goal x message {rows}")


if __name__ == "__main__":
    main()
