"""Frame functions, one per env family, looked up by :func:`renderer`.

MPE: mpe2's pygame renderer redrawn with PIL, anti-aliased. 700x700, white background, y axis up;
the camera fitted to the farthest entity with mpe2's 0.9 margin and its pixel arithmetic; colours
``color * 200`` with a black outline; radii ``size * 350``, scaled with ``dynamic_rescaling`` by
``0.9 * original_cam_range / cam_range`` where ``original_cam_range`` is the camera range at the
episode's first step (as mpe2 records it at reset); the messages of non-silent agents as text
("agent_0 sends A") in the bottom-left corner. One difference: where mpe2 would cut a circle off
at the frame's edge, the camera zooms out just enough to show it whole. Circles are anti-aliased
coverage sprites (cached per radius) and text is drawn once per string with PIL's font, both
blended into a numpy frame.
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np

WIDTH = 700
HEIGHT = 700
_MARGIN = 0.9
_PIXELS_PER_SIZE = 350.0
_ALPHABET = string.ascii_uppercase


class _MpeCamera:
    """``original_cam_range`` per (env, episode), recorded when a render sees the episode's first step."""

    def __init__(self) -> None:
        self.first: dict[tuple[int, int], float] = {}

    def original(self, env_index: int, episode: int, steps: int, cam_range: float) -> float:
        key = (env_index, episode)
        if steps == 0 or key not in self.first:
            if len(self.first) > 4096:
                self.first.clear()
            self.first[key] = cam_range  # mid-episode without a first frame: the current range (scaling 0.9)
        return self.first[key]


_SPRITES: dict[float, tuple[np.ndarray, np.ndarray, int]] = {}
_TERMS: dict[tuple, np.ndarray] = {}


def _disc(radius: float) -> tuple[float, np.ndarray, np.ndarray, int]:
    """An anti-aliased disc of ``radius`` pixels, rounded to 1/4 (the returned key), with a 1-pixel
    black outline, on a sprite centred on a pixel: ``1 - coverage`` and the fill's coverage (inside
    the outline), both scaled to 256 (uint16), and the sprite's half-size. Cached per key."""
    key = max(round(radius * 4) / 4, 0.5)
    if key not in _SPRITES:
        if len(_SPRITES) > 2048:
            _SPRITES.clear()
        n = int(np.ceil(key)) + 1
        yy, xx = np.mgrid[-n : n + 1, -n : n + 1]
        d = np.hypot(xx, yy)
        cover = np.clip(key - d, 0.0, 1.0)  # pygame's disc: the pixels within the radius
        inner = np.clip(key - 1.0 - d, 0.0, 1.0)  # less its 1-pixel outline
        keep = np.round((1.0 - cover) * 256).astype(np.uint16)[..., None]
        _SPRITES[key] = (keep, np.round(inner * 256).astype(np.uint16), n)
    return (key, *_SPRITES[key])


def _window(frame: np.ndarray, x0: int, y0: int, h: int, w: int) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
    """The part of an ``h x w`` sprite placed at (x0, y0) that lies inside the frame: (frame
    slices, sprite slices), or None when none does."""
    fx0, fy0 = max(x0, 0), max(y0, 0)
    fx1, fy1 = min(x0 + w, frame.shape[1]), min(y0 + h, frame.shape[0])
    if fx0 >= fx1 or fy0 >= fy1:
        return None
    return (slice(fy0, fy1), slice(fx0, fx1)), (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0))


def _paste_disc(frame: np.ndarray, radius: float, colour: np.ndarray, cx: int, cy: int) -> None:
    """frame = frame * (1 - coverage) + colour * fill coverage (the outline is black), in fixed point,
    on the disc's window clipped to the frame."""
    key, keep, inner, n = _disc(radius)
    tkey = (key, tuple(int(c) for c in colour))
    term = _TERMS.get(tkey)
    if term is None:
        if len(_TERMS) > 4096:
            _TERMS.clear()
        term = _TERMS[tkey] = (inner[..., None] * np.asarray(colour, np.uint16)).astype(np.uint16)
    win = _window(frame, cx - n, cy - n, *keep.shape[:2])
    if win is None:
        return
    (fy, fx), (sy, sx) = win
    patch = frame[fy, fx].astype(np.uint16)
    patch *= keep[sy, sx]
    patch += term[sy, sx]
    patch >>= 8
    frame[fy, fx] = patch


_TEXT: dict[str, np.ndarray] = {}
_FONT: list[Any] = []


def _text_alpha(text: str) -> np.ndarray:
    """Coverage [h, w] (float32) of ``text`` in PIL's default font at 24 px, cached per string."""
    if text not in _TEXT:
        from PIL import Image, ImageDraw, ImageFont

        if not _FONT:
            try:
                _FONT.append(ImageFont.load_default(size=24))
            except TypeError:  # Pillow < 10.1: the bitmap font
                _FONT.append(ImageFont.load_default())
        left, top, right, bottom = _FONT[0].getbbox(text)
        img = Image.new("L", (max(right, 1), max(bottom, 1)), 0)
        ImageDraw.Draw(img).text((0, 0), text, fill=255, font=_FONT[0])
        if len(_TEXT) > 1024:
            _TEXT.clear()
        _TEXT[text] = np.asarray(img, np.float32) / 255.0
    return _TEXT[text]


