"""genmarl sweep: (setting, seed) runs as Ray Tune trials on a local Ray cluster started by the
test; run directories, summary.csv, plots per setting, resuming without redoing finished trials,
and bad input refused before any trial starts."""

from __future__ import annotations

import csv
import json
import os

import pytest

pytest.importorskip("torch")
ray = pytest.importorskip("ray")
pytest.importorskip("tomli_w")

from genmarl.cli import main as cli  # noqa: E402
from genmarl.sweep import parse_grid, setting_name, settings  # noqa: E402

CONFIG = """algo = "mappo"
env = "simple_spread"
total_steps = 1600
num_envs = 16
eval_every = 800
eval_episodes = 4
tensorboard = false
checkpoint_every = 800
"""


def test_grid_parsing():
    grid = parse_grid(["lr=3e-4,7e-4", "env_kwargs.N=3,4"])
    assert grid == {"lr": ["3e-4", "7e-4"], "env_kwargs.N": ["3", "4"]}
    assert len(settings(grid)) == 4 and settings({}) == [{}]
    assert setting_name({"lr": "3e-4", "env": "a/b"}) == "lr=3e-4,env=a_b" and setting_name({}) == "base"
    for bad, match in ((["lr"], "key=value1"), (["lr=1", "lr=2"], "twice"), (["seed=1,2"], "--seeds")):
        with pytest.raises(ValueError, match=match):
            parse_grid(bad)


def test_sweep_runs_trials_writes_summary_plots_and_resumes(local_ray, tmp_path, capsys):
    cfg = tmp_path / "base.toml"
    cfg.write_text(CONFIG)
    out = tmp_path / "sweep"
    # one trial's run is already finished before the sweep starts: it is not run again
    done = out / "lr=3e-4" / "seed_0"
    assert cli(["train", "--config", str(cfg), "--out", str(done), "seed=0", "lr=3e-4", "progress=false"]) == 0
    stamp = (done / "metrics.csv").stat().st_mtime_ns
    args = ["sweep", str(cfg), "--seeds", "2", "--grid", "lr=3e-4,7e-4", "--out", str(out)]
    assert cli(args) == 0
    with open(out / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted((r["setting"], r["seed"]) for r in rows) == [("lr=3e-4", "0"), ("lr=3e-4", "1"), ("lr=7e-4", "0"), ("lr=7e-4", "1")]
    for r in rows:
        run = out / r["setting"] / f"seed_{r['seed']}"
        for name in ("config.toml", "metrics.csv", "summary.json", "model.pt", "eval.json"):
            assert (run / name).exists(), (run, name)
        summary = json.loads((run / "summary.json").read_text())
        assert float(r["eval_return"]) == summary["eval/return_mean"] and int(r["env_steps"]) == 1600
        assert summary["seed"] == int(r["seed"])
    assert (done / "metrics.csv").stat().st_mtime_ns == stamp
    assert json.loads((out / "lr=7e-4" / "seed_1" / "config.json").read_text())["lr"] == 7e-4
    # running it again restores the Tune experiment and redoes nothing
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/seed_*/metrics.csv")}
    assert cli(args) == 0
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/seed_*/metrics.csv")} == stamps
    # one plot across seeds per setting
    capsys.readouterr()
    assert cli(["plot", str(out)]) == 0
    assert (out / "curves.png").exists()
    # another sweep into the same directory is refused
    assert cli(["sweep", str(cfg), "--seeds", "3", "--out", str(out)]) == 2
    assert "holds another sweep" in capsys.readouterr().err


def test_bad_input_is_refused_before_any_trial(tmp_path, capsys):
    cfg = tmp_path / "base.toml"
    cfg.write_text(CONFIG)
    cases = [
        (["--grid", "bogus=1,2"], "unknown config key 'bogus'"),
        (["--grid", "num_envs=0"], "num_envs must be >= 1"),
        (["--seeds", "0"], "--seeds"),
        (["--ray-address", "127.0.0.1:1"], "cannot reach the Ray cluster"),
        (["--ray-address", "nonsense"], "HOST:PORT"),
        (["--cpus-per-trial", "0"], "--cpus-per-trial"),
    ]
    for extra, message in cases:
        out = tmp_path / "never"
        try:
            rc = cli(["sweep", str(cfg), "--out", str(out), *extra])
        except SystemExit as exc:  # argparse's own checks
            rc = exc.code
        assert rc == 2, extra
        assert message in capsys.readouterr().err, extra
        assert not out.exists(), extra
    assert not os.environ.get("RAY_ADDRESS")
