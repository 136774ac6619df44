"""Tests for benchmark.metrics against independently computed truths."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from benchmark.metrics import (
    PoseErrors,
    camera_pose_errors,
    cami2v_errors,
    frame_fidelity,
    masked_psnr,
)

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _look_at_c2w(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """OpenCV c2w (x right, y down, z forward) at ``eye`` looking at ``target``."""
    z = target - eye
    z = z / np.linalg.norm(z)
    x = np.cross(z, np.array([0.0, -1.0, 0.0]))
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    c2w = np.eye(4)
    c2w[:3, :3] = np.stack([x, y, z], axis=1)
    c2w[:3, 3] = eye
    return c2w


def _arc_c2w(num: int = 14) -> np.ndarray:
    """(F, 4, 4) c2w on a rising arc around the origin (non-collinear centres)."""
    out = []
    for i in range(num):
        a = 0.6 * i / (num - 1)
        eye = np.array([3.0 * math.sin(a), -0.05 * i, -3.0 * math.cos(a)])
        out.append(_look_at_c2w(eye, np.zeros(3)))
    return np.stack(out)


def _w2c(c2w: np.ndarray) -> np.ndarray:
    return np.linalg.inv(c2w)


def _similarity(c2w: np.ndarray, scale: float, seed: int = 3) -> np.ndarray:
    """Poses in another world frame: x' = s R x + t applied to every camera (Sim(3))."""
    rot = Rotation.random(random_state=seed).as_matrix()
    t = np.array([1.5, -2.0, 0.7])
    out = c2w.copy()
    out[:, :3, :3] = rot @ c2w[:, :3, :3]
    out[:, :3, 3] = scale * (c2w[:, :3, 3] @ rot.T) + t
    return out


def _umeyama_rmse(x: np.ndarray, y: np.ndarray) -> float:
    """RMSE after the least-squares Sim(3) mapping points x (N, 3) onto y (Umeyama 1991)."""
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    cov = yc.T @ xc / len(x)
    u, d, vt = np.linalg.svd(cov)
    s = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        s[2, 2] = -1
    rot = u @ s @ vt
    c = np.trace(np.diag(d) @ s) / (np.sum(xc**2) / len(x))
    aligned = c * x @ rot.T + (my - c * rot @ mx)
    return float(np.sqrt(np.mean(np.sum((aligned - y) ** 2, axis=1))))


# --------------------------------------------------------------------------------------------
# ATE / RPE
# --------------------------------------------------------------------------------------------


def test_identical_trajectories_have_zero_error() -> None:
    gt = _w2c(_arc_c2w())
    res = camera_pose_errors(gt, list(gt))
    assert res.status == "ok" and res.reason is None
    assert res.ate == pytest.approx(0.0, abs=1e-9)
    assert res.rpe_trans == pytest.approx(0.0, abs=1e-9)
    assert res.rpe_rot_deg == pytest.approx(0.0, abs=1e-6)
    assert (res.num_frames, res.num_registered, res.registered_ratio) == (14, 14, 1.0)


def test_similarity_transformed_estimate_aligns_to_zero() -> None:
    c2w = _arc_c2w()
    est = _w2c(_similarity(c2w, 3.7))
    res = camera_pose_errors(_w2c(c2w), list(est))
    assert res.status == "ok"
    assert res.ate == pytest.approx(0.0, abs=1e-9)
    assert res.rpe_trans == pytest.approx(0.0, abs=1e-9)
    assert res.rpe_rot_deg == pytest.approx(0.0, abs=1e-6)


def test_ate_matches_independent_umeyama() -> None:
    c2w = _arc_c2w()
    est_c2w = _similarity(c2w, 0.4)
    delta = np.array([0.05, -0.02, 0.03])
    est_c2w[5, :3, 3] += delta
    res = camera_pose_errors(_w2c(c2w), list(_w2c(est_c2w)))
    expected = _umeyama_rmse(est_c2w[:, :3, 3], c2w[:, :3, 3])
    assert res.status == "ok"
    assert res.ate == pytest.approx(expected, rel=1e-9)
    # The optimum can only beat "undo the known similarity" (error |delta|/0.4 on one frame).
    assert 0.0 < res.ate <= np.linalg.norm(delta) / 0.4 / math.sqrt(14) + 1e-12


