"""The ``genmarl`` command line.

``genmarl demo``   steps a large batch of envs with a random policy and prints throughput and returns.
``genmarl envs``   lists the environments and their arguments.
``genmarl train``  trains MAPPO / IPPO / the generative agent (genrl) into a run directory (needs ``genmarl[train]``).
``genmarl eval``   evaluates a trained run: returns per group with CIs, success metrics, GIF.
``genmarl plot``   learning curves of one or more runs.
``genmarl export`` exports a trained run as AOTInductor packages for C++ (genmarl::torch) and Python.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import numpy as np


def _demo(args: argparse.Namespace) -> int:
    import genmarl

    threads = args.num_threads or (os.cpu_count() or 1)
    env = genmarl.make(args.env, num_envs=args.num_envs, num_threads=threads, seed=args.seed)
    print(f"genmarl demo: {args.env}, {env.num_envs} envs x {args.steps} steps, {env.num_threads} threads")
    print(f"  agents: {env.possible_agents}")
    rng = np.random.default_rng(args.seed)
    # Pre-draw the random actions so the timing is the environment's, not numpy's.
    actions = [env.sample_actions(rng, grouped=True) for _ in range(min(args.steps, 64))]
    env.reset_grouped(seed=args.seed)
    returns = {g: [] for g in env.groups}
    lengths = []
    t0 = time.perf_counter()
    for t in range(args.steps):
        _, _, _, _, infos = env.step_grouped(actions[t % len(actions)])
        if "episode_return" in infos:
            done = infos["done"]
            for g, r in infos["episode_return"].items():
                returns[g].append(r[done].mean(axis=1))
            lengths.append(infos["episode_length"][done])
    dt = time.perf_counter() - t0
    env_steps = env.num_envs * args.steps
    print(f"  throughput: {env_steps / dt:,.0f} env-steps/s, {env_steps * env.num_agents / dt:,.0f} agent-steps/s ({dt:.2f} s)")
    n_episodes = int(sum(len(x) for x in lengths))
    print(f"  finished episodes: {n_episodes:,} (mean length {np.concatenate(lengths).mean() if lengths else 0:.1f})")
    for g, rs in returns.items():
        if rs:
            r = np.concatenate(rs)
            print(f"  random-policy episode return per agent [{g}]: mean {r.mean():.2f}, std {r.std():.2f}")
    return 0


def _envs(_: argparse.Namespace) -> int:
    from genmarl import _core
    from genmarl.envs.registry import python_envs
    from genmarl.envs.vector_env import param_value

    for name in _core.list_envs():
        family = _core.resolve_env(name)[1]
        params = ", ".join(f"{p[0]}={param_value(p[1], p[2], p[4])}" for p in _core.env_params(name))
        print(f"{name}({params})  [{family}]")
    for name, family in python_envs().items():
        print(f"{name}(...)  [{family}, Python]")
    return 0


def _require(command: str, extra: str, modules: tuple[str, ...]) -> None:
    """Fails before any work when a command's optional dependencies are missing, with the install command."""
    from genmarl.extras import require

    require(f"genmarl {command}", modules, extra)


def _list_keys(algo: str) -> int:
    from genmarl.algos.config import config_class, config_keys

    cls = config_class(algo)
    rows = config_keys(cls)
    width = max(len(n) for n, *_ in rows)
    print(f"{cls.__name__} keys (algo={algo}); set them in a --config TOML file or as key=value overrides:")
    for name, tp, default, meaning in rows:
        print(f"  {name:<{width}}  {tp:<5} = {default!r:<14} {meaning}")
    return 0


