"""Flow trajectories on synthetic renders agree with the exact Alg. 3 trajectories."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.cameras.paths import make_camera_path
from benchmark.sources.synthetic import canonical_K, make_scene, render, render_frames
from trajattn.flow_tracks import flow_trajectories
from trajattn.trajectories import trajectories_from_depth

W, H, F = 256, 144, 8


@pytest.mark.parametrize("camera", ["orbit_left_10deg", "truck_right_15pct"])
def test_flow_tracks_match_exact_trajectories(camera):
    scene = make_scene(6)
    K = canonical_K(W, H)
    _, depth = render(scene, K, scene.base_w2c, W, H)
    cam = make_camera_path(camera, K, W, H, F, depth=float(np.median(depth)),
                           base_w2c=scene.base_w2c)
    frames, _ = render_frames(scene, K, cam.w2c, W, H)
    tracks, visible = flow_trajectories(frames, stride=4)
    exact = trajectories_from_depth(depth, K, cam.w2c, stride=4)
    assert tracks.shape == exact.tracks.shape and visible.shape == exact.visible.shape
    np.testing.assert_array_equal(tracks[0], exact.tracks[0])
    both = visible & exact.visible
    error = np.linalg.norm(tracks - exact.tracks, axis=-1)[both]
    assert np.median(error) < 1.0
    assert (visible == exact.visible).mean() > 0.85
    assert both[-1].mean() > 0.5  # most points survive to the last frame


def test_static_video_tracks_stay_put_and_bad_input_is_rejected():
    frame = (np.random.default_rng(0).random((32, 48, 3)) * 255).astype(np.uint8)
    tracks, visible = flow_trajectories(np.repeat(frame[None], 3, 0))
    assert visible.all()
    np.testing.assert_allclose(tracks[2], tracks[0], atol=0.05)
    with pytest.raises(ValueError, match="uint8"):
        flow_trajectories(np.zeros((3, 8, 8, 3), np.float32))


def test_raft_backend_runs_and_missing_weights_are_named(monkeypatch, tmp_path):
    from trajattn.flow_tracks import RaftFlow

    frames = (np.random.default_rng(1).random((2, 36, 52, 3)) * 255).astype(np.uint8)
    tracks, visible = flow_trajectories(frames, stride=4, flow=RaftFlow(pretrained=False))
    assert tracks.shape == (2, 9 * 13, 2) and visible.shape == (2, 9 * 13)
    # Offline with an empty torch cache, the pretrained weights cannot be fetched.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    import urllib.request

    def refuse(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    with pytest.raises(RuntimeError, match="RAFT weights are not available"):
        RaftFlow(pretrained=True)
