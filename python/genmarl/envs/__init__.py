"""Batched environments backed by the C++ core."""

from genmarl.envs.registry import register, register_module, unregister
from genmarl.envs.vector_env import VectorEnv, list_envs, make

__all__ = ["VectorEnv", "list_envs", "make", "register", "register_module", "unregister"]
