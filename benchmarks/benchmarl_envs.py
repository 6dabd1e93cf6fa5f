"""BenchMARL's MAPPO collecting from genmarl (genmarl.benchmarl.GenmarlTask) vs from PettingZoo/mpe2.

    python benchmarks/benchmarl_envs.py --frames 60000 [--envs-per-worker 10 600] [--python /path/to/benchmarl/venv/python]

BenchMARL pins its own TorchRL, so it usually lives in its own venv: ``--python`` runs the
measurements there (genmarl must be importable in it). For each setting, one BenchMARL experiment
(MAPPO, BenchMARL's default yaml configs; discrete actions; simple_spread N=3, max_cycles=25,
local_ratio=0.5; CSV logging, no evaluation) and the env-steps/s of its collection phase
(``timers/collection_time``: environment steps plus policy inference, BenchMARL's own timer) and of
the whole loop. Runs one after the other, never concurrently.

* ``pettingzoo``: BenchMARL's ``PettingZooTask.SIMPLE_SPREAD`` (mpe2 envs in TorchRL's
  ``SerialEnv``, ``--envs-per-worker`` of them);
* ``genmarl``: ``GenmarlTask.SIMPLE_SPREAD`` (one batched ``GenmarlEnv`` of ``--envs-per-worker``
  envs).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _worker(backend: str, frames: int, envs: int) -> dict:
    from benchmarl.algorithms import MappoConfig
    from benchmarl.experiment import Experiment, ExperimentConfig
    from benchmarl.models.mlp import MlpConfig

    if backend == "pettingzoo":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from train_vs_benchmarl import _install_mpe2_shim

        _install_mpe2_shim()
        from benchmarl.environments import PettingZooTask

        task = PettingZooTask.SIMPLE_SPREAD.get_from_yaml()
        task.config.update({"max_cycles": 25, "N": 3, "local_ratio": 0.5})
    else:
        from genmarl.benchmarl import GenmarlTask

        task = GenmarlTask.SIMPLE_SPREAD.get_task({"max_steps": 25, "N": 3, "local_ratio": 0.5})
    cfg = ExperimentConfig.get_from_yaml()
    fpb = cfg.on_policy_collected_frames_per_batch
    cfg.max_n_frames = max(1, frames // fpb) * fpb
    cfg.on_policy_n_envs_per_worker = envs
    cfg.evaluation = False
    cfg.prefer_continuous_actions = False
    cfg.loggers = ["csv"]
    cfg.render = False
    cfg.checkpoint_interval = 0
    cfg.checkpoint_at_end = False
    cfg.sampling_device = cfg.train_device = cfg.buffer_device = "cpu"
    with tempfile.TemporaryDirectory() as out:
        cfg.save_folder = out
        exp = Experiment(task=task, algorithm_config=MappoConfig.get_from_yaml(), model_config=MlpConfig.get_from_yaml(),
                         critic_model_config=MlpConfig.get_from_yaml(), seed=0, config=cfg)
        t = time.perf_counter()
        exp.run()
        wall = time.perf_counter() - t
        (col,) = Path(out).rglob("timers_collection_time.csv")
        with open(col) as fh:
            collection = sum(float(row[1]) for row in csv.reader(fh))
    return {"backend": backend, "envs": envs, "frames": exp.total_frames, "collection_s": collection, "wall_s": wall}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        print(json.dumps(_worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=60_000)
    p.add_argument("--envs-per-worker", type=int, nargs="+", default=[10])
    p.add_argument("--python", default=sys.executable, help="a Python with benchmarl (and genmarl) installed")
    args = p.parse_args()
    rows = []
    for envs in args.envs_per_worker:
        for backend in ("pettingzoo", "genmarl"):
            out = subprocess.run([args.python, __file__, "_worker", backend, str(args.frames), str(envs)],
                                 check=True, capture_output=True, text=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(r)
            print(f"{backend:>10}, {envs} envs: {r['frames']} frames, collection {r['frames'] / r['collection_s']:,.0f} env-steps/s "
                  f"({r['collection_s']:.1f} s), whole loop {r['wall_s']:.1f} s", flush=True)
        pz, gm = rows[-2], rows[-1]
        print(f"  genmarl / pettingzoo collection speed at {envs} envs: "
              f"{(gm['frames'] / gm['collection_s']) / (pz['frames'] / pz['collection_s']):.1f}x", flush=True)


if __name__ == "__main__":
    main()
