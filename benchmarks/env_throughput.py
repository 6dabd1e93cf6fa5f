"""Environment throughput: genmarl side by side with the reference packages (mpe2,
lbforaging) and VMAS / JaxMARL in one run.

    python benchmarks/env_throughput.py [--scenarios simple_spread simple_tag] [--seconds 1.5]
    python benchmarks/env_throughput.py --scenarios Foraging-8x8-2p-2f-coop-v3 Foraging-15x15-4p-4f-v3 \
        --libs genmarl lbforaging

Every library steps the same scenario (default arguments, 25-step episodes, auto-reset on)
with uniformly random discrete actions drawn ahead of time (JaxMARL draws them inside its
jitted step). Each (library, num_threads) pair runs in its own subprocess so thread settings
(torch.set_num_threads, XLA's intra-op threads) cannot leak between measurements.

* genmarl, num_envs=1: a Python loop over the per-agent dict API (``env.step(dict)``).
* genmarl, num_envs>1: the grouped zero-copy API (``env.step_grouped``).
* mpe2: its PettingZoo parallel env, one env (it has no batched mode).
* lbforaging: ``gymnasium.make(id).unwrapped``, one env, ``reset()`` when the episode ends; actions
  uniform over all six (invalid ones act as NONE in both libraries).
* rware: ``gymnasium.make(id).unwrapped`` (without the passive checker, which warns every step),
  one env, ``reset()`` at the end of each 500-step episode; actions uniform over all five.
* VMAS (torch CPU): ``env.step`` on the batch, ``env.reset()`` when the episodes end.
* JaxMARL (jax CPU): ``jit(vmap(env.step))`` inside a ``lax.scan`` of 100 steps.

Prints env-steps/s, agent-steps/s and the ratio genmarl/peer for each configuration.
Benchmarks print figures; they are not timed tests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

NUM_ENVS = [1, 64, 1024, 8192]
THREADS = [1, 2]
MPE2_NAMES = {"simple_spread": "simple_spread_v3", "simple_tag": "simple_tag_v3"}
REFERENCES = ("mpe2", "lbforaging", "rware")  # single-env reference packages


def supports(lib: str, scenario: str) -> bool:
    """Whether a library has the scenario (peers without it are skipped, not reported)."""
    if lib == "genmarl":
        return True
    if lib == "lbforaging":
        return scenario.startswith("Foraging")
    if lib == "rware":
        return scenario.startswith("rware")
    return scenario in MPE2_NAMES


def _timed(step, seconds: float, min_steps: int = 5) -> float:
    """Calls step() repeatedly for about `seconds` (after a warm-up); returns calls per second."""
    for _ in range(3):
        step()
    n, t0 = 0, time.perf_counter()
    while True:
        step()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= seconds and n >= min_steps:
            return n / dt


def run_genmarl(scenario: str, num_envs: int, threads: int, seconds: float) -> dict:
    import numpy as np

    import genmarl

    env = genmarl.make(scenario, num_envs=num_envs, num_threads=threads, seed=0)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    if num_envs == 1:
        pool = [env.sample_actions(rng) for _ in range(256)]
        it = iter(range(10**12))

        def step():
            env.step(pool[next(it) % 256])
    else:
        pool = [env.sample_actions(rng, grouped=True) for _ in range(16)]
        it = iter(range(10**12))

        def step():
            env.step_grouped(pool[next(it) % 16])

    rate = _timed(step, seconds)
    return {"steps_per_s": rate * num_envs, "agents": env.num_agents}


def run_mpe2(scenario: str, num_envs: int, threads: int, seconds: float) -> dict:
    import importlib

    import numpy as np

    mod = importlib.import_module(f"mpe2.{MPE2_NAMES[scenario]}")
    env = mod.parallel_env()
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    pool = [{a: int(rng.integers(env.action_space(a).n)) for a in env.possible_agents} for _ in range(256)]
    state = {"i": 0}

    def step():
        if not env.agents:
            env.reset()
        env.step(pool[state["i"] % 256])
        state["i"] += 1

    rate = _timed(step, seconds)
    return {"steps_per_s": rate, "agents": len(env.possible_agents)}


def _run_gym_reference(scenario: str, seconds: float, module: str, num_actions: int, num_agents) -> dict:
    """One raw env of a Gymnasium-registered reference package (no wrappers), random actions."""
    import importlib
    import warnings

    import gymnasium as gym
    import numpy as np

    importlib.import_module(module)  # registers the ids
    warnings.filterwarnings("ignore")
    env = gym.make(scenario).unwrapped
    env.reset(seed=0)
    n = num_agents(env)
    rng = np.random.default_rng(0)
    pool = [tuple(int(a) for a in rng.integers(0, num_actions, n)) for _ in range(256)]
    state = {"i": 0}

    def step():
        _, _, done, trunc, _ = env.step(pool[state["i"] % 256])
        if done or trunc:
            env.reset()
        state["i"] += 1

    rate = _timed(step, seconds)
    return {"steps_per_s": rate, "agents": n}


def run_lbforaging(scenario: str, num_envs: int, threads: int, seconds: float) -> dict:
    return _run_gym_reference(scenario, seconds, "lbforaging", 6, lambda env: len(env.players))


def run_rware(scenario: str, num_envs: int, threads: int, seconds: float) -> dict:
    return _run_gym_reference(scenario, seconds, "rware", 5, lambda env: env.n_agents)


def run_vmas(scenario: str, num_envs: int, threads: int, seconds: float) -> dict:
    import torch
    import vmas

    torch.set_num_threads(threads)
    env = vmas.make_env(scenario, num_envs=num_envs, device="cpu", continuous_actions=False, max_steps=25, seed=0)
    env.reset()
    g = torch.Generator().manual_seed(0)
    pool = [[torch.randint(0, 5, (num_envs, 1), generator=g) for _ in env.agents] for _ in range(16)]
    state = {"i": 0}

    def step():
        _, _, done, _ = env.step(pool[state["i"] % 16])
        state["i"] += 1
        if bool(done.any()):
            env.reset()

    with torch.no_grad():
        rate = _timed(step, seconds)
    return {"steps_per_s": rate * num_envs, "agents": len(env.agents)}


def run_jaxmarl(scenario: str, num_envs: int, threads: int, seconds: float) -> dict:
    import jax
    import jax.numpy as jnp
    import jaxmarl

    env = jaxmarl.make(f"MPE_{MPE2_NAMES[scenario]}")
    n_scan = 100

    def one_step(carry, _):
        key, state = carry
        key, k_act, k_step = jax.random.split(key, 3)
        keys = jax.random.split(k_act, len(env.agents))
        acts = {
            a: jax.random.randint(keys[i], (num_envs,), 0, env.action_space(a).n)
            for i, a in enumerate(env.agents)
        }
        _, state, rew, _, _ = jax.vmap(env.step)(jax.random.split(k_step, num_envs), state, acts)
        return (key, state), rew[env.agents[0]].sum()

    @jax.jit
    def run(key, state):
        (key, state), r = jax.lax.scan(one_step, (key, state), None, length=n_scan)
        return key, state, jnp.sum(r)

    key = jax.random.PRNGKey(0)
    _, state = jax.vmap(env.reset)(jax.random.split(key, num_envs))
    box = {"key": key, "state": state}

    def step():
        k, s, r = run(box["key"], box["state"])
        r.block_until_ready()
        box["key"], box["state"] = k, s

    rate = _timed(step, seconds, min_steps=2)
    return {"steps_per_s": rate * n_scan * num_envs, "agents": len(env.agents)}


RUNNERS = {"genmarl": run_genmarl, "mpe2": run_mpe2, "lbforaging": run_lbforaging, "rware": run_rware, "vmas": run_vmas,
           "jaxmarl": run_jaxmarl}


def worker(args: argparse.Namespace) -> None:
    out = {}
    for scenario in args.scenarios:
        if not supports(args.lib, scenario):
            continue
        for n in args.num_envs:
            if args.lib in REFERENCES and n != 1:
                continue
            try:
                out[f"{scenario}/{n}"] = RUNNERS[args.lib](scenario, n, args.threads, args.seconds)
            except Exception as exc:  # report and go on: a peer may not support a size
                out[f"{scenario}/{n}"] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
    print("RESULT " + json.dumps(out))


def _spawn(lib: str, threads: int, args: argparse.Namespace) -> dict:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env["XLA_FLAGS"] = f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} intra_op_parallelism_threads={threads}"
    env["JAX_PLATFORMS"] = "cpu"
    cmd = [sys.executable, __file__, "--worker", lib, "--threads", str(threads), "--seconds", str(args.seconds),
           "--scenarios", *args.scenarios, "--num-envs", *map(str, args.num_envs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]}


def _available(lib: str) -> bool:
    import importlib.util

    return lib == "genmarl" or importlib.util.find_spec(lib) is not None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenarios", nargs="+", default=["simple_spread", "simple_tag"])
    p.add_argument("--num-envs", nargs="+", type=int, default=NUM_ENVS)
    p.add_argument("--threads-list", nargs="+", type=int, default=THREADS)
    p.add_argument("--libs", nargs="+", default=["genmarl", "mpe2", "vmas", "jaxmarl"])
    p.add_argument("--seconds", type=float, default=1.5)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        args.lib = args.worker
        worker(args)
        return

    results: dict[tuple[str, int], dict] = {}
    for lib in args.libs:
        if not _available(lib):
            print(f"# {lib}: not installed, skipped (pip install '.[bench]')")
            continue
        for t in args.threads_list if lib not in REFERENCES else [1]:
            print(f"# running {lib} with {t} thread(s) ...", flush=True)
            results[(lib, t)] = _spawn(lib, t, args)

    ref_rate = {}
    for s in args.scenarios:
        ref = next((lib for lib in REFERENCES if supports(lib, s)), None)
        ref_rate[s] = (ref, results.get((ref, 1), {}).get(f"{s}/1", {}).get("steps_per_s"))
    print()
    print(f"{'scenario':<28} {'envs':>5} {'thr':>3} {'library':<10} {'env-steps/s':>13} {'agent-steps/s':>14}  genmarl/peer")
    for s in args.scenarios:
        for n in args.num_envs:
            for t in args.threads_list:
                g = results.get(("genmarl", t), {}).get(f"{s}/{n}", {})
                for lib in args.libs:
                    if lib in REFERENCES and (n != 1 or t != 1):
                        continue
                    r = results.get((lib, 1 if lib in REFERENCES else t), {}).get(f"{s}/{n}")
                    if not r:
                        continue
                    if "error" in r:
                        print(f"{s:<28} {n:>5} {t:>3} {lib:<10} error: {r['error']}")
                        continue
                    ratio = "" if lib == "genmarl" or "steps_per_s" not in g else f"{g['steps_per_s'] / r['steps_per_s']:.1f}x"
                    print(f"{s:<28} {n:>5} {t:>3} {lib:<10} {r['steps_per_s']:>13,.0f} {r['steps_per_s'] * r['agents']:>14,.0f}  {ratio}")
            ref, rate = ref_rate[s]
            for t in args.threads_list:
                g = results.get(("genmarl", t), {}).get(f"{s}/{n}", {})
                if rate and "steps_per_s" in g:
                    print(f"{'':<28} {'':>5} {'':>3} genmarl({t} thread) / {ref} single env: {g['steps_per_s'] / rate:,.0f}x")
        g1 = results.get(("genmarl", 1), {}).get(f"{s}/1024", {}).get("steps_per_s")
        g2 = results.get(("genmarl", 2), {}).get(f"{s}/1024", {}).get("steps_per_s")
        if g1 and g2:
            print(f"{s}: genmarl 2-thread / 1-thread scaling at 1024 envs: {g2 / g1:.2f}x")
        print()


if __name__ == "__main__":
    main()
