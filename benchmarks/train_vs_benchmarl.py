"""MAPPO on simple_spread: genmarl side by side with BenchMARL (the anchor), same env steps.

    python benchmarks/train_vs_benchmarl.py --seeds 0 1 2 --steps 2000000 --out DIR \\
        [--benchmarl-python /work/venv_bm/bin/python] [--quick] [--report-only]

For each seed, one after the other (never concurrently, so the timings are not shared):

(a) BenchMARL's MAPPO on PettingZoo MPE ``simple_spread_v3`` (N=3, max_cycles=25,
    local_ratio=0.5, discrete actions), run by ``--benchmarl-python`` (a separate venv:
    BenchMARL pins its own TorchRL) on this very file (``_benchmarl_worker``), into
    ``DIR/benchmarl_K``. BenchMARL's defaults are kept (``base_experiment.yaml``, ``mappo.yaml``,
    ``layers/mlp.yaml``): 6000 frames per batch from 10 envs stepped one after the other, 45
    epochs of 15 minibatches of 400 frames, Adam lr 5e-5 (eps 1e-6), grad-norm clip 5,
    gamma 0.99, GAE lambda 0.9, clip 0.2, no entropy bonus, shared actor and shared central
    critic (MLP 256x256 tanh). Changed: ``max_cycles`` 100 -> 25 (the task asked for),
    ``prefer_continuous_actions`` False (BenchMARL picks continuous actions for simple_spread
    otherwise), CSV logging only, no rendering, evaluation every ``--bm-eval-interval`` frames on
    ``--bm-eval-episodes`` deterministic episodes, plus one evaluation at the very end.
    PettingZoo >= 1.25 moved MPE to the ``mpe2`` package and ``pettingzoo.mpe`` now raises
    ImportError, which TorchRL's PettingZoo lookup does not catch: the worker points
    ``pettingzoo.utils.all_modules`` at ``mpe2``'s modules (the same dynamics genmarl is tested
    against).
(b) genmarl's MAPPO: ``genmarl train --algo mappo --env simple_spread --total-steps S
    --num-envs 128 --seed K --out DIR/genmarl_K`` (skipped with a note where ``genmarl train``
    is not available).

Then it prints, per seed and as mean ± std over seeds: the final evaluation return per agent
(the mean over agents of each agent's undiscounted episode return, averaged over the evaluation
episodes: BenchMARL's ``eval/agent/reward/episode_reward_mean`` is exactly that, and so is
genmarl's ``eval/return_mean``), wall time, env steps/s, and the ratios; and writes learning
curves (return vs env steps and vs wall time, mean and min-max band over seeds) to
DIR/curves.png and the table to DIR/results.json.

Wall time is the training loop's, as each library reports it: BenchMARL's
``timers/total_time`` (collection + training + its periodic evaluations, without setup and
without the extra final evaluation); genmarl's ``wall_time_s`` (the same scope). An env step is
one step of one environment with all its agents (BenchMARL's "frame").

Runs whose outputs are already complete in DIR are reused (``--force`` reruns them);
``--report-only`` only reads DIR.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

FRAMES_PER_BATCH = 6000  # BenchMARL's on_policy_collected_frames_per_batch default
QUICK_STEPS = 12_000

# --------------------------------------------------------------------------------------
# BenchMARL worker (runs inside the BenchMARL venv; imports nothing from genmarl)
# --------------------------------------------------------------------------------------


def _install_mpe2_shim() -> str:
    """Makes TorchRL's PettingZoo lookup find the MPE scenarios of the ``mpe2`` package.

    TorchRL's ``PettingZooEnv`` resolves ``task="simple_spread_v3"`` through
    ``pettingzoo.utils.all_modules`` (falling back to ``pettingzoo.mpe.all_modules``). Since
    PettingZoo 1.25 MPE lives in ``mpe2`` and importing ``pettingzoo.mpe`` raises ImportError.
    """
    import types

    import mpe2.all_modules

    shim = types.ModuleType("pettingzoo.utils.all_modules")
    shim.all_environments = dict(mpe2.all_modules.mpe_environments)
    sys.modules["pettingzoo.utils.all_modules"] = shim
    return f"mpe2 {getattr(mpe2, '__version__', '?')}"


def _benchmarl_worker(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="train_vs_benchmarl.py _benchmarl_worker")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--eval-interval", type=int, default=120_000)
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args(argv)

    import importlib.metadata as md

    env_pkg = _install_mpe2_shim()
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    from benchmarl.algorithms import MappoConfig
    from benchmarl.environments import PettingZooTask
    from benchmarl.experiment import Experiment, ExperimentConfig
    from benchmarl.models.mlp import MlpConfig

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    task = PettingZooTask.SIMPLE_SPREAD.get_from_yaml()
    task.config.update({"max_cycles": 25, "N": 3, "local_ratio": 0.5})

    cfg = ExperimentConfig.get_from_yaml()
    fpb = cfg.on_policy_collected_frames_per_batch
    n_iters = max(1, math.ceil(a.steps / fpb))
    cfg.max_n_frames = n_iters * fpb  # BenchMARL collects whole batches
    cfg.evaluation_interval = max(1, round(a.eval_interval / fpb)) * fpb  # must be a multiple
    cfg.evaluation_episodes = a.eval_episodes
    cfg.prefer_continuous_actions = False
    cfg.loggers = ["csv"]
    cfg.render = False
    cfg.create_json = True
    cfg.checkpoint_interval = 0
    cfg.checkpoint_at_end = False
    cfg.save_folder = str(out)
    cfg.sampling_device = cfg.train_device = cfg.buffer_device = "cpu"

    evals_path = out / "evals.jsonl"
    if evals_path.exists():
        evals_path.unlink()
    t_setup = time.perf_counter()
    exp = Experiment(
        task=task,
        algorithm_config=MappoConfig.get_from_yaml(),
        model_config=MlpConfig.get_from_yaml(),
        critic_model_config=MlpConfig.get_from_yaml(),
        seed=a.seed,
        config=cfg,
    )
    last_eval_frames = [-1]
    t_start = [time.perf_counter()]
    orig_on_eval_end = exp._on_evaluation_end

    def on_evaluation_end(rollouts):
        """Appends every evaluation (frames, per-agent return) to evals.jsonl, a cross-check."""
        rets = []
        for td in rollouts:  # already cut at the first done by BenchMARL's logger
            for group in exp.group_map:
                r = td.get(("next", group, "reward"))  # [T, n_agents, 1]
                rets.append(r.sum(0).mean().item())  # mean over agents of the episode return
        n = len(rets)
        mean = sum(rets) / n
        std = (sum((x - mean) ** 2 for x in rets) / n) ** 0.5
        last_eval_frames[0] = exp.total_frames
        rec = {
            "iter": exp.n_iters_performed,
            "env_steps": exp.total_frames,
            "since_start_s": time.perf_counter() - t_start[0],
            "return_mean": mean,
            "return_std": std,
            "episodes": n,
        }
        with open(evals_path, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
        orig_on_eval_end(rollouts)

    exp._on_evaluation_end = on_evaluation_end
    assert not exp.continuous_actions, "expected discrete actions"
    assert list(exp.group_map) == ["agent"] and len(exp.group_map["agent"]) == 3, exp.group_map
    setup_s = time.perf_counter() - t_setup

    # BenchMARL evaluates when total_frames is a multiple of evaluation_interval; add one
    # evaluation of the final policy before the experiment closes its envs.
    orig_close = exp.close

    def close_with_final_eval():
        done = exp.n_iters_performed >= cfg.get_max_n_iters(True)
        if done and last_eval_frames[0] != exp.total_frames:
            exp._evaluation_loop()
            exp.logger.commit()
        orig_close()

    exp.close = close_with_final_eval
    t0 = t_start[0] = time.perf_counter()
    exp.run()
    run_s = time.perf_counter() - t0

    with open(evals_path) as fh:
        evals = [json.loads(line) for line in fh if line.strip()]
    versions = {}
    for pkg in ("benchmarl", "torchrl", "tensordict", "torch", "pettingzoo", "mpe2", "numpy"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    summary = {
        "library": "benchmarl",
        "seed": a.seed,
        "env_steps": exp.total_frames,
        "wall_time_s": exp.total_time,  # sum of iteration times (collection+training+evals)
        "run_s": run_s,  # exp.run() including the final evaluation and closing
        "setup_s": setup_s,
        "eval/return_mean": evals[-1]["return_mean"],
        "eval/return_std": evals[-1]["return_std"],
        "eval/episodes": evals[-1]["episodes"],
        "env": env_pkg,
        "versions": versions,
        "torch_threads": torch.get_num_threads(),
        "task_config": dict(task.config),
        "experiment_config": {
            k: getattr(cfg, k)
            for k in (
                "max_n_frames", "on_policy_collected_frames_per_batch", "on_policy_n_envs_per_worker",
                "on_policy_n_minibatch_iters", "on_policy_minibatch_size", "lr", "adam_eps", "gamma",
                "clip_grad_norm", "clip_grad_val", "share_policy_params", "evaluation_interval",
                "evaluation_episodes", "evaluation_deterministic_actions", "parallel_collection",
            )
        },
        "algorithm_config": {k: v for k, v in vars(exp.algorithm_config).items() if not k.startswith("_")},
        "experiment_folder": str(exp.folder_name),
    }
    (out / "benchmarl_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(
        f"benchmarl seed {a.seed}: {summary['env_steps']} env steps in {summary['wall_time_s']:.1f} s, "
        f"eval return per agent {summary['eval/return_mean']:.3f}"
    )
    return 0


# --------------------------------------------------------------------------------------
# Reading results (driver side: stdlib only, numpy/matplotlib only for the plot)
# --------------------------------------------------------------------------------------


def _read_scalar(path: Path) -> dict[int, float]:
    """Reads a TorchRL CSVLogger scalar file ("step,value" lines, no header); last write wins."""
    out: dict[int, float] = {}
    if not path.is_file():
        return out
    with open(path) as fh:
        for row in csv.reader(fh):
            if len(row) < 2:
                continue
            try:
                out[int(float(row[0]))] = float(row[1])
            except ValueError:
                continue
    return out


def read_benchmarl(run_dir: Path) -> dict | None:
    """Parses one BenchMARL run from its CSV scalars (cross-checked with the worker's summary)."""
    hits = glob.glob(str(run_dir / "**" / "scalars" / "eval_*reward_episode_reward_mean.csv"), recursive=True)
    if not hits:
        return None
    scal_dirs = sorted({Path(h).parent for h in hits}, key=lambda d: d.stat().st_mtime)
    sd = scal_dirs[-1]  # the newest experiment folder if the directory holds several
    ev = _read_scalar(sd / "eval_agent_reward_episode_reward_mean.csv") or _read_scalar(
        sd / "eval_reward_episode_reward_mean.csv"
    )
    frames = _read_scalar(sd / "counters_total_frames.csv")
    total_time = _read_scalar(sd / "timers_total_time.csv")
    eval_time = _read_scalar(sd / "timers_evaluation_time.csv")
    coll = _read_scalar(sd / "timers_collection_time.csv")
    train = _read_scalar(sd / "timers_training_time.csv")
    if not ev or not frames or not total_time:
        return None
    last = max(frames)
    curve = []
    for step in sorted(ev):
        if step in frames and step in total_time:
            f, w = frames[step], total_time[step]
        else:  # the worker's extra final evaluation, logged one step after the last iteration
            f = frames[last]
            w = total_time[last] + eval_time.get(step, 0.0)
        curve.append((f, w, ev[step]))
    ev_std = None
    summary_path = run_dir / "benchmarl_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    if summary:
        ev_std = summary.get("eval/return_std")
        if abs(summary.get("eval/return_mean", curve[-1][2]) - curve[-1][2]) > 1e-4:
            print(f"  note: {run_dir}: CSV final return {curve[-1][2]:.4f} != summary "
                  f"{summary['eval/return_mean']:.4f}; using the CSV")
    wall = total_time[last]
    env_steps = int(frames[last])
    return {
        "env_steps": env_steps,
        "wall_time_s": wall,
        "steps_per_s": env_steps / wall if wall > 0 else float("nan"),
        "wall_no_eval_s": sum(coll.values()) + sum(train.values()),
        "return_mean": curve[-1][2],
        "return_std": ev_std,
        "curve": curve,
        "complete": bool(summary) and summary.get("env_steps") == env_steps,
    }


def read_genmarl(run_dir: Path) -> dict | None:
    """Parses one genmarl run: summary.json (final) and metrics.csv (curve)."""
    sp = run_dir / "summary.json"
    if not sp.is_file():
        return None
    s = json.loads(sp.read_text())
    curve = []
    mp = run_dir / "metrics.csv"
    if mp.is_file():
        with open(mp, newline="") as fh:
            for row in csv.DictReader(fh):
                v = row.get("eval/return_mean", "")
                if v not in ("", None):
                    curve.append((float(row["env_steps"]), float(row["wall_time_s"]), float(v)))
    wall = float(s["wall_time_s"])
    steps = int(s["env_steps"])
    if not curve or curve[-1][0] != steps:
        curve.append((float(steps), wall, float(s["eval/return_mean"])))
    return {
        "env_steps": steps,
        "wall_time_s": wall,
        "steps_per_s": steps / wall if wall > 0 else float("nan"),
        "return_mean": float(s["eval/return_mean"]),
        "return_std": s.get("eval/return_std"),
        "curve": curve,
        "complete": True,
    }


# --------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------


def _genmarl_cmd(arg: str | None) -> list[str] | None:
    """The command that runs the genmarl CLI, or None where ``genmarl train`` is unavailable."""
    if arg:
        cands = [shlex.split(arg)]
    else:
        cands = []
        here = Path(sys.executable).with_name("genmarl")
        if here.is_file():
            cands.append([str(here)])
        if shutil.which("genmarl"):
            cands.append([shutil.which("genmarl")])
        cands.append([sys.executable, "-m", "genmarl.cli"])
    for cmd in cands:
        try:
            r = subprocess.run(cmd + ["train", "--help"], capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if r.returncode == 0:
            return cmd
    return None


def _run_logged(cmd: list[str], log: Path, env: dict | None = None) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    print("  $ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env).returncode
    print(f"    exit {rc} after {time.perf_counter() - t0:.1f} s (log: {log})", flush=True)
    if rc != 0:
        with open(log, errors="replace") as fh:
            tail = fh.read()[-2000:]
        print("    ---- log tail ----\n" + tail, flush=True)
    return rc


def run_benchmarl(args, seed: int, steps: int, out: Path) -> None:
    run_dir = out / f"benchmarl_{seed}"
    if not args.force:
        prev = read_benchmarl(run_dir)
        if prev is not None and prev["complete"] and prev["env_steps"] >= steps:
            print(f"  benchmarl seed {seed}: reusing {run_dir}")
            return
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    cmd = [
        args.benchmarl_python, os.path.abspath(__file__), "_benchmarl_worker",
        "--seed", str(seed), "--steps", str(steps), "--out", str(run_dir),
        "--eval-interval", str(args.bm_eval_interval if not args.quick else FRAMES_PER_BATCH),
        "--eval-episodes", str(args.bm_eval_episodes if not args.quick else 10),
    ]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.setdefault("PYTHONWARNINGS", "ignore")
    _run_logged(cmd, out / f"benchmarl_{seed}.log", env=env)


def run_genmarl(args, cli: list[str], seed: int, steps: int, out: Path) -> None:
    run_dir = out / f"genmarl_{seed}"
    if not args.force:
        prev = read_genmarl(run_dir)
        cfg_path = run_dir / "config.json"
        asked = json.loads(cfg_path.read_text()).get("total_steps") if cfg_path.is_file() else None
        if prev is not None and (asked == steps or prev["env_steps"] >= steps):
            print(f"  genmarl seed {seed}: reusing {run_dir}")
            return
    if run_dir.exists():  # genmarl refuses a directory that already holds a run
        shutil.rmtree(run_dir)
    cmd = cli + [
        "train", "--algo", "mappo", "--env", "simple_spread", "--total-steps", str(steps),
        "--num-envs", str(args.num_envs), "--seed", str(seed), "--out", str(run_dir),
    ] + (["eval_every=3000", "eval_episodes=20"] if args.quick else []) + shlex.split(args.genmarl_args)
    _run_logged(cmd, out / f"genmarl_{seed}.log")


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def _ms(xs: list[float]) -> tuple[float, float]:
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    if not xs:
        return float("nan"), float("nan")
    m = sum(xs) / len(xs)
    sd = (sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5 if len(xs) > 1 else 0.0
    return m, sd


def _fmt(m: float, sd: float | None = None, p: int = 2) -> str:
    if m is None or (isinstance(m, float) and math.isnan(m)):
        return "-"
    return f"{m:.{p}f}" if sd is None else f"{m:.{p}f} ± {sd:.{p}f}"


def report(seeds: list[int], out: Path) -> dict:
    bm = {s: read_benchmarl(out / f"benchmarl_{s}") for s in seeds}
    gm = {s: read_genmarl(out / f"genmarl_{s}") for s in seeds}
    head = f"{'seed':>6} {'library':>10} {'return/agent':>16} {'env steps':>11} {'wall s':>9} {'steps/s':>9}"
    print("\nMAPPO, simple_spread (N=3, 25 steps, local_ratio 0.5): final deterministic evaluation")
    print(head)
    print("-" * len(head))
    rows = []
    for s in seeds:
        for name, res in (("benchmarl", bm[s]), ("genmarl", gm[s])):
            if res is None:
                print(f"{s:>6} {name:>10} {'(no result)':>16}")
                continue
            r = _fmt(res["return_mean"], res["return_std"]) if res["return_std"] is not None else _fmt(res["return_mean"])
            print(f"{s:>6} {name:>10} {r:>16} {res['env_steps']:>11,} {res['wall_time_s']:>9.1f} {res['steps_per_s']:>9,.0f}")
            rows.append({"seed": s, "library": name, **{k: v for k, v in res.items() if k != "curve"}})
    print("-" * len(head))
    summary: dict = {"rows": rows}
    for name, d in (("benchmarl", bm), ("genmarl", gm)):
        rs = [v for v in d.values() if v is not None]
        if not rs:
            continue
        ret, wall, sps = (_ms([r[k] for r in rs]) for k in ("return_mean", "wall_time_s", "steps_per_s"))
        summary[name] = {"n_seeds": len(rs), "return_mean": ret, "wall_time_s": wall, "steps_per_s": sps}
        print(f"{'mean':>6} {name:>10} {_fmt(*ret):>16} {'':>11} {_fmt(*wall, p=0):>9} {_fmt(*sps, p=0):>9}"
              f"   ({len(rs)} seed{'s' if len(rs) > 1 else ''}, ± = std over seeds)")
    both = [s for s in seeds if bm[s] is not None and gm[s] is not None]
    if both:
        rr = [gm[s]["return_mean"] / bm[s]["return_mean"] for s in both]
        dr = [gm[s]["return_mean"] - bm[s]["return_mean"] for s in both]
        sp = [bm[s]["wall_time_s"] / gm[s]["wall_time_s"] for s in both]
        mg, mb = _ms([gm[s]["return_mean"] for s in both])[0], _ms([bm[s]["return_mean"] for s in both])[0]
        print(f"\nper seed: return ratio genmarl/BenchMARL {', '.join(f'{x:.3f}' for x in rr)}; "
              f"return difference genmarl-BenchMARL {', '.join(f'{x:+.2f}' for x in dr)}; "
              f"wall-time speed-up BenchMARL/genmarl {', '.join(f'{x:.1f}x' for x in sp)}")
        print(f"over seeds: return ratio (of means) {mg / mb:.3f} (returns are negative: < 1 means genmarl "
              f"is better), difference {_fmt(*_ms(dr))}; speed-up {_fmt(*_ms(sp), p=1)}x")
        summary["ratios"] = {"return_ratio_per_seed": rr, "return_ratio_of_means": mg / mb,
                             "return_diff_per_seed": dr, "speedup_per_seed": sp, "speedup": _ms(sp)}
    summary["curves"] = {
        "benchmarl": {s: v["curve"] for s, v in bm.items() if v is not None},
        "genmarl": {s: v["curve"] for s, v in gm.items() if v is not None},
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    plot_curves(summary["curves"], out / "curves.png")
    return summary


def plot_curves(curves: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
        import numpy as np
    except ImportError:
        print("matplotlib/numpy not installed: no plot")
        return
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = {"benchmarl": "tab:blue", "genmarl": "tab:orange"}
    labels = {"benchmarl": "BenchMARL MAPPO", "genmarl": "genmarl MAPPO"}
    any_line = False
    for name, per_seed in curves.items():
        cs = [np.asarray(c, dtype=float) for c in per_seed.values() if len(c)]
        if not cs:
            continue
        any_line = True
        for ax, xi in ((axes[0], 0), (axes[1], 1)):
            for c in cs:  # each seed, thin
                ax.plot(c[:, xi], c[:, 2], "-o", ms=2.5, lw=0.8, alpha=0.4, color=colors[name])
            lo_x = max(c[0, xi] for c in cs)
            hi_x = min(c[-1, xi] for c in cs)  # the range every seed covers
            if len(cs) == 1 or hi_x <= lo_x:
                ax.plot([], [], "-", color=colors[name], label=f"{labels[name]} ({len(cs)} seed{'s' if len(cs) > 1 else ''})")
                continue
            xs = np.unique(np.concatenate([c[:, xi] for c in cs]))
            xs = xs[(xs >= lo_x) & (xs <= hi_x)]
            ys = np.stack([np.interp(xs, c[:, xi], c[:, 2]) for c in cs])
            ax.plot(xs, ys.mean(0), lw=2, color=colors[name], label=f"{labels[name]} (mean, min-max of {len(cs)} seeds)")
            ax.fill_between(xs, ys.min(0), ys.max(0), color=colors[name], alpha=0.25, lw=0)
    if not any_line:
        plt.close(fig)
        return
    axes[0].set_xlabel("env steps")
    axes[1].set_xlabel("wall time (s, log scale)")
    axes[1].set_xscale("log")
    axes[1].xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    for ax in axes:
        ax.set_ylabel("eval return per agent")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.suptitle("MAPPO on simple_spread (N=3, 25 steps): mean and min-max over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"curves: {path}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_benchmarl_worker":
        return _benchmarl_worker(argv[1:])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=2_000_000, help="env steps per run (both libraries)")
    p.add_argument("--out", required=True)
    p.add_argument("--quick", action="store_true", help=f"smoke test: {QUICK_STEPS} env steps per run")
    p.add_argument("--benchmarl-python", default="/work/venv_bm/bin/python")
    p.add_argument("--bm-eval-interval", type=int, default=120_000,
                   help="BenchMARL evaluation interval in frames (a multiple of 6000; BenchMARL's default)")
    p.add_argument("--bm-eval-episodes", type=int, default=100,
                   help="episodes per BenchMARL evaluation (BenchMARL's default is 10; genmarl's is 100)")
    p.add_argument("--genmarl-cmd", default=None, help="command for the genmarl CLI (default: found next to this python)")
    p.add_argument("--genmarl-args", default="", help="extra arguments appended to `genmarl train`")
    p.add_argument("--num-envs", type=int, default=128, help="genmarl's number of envs")
    p.add_argument("--threads", type=int, default=0, help="torch threads for BenchMARL (0: torch's default)")
    p.add_argument("--only", choices=["benchmarl", "genmarl"], default=None, help="run one library only")
    p.add_argument("--force", action="store_true", help="rerun runs that already have results")
    p.add_argument("--report-only", action="store_true", help="only read DIR and report")
    args = p.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    steps = QUICK_STEPS if args.quick else args.steps

    if not args.report_only:
        cli = None
        if args.only != "benchmarl":
            cli = _genmarl_cmd(args.genmarl_cmd)
            if cli is None:
                print("note: `genmarl train` is not available here (no such command yet?): "
                      "skipping the genmarl runs")
        bm_ok = args.only != "genmarl"
        if bm_ok and not Path(args.benchmarl_python).is_file():
            print(f"note: {args.benchmarl_python} not found: skipping the BenchMARL runs")
            bm_ok = False
        for s in args.seeds:
            print(f"seed {s}, {steps:,} env steps")
            if bm_ok:
                run_benchmarl(args, s, steps, out)
            if cli is not None:
                run_genmarl(args, cli, s, steps, out)
    report(args.seeds, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
