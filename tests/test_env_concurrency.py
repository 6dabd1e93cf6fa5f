"""Envs under threads, fork and thread limits (docs/reliability.md).

Every risky case runs in its own interpreter with a time limit, so a crash shows up as a
signal exit code and a hang as a timeout instead of taking the test session down.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import genmarl

TIMEOUT = 120


def run_script(code: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh interpreter; fails the test on a signal death or a hang."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"hung for more than {timeout} s; output so far:\n{exc.stdout}\n{exc.stderr}")
    assert proc.returncode >= 0, f"killed by signal {-proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    assert proc.returncode == 0, f"exit code {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.parametrize("name", ["simple_spread", "simple_speaker_listener"])
def test_rejected_step_never_overwrites_another_threads_actions(name):
    # One thread steps with valid actions while another keeps sending actions one past the
    # end of the action space, which step() rejects. The rejected actions must never reach
    # the simulator (before steps were serialised they could, and wrote out of bounds): the
    # env must end exactly where the same number of valid steps takes a twin env.
    run_script(
        f"""
        import threading, numpy as np, genmarl
        kw = dict(num_envs=512, num_threads=2, seed=0)
        env, twin = genmarl.make("{name}", **kw), genmarl.make("{name}", **kw)
        env.reset(seed=0); twin.reset(seed=0)
        good = {{g: np.zeros((512, len(a)), np.int64) for g, a in env.group_agents.items()}}
        bad = {{g: np.full((512, len(a)), env.action_space(a[0]).n, np.int64) for g, a in env.group_agents.items()}}
        stop = threading.Event()
        rejected = [0]
        def attacker():
            while not stop.is_set():
                try:
                    env.step_grouped(bad)
                except ValueError:
                    rejected[0] += 1
        t = threading.Thread(target=attacker)
        t.start()
        for _ in range(300):
            env.step_grouped(good)
        stop.set()
        t.join()
        for _ in range(300):
            twin.step_grouped(good)
        got, want = env.get_state(), twin.get_state()
        assert all(got[k].tobytes() == want[k].tobytes() for k in want), [k for k in want if got[k].tobytes() != want[k].tobytes()]
        assert rejected[0] > 0
        print("rejected", rejected[0])
        """
    )


def test_set_state_while_another_thread_steps():
    run_script(
        """
        import threading, numpy as np, genmarl
        env = genmarl.make("simple_world_comm", num_envs=256, num_threads=2, seed=1)
        env.reset(seed=1)
        snapshot = env.get_state()
        acts = {g: np.zeros((256, len(a)), np.int64) for g, a in env.group_agents.items()}
        stop = threading.Event()
        def restorer():
            while not stop.is_set():
                env.set_state(snapshot)
                env.get_state()
        t = threading.Thread(target=restorer)
        t.start()
        for _ in range(300):
            obs, *_ = env.step_grouped(acts)
            assert all(np.isfinite(o).all() for o in obs.values())
        stop.set()
        t.join()
        """
    )


@pytest.mark.parametrize("num_threads", [1, 2])
def test_two_threads_stepping_one_env_lose_no_step(num_threads):
    # All actions are the same, so the order of the two threads' steps does not matter: after
    # 2 x 150 steps the env must be exactly where 300 sequential steps take a second env.
    run_script(
        f"""
        import threading, numpy as np, genmarl
        kw = dict(num_envs=64, num_threads={num_threads}, seed=3, max_cycles=1000)
        shared = genmarl.make("simple_spread", **kw)
        ref = genmarl.make("simple_spread", **kw)
        shared.reset(seed=3); ref.reset(seed=3)
        acts = {{"agent": np.full((64, 3), 2, np.int64)}}
        returns = []
        def worker():
            for _ in range(150):
                _, rew, *_ = shared.step_grouped(acts)
                returns.append(rew["agent"].copy())
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads: t.start()
        for t in threads: t.join()
        expected = [ref.step_grouped(acts)[1]["agent"] for _ in range(300)]
        got, want = shared.get_state(), ref.get_state()
        for k in want:
            assert got[k].tobytes() == want[k].tobytes(), k
        # every step's rewards are one of the sequential steps' rewards, each used once
        key = lambda r: r.tobytes()
        assert sorted(map(key, returns)) == sorted(map(key, expected))
        """
    )


def test_env_with_threads_steps_in_a_forked_child():
    # The default multiprocessing start method on Linux forks; the child has none of the
    # parent's pool threads, so the env must start a new pool there (this hung forever).
    run_script(
        """
        import os, numpy as np, genmarl
        env = genmarl.make("simple_spread", num_envs=256, num_threads=2, seed=0)
        env.reset(seed=0)
        acts = {"agent": np.zeros((256, 3), np.int64)}
        env.step_grouped(acts)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                for _ in range(20):
                    obs, *_ = env.step_grouped(acts)
                child = genmarl.make("simple_spread", num_envs=256, num_threads=2, seed=0)
                child.reset(seed=0); child.step_grouped(acts)
                env.close(); del env, child  # destroying an inherited pool must not hang either
                import gc; gc.collect()
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        env.step_grouped(acts)  # the parent's pool is untouched
        print("ok")
        """,
        timeout=60,
    )


def test_fork_while_another_thread_holds_the_env():
    # A thread of the parent is inside a step when the process forks: the child must not
    # wait forever for that thread's lock.
    run_script(
        """
        import os, threading, numpy as np, genmarl
        env = genmarl.make("simple_spread", num_envs=4096, num_threads=2, seed=0)
        env.reset(seed=0)
        acts = {"agent": np.zeros((4096, 3), np.int64)}
        stop = threading.Event()
        def stepper():
            while not stop.is_set():
                env.step_grouped(acts)
        t = threading.Thread(target=stepper)
        t.start()
        for _ in range(5):
            pid = os.fork()
            if pid == 0:
                try:
                    env.reset(seed=1)
                    env.step_grouped(acts)
                finally:
                    os._exit(0)
            _, status = os.waitpid(pid, 0)
            assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        stop.set()
        t.join()
        """,
        timeout=60,
    )


def test_multiprocessing_fork_pool_steps_envs():
    run_script(
        """
        import multiprocessing as mp, numpy as np, genmarl
        env = genmarl.make("simple_spread", num_envs=128, num_threads=2, seed=0)
        env.reset(seed=0)
        def work(seed):
            obs, _ = env.reset_grouped(seed=seed)
            _, rew, *_ = env.step_grouped({"agent": np.zeros((128, 3), np.int64)})
            return float(rew["agent"].sum())
        if __name__ == "__main__":
            with mp.get_context("fork").Pool(2) as pool:
                got = pool.map(work, [1, 2, 3, 4])
            assert got == [work(s) for s in [1, 2, 3, 4]]
            print(got)
        """,
        timeout=60,
    )


def test_sampling_pool_in_a_forked_child():
    run_script(
        """
        import os, numpy as np
        from genmarl import sampling
        logits = np.zeros((4096, 5), np.float32)
        a = sampling.categorical_sample(logits, seed=1, num_threads=2)
        pid = os.fork()
        if pid == 0:
            b = sampling.categorical_sample(logits, seed=1, num_threads=2)
            os._exit(0 if np.array_equal(a[0], b[0]) else 1)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        """,
        timeout=60,
    )


def test_thread_start_failure_raises_and_the_process_goes_on():
    # Under an address-space limit only a few thread stacks fit: the pool must stop the
    # threads it started and raise, not abort or hang.
    run_script(
        """
        import resource, genmarl, numpy as np
        with open("/proc/self/status") as f:
            vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (vm + (256 << 20), resource.RLIM_INFINITY))
        try:
            genmarl.make("simple_spread", num_envs=1024, num_threads=1000)
        except RuntimeError as exc:
            msg = str(exc)
            assert "could not start 1000 threads" in msg and "fewer threads" in msg, msg
        else:
            raise AssertionError("no error")
        env = genmarl.make("simple_spread", num_envs=64, num_threads=2)
        env.reset(seed=0)
        env.step_grouped({"agent": np.zeros((64, 3), np.int64)})
        print("ok")
        """,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(num_threads=genmarl._core.MAX_THREADS + 1), "num_threads must be a positive integer at most 1024"),
        (dict(num_threads=2**40), "num_threads must be a positive integer at most 1024"),
        (dict(num_envs=2**31), "num_envs must be a positive integer below 2**31"),
        (dict(N=2**31), "argument 'N' must be an integer in [-2147483648, 2147483647], got 2147483648"),
        (dict(max_cycles=2**31), "argument 'max_cycles' must be an integer in"),
        (dict(max_cycles=-(2**31) - 1), "argument 'max_cycles' must be an integer in"),
    ],
)
def test_out_of_range_sizes_are_rejected_with_a_message(kwargs, message):
    with pytest.raises(ValueError) as info:
        genmarl.make("simple_spread", **kwargs)
    assert message in str(info.value)


def test_sampling_thread_limit():
    from genmarl import sampling

    with pytest.raises(ValueError, match="num_threads"):
        sampling.categorical_sample(np.zeros((4, 3), np.float32), seed=0, num_threads=10**6)