def test_rotation_noise_on_one_frame_shows_in_rpe_rot() -> None:
    c2w = _arc_c2w()
    est_c2w = c2w.copy()
    angle = 0.07  # radians, about an arbitrary axis in the camera frame
    axis = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    est_c2w[6, :3, :3] = c2w[6, :3, :3] @ Rotation.from_rotvec(angle * axis).as_matrix()
    res = camera_pose_errors(_w2c(c2w), list(_w2c(est_c2w)))
    # Centres are unchanged (alignment = identity); pairs (5, 6) and (6, 7) each err by
    # `angle`, the other 11 pairs by 0.
    assert res.status == "ok"
    assert res.ate == pytest.approx(0.0, abs=1e-9)
    assert res.rpe_rot_deg == pytest.approx(math.degrees(angle) * math.sqrt(2 / 13), rel=1e-7)


def test_repeatable_and_inputs_untouched() -> None:
    c2w = _arc_c2w()
    gt = _w2c(c2w)
    est_c2w = _similarity(c2w, 3.7)
    est_c2w[4, :3, 3] += 0.3
    est = list(_w2c(est_c2w))
    gt_copy, est_copy = gt.copy(), [p.copy() for p in est]
    first = camera_pose_errors(gt, est)
    second = camera_pose_errors(gt, est)
    assert first == second and first.status == "ok" and first.ate > 0
    np.testing.assert_array_equal(gt, gt_copy)
    for p, q in zip(est, est_copy, strict=True):
        np.testing.assert_array_equal(p, q)


def test_too_few_registered_frames_fail_with_ratio() -> None:
    gt = _w2c(_arc_c2w())
    est: list[np.ndarray | None] = list(gt)
    for i in (1, 3, 7, 9, 12):
        est[i] = None
    res = camera_pose_errors(gt, est)
    assert res.status == "failed"
    assert res.reason == "registered 9/14 frames < 80%"
    assert res.ate is None and res.rpe_trans is None and res.rpe_rot_deg is None
    assert res.num_registered == 9 and res.registered_ratio == pytest.approx(9 / 14)
    assert json.loads(json.dumps(res.to_dict()))["ate"] is None


def test_unregistered_middle_frame_pairs_skip_over_it() -> None:
    c2w = _arc_c2w()
    gt = _w2c(c2w)
    est: list[np.ndarray | None] = list(gt)
    est[6] = None
    res = camera_pose_errors(gt, est)
    assert res.status == "ok" and res.num_registered == 13
    assert res.ate == pytest.approx(0.0, abs=1e-9)
    assert res.rpe_rot_deg == pytest.approx(0.0, abs=1e-6)


def test_static_gt_reports_rotation_only_and_ate_undefined() -> None:
    """A pure rotation (pan) has no translation to align: ATE is undefined, never a number,
    while the rotation error is still measured."""
    gt_c2w = np.stack([np.eye(4)] * 10)
    yaw = np.linspace(0, 15, 10)[:, None]
    gt_c2w[:, :3, :3] = Rotation.from_euler("y", yaw, degrees=True).as_matrix()
    est_c2w = gt_c2w.copy()
    tilt = Rotation.from_euler("x", 2.0, degrees=True).as_matrix()
    est_c2w[5, :3, :3] = tilt @ gt_c2w[5, :3, :3]
    res = camera_pose_errors(_w2c(gt_c2w), list(_w2c(est_c2w)))
    assert res.status == "ok" and "ATE undefined" in res.reason
    assert res.ate is None and res.rpe_trans is None
    # Frame 5 rotated by 2 deg: the two pairs touching it each err by 2 deg out of 9 pairs.
    assert res.rpe_rot_deg == pytest.approx(math.sqrt(2 * 2.0**2 / 9), rel=1e-6)


def _dolly_c2w(num: int = 10) -> np.ndarray:
    """A straight camera path (dolly along a line), looking along +z."""
    c2w = np.stack([np.eye(4)] * num)
    c2w[:, :3, 3] = np.outer(np.arange(num) * 0.1, [0.3, -0.2, 1.0])
    return c2w


def test_collinear_gt_under_similarity_scores_zero() -> None:
    """A straight path (evo refuses its rank-1 covariance) is still aligned and scored."""
    gt_c2w = _dolly_c2w()
    res = camera_pose_errors(_w2c(gt_c2w), list(_w2c(_similarity(gt_c2w, 0.37))))
    assert res.status == "ok", res.reason
    assert res.ate == pytest.approx(0.0, abs=1e-9)
    assert res.rpe_trans == pytest.approx(0.0, abs=1e-9)
    assert res.rpe_rot_deg == pytest.approx(0.0, abs=1e-6)


