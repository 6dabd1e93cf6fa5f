"""simple_speaker_listener: aux_i[0] is the index of the speaker's goal landmark (mpe2's goal_b)."""

from __future__ import annotations

from typing import Any


def sync_aux(state: dict, e: int, raw: Any) -> None:
    goal = raw.world.agents[0].goal_b
    state["aux_i"][e, 0] = next(i for i, lm in enumerate(raw.world.landmarks) if lm is goal)
