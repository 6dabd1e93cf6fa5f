"""``genmarl.train(config)``: a whole run in one directory.

RUN_DIR/
  config.toml, config.json   the resolved configuration
  metrics.csv                one row per update (training) plus evaluation columns
  events.out.tfevents.*      TensorBoard (when tensorboard is installed and enabled)
  wandb/, wandb_id.txt       Weights & Biases (track=true; see genmarl.training.trackers)
  checkpoints/latest.pt      everything needed to resume bitwise (also step_N.pt)
  model.pt                   final policy/critic weights
  eval.json                  final evaluation (returns per group, CIs, success metrics)
  summary.json               env_steps, wall_time_s, eval/return_mean, eval/return_std, ...
                             (genrl: also the world-model diagnostics wm/...)
  wm_diagnostics.json        genrl: every evaluation's world-model diagnostics (k-step errors, ...)
  marl_eval.json             the same evaluations in marl-eval's JSON layout
  curves.png                 learning curves
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import genmarl
from genmarl.algos.config import RunConfig, config_from_dict, config_to_toml, device_available
from genmarl.algos.learner import learner_class, make_learner
from genmarl.extras import require
from genmarl.training import checkpoints
from genmarl.training.trackers import Trackers

CSV_COLUMNS = [
    "update",
    "env_steps",
    "wall_time_s",
    "perf/sps",
    "charts/episode_return",
    "charts/episode_length",
    "charts/episodes",
    "eval/return_mean",
    "eval/return_std",
]
def check_optional_parts(config: RunConfig) -> None:
    """Fails before any work when an optional part the config asks for is missing or unreachable:
    wandb for ``track=true``, Ray (and the cluster at ``ray_address``) for ``workers > 0``
    (TensorBoard only warns)."""
    if config.track:
        require("track=true", ("wandb",), "track")
    if config.workers > 0:
        require("workers > 0", ("ray",), "ray")
        if config.ray_address:
            from genmarl.distributed import check_address

            check_address(config.ray_address)


def load_trained(
    run_dir: str | os.PathLike, num_envs: int = 1, device: str | None = None, check: Any = None
) -> tuple[Any, RunConfig]:
    """The learner of a trained run (its ``model.pt`` and saved config) on a fresh env of
    ``num_envs`` envs, and the config. ``device`` overrides the saved one; a run trained on a
    device this machine lacks loads on the CPU (with a note on stderr). ``check(cfg)`` (optional)
    returns the config to build the learner with (e.g. with changed acting settings) or raises.

    Raises FileNotFoundError for a missing run or model, and
    :class:`~genmarl.training.checkpoints.CheckpointError` for a damaged or foreign model file.
    """
    run = Path(run_dir)
    model = run / "model.pt"
    if not run.is_dir():
        raise FileNotFoundError(f"{run} is not a run directory; expected the --out directory of genmarl train")
    if not model.exists():
        raise FileNotFoundError(f"{run} holds no trained model (model.pt); train it first")
    what = "a model.pt written by genmarl train"
    state = checkpoints.load(model, what=what)
    checkpoints.require(state, ("config",), model, what)
    saved = state["config"]
    if not isinstance(saved, dict):
        raise checkpoints.CheckpointError(f"{model}: its config is a {type(saved).__name__}; expected {what}")
    if device is not None:
        saved = {**saved, "device": device}
    elif isinstance(saved.get("device"), str) and not device_available(saved["device"]):
        print(f"genmarl: {run} was trained on {saved['device']}, which this machine lacks; loading it on cpu", file=sys.stderr)
        saved = {**saved, "device": "cpu"}
    try:
        cfg = config_from_dict(saved)
    except (TypeError, ValueError, KeyError) as exc:
        raise checkpoints.CheckpointError(f"{model}: the saved config is not valid ({exc})") from None
    if check is not None:
        cfg = check(cfg)
    env = genmarl.make(cfg.env, num_envs=num_envs, seed=cfg.seed, **cfg.env_kwargs)
    algo = make_learner(env, cfg)
    try:
        algo.load_state_dict(state)
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise checkpoints.CheckpointError(f"{model} does not fit its own config ({str(exc)[:300]})") from None
    return algo, cfg


def metric_columns(config: RunConfig, groups: list[str]) -> list[str]:
    """metrics.csv's columns for a run of ``config`` on an env with agent ``groups``."""
    columns = list(CSV_COLUMNS)
    if len(groups) > 1:  # one training-return column per agent group (e.g. simple_tag)
        at = columns.index("charts/episode_return") + 1
        columns[at:at] = [f"charts/{g}/episode_return" for g in groups]
    at = columns.index("eval/return_mean")
    training, at_end = learner_class(config.algo).csv_columns(config)
    columns[at:at] = training
    return columns + at_end


