"""simple_reference: aux_i[i] is the landmark (goal_b) agent i wants its partner to reach."""

from __future__ import annotations

from typing import Any


def sync_aux(state: dict, e: int, raw: Any) -> None:
    world = raw.world
    for i, agent in enumerate(world.agents):
        state["aux_i"][e, i] = world.landmarks.index(agent.goal_b)
