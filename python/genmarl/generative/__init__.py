"""Generative multi-agent RL (torch; ``pip install genmarl[train]``).

``WorldModel`` (multi-agent world model with behaviour prediction), ``ImaginationRollout``
(batched imagined rollouts), ``lambda_returns`` and ``GenerativeAgent`` (``algo="genrl"``).
Importing this package imports torch.
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised with torch blocked
    raise ImportError(f"genmarl.generative needs torch: pip install 'genmarl[train]' ({exc})") from exc

from genmarl.algos.config import GenRLConfig
from genmarl.generative.agent import GenerativeAgent
from genmarl.generative.imagination import Imagined, ImaginationRollout, lambda_returns
from genmarl.generative.world_model import WorldModel

__all__ = ["GenRLConfig", "GenerativeAgent", "Imagined", "ImaginationRollout", "WorldModel", "lambda_returns"]