@dataclasses.dataclass
class RunResult:
    """What a run produced: its directory, final summary and evaluation."""

    run_dir: Path
    summary: dict[str, Any]
    evaluation: dict[str, Any]

    @property
    def eval_return(self) -> float:
        return float(self.summary["eval/return_mean"])


class _Progress:
    """One status line: env steps, env-steps/s, updates and the latest return."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled = total, enabled
        self.tty = sys.stderr.isatty()
        self.last_print = 0.0

    def update(self, steps: int, sps: float, updates: int, ret: float) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not self.tty and now - self.last_print < 10 and steps < self.total:
            return
        self.last_print = now
        frac = steps / self.total
        bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
        line = f"[{bar}] {steps:>10,}/{self.total:,} env steps | {sps:8,.0f} steps/s | update {updates} | return {ret:8.3f}"
        print(("\r" if self.tty else "") + line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            print(file=sys.stderr)


CHECKPOINT_KEYS = ("algo", "wall_time_s", "history", "evals", "next_eval", "next_ckpt")


def _read_checkpoint(path: Path) -> dict[str, Any]:
    """``checkpoints/latest.pt`` (or a ``step_N.pt``) of a run, loaded as plain data only."""
    what = "a checkpoint written by genmarl train"
    state = checkpoints.load(path, what=what)
    checkpoints.require(state, CHECKPOINT_KEYS, path, what)
    if not isinstance(state["algo"], dict) or not isinstance(state["algo"].get("config"), dict):
        raise checkpoints.CheckpointError(f"{path} holds no learner config; expected {what}")
    return state


def _snapshots(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """The ``step_N.pt`` snapshots of a run, newest first (temporary files are never listed)."""
    found = []
    for p in ckpt_dir.glob("step_*.pt"):
        step = p.stem[len("step_"):]
        if step.isdigit() and not checkpoints.is_temporary(p):
            found.append((int(step), p))
    return sorted(found, reverse=True)


def _newest_readable_snapshot(ckpt_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    for _, p in _snapshots(ckpt_dir):
        try:
            return p, _read_checkpoint(p)
        except checkpoints.CheckpointError:
            continue
    return None


def _repair_snapshots(ckpt_dir: Path, latest: Path, state: dict[str, Any]) -> None:
    """On resume: rewrites the step_N.pt that ``latest`` was saved with when it is missing, empty
    or differs (a write that a kill interrupted); later snapshots are rewritten as the run passes
    them; an earlier damaged one cannot be rebuilt and is reported."""
    name = state.get("snapshot")
    step = int(state["algo"].get("env_steps", 0))
    if isinstance(name, str) and latest.exists() and name == f"step_{step}.pt":
        snap = ckpt_dir / name
        data = latest.read_bytes()
        if not snap.is_file() or snap.read_bytes() != data:
            checkpoints.write_bytes(snap, data)
            print(f"genmarl: rewrote {snap} from {latest}", file=sys.stderr, flush=True)
    for s, p in _snapshots(ckpt_dir):
        if s < step and p.stat().st_size == 0:
            print(f"genmarl: warning: {p} is empty (an interrupted write) and cannot be rebuilt; it is not used", file=sys.stderr)


def _saved_config(run_dir: Path) -> RunConfig:
    """The config a run was started with (its ``config.json``)."""
    path = run_dir / "config.json"
    try:
        values = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path} ({exc}); expected the JSON config genmarl train wrote") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path} holds a {type(values).__name__}; expected the JSON config genmarl train wrote")
    try:
        return config_from_dict(values)
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"{path} is not a valid run config: {exc}") from None


def _check_run_dir(run_dir: Path, resume: bool) -> None:
    """Rejects an empty path, an existing file, and a place where no directory can be made."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"{run_dir} is an existing file, not a run directory; expected a new or existing directory")
    if resume and not run_dir.is_dir():
        raise FileNotFoundError(f"cannot resume: no checkpoint, {run_dir} does not exist")


def _make_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(
            f"cannot create the run directory {path} ({exc.strerror or exc}); expected a writable location"
        ) from None