def test_collinear_gt_ate_matches_closed_form() -> None:
    """GT on a line, estimate = GT with one centre pushed off the line by delta.

    The best Sim(3) fit of points on a line to points with one outlier off the line keeps
    the line (the perpendicular offset cannot be explained by any similarity that maps the
    other 9 collinear points onto the line), so with the offset perpendicular to the line
    the residual is known: the outlier's offset minus its share absorbed by the centroid.
    Computed independently here by brute-force least squares over scale along the line.
    """
    gt_c2w = _dolly_c2w()
    est_c2w = gt_c2w.copy()
    direction = np.array([0.3, -0.2, 1.0]) / np.linalg.norm([0.3, -0.2, 1.0])
    perp = np.cross(direction, [1.0, 0.0, 0.0])
    perp /= np.linalg.norm(perp)
    delta = 0.05
    est_c2w[4, :3, 3] += delta * perp
    res = camera_pose_errors(_w2c(gt_c2w), list(_w2c(est_c2w)))
    assert res.status == "ok", res.reason
    # Independent truth: least squares over all similarities, solved numerically.
    from scipy.optimize import least_squares

    gt_p, est_p = gt_c2w[:, :3, 3], est_c2w[:, :3, 3]

    def residual(x: np.ndarray) -> np.ndarray:
        rot = Rotation.from_rotvec(x[:3]).as_matrix()
        return (np.exp(x[6]) * est_p @ rot.T + x[3:6] - gt_p).ravel()

    best = least_squares(residual, np.zeros(7), xtol=1e-14, ftol=1e-14, gtol=1e-14)
    expected = math.sqrt(np.mean(np.sum(best.fun.reshape(-1, 3) ** 2, axis=1)))
    assert res.ate == pytest.approx(expected, rel=1e-5)
    assert res.ate > 0.01


def test_collinear_estimate_is_evo_geometry_failure() -> None:
    gt = _w2c(_arc_c2w(10))
    est_c2w = np.stack([np.eye(4)] * 10)
    est_c2w[:, 0, 3] = np.arange(10)
    res = camera_pose_errors(gt, list(_w2c(est_c2w)))
    assert res.status == "failed" and res.reason.startswith("evo: ")


def test_nan_pose_fails() -> None:
    gt = _w2c(_arc_c2w())
    est = [p.copy() for p in gt]
    est[3][0, 3] = np.nan
    res = camera_pose_errors(gt, est)
    assert res.status == "failed" and "NaN" in res.reason and "[3]" in res.reason


def test_bad_length_is_value_error() -> None:
    gt = _w2c(_arc_c2w())
    with pytest.raises(ValueError, match="13 entries"):
        camera_pose_errors(gt, list(gt[:13]))


def test_to_dict_is_json_friendly() -> None:
    gt = _w2c(_arc_c2w())
    d = camera_pose_errors(gt, list(gt)).to_dict()
    assert set(d) == set(PoseErrors.__dataclass_fields__)
    assert json.loads(json.dumps(d))["status"] == "ok"


# --------------------------------------------------------------------------------------------
# CamI2V
# --------------------------------------------------------------------------------------------


def test_cami2v_identical_is_zero() -> None:
    gt = _w2c(_arc_c2w())
    res = cami2v_errors(gt, list(gt))
    assert res["status"] == "ok"
    for key in ("rot_err", "trans_err", "cam_mc"):
        assert res[key] == pytest.approx(0.0, abs=1e-6)
    assert res["gt_static"] is False and res["est_static"] is False


def test_cami2v_scale_and_world_frame_invariant() -> None:
    c2w = _arc_c2w()
    est_c2w = c2w.copy()
    est_c2w[3, :3, 3] += 0.2
    est_c2w[8, :3, :3] = est_c2w[8, :3, :3] @ Rotation.from_rotvec([0.0, 0.05, 0.0]).as_matrix()
    base = cami2v_errors(_w2c(c2w), list(_w2c(est_c2w)))
    scaled = cami2v_errors(_w2c(c2w), list(_w2c(_similarity(est_c2w, 5.0))))
    assert base["status"] == "ok" and base["trans_err"] > 0
    for key in ("rot_err", "trans_err", "cam_mc"):
        assert scaled[key] == pytest.approx(base[key], rel=1e-9, abs=1e-12)


