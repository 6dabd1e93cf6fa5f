"""Users' own environments: the same grid world as a C++ env module (examples/custom_env, built
here with CMake) and as a vectorised numpy env registered with genmarl.register, side by side.

    python benchmarks/user_env_throughput.py [--num-envs 1 64 1024] [--seconds 1.5] [--repeats 3]

Both step N walkers to their goals on a 5x5 grid with the same rules (examples/custom_env/
gridworld.hpp); both are driven through the grouped API with pre-drawn random actions. Prints
env-steps/s (median over alternating repeats) and the ratio C++/Python.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from gymnasium import spaces

import timing  # benchmarks/timing.py (scripts run from benchmarks/)

ROOT = Path(__file__).resolve().parents[1]


class NumpyGridWorld:
    """examples/custom_env/gridworld.hpp in numpy, vectorised over envs."""

    _DR = np.array([0, -1, 1, 0, 0])
    _DC = np.array([0, 0, 0, -1, 1])

    def __init__(self, num_envs: int, num_threads=None, seed: int = 0, agents: int = 2, size: int = 5, max_steps: int = 30):
        self.num_envs, self.n, self.size, self.max_steps = num_envs, agents, size, max_steps
        self.groups = ["walker"]
        self.rng = np.random.default_rng(seed)
        self.pos = np.zeros((num_envs, agents, 2), np.int64)
        self.goal = np.zeros((num_envs, agents, 2), np.int64)
        self.t = np.zeros(num_envs, np.int64)
        self.ret = np.zeros((num_envs, agents))

    def group_observation_space(self, g):
        return spaces.Box(-np.inf, np.inf, (self.n, 4 + 2 * (self.n - 1)), np.float32)

    def group_action_space(self, g):
        return spaces.MultiDiscrete([5] * self.n)

    def sample_actions(self, rng, grouped=True, action_mask=None):
        return {"walker": rng.integers(0, 5, (self.num_envs, self.n))}

    def _reset_rows(self, rows):
        k = int(rows.sum())
        self.pos[rows] = self.rng.integers(0, self.size, (k, self.n, 2))
        self.goal[rows] = self.rng.integers(0, self.size, (k, self.n, 2))
        self.t[rows] = 0
        self.ret[rows] = 0

    def _obs(self):
        inv = 1.0 / self.size
        rel = (self.pos[:, None, :, :] - self.pos[:, :, None, :]) * inv  # [E, i, j, 2]
        mask = ~np.eye(self.n, dtype=bool)
        others = rel[:, mask].reshape(self.num_envs, self.n, 2 * (self.n - 1))
        return {"walker": np.concatenate([self.pos * inv, self.goal * inv, others], -1).astype(np.float32)}

    def reset_grouped(self, seed=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self._reset_rows(np.ones(self.num_envs, bool))
        return self._obs(), {}

    def step_grouped(self, actions):
        a = np.asarray(actions["walker"])
        was = (self.pos == self.goal).all(-1)
        moved = self.pos + np.stack([self._DR[a], self._DC[a]], -1)
        self.pos = np.where(was[..., None], self.pos, np.clip(moved, 0, self.size - 1))
        now = (self.pos == self.goal).all(-1)
        rew = (-0.01 + (now & ~was)).astype(np.float32)
        self.ret += rew
        self.t += 1
        term = now.all(-1)
        trunc = self.t >= self.max_steps
        done = term | trunc
        infos = {"done": done}
        if done.any():
            infos["final_obs"] = self._obs()
            infos["episode_return"] = {"walker": self.ret.astype(np.float32)}
            infos["episode_length"] = self.t.astype(np.int32)
            self._reset_rows(done)
        n = self.n
        return (self._obs(), {"walker": rew}, {"walker": np.repeat(term[:, None], n, 1)},
                {"walker": np.repeat((trunc & ~term)[:, None], n, 1)}, infos)


def _rate(env, seconds: float) -> float:
    rng = np.random.default_rng(0)
    env.reset_grouped(seed=0)
    pool = [env.sample_actions(rng, grouped=True) for _ in range(16)]
    it = iter(range(1 << 62))
    per_call = timing.time_per_call(lambda: env.step_grouped(pool[next(it) % 16]), repeats=1, min_time=seconds)
    return env.num_envs / per_call


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-envs", nargs="+", type=int, default=[1, 64, 1024])
    p.add_argument("--seconds", type=float, default=1.5)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    import genmarl

    build = Path(tempfile.mkdtemp(prefix="genmarl_custom_env_"))
    try:
        prefix = [f"-DCMAKE_PREFIX_PATH={genmarl.get_cmake_dir()}"]
    except FileNotFoundError:
        prefix = [f"-DGENMARL_SOURCE_DIR={ROOT}"]
    subprocess.run(["cmake", "-S", str(ROOT / "examples" / "custom_env"), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release", *prefix],
                   check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True)
    genmarl.register_module(str(build / "custom_envs.so"))
    genmarl.register("numpy_gridworld", NumpyGridWorld)
    print(f"{'envs':>6} {'C++ module':>14} {'numpy (register)':>18}  C++/numpy   (env-steps/s, median of {args.repeats})")
    for n in args.num_envs:
        cpp, py = [], []
        for _ in range(args.repeats):
            cpp.append(_rate(genmarl.make("gridworld", num_envs=n, num_threads=1), args.seconds))
            py.append(_rate(genmarl.make("numpy_gridworld", num_envs=n), args.seconds))
        a, b = statistics.median(cpp), statistics.median(py)
        print(f"{n:>6} {a:>14,.0f} {b:>18,.0f}  {a / b:>8.1f}x")
    shutil.rmtree(build, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