def train(config: RunConfig, out: str | os.PathLike | None = None, resume: bool = False) -> RunResult:
    """Trains ``config.algo`` on ``config.env`` and writes the run directory ``out``.

    ``resume=True`` continues the run in ``out`` from ``checkpoints/latest.pt`` (the config is
    read from the run; ``config`` is ignored); on CPU a resumed run ends with the same metrics as
    an uninterrupted one. Without ``latest.pt`` it resumes from the newest readable ``step_N.pt``,
    and a run stopped before its first checkpoint starts again from step 0 with its saved
    ``config.json``. Checkpoints are written atomically and read as plain data only (see
    :mod:`genmarl.training.checkpoints`).
    """
    import torch

    from genmarl.training.evaluate import evaluate
    from genmarl.training.plot import plot_runs

    if out is not None and os.fspath(out) == "":  # Path("") is "."; never write a run into the current directory by accident
        raise ValueError("the run directory (--out / --resume) must not be empty; expected a directory path such as runs/my_run")
    run_dir = Path(out) if out is not None else Path(f"runs/{config.algo}_{config.env}_seed{config.seed}")
    _check_run_dir(run_dir, resume)
    ckpt_dir = run_dir / "checkpoints"
    latest = ckpt_dir / "latest.pt"
    state: dict[str, Any] | None = None
    if resume:
        if latest.exists():
            try:
                state = _read_checkpoint(latest)
            except checkpoints.CheckpointError as exc:
                found = _newest_readable_snapshot(ckpt_dir)
                hint = f"; {found[0]} is readable: copy it over {latest} to resume from it" if found else ""
                raise checkpoints.CheckpointError(f"cannot resume: {exc}{hint}") from None
        else:
            found = _newest_readable_snapshot(ckpt_dir) if ckpt_dir.is_dir() else None
            if found is not None:
                print(f"genmarl: {latest} is missing; resuming from {found[0]}", file=sys.stderr, flush=True)
                state = found[1]
            elif (run_dir / "config.json").exists():
                print(
                    f"genmarl: {run_dir} was stopped before its first checkpoint; starting it again from step 0 "
                    "with its saved config.json",
                    file=sys.stderr,
                    flush=True,
                )
            else:
                raise FileNotFoundError(f"cannot resume: no checkpoint at {latest} (and no config.json in {run_dir})")
        if state is not None:
            try:
                config = config_from_dict(state["algo"]["config"])
            except (TypeError, ValueError, KeyError) as exc:
                raise checkpoints.CheckpointError(f"{latest}: the saved config is not valid ({exc})") from None
        else:
            config = _saved_config(run_dir)
    else:
        config = config.validate()
        if (run_dir / "metrics.csv").exists():
            raise FileExistsError(f"{run_dir} already holds a run; pass resume=True (--resume) or another --out")
    check_optional_parts(config)  # e.g. track=true without wandb fails before anything is written
    if config.torch_threads > 0:
        torch.set_num_threads(config.torch_threads)
    # the env and learner first: bad env arguments fail before anything is written
    env = genmarl.make(
        config.env, num_envs=config.num_envs, num_threads=config.num_threads or None, seed=config.seed, **config.env_kwargs
    )
    algo = make_learner(env, config)
    _make_dir(ckpt_dir)
    for p in ckpt_dir.iterdir():  # temporary files of writes a kill interrupted
        if checkpoints.is_temporary(p):
            p.unlink(missing_ok=True)
    if state is not None:
        _repair_snapshots(ckpt_dir, latest, state)
    checkpoints.write_text(run_dir / "config.toml", config_to_toml(config))
    checkpoints.write_text(run_dir / "config.json", json.dumps(config.to_dict(), indent=2))

    wall_before = 0.0
    history: list[dict[str, Any]] = []
    evals: list[dict[str, Any]] = []
    diagnostics: list[dict[str, Any]] = []
    next_eval = config.eval_every or math.inf
    next_ckpt = config.checkpoint_every or math.inf
    if state is not None:
        try:
            algo.load_state_dict(state["algo"])
        except (KeyError, RuntimeError, TypeError, ValueError) as exc:
            raise checkpoints.CheckpointError(f"{latest} does not fit the run's {config.algo} learner ({exc})") from None
        wall_before = float(state["wall_time_s"])
        history = state["history"]
        evals = state["evals"]
        diagnostics = state.get("diagnostics", [])
        next_eval, next_ckpt = state["next_eval"], state["next_ckpt"]
    else:
        algo.reset(seed=config.seed)

    columns = metric_columns(config, list(env.groups))
    # metrics.csv is rewritten from the history kept in checkpoints, so a resumed run never
    # duplicates rows written after its last checkpoint.
    write_metrics(run_dir / "metrics.csv", columns, history)
    csv_file = open(run_dir / "metrics.csv", "a", newline="")  # noqa: SIM115 - closed below
    writer = csv.DictWriter(csv_file, columns, extrasaction="ignore")
    tb = Trackers(run_dir, config, resume=state is not None)
    progress = _Progress(config.num_updates * config.batch_steps, config.progress)
    start = time.perf_counter()
    last_return = float("nan")

    def save_checkpoint(snapshot: Path | None = None) -> None:
        """Writes latest.pt (and first the ``snapshot`` step_N.pt, the same bytes), atomically."""
        payload = {
            "snapshot": snapshot.name if snapshot is not None else None,
            "algo": algo.state_dict(),
            "wall_time_s": wall_before + time.perf_counter() - start,
            "history": history,
            "evals": evals,
            "diagnostics": diagnostics,
            "next_eval": next_eval,
            "next_ckpt": next_ckpt,
        }
        data = checkpoints.dump(payload)
        if snapshot is not None:
            checkpoints.write_bytes(snapshot, data)
        checkpoints.write_bytes(latest, data)

    try:
        while algo.updates < config.num_updates:
            algo.set_progress(algo.updates / config.num_updates)
            stats = algo.collect()
            losses = algo.update()
            wall = wall_before + time.perf_counter() - start
            rets = stats["episode_returns"]
            if len(rets):
                last_return = float(rets.mean())
            row: dict[str, Any] = {
                "update": algo.updates,
                "env_steps": algo.env_steps,
                "wall_time_s": round(wall, 3),
                "perf/sps": round(algo.env_steps / max(wall, 1e-9), 1),
                "charts/episode_return": float(rets.mean()) if len(rets) else "",
                **{
                    f"charts/{g}/episode_return": float(v.mean()) if len(v) else ""
                    for g, v in stats["group_returns"].items()
                },
                "charts/episode_length": float(stats["episode_lengths"].mean()) if len(rets) else "",
                "charts/episodes": len(rets),
                **losses,
            }
            if algo.env_steps >= next_eval and algo.updates < config.num_updates:
                ev = evaluate(algo, config.eval_episodes, seed=config.eval_seed)
                row["eval/return_mean"], row["eval/return_std"] = ev["return"]["mean"], ev["return"]["std"]
                evals.append({"env_steps": algo.env_steps, **ev})
                row.update(_diagnose(algo, diagnostics, run_dir))
                while next_eval <= algo.env_steps:
                    next_eval += config.eval_every
            history.append(row)
            writer.writerow(row)
            csv_file.flush()
            tb.log(row, algo.env_steps)
            progress.update(algo.env_steps, row["perf/sps"], algo.updates, last_return)
            if algo.env_steps >= next_ckpt:
                while next_ckpt <= algo.env_steps:
                    next_ckpt += config.checkpoint_every
                save_checkpoint(ckpt_dir / f"step_{algo.env_steps}.pt")
    except BaseException:
        tb.close()
        raise
    finally:
        progress.close()
        csv_file.close()

    train_wall = wall_before + time.perf_counter() - start
    final = evaluate(algo, config.eval_episodes, seed=config.eval_seed)
    evals.append({"env_steps": algo.env_steps, **final})
    history[-1]["eval/return_mean"], history[-1]["eval/return_std"] = final["return"]["mean"], final["return"]["std"]
    wm = _diagnose(algo, diagnostics, run_dir)
    history[-1].update(wm)
    write_metrics(run_dir / "metrics.csv", columns, history)
    save_checkpoint()
    algo.save(str(run_dir / "model.pt"))
    checkpoints.write_text(run_dir / "eval.json", json.dumps(final, indent=2))
    summary = {
        "algo": config.algo,
        "env": config.env,
        "seed": config.seed,
        "env_steps": algo.env_steps,
        "updates": algo.updates,
        "wall_time_s": round(train_wall, 3),
        "env_steps_per_s": round(algo.env_steps / max(train_wall, 1e-9), 1),
        "eval/return_mean": final["return"]["mean"],
        "eval/return_std": final["return"]["std"],
        "eval/return_ci95": [final["return"]["ci95_low"], final["return"]["ci95_high"]],
        "eval/episodes": final["episodes"],
        **{f"eval/{g}/return_mean": v["mean"] for g, v in final["groups"].items()},
        **{f"eval/{k}_mean": v["mean"] for k, v in final["metrics"].items()},
        **wm,
    }
    checkpoints.write_text(run_dir / "summary.json", json.dumps(summary, indent=2))
    tb.finish(summary, algo.env_steps)  # the final evaluation too (the loop's trackers stayed open for it)
    checkpoints.write_text(run_dir / "marl_eval.json", json.dumps(marl_eval_json(config, evals), indent=2))
    try:
        plot_runs([run_dir], run_dir / "curves.png")
    except ImportError:
        pass
    if config.progress:
        print(report(summary, final), flush=True)
    return RunResult(run_dir, summary, final)