def _train(args: argparse.Namespace) -> int:
    if args.list_keys:
        return _list_keys(args.algo or "mappo")
    _require("train", "train", ("torch", "tomli_w"))
    from genmarl.algos.config import load_config
    from genmarl.training.runner import train

    if args.resume is not None:
        given = [flag for flag, value in (("--out", args.out), ("--config", args.config), ("--algo", args.algo), ("--env", args.env),
                 ("--total-steps", args.total_steps), ("--num-envs", args.num_envs), ("--seed", args.seed), ("--plan", args.plan),
                 ("--plan-model", args.plan_model), ("--track", args.track or None), ("--workers", args.workers),
                 ("--ray-address", args.ray_address))
                 if value is not None] + list(args.overrides)  # fmt: skip
        if given:
            raise ValueError(f"--resume continues a run with its saved config; it takes no other settings, got {' '.join(given)}")
        result = train(load_config(), out=args.resume, resume=True)
    else:
        base = {}
        for key in ("algo", "env", "total_steps", "num_envs", "seed", "plan", "plan_model"):
            value = getattr(args, key)
            if value is not None:
                base[key] = value
        if args.track:
            base["track"] = True
        if args.workers is not None:
            base["workers"] = args.workers
        if args.ray_address is not None:
            base["ray_address"] = args.ray_address
        cfg = load_config(base, toml_path=args.config, overrides=args.overrides)
        result = train(cfg, out=args.out)
    print(f"run directory: {result.run_dir}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    import dataclasses
    import json
    from pathlib import Path

    from genmarl.training import checkpoints
    from genmarl.training.evaluate import evaluate
    from genmarl.training.runner import load_trained, read_summary, report

    _require("eval", "train", ("torch",))
    run = Path(args.run)
    if args.sample and args.deterministic:
        raise ValueError("--sample and --deterministic exclude each other")
    policies = {}
    for item in args.policy:
        group, eq, kind = item.partition("=")
        if not eq or not group or not kind:
            raise ValueError(f"--policy expects GROUP=KIND (e.g. agent=random), got {item!r}")
        policies[group] = kind
    if args.gif is not None:
        from genmarl.training.evaluate import check_video_path

        _check_output_file(args.gif, "--gif")
        check_video_path(args.gif)
    plan_flags = (("--plan", "plan"), ("--plan-model", "plan_model"), ("--plan-unimix", "plan_unimix"),
                  ("--plan-horizon", "plan_horizon"), ("--plan-latents", "plan_latents"))  # fmt: skip

    def with_plan_flags(cfg: Any) -> Any:
        for flag, key in plan_flags:
            value = getattr(args, key)
            if value is not None:
                if key not in {f.name for f in dataclasses.fields(cfg)}:
                    raise ValueError(f"{flag} needs a genrl run; {run} trained {cfg.algo}")
                cfg = dataclasses.replace(cfg, **{key: value}).validate()
        return cfg

    algo, cfg = load_trained(run, num_envs=1, check=with_plan_flags)
    unknown = sorted(set(policies) - set(algo.env.groups))
    if unknown:
        raise ValueError(f"--policy names unknown agent group(s) {unknown}; {cfg.env}'s groups are {list(algo.env.groups)}")
    # by default the protocol of training's evaluations (eval.json): deterministic actions,
    # eval_episodes episodes, seed + 1,000,003
    episodes = cfg.eval_episodes if args.episodes is None else args.episodes
    seed = cfg.eval_seed if args.seed is None else args.seed
    deterministic = not args.sample
    same = deterministic and episodes == cfg.eval_episodes and seed == cfg.eval_seed and not policies
    print(f"protocol: {'deterministic' if deterministic else 'sampled'} actions, {episodes} episodes, seed {seed}"
          + (" (training's final evaluation)" if same else " (not training's protocol)"))
    ev = evaluate(algo, episodes, deterministic=deterministic, seed=seed, gif=args.gif, policies=policies)
    ev["protocol"] = {"deterministic": deterministic, "episodes": episodes, "seed": seed, "training_protocol": same}
    summary = read_summary(run) or {
        "algo": cfg.algo, "env": cfg.env, "seed": cfg.seed, "env_steps": 0, "wall_time_s": 0.0, "env_steps_per_s": 0.0}
    print(report(summary, ev))
    if algo.planning_env_steps > 0:
        ev["planning_env_steps"] = int(algo.planning_env_steps)
        print(f"  planning in the simulator took {ev['planning_env_steps']} env steps (not counted as experience)")
    if args.gif:
        print(f"wrote {args.gif}")
    checkpoints.write_text(run / "eval_cli.json", json.dumps(ev, indent=2))
    return 0


def _check_output_file(path: str, flag: str) -> None:
    """Fails before the work when ``path`` cannot be written (no such directory, a directory)."""
    from pathlib import Path

    p = Path(path)
    if path == "" or p.is_dir():
        raise ValueError(f"{flag} {path!r} is {'empty' if path == '' else 'a directory'}; expected a file path")
    if not p.parent.is_dir():
        raise ValueError(f"{flag} {path}: the directory {p.parent} does not exist; expected a file in an existing directory")


def _export(args: argparse.Namespace) -> int:
    import time

    _require("export", "train", ("torch",))
    from genmarl.export import export, read_info

    t0 = time.perf_counter()
    out = export(args.run, args.out, device=args.device, overwrite=args.overwrite, autotune=args.autotune)
    info = read_info(out)
    files = ", ".join(info["files"].values())
    print(f"exported {info['algo']} on {info['env']} for {info['device']} to {out} ({files}, export.json) in {time.perf_counter() - t0:.0f} s")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    _require("sweep", "ray", ("ray", "torch", "tomli_w"))
    from genmarl.sweep import parse_grid, run_sweep

    summary = run_sweep(args.config, args.seeds, parse_grid(args.grid), args.out, ray_address=args.ray_address,
                        cpus_per_trial=args.cpus_per_trial, max_concurrent=args.max_concurrent)  # fmt: skip
    print(summary.read_text(), end="")
    print(f"wrote {summary}; plot it with: genmarl plot {args.out}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    _require("plot", "train", ("matplotlib",))
    from pathlib import Path

    from genmarl.training.plot import plot_main

    if args.output is None:  # into the run (or, for several, into their common parent folder)
        runs = [Path(r).resolve() for r in args.runs]
        folder = runs[0] if len(runs) == 1 else Path(os.path.commonpath(runs))
        args.output = str(folder / "curves.png")
    _check_output_file(args.output, "-o/--output")
    plot_main(args)
    print(f"wrote {args.output}")
    return 0


def _steps(text: str) -> int:
    """An env-step count: 2000000, 2e6 or 2_000_000."""
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of env steps, got {text!r}") from None
    if not value.is_integer() or value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number of env steps, got {text!r}")
    return int(value)


def _count(what: str, minimum: int = 1) -> Any:
    """An argparse type: an integer >= ``minimum`` (the error names the flag)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


def _error_message(exc: BaseException) -> str:
    """One line for a user's mistake: the message we raised, or what the OS said about which file."""
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default where it says something (not None/False, not already in the help)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        if action.default is None or action.default is False or action.default == argparse.SUPPRESS or "default" in help_text:
            return help_text
        return super()._get_help_string(action)


def main(argv: list[str] | None = None) -> int:
    import genmarl

    parser = argparse.ArgumentParser(prog="genmarl", description=__doc__.replace("``", ""),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"genmarl {genmarl.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help: str) -> argparse.ArgumentParser:  # noqa: A002 - argparse's name
        return sub.add_parser(name, help=help, description=help, formatter_class=_HelpFormatter)

    demo = add("demo", "step a large batch of envs and print throughput and returns")
    demo.add_argument("--env", default="simple_spread", help="environment name or registered id")
    demo.add_argument("--num-envs", type=_count("a positive number of envs"), default=4096, help="envs in the batch")
    demo.add_argument("--num-threads", type=_count("a positive number of threads"), default=None, help="C++ threads (default: every core)")
    demo.add_argument("--steps", type=_count("a positive number of steps"), default=500, help="batched steps to time")
    demo.add_argument("--seed", type=_count("a seed >= 0", 0), default=0, help="seed of the envs and the random actions")
    demo.set_defaults(fn=_demo)
    envs = add("envs", "list environments and their arguments")
    envs.set_defaults(fn=_envs)

    tr = add("train", "train MAPPO / IPPO / the generative agent into a run directory")
    tr.add_argument("--algo", default=None, choices=["mappo", "ippo", "genrl"], help="default: mappo (or the --config file's algo)")
    tr.add_argument("--env", default=None, help="default: simple_spread (or the --config file's env)")
    tr.add_argument("--total-steps", type=_steps, default=None, help="env steps (e.g. 2e6)")
    tr.add_argument("--num-envs", type=int, default=None, help="envs stepped together (default: the config's)")
    tr.add_argument("--seed", type=int, default=None, help="run seed (default: the config's, 0)")
    tr.add_argument("--out", default=None, help="run directory (default runs/ALGO_ENV_seedN)")
    tr.add_argument("--plan", type=int, default=None, metavar="K", help="genrl: plan over K imagined joint action sequences at act time")
    tr.add_argument("--plan-model", default=None, choices=["world", "simulator"],
                    help="genrl: roll plan candidates through the world model (default) or the true simulator (an oracle)")
    tr.add_argument("--config", default=None, help="a TOML file of config keys (PPOConfig or GenRLConfig)")
    tr.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue the run in RUN_DIR")
    tr.add_argument("--track", action="store_true", help="log the run to Weights & Biases (track=true; see wandb_mode)")
    tr.add_argument("--workers", type=_count("a positive number of rollout workers"), default=None, metavar="N",
                    help="collect with N Ray actors, each stepping a shard of the envs (workers=N; MAPPO/IPPO synchronously, "
                         "genrl streaming into its replay while it trains)")
    tr.add_argument("--ray-address", default=None, metavar="ADDR", help="the Ray cluster of --workers (default: a local one)")
    tr.add_argument("--list-keys", action="store_true", help="list every config key of --algo with type, default and meaning")
    tr.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. lr=5e-4 env_kwargs.N=4")
    tr.set_defaults(fn=_train)

    ev = add("eval", "evaluate a trained run (by default with the protocol of training's evaluations)")
    ev.add_argument("run", metavar="RUN_DIR")
    ev.add_argument("--episodes", type=_count("a positive number of episodes"), default=None,
                    help="episodes (default: the run's eval_episodes)")
    ev.add_argument("--sample", action="store_true", help="sample actions from the policy instead of the greedy / mean action")
    ev.add_argument("--deterministic", action="store_true", help="greedy / mean actions (the default; kept for scripts)")
    ev.add_argument("--seed", type=_count("a seed >= 0", 0), default=None, help="evaluation seed (default: the run's seed + 1,000,003)")
    ev.add_argument("--gif", "--video", dest="gif", default=None, metavar="PATH",
                    help="write the first episode as an animated GIF (.gif) or an MP4 video (.mp4, needs genmarl[video])")
    ev.add_argument("--plan", type=int, default=None, metavar="K", help="genrl runs: act by planning over K imagined futures (0: policy only)")
    ev.add_argument("--plan-model", default=None, choices=["world", "simulator"],
                    help="genrl runs: plan with the world model or the true simulator (an oracle; its env steps are reported)")
    ev.add_argument("--plan-unimix", type=float, default=None, metavar="U",
                    help="genrl runs: draw plan candidates from (1 - U) * policy + U * uniform")
    ev.add_argument("--plan-horizon", type=_count("a plan horizon >= 0 (0: the imagination horizon)", 0), default=None,
                    metavar="H", help="genrl runs: steps each plan candidate is rolled (0: the training horizon)")
    ev.add_argument("--plan-latents", default=None, choices=["sample", "mode"],
                    help="genrl runs, world-model planning: draw the prior's latents or take their mode")
    ev.add_argument(
        "--policy", action="append", default=[], metavar="GROUP=KIND",
        help="replace a group's trained policy by 'random' or 'heuristic' (e.g. agent=random)",
    )
    ev.set_defaults(fn=_eval)

    ex = add("export", "export a trained run as AOTInductor packages (policy.pt2, world_model.pt2)")
    ex.add_argument("run", metavar="RUN_DIR")
    ex.add_argument("--out", required=True, metavar="DIR", help="the export directory to write")
    ex.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="the device the packages run on")
    ex.add_argument("--overwrite", action="store_true", help="replace a non-empty --out directory")
    ex.add_argument("--autotune", action="store_true",
                    help="benchmark inductor's GEMM kernels for the policy (minutes; about 2x faster acting at small batches)")
    ex.set_defaults(fn=_export)

    sw = add("sweep", "many runs (seeds x a grid of settings) as Ray Tune trials, one run directory each")
    sw.add_argument("config", nargs="?", default=None, metavar="CONFIG.toml", help="the base config (default: the defaults)")
    sw.add_argument("--seeds", type=_count("a positive number of seeds"), default=3, help="seeds 0..N-1 of every setting")
    sw.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                    help="a config key and its values; several --grid make the product (e.g. --grid lr=3e-4,7e-4)")
    sw.add_argument("--out", required=True, metavar="SWEEP_DIR", help="the sweep directory (run the same command again to resume)")
    sw.add_argument("--ray-address", default=None, metavar="ADDR", help="a running Ray cluster (default: a local one)")
    sw.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs Tune reserves per trial (set torch_threads to match)")
    sw.add_argument("--max-concurrent", type=_count("a number of trials >= 0", 0), default=0,
                    help="trials at once (0: as many as the CPUs allow)")
    sw.set_defaults(fn=_sweep)

    pl = add("plot", "learning curves of runs (mean and spread over seeds)")
    pl.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories or sweep directories")
    pl.add_argument("-o", "--output", default=None, help="image file (default: RUN_DIR/curves.png; for several runs, curves.png in their common folder)")
    pl.set_defaults(fn=_plot)

    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except (ValueError, TypeError, KeyError, OSError, ImportError, RuntimeError) as exc:
        # a user's mistake (bad value, file, run directory): one line, no traceback
        print(f"genmarl: error: {_error_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genmarl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
