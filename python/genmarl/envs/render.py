"""Numpy rasterisers, one per env family, looked up by :func:`renderer`.

MPE: filled circles with a black outline. Layout follows mpe2's pygame renderer (700x700, white background, y axis up, the camera
fitted to the farthest entity with a 0.9 margin, colours ``color * 200``). With
``dynamic_rescaling`` entity radii are drawn in world units (they shrink as the camera
zooms out); without it they use mpe2's fixed ``size * 350`` pixels. Agents' messages are
not drawn as text.
"""

from __future__ import annotations

from typing import Any

import numpy as np

WIDTH = 700
HEIGHT = 700
_MARGIN = 0.9
_FIXED_PIXELS_PER_SIZE = 350.0


def render_mpe(state: dict[str, np.ndarray], env_index: int, dynamic_rescaling: bool = True) -> np.ndarray:
    """``[HEIGHT, WIDTH, 3] uint8`` frame of one env of an MPE state from ``get_state()``."""
    if not isinstance(dynamic_rescaling, bool):  # the env
        dynamic_rescaling = bool(dynamic_rescaling.scenario_kwargs.get("dynamic_rescaling", True))
    pos = state["pos"][env_index]
    size = state["size"][env_index]
    color = state["color"][env_index]
    frame = np.full((HEIGHT, WIDTH, 3), 255, np.uint8)
    cam_range = float(np.max(np.abs(pos))) if pos.size else 1.0
    if not np.isfinite(cam_range) or cam_range <= 0.0:
        cam_range = 1.0
    half_w, half_h = WIDTH // 2, HEIGHT // 2
    scale = half_w * _MARGIN / cam_range
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    for n in range(pos.shape[0]):
        cx = pos[n, 0] * scale + half_w
        cy = -pos[n, 1] * scale + half_h
        radius = size[n] * scale if dynamic_rescaling else size[n] * _FIXED_PIXELS_PER_SIZE
        radius = max(float(radius), 1.0)
        x0, x1 = int(max(cx - radius - 1, 0)), int(min(cx + radius + 2, WIDTH))
        y0, y1 = int(max(cy - radius - 1, 0)), int(min(cy + radius + 2, HEIGHT))
        if x0 >= x1 or y0 >= y1:
            continue
        d2 = (xs[y0:y1, x0:x1] - cx) ** 2 + (ys[y0:y1, x0:x1] - cy) ** 2
        inside = d2 <= radius * radius
        ring = inside & (d2 >= (radius - 1.0) ** 2)
        patch = frame[y0:y1, x0:x1]
        patch[inside] = np.clip(color[n] * 200.0, 0, 255).astype(np.uint8)
        patch[ring] = 0
    return frame


_CELL = 40


def render_grid_foraging(state: dict[str, np.ndarray], env_index: int, _env: Any = None) -> np.ndarray:
    """Level-Based Foraging frame: food cells green (darker for higher levels), players blue
    squares with one white tick per level, grey grid lines. ``[rows * 40, cols * 40, 3] uint8``."""
    field = state["field"][env_index]
    pos = state["pos"][env_index]
    level = state["level"][env_index]
    rows, cols = field.shape
    frame = np.full((rows * _CELL, cols * _CELL, 3), 255, np.uint8)
    top = max(int(field.max()), 1)
    for r, c in zip(*np.nonzero(field)):
        shade = int(200 - 150 * field[r, c] / top)
        frame[r * _CELL + 4 : (r + 1) * _CELL - 4, c * _CELL + 4 : (c + 1) * _CELL - 4] = (40, shade, 40)
    for (r, c), lv in zip(pos, level):
        frame[r * _CELL + 6 : (r + 1) * _CELL - 6, c * _CELL + 6 : (c + 1) * _CELL - 6] = (40, 80, 200)
        for k in range(min(int(lv), 6)):
            x = c * _CELL + 10 + 4 * k
            frame[r * _CELL + 10 : r * _CELL + 18, x : x + 2] = 255
    frame[::_CELL, :] = 160
    frame[:, ::_CELL] = 160
    return frame


def render_warehouse(state: dict[str, np.ndarray], env_index: int, env: Any) -> np.ndarray:
    """Multi-Robot Warehouse frame (30 pixels per cell): shelves grey (requested ones red), robots
    blue (loaded: dark blue) with a white tick on the side they face, grey grid lines."""
    e = env_index
    sx, sy = state["shelf_x"][e], state["shelf_y"][e]
    ax, ay, d = state["agent_x"][e], state["agent_y"][e], state["agent_dir"][e]
    carrying, queue = state["carrying"][e], set(int(q) for q in state["request_queue"][e])
    p = env.resolved_params()
    H = (p["column_height"] + 1) * p["shelf_rows"] + 2
    W = 3 * p["shelf_columns"] + 1
    c = 30
    frame = np.full((H * c, W * c, 3), 255, np.uint8)
    for j, (x, y) in enumerate(zip(sx, sy)):
        frame[y * c + 3 : (y + 1) * c - 3, x * c + 3 : (x + 1) * c - 3] = (200, 60, 60) if j + 1 in queue else (150, 150, 150)
    for gx in (W // 2 - 1, W // 2):  # the goals
        frame[(H - 1) * c + 2 : H * c - 2, gx * c + 2 : (gx + 1) * c - 2] = (240, 220, 80)
    for i, (x, y) in enumerate(zip(ax, ay)):
        colour = (20, 40, 140) if carrying[i] else (60, 110, 230)
        frame[y * c + 8 : (y + 1) * c - 8, x * c + 8 : (x + 1) * c - 8] = colour
        cx, cy = x * c + c // 2, y * c + c // 2
        dx, dy = {0: (0, -1), 1: (0, 1), 2: (-1, 0), 3: (1, 0)}[int(d[i])]
        frame[cy + dy * 6 - 1 : cy + dy * 6 + 2, cx + dx * 6 - 1 : cx + dx * 6 + 2] = 255
    frame[::c, :] = 200
    frame[:, ::c] = 200
    return frame


_RENDERERS = {"mpe": render_mpe, "lbf": render_grid_foraging, "rware": render_warehouse}


def renderer(family: str):
    """The frame function ``(state, env_index, env) -> [H, W, 3] uint8`` of a family."""
    try:
        return _RENDERERS[family]
    except KeyError:
        raise RuntimeError(f"no renderer for env family {family!r}; families with one: {sorted(_RENDERERS)}") from None
