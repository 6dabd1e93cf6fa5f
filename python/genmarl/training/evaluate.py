"""Evaluation: returns per agent group with confidence intervals, success metrics, GIFs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

import genmarl


def summarize(x: np.ndarray) -> dict[str, float]:
    """mean, std and a 95% normal-approximation confidence interval of the mean."""
    x = np.asarray(x, float)
    n = len(x)
    mean = float(x.mean()) if n else float("nan")
    std = float(x.std(ddof=1)) if n > 1 else 0.0
    half = 1.96 * std / math.sqrt(n) if n > 1 else 0.0
    return {"mean": mean, "std": std, "ci95_low": mean - half, "ci95_high": mean + half, "n": n}


def evaluate(
    algo: Any,
    episodes: int = 100,
    *,
    deterministic: bool = True,
    seed: int = 1_000_003,
    gif: str | Path | None = None,
    num_envs: int | None = None,
    policies: dict[str, str] | None = None,
    env_name: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Runs ``episodes`` full episodes on a fresh env with its own seed (``gif``: a .gif or .mp4 path
    for the first episode, checked before any episode runs).

    ``policies`` maps a group to ``"trained"`` (the default: ``algo``'s policy), ``"random"`` or
    ``"heuristic"`` (see :mod:`genmarl.training.baselines`); ``algo=None`` evaluates baselines
    only (then ``env_name``/``env_kwargs`` name the env). Returns ``return`` (mean return per agent
    over all agents), ``groups`` ({group: return per agent of the group}), the scenario's success
    ``metrics`` (the scenario's per-episode metrics, ``VectorEnv.metric_names``) and ``episodes``; each statistic as ``{"mean", "std",
    "ci95_low", "ci95_high", "n"}``. With ``gif`` the first env's first episode is written as an
    animated GIF.
    """
    from genmarl.algos.learner import env_actions, finished_returns
    from genmarl.training.baselines import heuristic_actions, random_actions

    name = algo.cfg.env if algo is not None else env_name
    kwargs = algo.cfg.env_kwargs if algo is not None else (env_kwargs or {})
    if name is None:
        raise ValueError("evaluate needs an algo or an env_name")
    if episodes < 1:
        raise ValueError(f"the number of evaluation episodes must be a positive integer, got {episodes!r}")
    if gif:
        check_video_path(gif)
    E = num_envs or min(episodes, 100)
    env = genmarl.make(name, num_envs=E, seed=seed, render_mode="rgb_array" if gif else None, **kwargs)
    unknown = sorted(set(policies or {}) - set(env.groups))
    if unknown:
        raise ValueError(f"policies name unknown agent group(s) {unknown}; {name}'s groups are {list(env.groups)}")
    policies = {g: (policies or {}).get(g, "trained") for g in env.groups}
    for g, p in policies.items():
        if p not in ("trained", "random", "heuristic"):
            raise ValueError(f"the policy of group {g!r} must be 'trained', 'random' or 'heuristic', got {p!r}")
    if algo is None and "trained" in policies.values():
        raise ValueError("evaluating a 'trained' policy needs an algo")
    runner = algo.for_env(env) if algo is not None else None  # the same networks, driving the evaluation env
    rng = np.random.default_rng(seed)
    obs, infos = env.reset_grouped(seed=seed)
    masks = infos.get("action_mask")
    returns: list[np.ndarray] = []
    group_returns: dict[str, list[np.ndarray]] = {g: [] for g in env.groups}
    extra: dict[str, list[np.ndarray]] = {m: [] for m in getattr(env, "metric_names", [])}
    frames = [env.render(0)] if gif else []
    gif_done = not gif
    finished = 0
    reset = np.zeros(E, bool)
    while finished < episodes:
        actions = runner.act(obs, deterministic=deterministic, reset=reset, action_mask=masks) if runner is not None else {}
        for g, p in policies.items():
            if p == "random":
                actions[g] = random_actions(env, g, rng, (masks or {}).get(g))
            elif p == "heuristic":
                actions[g] = heuristic_actions(env, g, obs[g])
        nxt, rew, term, trunc, infos = env.step_grouped(env_actions(actions))
        done = infos["done"]
        masks = infos.get("action_mask")
        m = {k: v[done] for k, v in infos.get("metrics", {}).items()}
        if done.any():
            take = min(int(done.sum()), episodes - finished)
            total, per_group = finished_returns(infos, done)
            returns.append(total[:take])
            for g, r in per_group.items():
                group_returns[g].append(r[:take])
            for k, v in m.items():
                extra[k].append(v[:take])
            finished += take
        if not gif_done:
            if done[0]:
                gif_done = True
            else:
                frames.append(env.render(0))
        obs, reset = nxt, done
    out: dict[str, Any] = {
        "return": summarize(np.concatenate(returns)),
        "groups": {g: summarize(np.concatenate(v)) for g, v in group_returns.items()},
        "metrics": {k: summarize(np.concatenate(v)) for k, v in extra.items()},
        "episodes": finished,
        "deterministic": deterministic,
        "policies": policies,
    }
    if gif:
        write_gif(frames, gif)
        out["gif"] = str(gif)
    if hasattr(env, "close"):
        env.close()
    return out


def check_video_path(path: str | Path) -> None:
    """Fails before any episode runs when ``path`` cannot be written as an animation: its format
    (.gif with Pillow, .mp4 with imageio and imageio-ffmpeg) or a missing package."""
    from genmarl.extras import require

    suffix = Path(path).suffix.lower()
    if suffix == ".gif":
        need, extra = ("PIL",), "train"
    elif suffix == ".mp4":
        need, extra = ("imageio", "imageio_ffmpeg"), "video"
    else:
        raise ValueError(f"{path}: an animation is written as .gif or .mp4, got {suffix or 'no extension'!r}")
    require(f"writing {suffix}", need, extra)


def write_gif(frames: list[np.ndarray], path: str | Path, fps: int = 10) -> None:
    """Writes the frames as an animated GIF (Pillow) or, for a .mp4 path, an H.264 video (imageio-ffmpeg)."""
    check_video_path(path)
    if Path(path).suffix.lower() == ".mp4":
        import imageio.v3 as iio

        # macro_block_size=2: frames keep their size (libx264 needs even sides; genmarl's frames have them)
        with iio.imopen(path, "w", plugin="FFMPEG") as video:
            video.write(np.stack(frames), fps=fps, codec="libx264", macro_block_size=2)
        return
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)

