"""Baseline camera conversions on hand-computed cases."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from benchmark.cameras import CameraPath, read_realestate10k
from benchmark.cameras.paths import make_camera_path
from methods.camera_formats import camera_flow, cameractrl_rows, motionctrl_rt, plucker_embedding

K = np.array([[100.0, 0, 2.5], [0, 100.0, 1.5], [0, 0, 1]])


def _pose(rotvec, t) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    m[:3, 3] = t
    return m


def test_motionctrl_rt_is_the_motion_relative_to_frame_zero():
    w2c0 = _pose([0.1, -0.2, 0.3], [0.5, -1.0, 2.0])  # arbitrary world frame
    motion = _pose([0.0, 0.05, 0.0], [-0.2, 0.0, 0.1])  # frame-0 camera -> frame-1 camera
    cam = CameraPath(K=K, w2c=np.stack([w2c0, motion @ w2c0]), width=5, height=3)
    rt = motionctrl_rt(cam)
    np.testing.assert_allclose(rt[0], [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(rt[1], motion[:3, :4].ravel(), atol=1e-12)
    np.testing.assert_allclose(motionctrl_rt(cam, 2.0)[1, [3, 7, 11]], [-0.4, 0.0, 0.2],
                               atol=1e-12)


def test_cameractrl_rows_normalise_intrinsics_and_start_at_identity():
    w2c0 = _pose([0.3, 0.0, 0.0], [0.0, 1.0, 0.0])
    motion = _pose([0.0, 0.0, 0.0], [-0.1, 0.0, 0.0])  # camera moves +0.1 in x
    cam = CameraPath(K=K, w2c=np.stack([w2c0, motion @ w2c0]), width=5, height=3)
    rows = cameractrl_rows(cam)
    # RealEstate10K's 19 columns: timestamp, fx fy cx cy (normalised), k1 k2 = 0, 3x4 w2c.
    assert rows.shape == (2, 19)
    np.testing.assert_array_equal(rows[:, 0], [0, 33333])
    np.testing.assert_allclose(rows[:, 1:7], [[20.0, 100 / 3, 0.5, 0.5, 0, 0]] * 2)
    np.testing.assert_allclose(rows[0, 7:], np.eye(4)[:3].ravel(), atol=1e-12)
    np.testing.assert_allclose(rows[1, 7:], motion[:3].ravel(), atol=1e-12)


def test_cameractrl_rows_read_back_as_a_realestate10k_file(tmp_path):
    """The rows under a URL line are a RealEstate10K camera file: our reader gives back the
    relative camera (K in pixels, frame 0 at the identity) and the timestamps."""
    w2c0 = _pose([0.1, -0.2, 0.3], [0.5, -1.0, 2.0])
    motion = _pose([0.0, 0.05, 0.02], [-0.2, 0.1, 0.3])
    k = np.array([[4.0, 0, 2.5], [0, 4.0, 1.5], [0, 0, 1]])  # a plausible 64 deg field of view
    cam = CameraPath(K=k, w2c=np.stack([w2c0, motion @ w2c0, motion @ motion @ w2c0]),
                     width=5, height=3)
    rows = cameractrl_rows(cam, timestamps=np.array([0, 40000, 80000]))
    path = tmp_path / "clip.txt"
    text = "\n".join(" ".join(f"{int(r[0])}" if i == 0 else repr(float(x))
                               for i, x in enumerate(r)) for r in rows)
    path.write_text("https://www.youtube.com/watch?v=none\n" + text + "\n")
    clip = read_realestate10k(path, 5, 3)
    assert clip.timestamps == [0, 40000, 80000]
    np.testing.assert_allclose(clip.camera.K, k, rtol=1e-12)
    expected = [np.eye(4), motion, motion @ motion]
    np.testing.assert_allclose(clip.camera.w2c, expected, atol=1e-12)


def test_plucker_rays_of_a_truck_move():
    cam = make_camera_path("truck_right_10pct", K, 5, 3, 2, depth=1.0,
                           base_w2c=_pose([0.2, 0.1, 0.0], [1.0, 2.0, 3.0]))
    emb = plucker_embedding(cam, 3, 5)
    assert emb.shape == (2, 6, 3, 5)
    np.testing.assert_allclose(np.linalg.norm(emb[:, 3:], axis=1), 1.0, atol=1e-6)
    # Centre pixel (row 1, col 2) has its centre at the principal point: d = +z.
    np.testing.assert_allclose(emb[0, :, 1, 2], [0, 0, 0, 0, 0, 1], atol=1e-6)
    # Frame 1: origin (0.1, 0, 0) in frame-0 camera axes: moment = o x d = (0, -0.1, 0).
    np.testing.assert_allclose(emb[1, :, 1, 2], [0, -0.1, 0, 0, 0, 1], atol=1e-6)
    # Rescaling the embedding resolution keeps the same rays at the same image positions:
    # the 2x2 block of finer pixels covering the centre pixel averages to its direction.
    big = plucker_embedding(cam, 6, 10)
    mean = big[1, 3:, 2:4, 4:6].mean(axis=(1, 2))
    np.testing.assert_allclose(mean / np.linalg.norm(mean), emb[1, 3:, 1, 2], atol=1e-6)


def test_camera_flow_of_a_plane_is_focal_times_baseline_over_depth():
    cam = make_camera_path("truck_right_10pct", K, 5, 3, 3, depth=1.0)
    flow, valid = camera_flow(np.full((3, 5), 2.0), cam)
    assert flow.shape == (3, 3, 5, 2)
    np.testing.assert_allclose(flow[0], 0.0)
    np.testing.assert_allclose(flow[2, ..., 0], -100 * 0.1 / 2, atol=1e-4)
    np.testing.assert_allclose(flow[2, ..., 1], 0.0, atol=1e-4)
    assert valid[0].all()
