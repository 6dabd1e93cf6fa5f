"""genmarl: fast batched multi-agent environments (C++ core) and generative MARL.

>>> import genmarl
>>> env = genmarl.make("simple_spread", num_envs=1024, num_threads=2, seed=0)
>>> obs, infos = env.reset()
"""

from genmarl._core import InvalidArgument
from genmarl import buffers, sampling
from genmarl.envs.vector_env import VectorEnv, list_envs, make

__version__ = "0.1.0"
__all__ = ["InvalidArgument", "VectorEnv", "buffers", "list_envs", "make", "sampling", "train", "__version__"]


def train(config, out=None, resume=False):  # type: ignore[no-untyped-def]
    """Trains MAPPO / IPPO (``genmarl.algos.PPOConfig``) into a run directory; returns a
    ``RunResult`` (needs torch: ``pip install genmarl[train]``). See ``genmarl.training.runner``."""
    try:
        from genmarl.training.runner import train as _train
    except ImportError as exc:
        raise ImportError(f"genmarl.train needs torch: pip install 'genmarl[train]' ({exc})") from exc
    return _train(config, out=out, resume=resume)
