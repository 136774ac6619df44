"""Rotations from pairwise homographies with known K, against exact rotations."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from benchmark.sfm.rotations import (
    average_rotations,
    pair_rotation,
    rotation_from_homography,
    rotations_from_matches,
)
from benchmark.sources.synthetic import canonical_K

K = canonical_K(448, 256)


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(Rotation.from_matrix(a.T @ b).magnitude()))


def _project(R: np.ndarray, t: np.ndarray, X: np.ndarray) -> np.ndarray:
    cam = X @ R.T + t
    uv = cam @ K.T
    return uv[:, :2] / uv[:, 2:]


def test_homography_of_a_rotation_gives_that_rotation_whatever_its_scale():
    R = Rotation.from_euler("yxz", [7.0, -3.0, 2.0], degrees=True).as_matrix()
    H = -2.7 * K @ R @ np.linalg.inv(K)  # defined up to scale, sign included
    R_est, ratio = rotation_from_homography(H, K)
    np.testing.assert_allclose(R_est, R, atol=1e-12)
    assert abs(ratio - 1.0) < 1e-12


def _rotating_clip(noise_px: float, translate: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    # points spread over the view at depths 1-3 (depth matters only when translating)
    X = np.concatenate([rng.uniform(-1.2, 1.2, (600, 2)), rng.uniform(1, 3, (600, 1))], 1)
    X[:, :2] *= X[:, 2:]
    angles = [(2.0 * f, 1.0 * f, -0.8 * f) for f in range(6)]  # pan + tilt + roll
    Rs = [Rotation.from_euler("yxz", a, degrees=True).as_matrix() for a in angles]
    ts = [np.array([translate * f, 0.0, 0.0]) for f in range(6)]
    pts = [_project(R, t, X) + rng.normal(0, noise_px, (len(X), 2))
           for R, t in zip(Rs, ts, strict=True)]
    matches = {(i, j): (pts[i], pts[j]) for i in range(6) for j in range(i + 1, 6)}
    return Rs, matches


def test_pure_rotation_clip_recovers_rotations_to_hundredths_of_a_degree():
    Rs, matches = _rotating_clip(noise_px=0.3)
    result = rotations_from_matches(6, matches, K)
    assert result.num_dominant == len(result.pairs) == 15
    for f in range(6):
        truth = Rs[f] @ Rs[0].T  # gauge: frame 0 = identity
        assert _angle_deg(result.rotations[f], truth) < 0.03


def test_translating_camera_near_scene_is_not_rotation_dominant():
    _, matches = _rotating_clip(noise_px=0.0, translate=0.08)
    result = rotations_from_matches(6, matches, K)
    assert result.num_dominant < len(result.pairs) / 2
    far = [p for p in result.pairs if abs(p.j - p.i) >= 2]
    assert not any(p.rotation_dominant for p in far)


def test_averaging_exact_pairs_is_exact_and_unconnected_frames_are_none():
    Rs = [Rotation.from_euler("y", 3.0 * f, degrees=True).as_matrix() for f in range(4)]
    pairs = []
    for i, j in [(0, 1), (1, 2), (0, 2)]:  # frame 3 has no pair
        rel = Rs[j] @ Rs[i].T
        H = K @ rel @ np.linalg.inv(K)
        X = np.random.default_rng(i).uniform(0, 400, (50, 2))
        Xh = np.c_[X, np.ones(50)] @ H.T
        p = pair_rotation(i, j, X, Xh[:, :2] / Xh[:, 2:], K)
        assert p is not None and p.rotation_dominant
        pairs.append(p)
    out = average_rotations(4, pairs)
    assert out[3] is None
    for f in range(3):
        assert _angle_deg(out[f], Rs[f] @ Rs[0].T) < 1e-6
