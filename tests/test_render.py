"""The MPE renderer (PIL, anti-aliased) against mpe2's pygame renderer: the same camera
(original_cam_range, dynamic rescaling, mpe2's pixel arithmetic), message text, no circle cut off;
GIF/MP4 output."""

from __future__ import annotations

import numpy as np
import pytest

import genmarl
from genmarl.envs.render import HEIGHT, WIDTH, render_mpe

pytest.importorskip("PIL")


@pytest.mark.parametrize("name", ["simple_spread", "simple_speaker_listener", "simple_world_comm", "simple_tag"])
def test_frames_match_mpe2s_camera(name):
    from genmarl.testing import mpe2_module, sync_from_mpe2

    pytest.importorskip("pygame")
    ref = mpe2_module(name).parallel_env(render_mode="rgb_array")
    ref.reset(seed=3)
    env = genmarl.make(name, num_envs=1, render_mode="rgb_array")
    env.reset(seed=0)
    sync_from_mpe2(env, 0, ref)
    rng = np.random.default_rng(0)
    for t in range(6):
        if t:
            acts = {a: int(rng.integers(ref.action_space(a).n)) for a in ref.agents}
            ref.step(acts)
            env.step({a: np.array([v]) for a, v in acts.items()})
        want = ref.render().min(-1)[:640] < 200  # above the message lines (the fonts differ); pixels
        got = render_mpe(env.get_state(), 0, env, keep_inside=False).min(-1)[:640] < 200  # at least ~1/4 covered
        iou = (want & got).sum() / max((want | got).sum(), 1)
        assert iou > 0.9, (t, iou)


def test_messages_antialiasing_and_nothing_cut_off():
    env = genmarl.make("simple_speaker_listener", num_envs=1, render_mode="rgb_array")
    env.reset(seed=0)
    env.step({"speaker_0": np.array([1]), "listener_0": np.array([0])})
    frame = env.render(0)
    assert (frame[660:700, 30:330] != 255).any()  # "speaker_0 sends B" in the bottom-left corner
    quiet = genmarl.make("simple_spread", num_envs=1, render_mode="rgb_array")  # silent agents: no text
    quiet.reset(seed=0)
    state = quiet.get_state()
    assert quiet.render(0).shape == (HEIGHT, WIDTH, 3)
    # an agent at the farthest position with a large size: mpe2's camera cuts it, ours shows it whole
    state["pos"][0, 0] = [1.0, 0.0]
    state["size"][0, 0] = 0.3
    quiet.set_state(state)
    cut = render_mpe(quiet.get_state(), 0, quiet, keep_inside=False)
    whole = quiet.render(0)
    border = lambda f: np.concatenate([f[0], f[-1], f[:, 0], f[:, -1]])  # noqa: E731
    assert (border(cut) != 255).any() and (border(whole) == 255).all()
    # anti-aliased edges: intermediate shades between the fill, the outline and the background
    levels = np.unique(whole[..., 0])
    assert len(levels) > 20


def test_animations_gif_mp4_and_errors_before_any_episode(tmp_path):
    from genmarl.training.evaluate import check_video_path, evaluate, write_gif

    frames = [np.full((70, 70, 3), 10 * i, np.uint8) for i in range(5)]
    write_gif(frames, tmp_path / "a.gif")
    from PIL import Image

    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames == 5
    with pytest.raises(ValueError, match=r"\.gif or \.mp4"):
        check_video_path(tmp_path / "a.avi")
    with pytest.raises(ValueError, match=r"\.gif or \.mp4"):  # refused before any episode runs
        evaluate(None, 4, env_name="simple", gif=tmp_path / "a.webm", policies={"agent": "random"})
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")

    ev = evaluate(None, 2, env_name="simple_spread", gif=tmp_path / "ep.mp4", policies={"agent": "random"})
    frames_written, _ = imageio_ffmpeg.count_frames_and_secs(str(tmp_path / "ep.mp4"))
    reader = imageio_ffmpeg.read_frames(str(tmp_path / "ep.mp4"))
    meta = next(reader)
    reader.close()
    assert ev["gif"].endswith("ep.mp4") and tuple(meta["size"]) == (WIDTH, HEIGHT) and frames_written >= 20
