"""Sample efficiency of the generative agent (genrl) against genmarl MAPPO, with and without planning.

    python benchmarks/genrl_vs_mappo.py --out DIR [--env simple_spread] [--seeds 0 1 2]
        [--steps 400000] [--mappo-steps 2000000] [--mappo-runs RUN ...] [--plan 16]
        [--episodes 100] [--train-args "key=value ..."] [--report-only]

For each seed it trains ``genmarl train --algo genrl`` into DIR/genrl_ENV_seedK and, unless
``--mappo-runs`` names finished MAPPO runs, ``genmarl train --algo mappo`` for ``--mappo-steps``
into DIR/mappo_ENV_seedK (finished runs are reused). Both use the runner's evaluation protocol
(deterministic policy, the same fresh-env seed, ``eval_episodes`` episodes). It then evaluates
every genrl run with planning (``--plan K``) and without it on one more fresh-env seed, and prints:
MAPPO's final return (the target), genrl's final return and the first env step at which the mean of
genrl's evaluations over seeds reached the target, wall times, the world-model diagnostics
(1-step error vs 'next = current', behaviour-prediction accuracy vs the most-frequent-action
baseline) and the planning gain. Writes DIR/results_ENV.json and DIR/ENV_genrl_vs_mappo.png
(return vs env steps and vs wall time, mean and min-max band over seeds).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np


def run(cmd: list[str]) -> None:
    print("  $", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def evals(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(env steps, eval return) of every evaluation in a run's metrics.csv."""
    with open(run_dir / "metrics.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("eval/return_mean")]
    return np.array([float(r["env_steps"]) for r in rows]), np.array([float(r["eval/return_mean"]) for r in rows])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--env", default="simple_spread")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=400_000)
    p.add_argument("--mappo-steps", type=int, default=2_000_000)
    p.add_argument("--mappo-runs", nargs="*", default=None, help="finished MAPPO run directories to compare with")
    p.add_argument("--plan", type=int, default=16)
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--train-args", default="")
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    exe = [sys.executable, "-m", "genmarl.cli"]
    genrl_runs = [out / f"genrl_{args.env}_seed{s}" for s in args.seeds]
    mappo_runs = [Path(r) for r in args.mappo_runs] if args.mappo_runs else [out / f"mappo_{args.env}_seed{s}" for s in args.seeds]
    if not args.report_only:
        for s, d in zip(args.seeds, genrl_runs, strict=True):
            if not (d / "summary.json").exists():
                run([*exe, "train", "--algo", "genrl", "--env", args.env, "--total-steps", str(args.steps), "--seed", str(s),
                     "--out", str(d), "progress=false", *args.train_args.split()])  # fmt: skip
        if not args.mappo_runs:
            for s, d in zip(args.seeds, mappo_runs, strict=True):
                if not (d / "summary.json").exists():
                    run([*exe, "train", "--algo", "mappo", "--env", args.env, "--total-steps", str(args.mappo_steps), "--seed", str(s),
                         "--out", str(d), "progress=false"])  # fmt: skip
        for d in genrl_runs:
            for k in (0, args.plan):
                target = d / f"eval_plan{k}.json"
                if not target.exists():
                    run([*exe, "eval", str(d), "--episodes", str(args.episodes), "--deterministic", "--plan", str(k)])
                    (d / "eval_cli.json").rename(target)

    def summaries(runs: list[Path]) -> list[dict]:
        return [json.loads((d / "summary.json").read_text()) for d in runs]

    g, m = summaries(genrl_runs), summaries(mappo_runs)
    target = float(np.mean([s["eval/return_mean"] for s in m]))
    # first evaluation step at which genrl's mean over seeds reaches the target
    curves = [evals(d) for d in genrl_runs]
    steps = curves[0][0]
    reached = None
    if all(len(c[0]) == len(steps) and np.all(c[0] == steps) for c in curves):
        mean_curve = np.mean([c[1] for c in curves], 0)
        hit = np.nonzero(mean_curve >= target)[0]
        reached = int(steps[hit[0]]) if len(hit) else None
    plan = {k: [json.loads((d / f"eval_plan{k}.json").read_text())["return"]["mean"] for d in genrl_runs] for k in (0, args.plan)}
    res = {
        "env": args.env,
        "mappo": {"env_steps": m[0]["env_steps"], "returns": [s["eval/return_mean"] for s in m], "mean": target,
                  "wall_time_s": [s["wall_time_s"] for s in m]},
        "genrl": {"env_steps": g[0]["env_steps"], "returns": [s["eval/return_mean"] for s in g],
                  "mean": float(np.mean([s["eval/return_mean"] for s in g])), "wall_time_s": [s["wall_time_s"] for s in g],
                  "reached_target_at": reached,
                  **{k: [s.get(k) for s in g] for k in ("wm/obs_error_k1", "wm/obs_error_trivial", "wm/reward_error",
                                                        "wm/behaviour_acc", "wm/behaviour_acc_baseline", "wm/behaviour_acc_chance",
                                                        "wm/imagined_return", "wm/real_return")}},
        "planning": {"plan": args.plan, "without": plan[0], "with": plan[args.plan],
                     "gain": float(np.mean(plan[args.plan]) - np.mean(plan[0]))},
    }  # fmt: skip
    (out / f"results_{args.env}.json").write_text(json.dumps(res, indent=2))
    gr = res["genrl"]
    print(f"\n{args.env}: MAPPO at {res['mappo']['env_steps']:,} env steps: {target:.2f} "
          f"({', '.join(f'{x:.2f}' for x in res['mappo']['returns'])}), wall {np.mean(res['mappo']['wall_time_s']):.0f} s")
    print(f"genrl at {gr['env_steps']:,} env steps: {gr['mean']:.2f} ({', '.join(f'{x:.2f}' for x in gr['returns'])}), "
          f"wall {np.mean(gr['wall_time_s']):.0f} s; mean reached MAPPO's return at: {reached if reached else 'not reached'}")
    print(f"world model (mean over seeds): 1-step obs error {np.mean(gr['wm/obs_error_k1']):.4f} vs next=current "
          f"{np.mean(gr['wm/obs_error_trivial']):.4f}; behaviour accuracy {np.mean(gr['wm/behaviour_acc']):.3f} vs most-frequent "
          f"{np.mean(gr['wm/behaviour_acc_baseline']):.3f} (chance {np.mean(gr['wm/behaviour_acc_chance']):.3f})")
    print(f"planning K={args.plan}: {np.mean(plan[args.plan]):.2f} vs {np.mean(plan[0]):.2f} without ({res['planning']['gain']:+.2f})")
    from genmarl.training.plot import plot_runs

    print("wrote", plot_runs([*genrl_runs, *mappo_runs], out / f"{args.env}_genrl_vs_mappo.png"))


if __name__ == "__main__":
    main()
