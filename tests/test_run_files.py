"""Run files as untrusted input, and runs that a kill -9 interrupts.

* A ``model.pt`` / ``latest.pt`` carrying a pickle payload is refused, never executed (eval,
  ``train --resume``, ``MAPPO.load``, ``GenerativeAgent.load``).
* Empty, truncated and random-bytes checkpoints fail with one ``genmarl: error:`` line.
* Checkpoints are atomic: a process killed (SIGKILL) inside a checkpoint write leaves the old
  file or the new one, and ``--resume`` ends with the metrics of an uninterrupted run, also when
  killed before the first checkpoint.

Crash and security cases run the CLI in a fresh interpreter (``python -m genmarl.cli``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from run_metrics import metrics_without_wall_clock  # noqa: E402

from genmarl.cli import main as cli  # noqa: E402
from genmarl.training import checkpoints  # noqa: E402

RUN = ["total_steps=6400", "num_envs=32", "num_steps=25", "eval_every=3200", "eval_episodes=8",
       "checkpoint_every=2400", "update_epochs=2", "progress=false", "tensorboard=false"]  # fmt: skip

PAYLOAD = textwrap.dedent(
    """
    import sys, torch
    class Payload:  # unpickling this with weights_only=False creates the marker file
        def __reduce__(self):
            return (open, (sys.argv[2], "w"))
    torch.save({"config": Payload(), "algo": Payload(), "actors": Payload()}, sys.argv[1])
    """
)


def genmarl_cli(*args: str, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m genmarl.cli ARGS`` in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "genmarl.cli", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


def assert_user_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit code 2, one ``genmarl: error:`` line naming every needle, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "genmarl: error:" in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A complete MAPPO run (6,400 env steps, checkpoints at 2,400 and 4,800)."""
    out = tmp_path_factory.mktemp("runs") / "ref"
    assert cli(["train", "--env", "simple_spread", "--seed", "0", "--out", str(out), *RUN]) == 0
    return out


