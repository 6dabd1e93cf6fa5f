"""genmarl: fast batched multi-agent environments (C++ core) and generative MARL.

>>> import genmarl
>>> env = genmarl.make("simple_spread", num_envs=1024, num_threads=2, seed=0)
>>> obs, infos = env.reset()
"""

from genmarl._core import InvalidArgument
from genmarl import buffers, sampling
from genmarl.envs.registry import register, register_module, unregister
from genmarl.envs.vector_env import VectorEnv, list_envs, make

__version__ = "0.1.0"
__all__ = ["InvalidArgument", "VectorEnv", "buffers", "get_cmake_dir", "get_include", "list_envs", "make", "register", "register_module", "sampling", "train", "unregister", "__version__"]


def get_cmake_dir() -> str:
    """The folder of genmarl's CMake package (``genmarlConfig.cmake``) inside the installed wheel,
    for ``cmake -DCMAKE_PREFIX_PATH=...``: ``find_package(genmarl)`` then gives ``genmarl::core``
    (and ``genmarl::torch`` when Torch's prefix is on the path too). Raises FileNotFoundError in an
    install without it (an editable install: use the source tree's CMakeLists.txt)."""
    from pathlib import Path

    d = Path(__file__).resolve().parent / "share" / "cmake" / "genmarl"
    if not (d / "genmarlConfig.cmake").is_file():
        raise FileNotFoundError(f"{d} holds no genmarlConfig.cmake: this genmarl was not installed from a wheel "
                                "(in a source checkout, add_subdirectory() the repository instead)")
    return str(d)


def get_include() -> str:
    """The folder of genmarl's C++ headers inside the installed wheel (``genmarl/...hpp``)."""
    from pathlib import Path

    return str(Path(get_cmake_dir()).parents[2] / "include")


def train(config, out=None, resume=False):  # type: ignore[no-untyped-def]
    """Trains MAPPO / IPPO (``genmarl.algos.PPOConfig``) into a run directory; returns a
    ``RunResult`` (needs torch: ``pip install genmarl[train]``). See ``genmarl.training.runner``."""
    try:
        from genmarl.training.runner import train as _train
    except ImportError as exc:
        raise ImportError(f"genmarl.train needs torch: pip install 'genmarl[train]' ({exc})") from exc
    return _train(config, out=out, resume=resume)
