"""Exact pan / roll renders: no SfM model, rotation-only poses, RPE rotation <= 0.1 deg."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.cameras.paths import make_camera_path
from benchmark.io import write_frames
from benchmark.metrics import cami2v_errors, rotation_only_errors
from benchmark.sfm.poses import recover_poses
from benchmark.sources.synthetic import canonical_K, make_scene, render, render_frames

W, H, F = 320, 180, 6


@pytest.mark.parametrize(
    "camera",
    ["pan_left_10deg+tilt_up_5deg",
     # the same path through COLMAP and the homographies; the math is covered fast by
     # tests/benchmark/sfm/test_rotation_recovery.py
     pytest.param("roll_cw_10deg", marks=pytest.mark.slow)],
)
def test_exact_rotation_render_scores_rotation_only(camera, tmp_path):
    scene = make_scene(1)
    K = canonical_K(W, H)
    _, depth = render(scene, K, scene.base_w2c, W, H)
    cam = make_camera_path(camera, K, W, H, F, depth=float(np.median(depth)),
                           base_w2c=scene.base_w2c)
    frames, _ = render_frames(scene, K, cam.w2c, W, H)
    result = recover_poses(write_frames(tmp_path / "frames", frames), K, tmp_path / "sfm")
    assert result.status == "ok" and result.kind == "rotation_only", result.reason
    errors = rotation_only_errors(cam.w2c, result.w2c)
    assert errors.status == "ok" and errors.ate is None and errors.rpe_trans is None
    assert "ATE undefined" in errors.reason
    assert errors.rpe_rot_deg <= 0.1
    # CamI2V RotErr (radians, summed over frames) from the same rotations
    assert cami2v_errors(cam.w2c, result.w2c)["rot_err"] < np.radians(0.1) * F
