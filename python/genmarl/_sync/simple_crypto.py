"""simple_crypto: aux_i[0] is the goal landmark, aux_i[1] the landmark whose colour is the key."""

from __future__ import annotations

from typing import Any

import numpy as np


def _landmark_of_color(world: Any, color: Any) -> int:
    for i, lm in enumerate(world.landmarks):
        if lm.color is color:
            return i
    for i, lm in enumerate(world.landmarks):
        if np.array_equal(lm.color, color):
            return i
    raise ValueError("simple_crypto: the key is not a landmark colour")


def sync_aux(state: dict, e: int, raw: Any) -> None:
    world = raw.world
    state["aux_i"][e, 0] = world.landmarks.index(world.agents[0].goal_a)
    state["aux_i"][e, 1] = _landmark_of_color(world, world.agents[2].key)
