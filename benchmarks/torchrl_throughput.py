"""TorchRL throughput: genmarl.torchrl.GenmarlEnv against genmarl's native grouped step, in one run.

    python benchmarks/torchrl_throughput.py --envs simple_spread Foraging-8x8-2p-2f-coop-v3 --num-envs 1024 --threads 1 2

Per env and thread count (medians of --repeats alternating repeats; env-steps/s, one env step =
one step of one environment with all its agents):

* native: ``VectorEnv.step_grouped`` with pre-drawn random actions;
* TorchRL step: ``GenmarlEnv.step_and_maybe_reset`` (what TorchRL's collectors call) with pre-drawn
  random actions written into its input with ``TensorDict.set`` (as a ``TensorDictModule`` policy
  writes them); also with ``TensorDict.update`` of a nested action TensorDict (the harness before);
* TorchRL rollout: ``GenmarlEnv.rollout(T)`` with TorchRL's random policy (adds the policy and the
  stacking of the trajectory);
* ``--baseline OLD/genmarl/torchrl.py``: instead of the above, an A/B of this ``GenmarlEnv`` against
  the one in another copy of the module (e.g. from a ``git worktree`` of an earlier commit), in one
  process: rounds of short blocks of native, baseline and current steps, interleaved, each
  block's rate divided by the native block of its round; prints the medians of those ratios and
  of the per-step times. Paired blocks cancel most of this VM's drift (single runs vary ±15%).
* before: TorchRL's ``PettingZooWrapper`` around one ``genmarl.pettingzoo`` env, the route that
  existed before ``GenmarlEnv`` (``--no-pettingzoo`` skips it).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch

import genmarl
from genmarl.torchrl import GenmarlEnv


def timed(fn, calls: int, warmup: int = 20) -> float:
    for i in range(warmup):
        fn(i)
    t = time.perf_counter()
    for i in range(calls):
        fn(i)
    return time.perf_counter() - t


def native(name: str, E: int, threads: int, calls: int) -> float:
    env = genmarl.make(name, num_envs=E, num_threads=threads, seed=0)
    _, infos = env.reset_grouped(seed=0)
    rng = np.random.default_rng(0)
    pool = [env.sample_actions(rng, grouped=True) for _ in range(16)]
    return calls * E / timed(lambda i: env.step_grouped(pool[i % 16]), calls)


def collector_step(env, write: str = "set"):  # noqa: ANN201 - step(i) -> None
    """One batched ``step_and_maybe_reset`` per call (what TorchRL's collectors do), with pre-drawn
    actions written into the step's input: one ``TensorDict.set`` per action entry (``write="set"``, as
    a ``TensorDictModule`` policy writes its outputs) or ``TensorDict.update`` with the nested action
    TensorDict (``write="update"``, this benchmark's harness before; it costs ~40 us of tensordict's
    Python per step here)."""
    state = {"td": env.reset()}
    pool = [env.full_action_spec.rand() for _ in range(16)]
    keys = list(pool[0].keys(True, True))

    def step(i: int) -> None:
        td, a = state["td"], pool[i % 16]
        if write == "set":
            for k in keys:
                td.set(k, a.get(k))
        else:
            td.update(a)
        _, state["td"] = env.step_and_maybe_reset(td)

    return step


def collector_steps_per_s(env, calls: int, write: str = "set") -> float:
    """Batched ``step_and_maybe_reset`` calls per second (see :func:`collector_step`)."""
    return calls / timed(collector_step(env, write), calls)


def torchrl_step(name: str, E: int, threads: int, calls: int, write: str = "set") -> float:
    return E * collector_steps_per_s(GenmarlEnv(name, num_envs=E, num_threads=threads, seed=0), calls, write)


def torchrl_rollout(name: str, E: int, threads: int, calls: int) -> float:
    env = GenmarlEnv(name, num_envs=E, num_threads=threads, seed=0)
    env.rollout(10, break_when_any_done=False)
    t = time.perf_counter()
    env.rollout(calls, break_when_any_done=False)
    return calls * E / (time.perf_counter() - t)


def pettingzoo_wrapper(name: str, calls: int) -> float:
    from torchrl.envs import PettingZooWrapper

    from genmarl.pettingzoo import parallel_env

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = PettingZooWrapper(parallel_env(name, seed=0), use_mask=True, categorical_actions=True)
    return collector_steps_per_s(env, calls)


def ab(name: str, E: int, threads: int, baseline: str, rounds: int, block: int = 40) -> None:
    """Paired comparison of GenmarlEnv against the one defined in the file ``baseline``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("baseline_torchrl", baseline)
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    env = genmarl.make(name, num_envs=E, num_threads=threads, seed=0)
    env.reset_grouped(seed=0)
    rng = np.random.default_rng(0)
    pool = [env.sample_actions(rng, grouped=True) for _ in range(16)]

    fns = {"native": lambda i: env.step_grouped(pool[i % 16])}
    for write in ("set", "update"):
        fns[f"baseline, {write}"] = collector_step(old.GenmarlEnv(name, num_envs=E, num_threads=threads, seed=0), write)
        fns[f"current, {write}"] = collector_step(GenmarlEnv(name, num_envs=E, num_threads=threads, seed=0), write)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            times[k].append(timed(fn, block, warmup=3) / block)
    for k, v in times.items():
        ratio = statistics.median(n / t for n, t in zip(times["native"], v))
        print(f"{name}, {E} envs x {threads} thread(s), {k}: {statistics.median(v) * 1e6:.0f} us per step, "
              f"median paired ratio to native {ratio:.3f}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--envs", nargs="+", default=["simple_spread", "Foraging-8x8-2p-2f-coop-v3"])
    p.add_argument("--num-envs", type=int, default=1024)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--calls", type=int, default=300, help="batched steps per measurement")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-pettingzoo", action="store_true")
    p.add_argument("--baseline", help="path of another genmarl/torchrl.py: run the paired A/B against it instead")
    p.add_argument("--rounds", type=int, default=60, help="rounds of the --baseline A/B")
    args = p.parse_args()
    torch.set_num_threads(1)
    E = args.num_envs
    if args.baseline:
        for name in args.envs:
            for threads in args.threads:
                ab(name, E, threads, args.baseline, args.rounds)
        return
    for name in args.envs:
        for threads in args.threads:
            runs: dict[str, list[float]] = {"native": [], "step": [], "step_update": [], "rollout": []}
            for _ in range(args.repeats):  # alternate, so that drifts of the machine hit all four
                runs["native"].append(native(name, E, threads, args.calls))
                runs["step"].append(torchrl_step(name, E, threads, args.calls))
                runs["step_update"].append(torchrl_step(name, E, threads, args.calls, write="update"))
                runs["rollout"].append(torchrl_rollout(name, E, threads, args.calls))
            med = {k: statistics.median(v) for k, v in runs.items()}
            print(f"{name}, {E} envs x {threads} thread(s): native {med['native'] / 1e6:.2f}M/s | "
                  f"TorchRL step_and_maybe_reset {med['step'] / 1e6:.2f}M/s ({med['step'] / med['native']:.2f}x native; "
                  f"{med['step_update'] / med['native']:.2f}x with update() writing the action) | "
                  f"TorchRL rollout, random policy {med['rollout'] / 1e6:.2f}M/s ({med['rollout'] / med['native']:.2f}x)", flush=True)
        if not args.no_pettingzoo:
            pz = statistics.median(pettingzoo_wrapper(name, 2000) for _ in range(args.repeats))
            print(f"{name}: before, TorchRL PettingZooWrapper around one genmarl env: {pz:,.0f} env-steps/s", flush=True)


if __name__ == "__main__":
    main()