def _blend_black(frame: np.ndarray, alpha: np.ndarray, x0: int, y0: int) -> None:
    """frame = frame * (1 - alpha) (black drawn with coverage ``alpha``) on the window of ``alpha``
    at (x0, y0), clipped to the frame."""
    win = _window(frame, x0, y0, *alpha.shape)
    if win is None:
        return
    (fy, fx), (sy, sx) = win
    patch = frame[fy, fx]
    patch[...] = (patch * (1.0 - alpha[sy, sx, None]) + 0.5).astype(np.uint8)


def _mpe_messages(state: dict[str, np.ndarray], e: int, names: list[str], continuous: bool) -> list[str]:
    """mpe2's message lines of the non-silent agents."""
    lines = []
    comm, silent = state["comm"][e], state["silent"][e]
    for i, name in enumerate(names):
        if silent[i]:
            continue
        c = comm[i]
        if np.all(c == 0):
            word = "_"
        elif continuous:
            word = "[" + ",".join(f"{v:.2f}" for v in c) + "]"
        else:
            word = _ALPHABET[int(np.argmax(c))]
        lines.append(f"{name} sends {word}   ")
    return lines


def render_mpe(state: dict[str, np.ndarray], env_index: int, env: Any = None, keep_inside: bool = True) -> np.ndarray:
    """``[HEIGHT, WIDTH, 3] uint8`` frame of one env of an MPE state from ``get_state()``; ``env``
    (the VectorEnv) gives the agents' names, ``dynamic_rescaling`` and ``continuous_actions`` and
    remembers each episode's first camera range. ``keep_inside=False`` keeps mpe2's camera even
    where it cuts a circle off."""
    e = env_index
    pos, size, color = state["pos"][e], state["size"][e], state["color"][e]
    params = {}
    if env is not None:  # the scenario's arguments, read once per env
        if "_render_params" not in env.__dict__:
            env.__dict__["_render_params"] = env.resolved_params()
        params = env.__dict__["_render_params"]
    dynamic = bool(params.get("dynamic_rescaling", True))
    cam_range = float(np.max(np.abs(pos))) if pos.size else 1.0
    if not np.isfinite(cam_range) or cam_range <= 0.0:
        cam_range = 1.0
    if env is not None:
        camera = env.__dict__.setdefault("_mpe_camera", _MpeCamera())
        original = camera.original(e, int(state["episode"][e]), int(state["steps"][e]), cam_range)
    else:
        original = cam_range
    # mpe2's arithmetic: (x / cam_range) * width // 2 * 0.9, y flipped
    x = np.floor(pos[:, 0] / cam_range * WIDTH / 2) * _MARGIN
    y = np.floor(-pos[:, 1] / cam_range * HEIGHT / 2) * _MARGIN
    radius = size * _PIXELS_PER_SIZE * (_MARGIN * original / cam_range if dynamic else 1.0)
    reach = float(np.max(np.maximum(np.abs(x), np.abs(y)) + radius + 1.0)) if pos.size else 0.0
    if keep_inside and reach > WIDTH / 2 - 1:  # zoom out just enough that no circle is cut off
        shrink = (WIDTH / 2 - 1) / reach
        x, y, radius = x * shrink, y * shrink, radius * shrink
    frame = np.full((HEIGHT, WIDTH, 3), 255, np.uint8)
    fill = np.clip(color * 200.0, 0, 255).astype(np.uint8)
    for k in range(pos.shape[0]):
        # pygame truncates the centre
        _paste_disc(frame, float(radius[k]), fill[k], int(x[k] + WIDTH / 2), int(y[k] + HEIGHT / 2))
    if env is not None and "comm" in state:
        lines = _mpe_messages(state, e, list(env.possible_agents), bool(params.get("continuous_actions", False)))
        for line_no, text in enumerate(lines):
            _blend_black(frame, _text_alpha(text), int(WIDTH * 0.05), int(HEIGHT * 0.95 - HEIGHT * 0.05 * line_no))
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
    layout = env.layout  # the core's grid and goal cells (custom or generated layout)
    H, W = layout["highway"].shape
    goals = [(int(x), int(y)) for x, y in layout["goals"]]
    c = 30
    frame = np.full((H * c, W * c, 3), 255, np.uint8)
    for j, (x, y) in enumerate(zip(sx, sy)):
        frame[y * c + 3 : (y + 1) * c - 3, x * c + 3 : (x + 1) * c - 3] = (200, 60, 60) if j + 1 in queue else (150, 150, 150)
    for gx, gy in goals:
        frame[gy * c + 2 : (gy + 1) * c - 2, gx * c + 2 : (gx + 1) * c - 2] = (240, 220, 80)
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
