"""Copy a reset ``lbforaging`` 2.0.0 ForagingEnv's state into a genmarl ``lbf`` env."""

from __future__ import annotations

from typing import Any

import numpy as np


def sync_lbf(vector_env: Any, env_index: int, ref_env: Any) -> None:
    """Field (food levels), player positions and levels, the food spawned at reset (the reward
    normaliser) and the step counter. Checks that the reference's grid and player count match."""
    raw = getattr(ref_env, "unwrapped", ref_env)
    state = vector_env.get_state()
    e = env_index
    if tuple(raw.field.shape) != tuple(state["field"].shape[1:]):
        raise ValueError(f"field sizes differ: reference {raw.field.shape}, genmarl {state['field'].shape[1:]}")
    if len(raw.players) != state["pos"].shape[1]:
        raise ValueError(f"player counts differ: reference {len(raw.players)}, genmarl {state['pos'].shape[1]}")
    state["field"][e] = raw.field
    for i, p in enumerate(raw.players):
        state["pos"][e, i] = (int(p.position[0]), int(p.position[1]))
        state["level"][e, i] = int(p.level)
        state["reward"][e, i] = float(p.reward)
    state["action"][e] = 0
    state["food_spawned"][e] = float(raw._food_spawned)
    state["steps"][e] = int(raw.current_step)
    vector_env.set_state(state)
