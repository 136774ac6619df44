"""The pose metrics measure what they claim: known jitter comes back, and the numbers equal
evo's own command-line tools on TUM files."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from benchmark.cameras import CameraPath, write_tum
from benchmark.cameras.paths import make_camera_path
from benchmark.metrics import camera_pose_errors

K = np.array([[500.0, 0, 320], [0, 500.0, 180], [0, 0, 1]])


def _orbit(frames: int = 25) -> CameraPath:
    return make_camera_path("orbit_left_20deg+pedestal_up_10pct", K, 640, 360, frames, depth=4.0)


def _jitter(w2c: np.ndarray, sigma_t: float, sigma_r_deg: float, seed: int) -> np.ndarray:
    """Perturb camera centres by N(0, sigma_t^2) per axis and orientations by a rotation
    vector with N(0, sigma_r^2) per axis (a test helper, not a method)."""
    rng = np.random.default_rng(seed)
    c2w = np.linalg.inv(w2c)
    c2w[:, :3, 3] += rng.normal(0, sigma_t, (len(c2w), 3))
    noise = Rotation.from_rotvec(rng.normal(0, math.radians(sigma_r_deg), (len(c2w), 3)))
    c2w[:, :3, :3] = noise.as_matrix() @ c2w[:, :3, :3]
    return np.linalg.inv(c2w)


@pytest.mark.parametrize("sigma_t", [0.005, 0.02])
def test_translation_jitter_is_measured_back(sigma_t):
    cam = _orbit()
    ates = [camera_pose_errors(cam.w2c, list(_jitter(cam.w2c, sigma_t, 0.0, s))).ate
            for s in range(20)]
    # RMSE of 3-D isotropic noise is sigma*sqrt(3); Sim(3) alignment absorbs 7 of the 3N
    # degrees of freedom, so E[ATE^2] = 3 sigma^2 (1 - 7 / (3N)).
    expected = sigma_t * math.sqrt(3 * (1 - 7 / (3 * 25)))
    assert np.sqrt(np.mean(np.square(ates))) == pytest.approx(expected, rel=0.25)


def test_rotation_jitter_is_measured_back_by_rpe_rot():
    cam = _orbit()
    sigma = 0.3  # degrees per axis
    rots = [camera_pose_errors(cam.w2c, list(_jitter(cam.w2c, 0.0, sigma, s))).rpe_rot_deg
            for s in range(20)]
    # A relative rotation combines two independent noises: angle^2 has mean 6 sigma^2.
    assert np.sqrt(np.mean(np.square(rots))) == pytest.approx(sigma * math.sqrt(6), rel=0.25)


def _evo_rmse(tool: str, *args: str) -> float:
    exe = shutil.which(tool) or str(Path(sys.executable).parent / tool)
    out = subprocess.run([exe, *args], capture_output=True, text=True, check=True).stdout
    return float(re.search(r"rmse\s+([0-9.eE+-]+)", out).group(1))


def test_ate_and_rpe_equal_evo_command_line_tools(tmp_path):
    cam = _orbit()
    est_w2c = _jitter(cam.w2c, 0.01, 0.2, seed=7)
    # Another world frame and scale for the estimate, and two frames unregistered.
    sim = np.eye(4)
    sim[:3, :3] = Rotation.from_euler("xyz", [10, -30, 5], degrees=True).as_matrix()
    sim[:3, 3] = [1.0, 2.0, -0.5]
    c2w = sim @ np.linalg.inv(est_w2c)
    c2w[:, :3, 3] *= 2.7
    est_w2c = np.linalg.inv(c2w)
    est: list[np.ndarray | None] = list(est_w2c)
    est[3] = est[11] = None
    ours = camera_pose_errors(cam.w2c, est)
    assert ours.status == "ok"

    keep = [i for i, p in enumerate(est) if p is not None]
    stamps = [float(i) for i in keep]
    gt_file, est_file = tmp_path / "gt.txt", tmp_path / "est.txt"
    write_tum(gt_file, CameraPath(K=K, w2c=cam.w2c[keep], width=640, height=360), stamps)
    write_tum(est_file, CameraPath(K=K, w2c=est_w2c[keep], width=640, height=360), stamps)
    files = ("tum", str(gt_file), str(est_file), "-a", "-s")
    ate = _evo_rmse("evo_ape", *files, "-r", "trans_part")
    rpe_t = _evo_rmse("evo_rpe", *files, "-r", "trans_part", "-d", "1", "-u", "f")
    rpe_r = _evo_rmse("evo_rpe", *files, "-r", "angle_deg", "-d", "1", "-u", "f")
    assert ours.ate == pytest.approx(ate, abs=1e-6)
    assert ours.rpe_trans == pytest.approx(rpe_t, abs=1e-6)
    assert ours.rpe_rot_deg == pytest.approx(rpe_r, abs=1e-6)
