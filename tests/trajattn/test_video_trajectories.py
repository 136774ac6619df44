"""Point trackers and paper Alg. 4 against exact trajectories of synthetic renders.

A synthetic scene rendered along path A is the input video; re-shooting it along path B must
give the exact trajectories of the scene along the composed cameras ``M_f @ w2c_A_f``.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.cameras import CameraPath
from benchmark.cameras.paths import make_camera_path
from benchmark.sources.synthetic import canonical_K, make_scene, render_frames
from trajattn.tracking import (
    PointTracks,
    TrackerUnavailable,
    make_tracker,
    track_grid,
)
from trajattn.trajectories import trajectories_from_depth
from trajattn.video_trajectories import (
    camera_offsets,
    combine_with_camera,
    trajectories_from_video,
)

W, H, F, STRIDE = 256, 144, 8, 4


@pytest.fixture(scope="module")
def shot():
    """Scene 6 filmed along a truck (path A), to be re-shot along an orbit (path B)."""
    scene = make_scene(6)
    K = canonical_K(W, H)
    _, base_depth = render_frames(scene, K, scene.base_w2c[None], W, H)
    median = float(np.median(base_depth))
    path_a = make_camera_path("truck_right_15pct", K, W, H, F, depth=median,
                              base_w2c=scene.base_w2c)
    video, depths = render_frames(scene, K, path_a.w2c, W, H)
    path_b = make_camera_path("orbit_left_10deg", K, W, H, F, depth=median,
                              base_w2c=scene.base_w2c)
    composed = camera_offsets(path_b) @ path_a.w2c
    exact = trajectories_from_depth(depths[0], K, composed, stride=STRIDE)
    along_a = trajectories_from_depth(depths[0], K, path_a.w2c, stride=STRIDE)
    return {"K": K, "video": video, "depths": depths, "a": path_a, "b": path_b,
            "exact": exact, "along_a": along_a, "scene": scene}


@pytest.mark.parametrize("name", ["dis", "lk"])
def test_weight_free_trackers_agree_with_exact_trajectories(shot, name):
    got = track_grid(make_tracker(name), shot["video"], STRIDE)
    exact = shot["along_a"]
    np.testing.assert_allclose(got.tracks[0], exact.tracks[0])
    both = got.visible & exact.visible
    error = np.linalg.norm(got.tracks - exact.tracks, axis=-1)[both]
    assert np.median(error) < 1.0
    assert (got.visible == exact.visible).mean() > 0.85
    assert both[-1].mean() > 0.5


def test_alg4_with_exact_tracks_gives_the_composed_trajectories(shot):
    oracle = PointTracks(shot["along_a"].tracks, shot["along_a"].visible)
    got = combine_with_camera(oracle, shot["depths"], shot["K"], camera_offsets(shot["b"]))
    exact = shot["exact"]
    both = got.visible & exact.visible
    error = np.linalg.norm(got.tracks - exact.tracks, axis=-1)[both]
    assert np.median(error) < 0.05 and np.percentile(error, 95) < 0.3
    assert (got.visible == exact.visible).mean() > 0.95
    assert both[-1].mean() > 0.4  # the re-shoot keeps a good part of the view


def test_alg4_with_a_tracker_matches_the_composed_trajectories(shot):
    got, raw = trajectories_from_video(shot["video"], shot["depths"], shot["K"], shot["b"],
                                       make_tracker("dis"), stride=STRIDE)
    exact = shot["exact"]
    assert got.tracks.shape == exact.tracks.shape
    both = got.visible & exact.visible
    error = np.linalg.norm(got.tracks - exact.tracks, axis=-1)[both]
    assert np.median(error) < 1.0
    assert (got.visible == exact.visible).mean() > 0.85
    assert not np.any(got.visible & ~raw.visible)  # never valid where the track was lost


def test_validity_is_looked_up_where_each_track_is_not_in_raster_order():
    """The official code ANDs visibility with camera validity indexed by the query's raster
    position; here a video whose content mirrors left-right makes the two differ.

    A fronto-parallel plane at depth 2, a camera that trucks right by 0.5 (pixels move left by
    fx * 0.5 / 2): points in the left part of the *new* frame leave the image. Track l sits at
    the mirror image of its grid position in frame 1, so its validity must follow the mirrored
    position.
    """
    w, h, fx = 16, 8, 20.0
    K = np.array([[fx, 0, w / 2], [0, fx, h / 2], [0, 0, 1]])
    xs, ys = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    grid = np.stack([xs.ravel(), ys.ravel()], 1)
    mirrored = np.stack([w - grid[:, 0], grid[:, 1]], 1)
    tracks = PointTracks(np.stack([grid, mirrored]).astype(np.float32),
                         np.ones((2, len(grid)), bool))
    w2c = np.stack([np.eye(4), np.eye(4)])
    w2c[1, 0, 3] = -0.5
    offsets = camera_offsets(CameraPath(K=K, w2c=w2c, width=w, height=h))
    depths = np.full((2, h, w), 2.0)
    got = combine_with_camera(tracks, depths, K, offsets)
    shift = fx * 0.5 / 2  # 5 pixels to the left
    kept = got.visible[1]
    np.testing.assert_allclose(got.tracks[1][kept], (mirrored - [shift, 0])[kept], atol=1e-4)
    expected = mirrored[:, 0] - shift >= 0  # where each track itself lands
    np.testing.assert_array_equal(got.visible[1], expected)
    raster_order = grid[:, 0] - shift >= 0  # what indexing by query position would give
    assert np.any(expected != raster_order)


def test_bad_inputs_are_rejected_clearly(shot):
    tracker = make_tracker("dis")
    with pytest.raises(ValueError, match="at least 2 frames"):
        tracker.track(shot["video"][:1], np.array([[1.5, 1.5]]))
    with pytest.raises(ValueError, match="inside"):
        tracker.track(shot["video"], np.array([[W + 3.0, 1.5]]))
    with pytest.raises(ValueError, match="uint8"):
        tracker.track(shot["video"].astype(np.float32), np.array([[1.5, 1.5]]))
    with pytest.raises(ValueError, match="frames"):
        trajectories_from_video(shot["video"][:5], shot["depths"][:5], shot["K"], shot["b"],
                                tracker)
    oracle = PointTracks(shot["along_a"].tracks, shot["along_a"].visible)
    bad = camera_offsets(shot["b"]).copy()
    bad[2, 0, 3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        combine_with_camera(oracle, shot["depths"], shot["K"], bad)
    with pytest.raises(ValueError, match="unknown tracker"):
        make_tracker("cotracker9")


def test_cotracker_absent_says_what_to_install():
    try:
        import cotracker  # noqa: F401
    except ImportError:
        with pytest.raises(TrackerUnavailable, match="pip install git\\+https://github.com/"
                                                     "facebookresearch/co-tracker"):
            make_tracker("cotracker3")
    else:  # pragma: no cover - only where CoTracker is installed
        pytest.skip("CoTracker is installed here")
