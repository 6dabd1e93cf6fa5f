"""World-model ablation on a fixed data set: open-loop prediction error vs 'nothing changes'.

Collects one training and one held-out data set from the env (a mix of the scripted heuristic and
uniformly random actions, per agent and step), trains the world model alone for a budget of
gradient updates per variant (same data, same seed), and prints the open-loop errors at k=1 and
k=H as ratios to the trivial predictor, plus the update rate. The variants are the ones the
generative issue asks to measure (decoder targets, symlog, latent sizes, training budget).

    python benchmarks/world_model_ablation.py --updates 2000 --variants absolute,delta,delta_symlog
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

import genmarl
from genmarl.algos.learner import group_infos
from genmarl.buffers import EpisodeBuffer
from genmarl.generative.world_model import WorldModel
from genmarl.training.baselines import heuristic_actions

VARIANTS: dict[str, dict] = {
    "absolute": {},
    "absolute_symlog": {"obs_symlog": True},
    "delta": {"obs_target": "delta"},
    "delta_symlog": {"obs_target": "delta", "obs_symlog": True},
    "delta_8x8": {"obs_target": "delta", "stoch_size": 8, "classes": 8},
    "delta_32x16": {"obs_target": "delta", "stoch_size": 32, "classes": 16},
    "delta_deter256": {"obs_target": "delta", "deter_size": 256},
    "absolute_hdec": {"decoder_input": "deter"},
    "delta_hdec": {"obs_target": "delta", "decoder_input": "deter"},
    "delta_hdec_symlog": {"obs_target": "delta", "decoder_input": "deter", "obs_symlog": True},
    # loss settings ride along under "loss" (WorldModel.loss keyword arguments)
    "delta_kl": {"obs_target": "delta", "loss": {"free_nats": 0.1, "kl_dyn": 1.0}},
    "delta_hdec_kl": {"obs_target": "delta", "decoder_input": "deter", "loss": {"free_nats": 0.1, "kl_dyn": 1.0}},
    "absolute_hdec_kl": {"decoder_input": "deter", "loss": {"free_nats": 0.1, "kl_dyn": 1.0}},
    "absolute_os8": {"loss": {"overshoot": 8}},
    "delta_os8": {"obs_target": "delta", "loss": {"overshoot": 8}},
    "delta_hdec_os8": {"obs_target": "delta", "decoder_input": "deter", "loss": {"overshoot": 8}},
    "absolute_hdec_os8": {"decoder_input": "deter", "loss": {"overshoot": 8}},
    "both_os8": {"obs_target": "both", "loss": {"overshoot": 8}},
    "both_os8_rew": {"obs_target": "both", "loss": {"overshoot": 8, "overshoot_reward_coef": 1.0}},
}


def collect(env_name: str, steps: int, seed: int, epsilon: float, num_envs: int = 32) -> tuple[EpisodeBuffer, list]:
    env = genmarl.make(env_name, num_envs=num_envs, seed=seed)
    groups = group_infos(env)
    buf = EpisodeBuffer.for_env(env, steps + num_envs, seed=seed)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset_grouped(seed=seed)
    for _ in range(steps // num_envs):
        rand = env.sample_actions(rng, grouped=True)
        acts = {}
        for g in env.groups:
            try:
                h = heuristic_actions(env, g, obs[g])
            except (ValueError, KeyError, NotImplementedError):
                h = rand[g]
            acts[g] = np.where(rng.random(h.shape) < epsilon, rand[g], h).astype(np.int64)
        nxt, rew, term, trunc, infos = env.step_grouped(acts)
        step = {}
        for g in env.groups:
            step[f"{g}/obs"], step[f"{g}/action"], step[f"{g}/reward"] = obs[g], acts[g], rew[g]
            step[f"{g}/terminated"], step[f"{g}/truncated"] = term[g], trunc[g]
        buf.add_step(step)
        obs = nxt
    return buf, groups


def tensors(batch: dict, groups: list) -> dict:
    return {
        "obs": {g.name: torch.as_tensor(batch[f"{g.name}/obs"]) for g in groups},
        "actions": torch.cat([torch.as_tensor(batch[f"{g.name}/action"]) for g in groups], -1),
        "rewards": torch.cat([torch.as_tensor(batch[f"{g.name}/reward"]) for g in groups], -1).float(),
        "terminated": torch.cat([torch.as_tensor(batch[f"{g.name}/terminated"]) for g in groups], -1).float(),
        "is_first": torch.as_tensor(batch["is_first"]),
        "mask": torch.as_tensor(batch["mask"]),
    }


def evaluate(wm: WorldModel, val: dict, horizon: int) -> dict:
    res = wm.open_loop_errors(val["obs"], val["actions"], val["is_first"], val["mask"], horizon, rewards=val["rewards"])
    k1, kh = res["obs_error_k"][0], res["obs_error_k"][-1]
    t1, th = res["obs_error_trivial_k"][0], res["obs_error_trivial_k"][-1]
    below = all(e < t for e, t in zip(res["obs_error_k"], res["obs_error_trivial_k"], strict=True))
    return {"k1": k1, "k1_ratio": k1 / t1, f"kH": kh, "kH_ratio": kh / th, "below_trivial_all_k": below,
            "recon": res["recon_error"], "reward_k1": res["reward_error_k"][0], "reward_kH": res["reward_error_k"][-1]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="simple_spread")
    p.add_argument("--data-steps", type=int, default=100_000)
    p.add_argument("--epsilon", type=float, default=0.5, help="share of uniformly random actions")
    p.add_argument("--updates", type=int, default=2000)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=16)
    p.add_argument("--horizon", type=int, default=15)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--variants", default="absolute,delta")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    train_buf, groups = collect(args.env, args.data_steps, args.seed, args.epsilon)
    val_buf, _ = collect(args.env, 20_000, args.seed + 1000, args.epsilon)
    val = tensors(val_buf.sample_sequences(1024, args.horizon + 1, mode="pad"), groups)
    print(f"data: {args.data_steps} + 20000 env steps of {args.env} in {time.perf_counter() - t0:.1f} s")
    results = {}
    for name in args.variants.split(","):
        torch.manual_seed(args.seed)
        model_kw = {k: v for k, v in VARIANTS[name].items() if k != "loss"}
        loss_kw = VARIANTS[name].get("loss", {})
        wm = WorldModel(groups, **{"deter_size": 128, "stoch_size": 16, "classes": 16, "hidden_size": 128,
                                   "layers": 1, **model_kw})
        opt = torch.optim.Adam(wm.parameters(), lr=args.lr, eps=1e-6)
        curve = []
        t_train = 0.0
        for u in range(1, args.updates + 1):
            b = tensors(train_buf.sample_sequences(args.batch_size, args.seq_len, mode="stitch"), groups)
            t = time.perf_counter()
            loss, _, _ = wm.loss(b["obs"], b["actions"], b["rewards"], b["terminated"], b["is_first"], **loss_kw)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(wm.parameters(), 100.0)
            opt.step()
            t_train += time.perf_counter() - t
            if u % args.eval_every == 0 or u == args.updates:
                r = evaluate(wm, val, args.horizon)
                curve.append({"updates": u, **r})
                print(f"{name:>16} {u:6d} updates: k1 {r['k1']:.4f} ({r['k1_ratio']:.2f}x trivial)  "
                      f"k{args.horizon} {r['kH']:.4f} ({r['kH_ratio']:.2f}x)  all k below trivial: {r['below_trivial_all_k']}  "
                      f"reward error k1 {r['reward_k1']:.4f} k{args.horizon} {r['reward_kH']:.4f}",
                      flush=True)
        results[name] = {"curve": curve, "updates_per_s": args.updates / t_train}
        print(f"{name:>16}: {args.updates / t_train:.1f} world-model updates/s", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "results": results}, fh, indent=1)


if __name__ == "__main__":
    main()
