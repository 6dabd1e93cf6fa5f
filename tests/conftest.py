import fcntl
import os
import sys

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
sys.path.insert(0, os.path.dirname(__file__))


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """A local Ray cluster of 2 CPUs for the tests that need one (test_sweep, test_workers), one
    module at a time: under pytest-xdist (CI runs ``-n 2 --dist loadfile``) a file lock in the
    workers' shared temporary directory keeps two modules from starting clusters side by side."""
    ray = pytest.importorskip("ray")
    with open(tmp_path_factory.getbasetemp().parent / "genmarl-ray.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
            yield ray
        finally:
            ray.shutdown()
            fcntl.flock(lock, fcntl.LOCK_UN)
