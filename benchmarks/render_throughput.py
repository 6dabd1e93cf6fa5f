"""MPE frame rendering: genmarl's PIL renderer against mpe2's pygame renderer, in one run.

    python benchmarks/render_throughput.py [--scenarios simple_spread simple_world_comm] [--old-rev e35f1c8]

Milliseconds per 700x700 RGB frame (medians of --repeats runs of --frames frames each), both from
the same synced state at the start of an episode. mpe2: ``env.render()`` of a parallel env with
``render_mode="rgb_array"`` (pygame draw plus the copy out of the surface). genmarl:
``VectorEnv.render(0)`` (state export, drawing, the array). ``--old-rev REV`` also times the
renderer of an earlier commit (its ``python/genmarl/envs/render.py``, read with ``git show``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import genmarl  # noqa: E402
from genmarl.testing import mpe2_module, sync_from_mpe2  # noqa: E402


def per_frame_ms(fn, frames: int, repeats: int) -> float:
    fn()
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(frames):
            fn()
        runs.append((time.perf_counter() - t) / frames * 1e3)
    return statistics.median(runs)


def old_renderer(rev: str):
    root = Path(__file__).resolve().parents[1]
    src = subprocess.run(["git", "-C", str(root), "show", f"{rev}:python/genmarl/envs/render.py"], check=True,
                         capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "old_render.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("old_render", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.render_mpe


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenarios", nargs="+", default=["simple_spread", "simple_speaker_listener", "simple_world_comm"])
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--old-rev", default=None, help="also time the renderer of this git revision")
    args = p.parse_args()
    old = old_renderer(args.old_rev) if args.old_rev else None
    for name in args.scenarios:
        ref = mpe2_module(name).parallel_env(render_mode="rgb_array")
        ref.reset(seed=0)
        env = genmarl.make(name, num_envs=1, render_mode="rgb_array")
        env.reset(seed=0)
        sync_from_mpe2(env, 0, ref)
        ours = per_frame_ms(lambda: env.render(0), args.frames, args.repeats)
        theirs = per_frame_ms(lambda: ref.render(), args.frames, args.repeats)
        line = f"{name}: genmarl {ours:.2f} ms/frame, mpe2 {theirs:.2f} ms/frame ({theirs / ours:.1f}x)"
        if old is not None:
            before = per_frame_ms(lambda: old(env.get_state(), 0, env), args.frames, args.repeats)
            line += f", genmarl at {args.old_rev} {before:.2f} ms/frame ({before / ours:.1f}x)"
        print(line, flush=True)
        assert np.asarray(env.render(0)).shape == (700, 700, 3)


if __name__ == "__main__":
    main()