def _diagnose(algo: Any, diagnostics: list[dict[str, Any]], run_dir: Path) -> dict[str, float]:
    """The learner's diagnostics (the world model's for genrl; none for PPO or before the first update):
    appended to ``wm_diagnostics.json``; returns the scalar ones."""
    d = algo.evaluation_diagnostics()
    if not d:
        return {}
    diagnostics.append({"env_steps": algo.env_steps, **d})
    checkpoints.write_text(run_dir / "wm_diagnostics.json", json.dumps(diagnostics, indent=2))
    return {k: v for k, v in d.items() if not isinstance(v, list)}


def write_metrics(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """Writes metrics.csv from scratch, atomically: the header and every row so far."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    checkpoints.write_text(path, text.getvalue())


def marl_eval_json(cfg: RunConfig, evals: list[dict[str, Any]]) -> dict[str, Any]:
    """marl-eval's layout: env -> task -> algo -> seed -> step_i / absolute_metrics."""
    seed: dict[str, Any] = {}
    for i, ev in enumerate(evals):
        seed[f"step_{i}"] = {"step_count": ev["env_steps"], "return": [ev["return"]["mean"]]}
    if evals:
        seed["absolute_metrics"] = {"return": [evals[-1]["return"]["mean"]]}
    return {"mpe": {cfg.env: {cfg.algo: {f"seed_{cfg.seed}": seed}}}}


def read_summary(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """summary.json of a finished run, or None when absent or not one (an interrupted run)."""
    keys = ("algo", "env", "seed", "env_steps", "wall_time_s", "env_steps_per_s")
    try:
        summary = json.loads((Path(run_dir) / "summary.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(summary, dict) or any(k not in summary for k in keys):
        return None
    return summary


def report(summary: dict[str, Any], ev: dict[str, Any]) -> str:
    r = ev["return"]
    lines = [
        f"{summary['algo']} on {summary['env']} (seed {summary['seed']}): {summary['env_steps']:,} env steps in "
        f"{summary['wall_time_s']:.1f} s ({summary['env_steps_per_s']:,.0f} steps/s)",
    ]

    def ci(v: dict[str, float]) -> str:
        return f"{v['mean']:.3f} ± {v['std']:.3f} (95% CI {v['ci95_low']:.3f} .. {v['ci95_high']:.3f})"

    if len(ev["groups"]) > 1:  # competing or different roles: one headline per group, not their average
        lines.append(f"  eval over {ev['episodes']} episodes, return per agent of each group:")
        for g, v in ev["groups"].items():
            lines.append(f"    {g}: {ci(v)}")
        lines.append(f"    (all agents together: {r['mean']:.3f}; this mixes the groups' rewards)")
    else:
        lines.append(f"  eval over {ev['episodes']} episodes: return per agent {ci(r)}")
    for k, v in ev["metrics"].items():
        lines.append(f"  {k}: {v['mean']:.3f} ± {v['std']:.3f}")
    if "wm/obs_error_k1" in summary:
        lines.append(
            f"  world model: 1-step obs error {summary['wm/obs_error_k1']:.4f} (next = current: "
            f"{summary['wm/obs_error_trivial']:.4f}), reward error {summary['wm/reward_error']:.4f}"
        )
    if "wm/behaviour_acc" in summary:
        lines.append(
            f"  behaviour prediction accuracy {summary['wm/behaviour_acc']:.3f} (most frequent action: "
            f"{summary['wm/behaviour_acc_baseline']:.3f}, chance {summary['wm/behaviour_acc_chance']:.3f})"
        )
    if "wm/behaviour_loglik" in summary:
        lines.append(
            f"  behaviour log-likelihood {summary['wm/behaviour_loglik']:.3f} nats per action "
            f"(uniform guess: {summary['wm/behaviour_loglik_uniform']:.3f})"
        )
    return "\n".join(lines)
