"""MP4 previews for the report: playable H.264 with the frames in order."""

from __future__ import annotations

import json

import imageio_ffmpeg
import numpy as np
import pytest

from benchmark.io import write_frames, write_png
from benchmark.stages.previews import run_preview, side_by_side, write_mp4


def _clip(num: int = 6, h: int = 48, w: int = 64) -> np.ndarray:
    """Frames with a bright square moving right: each frame is distinguishable."""
    frames = np.full((num, h, w, 3), 40, np.uint8)
    for f in range(num):
        frames[f, 16:32, 4 + 6 * f: 20 + 6 * f] = 230
    return frames


def _read_mp4(path):
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    frames = np.stack([np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in reader])
    return meta, frames


def test_mp4_round_trip_keeps_frames_in_order(tmp_path):
    clip = _clip()
    path = write_mp4(clip, tmp_path / "a.mp4", fps=7)
    meta, back = _read_mp4(path)
    assert "h264" in meta["codec"] and meta["fps"] == pytest.approx(7)
    assert back.shape == clip.shape
    error = np.abs(back.astype(int) - clip).mean(axis=(1, 2, 3))
    assert error.max() < 6  # lossy, but every frame is the one written
    # Frame order: the square's column follows the written frames.
    cols = [np.argmax(f[24, :, 0] > 135) for f in back]
    assert cols == [4 + 6 * f for f in range(len(clip))]
    assert not list(tmp_path.glob(".*.mp4"))  # no temporary file left behind


def test_odd_sizes_are_padded_and_bad_frames_refused(tmp_path):
    _, back = _read_mp4(write_mp4(_clip(3, 47, 63), tmp_path / "odd.mp4"))
    assert back.shape == (3, 48, 64, 3)
    with pytest.raises(ValueError, match="uint8"):
        write_mp4(np.zeros((3, 8, 8, 3), np.float32), tmp_path / "bad.mp4")


def test_side_by_side_matches_heights_and_holds_the_last_frame():
    a = _clip(6, 48, 64)
    b = np.zeros((1, 24, 32, 3), np.uint8)
    out = side_by_side([("gen", a), ("ref", b)])
    assert out.shape == (6, 48, 128, 3)
    np.testing.assert_array_equal(out[5, 30:, 64:], 0)  # the held reference, below the label


def test_run_preview_shows_failures_with_their_reason(tmp_path):
    scene = tmp_path / "scene"
    write_png(scene / "image.png", _clip(1)[0])
    run = tmp_path / "run"
    write_frames(run / "frames", _clip())
    (run / "meta.json").write_text(json.dumps({"method": "m", "status": "ok"}))
    _, back = _read_mp4(run_preview(run, None, scene, tmp_path / "ok.mp4"))
    assert back.shape == (6, 48, 128, 3)
    (run / "meta.json").write_text(json.dumps({"method": "m", "status": "failed",
                                               "reason": "unavailable: download X"}))
    _, back = _read_mp4(run_preview(run, None, scene, tmp_path / "failed.mp4"))
    assert back.shape[0] == 1 and back[0, 14:, :64].max() > 100  # the reason, under the label
