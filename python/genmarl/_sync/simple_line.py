"""simple_line: aux_f holds the N target positions on the line (mpe2's _expected_positions), flattened."""

from __future__ import annotations

from typing import Any

import numpy as np


def sync_aux(state: dict, e: int, raw: Any) -> None:
    state["aux_f"][e, :] = np.concatenate(raw.scenario._expected_positions)
