"""Two genmarl builds side by side: env throughput (alternating repeats, medians) and whether
their trajectories are bitwise equal. Used to check that a change to the env core costs no
speed and changes no MPE result.

    git worktree add /tmp/old <commit> && pip install --no-deps --target /tmp/oldpkg /tmp/old
    python benchmarks/compare_builds.py --other /tmp/oldpkg [--scenarios simple_spread simple_tag]
        [--num-envs 1 1024] [--threads 1 2] [--repeats 5] [--seconds 1.0]

"this" is the genmarl importable here; "other" is the one under --other (put first on the
path of its subprocess). Each measurement runs in a fresh subprocess; the two builds alternate
over the repeats so machine-speed drift hits both alike. Bitwise check: 200 steps of every
listed scenario with the same seed and the same random actions (obs, rewards, dones).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time

WORKER = r"""
import hashlib, json, os, sys, time
other = os.environ.get("GENMARL_OTHER")
if other:  # the other build first, and no editable-install redirect to this checkout
    sys.path.insert(0, other)
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__]
import numpy as np
import genmarl
if other:
    assert genmarl.__file__.startswith(other), genmarl.__file__
mode, scenario, n, threads, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
env = genmarl.make(scenario, num_envs=n, num_threads=threads, seed=0)
rng = np.random.default_rng(0)
env.reset(seed=0)
if mode == "hash":
    h = hashlib.sha256()
    for _ in range(200):
        obs, rew, term, trunc, infos = env.step_grouped(env.sample_actions(rng, grouped=True))
        for d in (obs, rew, term, trunc):
            for g in sorted(d):
                h.update(np.ascontiguousarray(d[g]).tobytes())
    print(json.dumps({"hash": h.hexdigest()}))
else:
    pool = [env.sample_actions(rng, grouped=True) for _ in range(16)]
    for k in range(3):
        env.step_grouped(pool[k])
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or steps < 5:
        env.step_grouped(pool[steps % 16])
        steps += 1
    print(json.dumps({"rate": steps * n / (time.perf_counter() - t0)}))
"""


def _run(path: str | None, *args: str) -> dict:
    env = dict(os.environ)
    env.pop("GENMARL_OTHER", None)
    if path:
        env["GENMARL_OTHER"] = os.path.abspath(path)
    out = subprocess.run([sys.executable, "-c", WORKER, *args], capture_output=True, text=True, env=env, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--other", required=True, help="directory holding the other build's genmarl package")
    p.add_argument("--scenarios", nargs="+", default=["simple_spread", "simple_tag"])
    p.add_argument("--hash-scenarios", nargs="+", default=None, help="default: every MPE scenario")
    p.add_argument("--num-envs", nargs="+", type=int, default=[1, 1024])
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--no-speed", action="store_true", help="only the bitwise check")
    args = p.parse_args()

    import genmarl

    hash_scenarios = args.hash_scenarios or genmarl.list_envs("mpe")
    print("bitwise equality of 200-step trajectories (obs, rewards, terminated, truncated):")
    same = 0
    for s in hash_scenarios:
        a = _run(None, "hash", s, "16", "1", "0")["hash"]
        b = _run(args.other, "hash", s, "16", "1", "0")["hash"]
        same += a == b
        print(f"  {s:<26} {'equal' if a == b else 'DIFFERENT'}")
    print(f"  {same}/{len(hash_scenarios)} equal\n")
    if args.no_speed:
        return

    print(f"throughput (env-steps/s, median of {args.repeats} alternating repeats of {args.seconds:.1f} s):")
    print(f"  {'scenario':<16} {'envs':>5} {'thr':>3} {'this':>12} {'other':>12}  this/other")
    for s in args.scenarios:
        for n in args.num_envs:
            for t in args.threads if n > 1 else [1]:
                this, other = [], []
                for _ in range(args.repeats):
                    this.append(_run(None, "rate", s, str(n), str(t), str(args.seconds))["rate"])
                    other.append(_run(args.other, "rate", s, str(n), str(t), str(args.seconds))["rate"])
                a, b = statistics.median(this), statistics.median(other)
                print(f"  {s:<16} {n:>5} {t:>3} {a:>12,.0f} {b:>12,.0f}  {a / b:.3f}")


if __name__ == "__main__":
    main()
