"""Pose recovery with pycolmap on exact renders: accuracy, reproducibility, recorded failures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark.cameras.paths import make_camera_path
from benchmark.io import write_frames
from benchmark.metrics import camera_pose_errors, rotation_only_errors
from benchmark.sfm.poses import (
    PoseRecoveryConfig,
    load_poses,
    recover_poses,
    run_poses,
    save_poses,
)
from benchmark.sources.synthetic import canonical_K, make_scene, render, render_frames

W, H, F = 320, 180, 8


@pytest.fixture(scope="module")
def clip():
    scene = make_scene(2)
    K = canonical_K(W, H)
    _, depth = render(scene, K, scene.base_w2c, W, H)
    cam = make_camera_path("orbit_left_15deg", K, W, H, F, depth=float(np.median(depth)),
                           base_w2c=scene.base_w2c)
    frames, _ = render_frames(scene, K, cam.w2c, W, H)
    return cam, frames


def test_exact_renders_give_accurate_poses(clip, tmp_path):
    cam, frames = clip
    paths = write_frames(tmp_path / "frames", frames)
    result = recover_poses(paths, cam.K, tmp_path / "sfm")
    assert result.status == "ok", result.reason
    assert result.num_registered == F
    errors = camera_pose_errors(cam.w2c, result.w2c)
    assert errors.status == "ok"
    # Scene units: median depth 1; an orbit of 15 deg moves the camera ~0.26.
    assert errors.ate < 5e-3
    assert errors.rpe_rot_deg < 0.1
    assert (tmp_path / "sfm" / "sfm.log").read_text().strip()  # COLMAP's log is kept


def test_single_thread_seeded_runs_are_bit_identical(clip, tmp_path):
    cam, frames = clip
    paths = write_frames(tmp_path / "frames", frames)
    a = recover_poses(paths, cam.K, tmp_path / "a")
    b = recover_poses(paths, cam.K, tmp_path / "b")
    for pa, pb in zip(a.w2c, b.w2c, strict=True):
        np.testing.assert_array_equal(pa, pb)


def test_static_video_is_rotation_only_and_fails_against_a_moving_path(clip, tmp_path):
    cam, frames = clip
    paths = write_frames(tmp_path / "frames", np.repeat(frames[:1], F, axis=0))
    result = recover_poses(paths, cam.K, tmp_path / "sfm")
    # no parallax: no SfM model, but every pair is explained by the identity homography
    assert result.kind == "rotation_only" and "no model" in result.reason
    for pose in result.w2c:
        np.testing.assert_allclose(pose, np.eye(4), atol=1e-3)
    errors = rotation_only_errors(cam.w2c, result.w2c)
    assert errors.status == "failed" and errors.ate is None
    assert "translates" in errors.reason
    assert load_poses_roundtrip(result, tmp_path).kind == "rotation_only"


def load_poses_roundtrip(result, tmp_path):
    save_poses(result, tmp_path / "poses.json")
    return load_poses(tmp_path / "poses.json")


def test_too_few_registered_frames_is_a_failure_with_the_ratio(clip, tmp_path):
    cam, frames = clip
    noise = np.random.default_rng(0).integers(0, 256, frames[:3].shape, dtype=np.uint8)
    paths = write_frames(tmp_path / "frames", np.concatenate([frames[:5], noise]))
    result = recover_poses(paths, cam.K, tmp_path / "sfm")
    assert result.status == "failed"
    assert result.num_registered <= 5
    assert f"/{F} frames < 80%" in result.reason


def test_run_folder_with_failed_generation_records_failed_poses(tmp_path):
    (tmp_path / "meta.json").write_text(
        json.dumps({"status": "failed", "reason": "unavailable: weights", "num_frames": None})
    )
    result = run_poses(tmp_path, PoseRecoveryConfig())
    assert result.status == "failed" and "generation failed" in result.reason
    assert load_poses(tmp_path / "poses.json").status == "failed"


def test_unreadable_frame_is_an_unregistered_frame_not_a_crash(clip, tmp_path):
    cam, frames = clip
    paths = write_frames(tmp_path / "frames", frames)
    paths[2].write_bytes(b"not a png")
    result = recover_poses(paths, cam.K, tmp_path / "sfm")
    assert result.w2c[2] is None
    assert result.num_registered == F - 1  # 7/8 >= 80%: still scored, frame 2 counted missing
    assert result.status == "ok"
