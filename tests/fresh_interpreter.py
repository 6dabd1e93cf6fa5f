"""Runs test code in a fresh Python interpreter, so a crash, hang or runaway allocation is
reported as a test failure instead of taking pytest (or the machine) down with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap


def run_python(code: str, timeout: float = 120, limit_bytes: int | None = None) -> subprocess.CompletedProcess:
    """Runs ``code`` with ``sys.executable -c``, optionally under an address-space limit
    (``RLIMIT_AS``) so that a huge allocation fails with MemoryError instead of exhausting
    the machine. A run past ``timeout`` seconds raises ``subprocess.TimeoutExpired``."""
    code = textwrap.dedent(code)
    if limit_bytes is not None:
        code = f"import resource\nresource.setrlimit(resource.RLIMIT_AS, ({limit_bytes}, {limit_bytes}))\n" + code
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env)


def describe(proc: subprocess.CompletedProcess) -> str:
    """rc (and the signal that killed the process, if any), stdout and the end of stderr."""
    rc = proc.returncode
    how = f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exit status {rc}"
    return f"{how}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"


def last_line(proc: subprocess.CompletedProcess) -> str:
    """The last line the process printed (its result), after checking that it exited cleanly."""
    assert proc.returncode == 0, describe(proc)
    lines = proc.stdout.strip().splitlines()
    assert lines, describe(proc)
    return lines[-1]
