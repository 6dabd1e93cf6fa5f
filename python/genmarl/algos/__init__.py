"""Reactive baselines on genmarl's C++ envs and buffers (torch; ``pip install genmarl[train]``).

``PPOConfig`` is torch-free; ``MAPPO`` / ``IPPO`` import torch on first use.
"""

from __future__ import annotations

from typing import Any

from genmarl.algos.config import PPOConfig, load_config

__all__ = ["IPPO", "MAPPO", "PPOConfig", "load_config"]


def __getattr__(name: str) -> Any:
    if name in ("MAPPO", "IPPO"):
        try:
            from genmarl.algos import ppo
        except ImportError as exc:
            raise ImportError(f"genmarl.algos.{name} needs torch: pip install 'genmarl[train]' ({exc})") from exc
        return getattr(ppo, name)
    raise AttributeError(f"module 'genmarl.algos' has no attribute {name!r}")