def test_cami2v_hand_computed_rotation_error() -> None:
    c2w = _arc_c2w()
    est_c2w = c2w.copy()
    est_c2w[4, :3, :3] = c2w[4, :3, :3] @ Rotation.from_rotvec([0.1, 0.0, 0.0]).as_matrix()
    res = cami2v_errors(_w2c(c2w), list(_w2c(est_c2w)))
    assert res["rot_err"] == pytest.approx(0.1, abs=1e-9)
    assert res["trans_err"] == pytest.approx(0.0, abs=1e-9)
    # CamMC: only R differs, ||R_gt - R_gt Rx(0.1)||_F = ||I - Rx(0.1)||_F = 2 sqrt(1 - cos 0.1)
    assert res["cam_mc"] == pytest.approx(2 * math.sqrt(1 - math.cos(0.1)), abs=1e-9)


def test_cami2v_large_rotation_matches_arccos_formula() -> None:
    rots = Rotation.random(6, random_state=7).as_matrix()
    gt_c2w = np.stack([np.eye(4)] * 7)
    est_c2w = gt_c2w.copy()
    gt_c2w[1:, :3, :3] = rots
    est_c2w[1:, :3, :3] = (
        rots
        @ Rotation.from_rotvec([[0.0, 0.0, a] for a in (0.5, 1.5, 2.5, 3.0, 3.14, 1.0)]).as_matrix()
    )
    gt_c2w[:, :3, 3] = np.arange(21, dtype=float).reshape(7, 3) ** 1.5  # any non-static path
    est_c2w[:, :3, 3] = gt_c2w[:, :3, 3]
    res = cami2v_errors(_w2c(gt_c2w), list(_w2c(est_c2w)))
    assert res["rot_err"] == pytest.approx(0.5 + 1.5 + 2.5 + 3.0 + 3.14 + 1.0, abs=1e-9)


def test_cami2v_skips_unregistered_frames_and_gates_ratio() -> None:
    c2w = _arc_c2w()
    est_c2w = c2w.copy()
    est_c2w[4, :3, :3] = c2w[4, :3, :3] @ Rotation.from_rotvec([0.0, 0.2, 0.0]).as_matrix()
    est: list[np.ndarray | None] = list(_w2c(est_c2w))
    est[9] = None
    res = cami2v_errors(_w2c(c2w), est)
    assert res["status"] == "ok" and res["num_registered"] == 13
    assert res["rot_err"] == pytest.approx(0.2, abs=1e-9)
    for i in (1, 2, 3):
        est[i] = None
    assert cami2v_errors(_w2c(c2w), est)["reason"] == "registered 10/14 frames < 80%"
    assert cami2v_errors(_w2c(c2w), est, min_registered=0.0)["status"] == "ok"


def test_cami2v_hand_computed_translation_error() -> None:
    # GT moves 0, 1, 2 along x (farthest = 2); est moves 0, 2, 2 -> normalised 0, 1, 1 vs
    # 0, 0.5, 1: TransErr = 0.5 = CamMC.
    gt_c2w = np.stack([np.eye(4)] * 3)
    gt_c2w[:, 0, 3] = [0.0, 1.0, 2.0]
    est_c2w = np.stack([np.eye(4)] * 3)
    est_c2w[:, 0, 3] = [0.0, 2.0, 2.0]
    res = cami2v_errors(_w2c(gt_c2w), list(_w2c(est_c2w)))
    assert res["trans_err"] == pytest.approx(0.5)
    assert res["cam_mc"] == pytest.approx(0.5)
    assert res["rot_err"] == pytest.approx(0.0)


def test_cami2v_static_gt_is_flagged() -> None:
    gt = np.stack([np.eye(4)] * 5)
    est_c2w = np.stack([np.eye(4)] * 5)
    est_c2w[:, 2, 3] = [0.0, 0.5, 1.0, 1.5, 2.0]
    res = cami2v_errors(gt, list(_w2c(est_c2w)))
    assert res["status"] == "ok" and res["gt_static"] is True and res["est_static"] is False
    assert res["trans_err"] == pytest.approx(0.25 + 0.5 + 0.75 + 1.0)


def test_cami2v_frame0_unregistered_fails() -> None:
    gt = _w2c(_arc_c2w())
    est: list[np.ndarray | None] = list(gt)
    est[0] = None
    res = cami2v_errors(gt, est)
    assert res["status"] == "failed" and "frame 0" in res["reason"]
    assert res["rot_err"] is None


def test_cami2v_nan_fails() -> None:
    gt = _w2c(_arc_c2w())
    est = [p.copy() for p in gt]
    est[2][1, 1] = np.inf
    res = cami2v_errors(gt, est)
    assert res["status"] == "failed" and "NaN/inf" in res["reason"]