def copy_run(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


# ---- untrusted run files -------------------------------------------------------------------------


def plant_payload(path: Path, marker: Path) -> None:
    subprocess.run([sys.executable, "-c", PAYLOAD, str(path), str(marker)], check=True, timeout=60)
    assert path.stat().st_size > 0 and not marker.exists()


def test_payload_in_model_and_checkpoint_is_refused_not_run(finished_run, tmp_path) -> None:
    run = copy_run(finished_run, tmp_path / "run")
    marker = tmp_path / "PWNED"
    plant_payload(run / "model.pt", marker)
    plant_payload(run / "checkpoints" / "latest.pt", marker)

    proc = genmarl_cli("eval", str(run), "--episodes", "2")
    assert_user_error(proc, "model.pt", "could run code")
    proc = genmarl_cli("train", "--resume", str(run))
    assert_user_error(proc, "latest.pt", "could run code", "step_4800.pt is readable")
    # the Python API: MAPPO.load and GenerativeAgent.load refuse the same files
    script = textwrap.dedent(
        f"""
        import genmarl
        from genmarl.algos import MAPPO
        from genmarl.algos.config import GenRLConfig
        from genmarl.generative import GenerativeAgent
        from genmarl.training.checkpoints import CheckpointError
        env = genmarl.make("simple_spread", num_envs=2)
        for learner in (MAPPO(env), GenerativeAgent(env, GenRLConfig(num_envs=2, buffer_capacity=1000))):
            for path in ({str(run / "model.pt")!r}, {str(run / "checkpoints" / "latest.pt")!r}):
                try:
                    learner.load(path)
                except CheckpointError as exc:
                    assert "could run code" in str(exc), exc
                else:
                    raise SystemExit("loaded a payload")
        print("refused")
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "refused", proc.stderr[-2000:]
    assert not marker.exists()


def test_saved_files_load_as_plain_data(finished_run) -> None:
    for path in (finished_run / "model.pt", *(finished_run / "checkpoints").glob("*.pt")):
        state = torch.load(path, map_location="cpu", weights_only=True)
        checkpoints.check_plain(state)
    with pytest.raises(TypeError, match="numpy"):
        checkpoints.check_plain({"algo": {"env_state": {"pos": __import__("numpy").zeros(3)}}})


@pytest.mark.parametrize("damage", ["empty", "truncated", "random"])
def test_damaged_model_and_checkpoint_fail_with_a_message(finished_run, tmp_path, damage) -> None:
    run = copy_run(finished_run, tmp_path / "run")
    for name in ("model.pt", "checkpoints/latest.pt"):
        good = (finished_run / name).read_bytes()
        bad = {"empty": b"", "truncated": good[: len(good) // 3], "random": os.urandom(4096)}[damage]
        (run / name).write_bytes(bad)
    assert_user_error(genmarl_cli("eval", str(run), "--episodes", "2"), "model.pt", "expected a model.pt written by genmarl train")
    assert_user_error(genmarl_cli("train", "--resume", str(run)), "latest.pt", "expected a checkpoint written by genmarl train")


def test_checkpoint_of_plain_data_but_wrong_contents(finished_run, tmp_path) -> None:
    run = copy_run(finished_run, tmp_path / "run")
    torch.save({"weights": torch.zeros(3)}, run / "model.pt")
    torch.save({"algo": 5}, run / "checkpoints" / "latest.pt")
    assert_user_error(genmarl_cli("eval", str(run)), "model.pt lacks 'config'")
    assert_user_error(genmarl_cli("train", "--resume", str(run)), "latest.pt lacks")
    state = torch.load(finished_run / "model.pt", weights_only=True)
    state["actors"] = {"agent.nope": torch.zeros(1)}
    torch.save(state, run / "model.pt")
    assert_user_error(genmarl_cli("eval", str(run)), "model.pt does not fit")


# ---- atomic checkpoints and kill -9 ---------------------------------------------------------------

KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path

    target = sys.argv[1]
    real_replace = os.replace

    def replace(src, dst, *a, **k):  # SIGKILL between writing the temp file and renaming it over `target`
        if Path(dst).name == target:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst, *a, **k)

    os.replace = replace
    from genmarl.cli import main
    sys.exit(main(sys.argv[2:]))
    """
)


def train_and_kill_at(run: Path, target: str) -> None:
    """Runs ``genmarl train`` in a subprocess that kills itself with SIGKILL just before the
    rename that publishes ``target`` (its temp file is written and fsynced)."""
    argv = [sys.executable, "-c", KILLER, target, "train", "--env", "simple_spread", "--seed", "0", "--out", str(run), *RUN]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]


def temporaries(run: Path) -> list[Path]:
    return [p for p in run.rglob("*") if checkpoints.is_temporary(p)]


