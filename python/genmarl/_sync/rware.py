"""Copy a reset ``rware`` 2.0.0 Warehouse's state into a genmarl ``rware`` env."""

from __future__ import annotations

from typing import Any

import numpy as np


def sync_rware(vector_env: Any, env_index: int, ref_env: Any) -> None:
    """Robots (cell, direction, carried shelf, has_delivered, message), shelves, the ordered
    request queue, the step and inactivity counters and the numpy PCG64 generator state (so
    deliveries draw the same replacement requests). Checks that the grids and counts match."""
    raw = getattr(ref_env, "unwrapped", ref_env)
    state = vector_env.get_state()
    e = env_index
    bits = int(vector_env.resolved_params()["msg_bits"])
    if raw.msg_bits != bits:
        raise ValueError(f"msg_bits differ: reference {raw.msg_bits}, genmarl {bits}")
    if state["agent_x"].shape[1] != raw.n_agents or state["shelf_x"].shape[1] != len(raw.shelfs):
        raise ValueError(
            f"sizes differ: reference {raw.n_agents} robots and {len(raw.shelfs)} shelves, genmarl "
            f"{state['agent_x'].shape[1]} and {state['shelf_x'].shape[1]}"
        )
    if state["request_queue"].shape[1] != len(raw.request_queue):
        raise ValueError("request queue sizes differ")
    for i, a in enumerate(raw.agents):
        state["agent_x"][e, i] = int(a.x)
        state["agent_y"][e, i] = int(a.y)
        state["agent_dir"][e, i] = int(a.dir.value)
        state["carrying"][e, i] = 0 if a.carrying_shelf is None else int(a.carrying_shelf.id)
        state["has_delivered"][e, i] = int(bool(a.has_delivered))
        state["message"][e, i] = sum(int(b) << (bits - 1 - k) for k, b in enumerate(np.asarray(a.message)[:bits]))
    for j, s in enumerate(raw.shelfs):
        state["shelf_x"][e, j] = int(s.x)
        state["shelf_y"][e, j] = int(s.y)
    state["request_queue"][e] = [int(s.id) for s in raw.request_queue]
    state["action"][e] = 0
    state["reward"][e] = 0.0
    state["steps"][e] = int(raw._cur_steps)
    state["inactive_steps"][e] = int(raw._cur_inactive_steps or 0)
    bg = raw.np_random.bit_generator.state
    if bg["bit_generator"] != "PCG64":
        raise ValueError(f"the reference's generator must be PCG64, got {bg['bit_generator']}")
    s, inc = int(bg["state"]["state"]), int(bg["state"]["inc"])
    m = (1 << 64) - 1
    state["rng"][e] = np.array([s >> 64, s & m, inc >> 64, inc & m, int(bg["has_uint32"]), int(bg["uinteger"])], np.uint64)
    vector_env.set_state(state)
