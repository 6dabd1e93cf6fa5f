"""A small numpy rasteriser for MPE worlds: filled circles with a black outline.

Layout follows mpe2's pygame renderer (700x700, white background, y axis up, the camera
fitted to the farthest entity with a 0.9 margin, colours ``color * 200``). With
``dynamic_rescaling`` entity radii are drawn in world units (they shrink as the camera
zooms out); without it they use mpe2's fixed ``size * 350`` pixels. Agents' messages are
not drawn as text.
"""

from __future__ import annotations

import numpy as np

WIDTH = 700
HEIGHT = 700
_MARGIN = 0.9
_FIXED_PIXELS_PER_SIZE = 350.0


def render_mpe(state: dict[str, np.ndarray], env_index: int, dynamic_rescaling: bool = True) -> np.ndarray:
    """``[HEIGHT, WIDTH, 3] uint8`` frame of one env of an MPE state from ``get_state()``."""
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
