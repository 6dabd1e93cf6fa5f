"""Exported agents: C++ (genmarl::torch over AOTInductor) vs Python eager vs Python AOTInductor.

    python benchmarks/embed_throughput.py EXPORT_DIR RUN_DIR --bench BUILD/embed_bench [--k 16 --h 15 --envs 16]

EXPORT_DIR is ``genmarl export RUN_DIR --out EXPORT_DIR``; ``embed_bench`` is built from
examples/cpp/embed. One process at a time, one thread each (torch.set_num_threads(1) /
at::set_num_threads(1)), all in this run, so the ratios compare like with like. Prints act latency
at batch 1 and throughput at batch 1024 for the three paths, and for genrl exports imagined
steps/s and planned decisions/s of the C++ ImaginationRollout / Planner against the Python
ImaginationRollout / GenerativeAgent.plan with the same K, H and envs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time

import numpy as np
import torch


def _median_call_s(fn, calls: int) -> float:  # type: ignore[no-untyped-def]
    for _ in range(20):
        fn()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _rate(fn, seconds: float = 2.0) -> float:  # type: ignore[no-untyped-def]
    """Calls per second of fn over ``seconds``."""
    fn()
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("export_dir")
    ap.add_argument("run_dir")
    ap.add_argument("--bench", required=True, help="the embed_bench binary (examples/cpp/embed)")
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--h", type=int, default=15)
    ap.add_argument("--envs", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3, help="alternate C++ and Python this many times; medians are printed")
    args = ap.parse_args()
    torch.set_num_threads(1)

    from genmarl.export import load
    from genmarl.training.runner import load_trained

    rng = np.random.default_rng(0)
    aoti = load(args.export_dir)
    learners = {B: load_trained(args.run_dir, num_envs=B) for B in (1, 1024)}
    genrl = learners[1][1].algo == "genrl"
    if genrl:
        from genmarl.generative.agent import _CandidatePolicy

        agent, _ = load_trained(args.run_dir, num_envs=args.envs)
        agent.reset(seed=0)
        h, z = agent.filter_state(agent.obs)
        K, H, E = args.k, args.h, args.envs
        hs, zs = h.repeat_interleave(K, 0), z.repeat_interleave(K, 0)
        obs0 = agent._check_obs(agent.obs)  # rewards read from predicted observations start from these
        start = {g: o.repeat_interleave(K, 0) for g, o in obs0.items()}
    runs: list[dict[str, float]] = []
    for _ in range(args.repeats):  # alternate the paths, so that a slow spell of the machine hits both
        cpp = json.loads(subprocess.run([args.bench, args.export_dir, str(args.k), str(args.h), str(args.envs)],
                                        check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])  # fmt: skip
        row = {f"cpp_{k}": v for k, v in cpp.items() if isinstance(v, (int, float))}
        for B, (algo, cfg) in learners.items():
            algo.reset(seed=0)
            obs = {g: rng.normal(size=v.shape).astype(np.float32) for g, v in algo.obs.items()}
            row[f"eager_{B}"] = _median_call_s(lambda: algo.act(obs), 2000 if B == 1 else 50)  # noqa: B023
            row[f"aoti_{B}"] = _median_call_s(lambda: aoti.act(obs), 2000 if B == 1 else 50)  # noqa: B023
        if genrl:
            with torch.no_grad():
                row["py_imag"] = K * E * H * _rate(lambda: agent.imagine(hs, zs, _CandidatePolicy(agent), horizon=H, start_obs=start))
                row["py_plan"] = E * _rate(lambda: agent.plan(h, z, k=K, horizon=H, model="world", obs=agent.obs))
        runs.append(row)
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    cpp = {k[4:]: v for k, v in med.items() if k.startswith("cpp_")}
    rows = {B: (med[f"eager_{B}"], med[f"aoti_{B}"]) for B in (1, 1024)}
    cfg = learners[1][1]
    c_lat = cpp["act_latency_us_b1"] * 1e-6
    print(f"embed_throughput: {cfg.algo} on {cfg.env}, one thread per path, medians of {args.repeats} alternating repeats, "
          f"{time.strftime('%Y-%m-%d')}")
    print("  act latency at batch 1 (median of 2000 calls):")
    print(f"    C++ AOTInductor     {c_lat * 1e6:9.1f} us")
    print(f"    Python AOTInductor  {rows[1][1] * 1e6:9.1f} us   (C++ / this = {c_lat / rows[1][1]:.3f})")
    print(f"    Python eager        {rows[1][0] * 1e6:9.1f} us   (C++ / this = {c_lat / rows[1][0]:.3f}; target <= 0.2)")
    print("  act throughput at batch 1024 (envs acted per second):")
    print(f"    C++ AOTInductor     {cpp['act_rows_per_s_b1024']:11,.0f}")
    print(f"    Python AOTInductor  {1024 / rows[1024][1]:11,.0f}")
    print(f"    Python eager        {1024 / rows[1024][0]:11,.0f}   (C++ / this = {cpp['act_rows_per_s_b1024'] * rows[1024][0] / 1024:.2f}x)")
    if genrl:
        py_imag, py_plan = med["py_imag"], med["py_plan"]
        ratios = sorted(r["cpp_planned_decisions_per_s"] / r["py_plan"] for r in runs)
        print(f"  imagined steps/s ({K * E} starts x H={H}):")
        print(f"    C++ ImaginationRollout    {cpp['imagined_steps_per_s']:11,.0f}")
        print(f"    Python ImaginationRollout {py_imag:11,.0f}   (C++ / this = {cpp['imagined_steps_per_s'] / py_imag:.2f}x)")
        print(f"  planned decisions/s (K={K}, H={H}, {E} envs):")
        print(f"    C++ Planner               {cpp['planned_decisions_per_s']:11,.1f}")
        print(f"    Python GenerativeAgent    {py_plan:11,.1f}   (C++ / this = {cpp['planned_decisions_per_s'] / py_plan:.2f}x; target >= 2)")
        print(f"    per-repeat ratios {', '.join(f'{r:.2f}x' for r in ratios)}")
        print(f"  C++ planning profile: {cpp['plan_ms']:.2f} ms per plan, of which the compiled graphs (actor, step, value) "
              f"take {cpp['graph_ms']:.2f} ms ({cpp['graph_share']:.0%}); the rest is sampling, stacking and returns")  # fmt: skip


if __name__ == "__main__":
    main()