def test_killed_before_the_first_checkpoint_resumes_from_step_zero(finished_run, tmp_path) -> None:
    run = tmp_path / "run"
    train_and_kill_at(run, "step_2400.pt")
    assert not (run / "checkpoints" / "latest.pt").exists() and not (run / "checkpoints" / "step_2400.pt").exists()
    assert temporaries(run)  # the interrupted write's temp file, never read
    # restarting without --resume points at --resume ...
    assert_user_error(genmarl_cli("train", "--out", str(run), *RUN), "already holds a run", "--resume")
    # ... which starts the run again from step 0 with its saved config
    proc = genmarl_cli("train", "--resume", str(run), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "stopped before its first checkpoint; starting it again from step 0" in proc.stderr
    assert not temporaries(run)
    assert metrics_without_wall_clock(run) == metrics_without_wall_clock(finished_run)
    for name in ("step_2400.pt", "step_4800.pt"):
        checkpoints.load(run / "checkpoints" / name)


def test_killed_inside_a_checkpoint_write_resumes_bitwise(finished_run, tmp_path) -> None:
    # killed while publishing the second snapshot: latest.pt still holds step 2,400
    run = tmp_path / "run"
    train_and_kill_at(run, "step_4800.pt")
    assert checkpoints.load(run / "checkpoints" / "latest.pt")["algo"]["env_steps"] == 2400
    assert temporaries(run)
    assert cli(["train", "--resume", str(run)]) == 0
    assert not temporaries(run)
    assert metrics_without_wall_clock(run) == metrics_without_wall_clock(finished_run)
    assert checkpoints.load(run / "checkpoints" / "step_4800.pt")["algo"]["env_steps"] == 4800

    # killed between the snapshot and latest.pt of the first checkpoint: resume from the snapshot
    run = tmp_path / "run2"
    train_and_kill_at(run, "latest.pt")
    assert not (run / "checkpoints" / "latest.pt").exists() and (run / "checkpoints" / "step_2400.pt").exists()
    proc = genmarl_cli("train", "--resume", str(run), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "resuming from" in proc.stderr and "step_2400.pt" in proc.stderr
    assert metrics_without_wall_clock(run) == metrics_without_wall_clock(finished_run)


def test_resume_rewrites_an_empty_snapshot_and_ignores_temp_files(finished_run, tmp_path, capsys) -> None:
    # what genmarl <= 0.1 left after a kill inside its in-place snapshot write: latest.pt at step
    # 2,400, a 0-byte step_2400.pt and a stray temp file
    run = copy_run(finished_run, tmp_path / "run")
    ckpt = run / "checkpoints"
    shutil.copy(finished_run / "checkpoints" / "step_2400.pt", ckpt / "latest.pt")
    (ckpt / "step_2400.pt").write_bytes(b"")
    (ckpt / "step_4800.pt").write_bytes(b"")
    (ckpt / "latest.pt.tmp").write_bytes(b"\x00" * 10)
    (ckpt / ".latest.pt.abc123.tmp").write_bytes(os.urandom(100))
    assert cli(["train", "--resume", str(run)]) == 0
    assert "rewrote" in capsys.readouterr().err
    assert metrics_without_wall_clock(run) == metrics_without_wall_clock(finished_run)
    assert (ckpt / "step_2400.pt").read_bytes() == (finished_run / "checkpoints" / "step_2400.pt").read_bytes()
    assert checkpoints.load(ckpt / "step_4800.pt")["algo"]["env_steps"] == 4800  # rewritten when the run passed it
    assert not temporaries(run)


def test_atomic_write_leaves_old_file_when_interrupted(tmp_path, monkeypatch) -> None:
    path = tmp_path / "latest.pt"
    checkpoints.save({"step": 1}, path)
    monkeypatch.setattr(os, "replace", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        checkpoints.save({"step": 2}, path)
    assert checkpoints.load(path) == {"step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt"]  # the temp file was removed


def test_resume_of_a_directory_without_a_run(tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    assert_user_error(genmarl_cli("train", "--resume", str(tmp_path / "empty")), "no checkpoint")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    assert_user_error(genmarl_cli("train", "--resume", str(tmp_path / "bad")), "config.json")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback on a machine without CUDA")
def test_eval_of_a_gpu_trained_run_falls_back_to_cpu(finished_run, tmp_path) -> None:
    run = copy_run(finished_run, tmp_path / "run")
    state = torch.load(run / "model.pt", weights_only=True)
    state["config"]["device"] = "cuda"
    checkpoints.save(state, run / "model.pt")
    proc = genmarl_cli("eval", str(run), "--episodes", "2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "trained on cuda" in proc.stderr and "loading it on cpu" in proc.stderr
    # resuming needs the device it trained on: a clear error, not a crash
    latest = checkpoints.load(run / "checkpoints" / "latest.pt")
    latest["algo"]["config"]["device"] = "cuda"
    checkpoints.save(latest, run / "checkpoints" / "latest.pt")
    assert_user_error(genmarl_cli("train", "--resume", str(run)), "device 'cuda' is not available")
