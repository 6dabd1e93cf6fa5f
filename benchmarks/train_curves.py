"""genmarl MAPPO / IPPO learning curves, against random and scripted baselines.

    python benchmarks/train_curves.py --out DIR [--envs simple_spread Foraging-8x8-2p-2f-coop-v3 ...]
        [--algos mappo ippo] [--seeds 0 1 2] [--steps 2000000] [--episodes 200] [--report-only]

For each scenario, algorithm and seed it runs ``genmarl train --algo ALGO`` into DIR/ENV_seedK
(MAPPO) or DIR/ENV_ALGO_seedK (finished runs are reused), then evaluates on the same fresh-env protocol (``--episodes`` deterministic
episodes, one seed for all): the trained policy, a uniformly random policy, and the scripted
heuristic of ``genmarl.training.baselines`` where one exists. For simple_tag, where two groups
are trained against each other, it reports cross-play: trained adversaries against random good
agents (tags per episode) and trained good agents against scripted chasers (good-agent return).
The scenario's per-episode metrics (e.g. LBF's food_collected) are reported with the returns,
and the team return (summed over agents, the quantity EPyMARL tabulates for LBF). Prints a table,
writes DIR/results.json and one learning-curve plot per scenario and algorithm (DIR/ENV[_ALGO].png).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

DEFAULT_ENVS = ["simple_spread", "simple_speaker_listener", "simple_reference", "simple_tag"]


def run(cmd: list[str]) -> None:
    print("  $", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--envs", nargs="+", default=DEFAULT_ENVS)
    p.add_argument("--algos", nargs="+", default=["mappo"], choices=["mappo", "ippo"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=2_000_000)
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--train-args", default="", help="extra key=value overrides for genmarl train")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from genmarl.algos.config import PPOConfig
    from genmarl.algos.ppo import MAPPO
    from genmarl.training import checkpoints
    from genmarl.training.baselines import has_heuristic
    from genmarl.training.evaluate import evaluate
    from genmarl.training.plot import plot_runs

    import genmarl

    results: dict = {}
    for env_name, algo_name in [(e, a) for e in args.envs for a in args.algos]:
        tag = "" if algo_name == "mappo" else f"_{algo_name}"
        runs = []
        for seed in args.seeds:
            run_dir = out / f"{env_name}{tag}_seed{seed}"
            if not (run_dir / "summary.json").exists() and not args.report_only:
                if run_dir.exists():
                    import shutil

                    shutil.rmtree(run_dir)
                run([sys.executable, "-m", "genmarl.cli", "train", "--algo", algo_name, "--env", env_name,
                     "--total-steps", str(args.steps), "--seed", str(seed), "--out", str(run_dir),
                     "progress=false", *args.train_args.split()])
            if (run_dir / "summary.json").exists():
                runs.append(run_dir)
        if not runs:
            continue
        plot_runs(runs, out / f"{env_name}{tag}.png")
        env = genmarl.make(env_name, num_envs=1)
        groups = list(env.groups)
        row: dict = {"algo": algo_name, "num_agents": env.num_agents, "runs": [str(r) for r in runs], "trained": [],
                     "trained_metrics": [], "wall_time_s": [], "env_steps": []}
        for r in runs:
            state = checkpoints.load(r / "model.pt")  # weights_only: a run file never runs code
            cfg = PPOConfig(**state["config"])
            algo = MAPPO(genmarl.make(env_name, num_envs=1, **cfg.env_kwargs), cfg)
            algo.load_state_dict(state)
            summary = json.loads((r / "summary.json").read_text())
            row["wall_time_s"].append(summary["wall_time_s"])
            row["env_steps"].append(summary["env_steps"])
            if env_name == "simple_tag":
                adv = evaluate(algo, args.episodes, policies={"agent": "random"})
                good = evaluate(algo, args.episodes, policies={"adversary": "heuristic"})
                row["trained"].append({"tags_vs_random_good": adv["metrics"]["tags"]["mean"],
                                       "good_return_vs_chasers": good["groups"]["agent"]["mean"]})
            else:
                ev = evaluate(algo, args.episodes)
                row["trained"].append(ev["return"]["mean"])
                row["trained_metrics"].append({k: v["mean"] for k, v in ev["metrics"].items()})
                sampled = evaluate(algo, args.episodes, deterministic=False)
                row.setdefault("trained_sampled", []).append(sampled["return"]["mean"])
        if env_name == "simple_tag":
            rnd = evaluate(None, args.episodes, policies={g: "random" for g in groups}, env_name=env_name)
            chase = evaluate(None, args.episodes, policies={"adversary": "heuristic", "agent": "random"}, env_name=env_name)
            row["random"] = {"tags_vs_random_good": rnd["metrics"]["tags"]["mean"],
                             "good_return_vs_chasers": chase["groups"]["agent"]["mean"]}
            row["heuristic"] = {"tags_vs_random_good": chase["metrics"]["tags"]["mean"]}
        else:
            rnd = evaluate(None, args.episodes, policies={g: "random" for g in groups}, env_name=env_name)
            row["random"] = rnd["return"]["mean"]
            row["random_metrics"] = {k: v["mean"] for k, v in rnd["metrics"].items()}
            if all(has_heuristic(env_name, g) for g in groups):
                row["heuristic"] = evaluate(None, args.episodes, policies={g: "heuristic" for g in groups}, env_name=env_name)["return"]["mean"]
        results[f"{env_name}/{algo_name}"] = row

    (out / "results.json").write_text(json.dumps(results, indent=2))
    print("\ngenmarl, evaluation over", args.episodes, "fresh episodes (deterministic = argmax actions, unless 'sampled');"
          " return = mean episode return per agent")
    for key, row in results.items():
        env_name = key.split("/")[0]
        n = len(row["trained"])
        print(f"\n{key}: {n} seed(s), {row['env_steps'][0]:,} env steps, wall time {sum(row['wall_time_s']) / n:.0f} s per run")
        if env_name == "simple_tag":
            tags = [t["tags_vs_random_good"] for t in row["trained"]]
            good = [t["good_return_vs_chasers"] for t in row["trained"]]
            print(f"  tags per episode against random good agents: trained adversaries {sum(tags) / n:.2f} "
                  f"(seeds {', '.join(f'{t:.2f}' for t in tags)}), random {row['random']['tags_vs_random_good']:.2f}, "
                  f"scripted chasers {row['heuristic']['tags_vs_random_good']:.2f}")
            print(f"  good-agent return against scripted chasers: trained {sum(good) / n:.2f} "
                  f"(seeds {', '.join(f'{t:.2f}' for t in good)}), random {row['random']['good_return_vs_chasers']:.2f}")
        else:
            tr = row["trained"]
            line = f"  trained {sum(tr) / n:.2f} (seeds {', '.join(f'{t:.2f}' for t in tr)}), random {row['random']:.2f}"
            if "heuristic" in row:
                line += f", scripted {row['heuristic']:.2f}"
            print(line)
            A = row["num_agents"]
            print(f"  team return (sum over {A} agents): trained {A * sum(tr) / n:.3f}, random {A * row['random']:.3f}")
            if row.get("trained_sampled"):
                ts = row["trained_sampled"]
                print(f"  team return, sampled actions (same episodes): trained {A * sum(ts) / n:.3f} "
                      f"(seeds {', '.join(f'{A * t:.3f}' for t in ts)})")
            for m in row["trained_metrics"][0] if row["trained_metrics"] else []:
                vals = [t[m] for t in row["trained_metrics"]]
                print(f"  {m}: trained {sum(vals) / n:.3f} (seeds {', '.join(f'{v:.3f}' for v in vals)}), "
                      f"random {row['random_metrics'][m]:.3f}")


if __name__ == "__main__":
    main()
