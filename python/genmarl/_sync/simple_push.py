"""simple_push: aux_i[0] is the index of the goal landmark."""

from __future__ import annotations

from typing import Any


def sync_aux(state: dict, e: int, raw: Any) -> None:
    world = raw.world
    state["aux_i"][e, 0] = world.landmarks.index(world.agents[0].goal_a)
