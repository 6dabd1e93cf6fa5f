"""Batched environments backed by the C++ core."""

from genmarl.envs.vector_env import VectorEnv, list_envs, make

__all__ = ["VectorEnv", "list_envs", "make"]