# --------------------------------------------------------------------------------------------
# Fidelity
# --------------------------------------------------------------------------------------------


def _video(seed: int = 0, shape: tuple[int, ...] = (3, 32, 40, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(20, 236, size=shape, dtype=np.uint8)


def test_identical_frames_psnr_inf_ssim_one() -> None:
    v = _video()
    res = frame_fidelity(v, v.copy())
    assert res["psnr"] == math.inf
    assert res["ssim"] == pytest.approx(1.0, abs=1e-6)


def test_uniform_offset_psnr_exact() -> None:
    ref = _video()
    gen = ref + np.uint8(10)
    expected = 20 * math.log10(255 / 10)
    # torchmetrics evaluates its 10/ln(10) factor in float32: ~1e-6 dB off the exact value.
    assert frame_fidelity(gen, ref)["psnr"] == pytest.approx(expected, abs=1e-5)
    assert masked_psnr(gen, ref, np.ones(ref.shape[:3], bool)) == pytest.approx(expected, 1e-12)


def test_psnr_pools_frames_and_survives_one_identical_frame() -> None:
    ref = _video()
    gen = ref.copy()
    gen[1:] += np.uint8(10)
    # MSE pooled over 3 frames = 100 * 2/3.
    expected = 10 * math.log10(255**2 / (100 * 2 / 3))
    assert frame_fidelity(gen, ref)["psnr"] == pytest.approx(expected, abs=1e-5)


def test_masked_psnr_counts_only_masked_pixels() -> None:
    ref = _video()
    gen = ref.copy()
    mask = np.zeros(ref.shape[:3], bool)
    mask[:, :16] = True
    gen[:, :16] += np.uint8(5)  # masked region: offset 5
    gen[:, 16:] = 0  # unmasked region: garbage that must not count
    assert masked_psnr(gen, ref, mask) == pytest.approx(20 * math.log10(255 / 5), abs=1e-12)
    res = frame_fidelity(gen, ref, mask)
    assert res["psnr"] == pytest.approx(20 * math.log10(255 / 5), abs=1e-12)
    assert 0.0 < res["ssim"] <= 1.0
    with pytest.raises(ValueError, match="no pixels"):
        masked_psnr(gen, ref, np.zeros_like(mask))


def test_masked_ssim_of_identical_region_is_one() -> None:
    ref = _video()
    gen = ref.copy()
    mask = np.zeros(ref.shape[:3], bool)
    mask[:, :, :20] = True
    gen[:, :, 30:] = 255  # far (> 5 px kernel radius) from every masked pixel
    assert frame_fidelity(gen, ref, mask)["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert frame_fidelity(gen, ref)["ssim"] < 0.9


def test_shape_mismatch_names_both_shapes() -> None:
    a, b = _video(shape=(3, 32, 40, 3)), _video(shape=(3, 32, 48, 3))
    with pytest.raises(ValueError, match=r"\(3, 32, 40, 3\).*\(3, 32, 48, 3\)"):
        frame_fidelity(a, b)
    with pytest.raises(ValueError, match=r"\(3, 32, 40, 3\).*\(3, 32, 48, 3\)"):
        masked_psnr(a, b, np.ones(a.shape[:3], bool))


# --------------------------------------------------------------------------------------------
# The metric registry
# --------------------------------------------------------------------------------------------


def test_metric_registry_describes_each_metric_once():
    from benchmark.metrics import METRIC_SPECS

    # errors are lower-is-better; similarity and "how much was tracked" are higher-is-better
    higher = {key for key, spec in METRIC_SPECS.items() if spec.higher_is_better}
    assert higher == {"psnr", "ssim", "traj_epe_fraction", "track_epe_fraction"}
    assert all(key == spec.key for key, spec in METRIC_SPECS.items())
    # Table 1 prints the paper's "RPE rot"; plots and paper tables carry the unit
    rot = METRIC_SPECS["rpe_rot_deg"]
    assert (rot.column, rot.title, rot.digits) == ("RPE rot", "RPE rot (deg)", 4)
    assert METRIC_SPECS["psnr"].column == "PSNR (dB)"
    assert METRIC_SPECS["traj_epe_fraction"].column == "traj tracked (%)"
    assert {k for k, s in METRIC_SPECS.items() if s.percent} == {
        "traj_epe_fraction", "track_epe_fraction"}  # fmt: skip
