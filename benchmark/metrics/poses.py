r"""ATE / RPE exactly as ParticleSfM evaluates them, through evo's own Python API (Sim(3)
Umeyama alignment with scale correction), rotation-only errors, and aligned camera centres
for plots. Failures are recorded in the result, never raised."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from evo.core.geometry import GeometryException
from evo.core.metrics import PoseRelation, Unit
from evo.core.trajectory import PoseTrajectory3D
from evo.main_ape import ape
from evo.main_rpe import rpe

from benchmark.metrics.checks import (
    COLLINEAR_RTOL,
    STATIC_ATOL,
    EstPoses,
    _check_gt,
    _ratio_reason,
    _registered,
)


@dataclass(frozen=True)
class PoseErrors:
    """ATE/RPE of one estimated trajectory against ground truth (ParticleSfM/evo protocol).

    Attributes:
        status: "ok" or "failed"; when failed the errors are None and ``reason`` says why.
        reason: failure reason (None when ok).
        ate: RMSE of camera-centre errors after Sim(3) Umeyama alignment (GT units).
        rpe_trans: RMSE of the translation part of consecutive relative-pose errors.
        rpe_rot_deg: RMSE of the rotation angle (degrees) of consecutive relative-pose errors.
        num_frames: frames in the clip.
        num_registered: frames with an estimated pose.
        registered_ratio: ``num_registered / num_frames``.
    """

    status: str
    reason: str | None
    ate: float | None
    rpe_trans: float | None
    rpe_rot_deg: float | None
    num_frames: int
    num_registered: int
    registered_ratio: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (plain floats/ints/str, None for missing values)."""
        return asdict(self)


def _traj(c2w: np.ndarray, frame_ids: Sequence[int]) -> PoseTrajectory3D:
    """evo trajectory of c2w poses stamped with their frame indices."""
    return PoseTrajectory3D(
        poses_se3=[p.copy() for p in c2w], timestamps=np.asarray(frame_ids, dtype=np.float64)
    )


def rpe_rotation_deg(ref: PoseTrajectory3D, est: PoseTrajectory3D) -> float:
    """RPE rotation (deg): evo's RMSE of consecutive-frame relative rotation angles, without
    alignment (relative rotations do not depend on it). Raises evo's GeometryException."""
    return rpe(
        ref,
        est,
        PoseRelation.rotation_angle_deg,
        delta=1,
        delta_unit=Unit.frames,
        align=False,
        all_pairs=False,
    ).stats["rmse"]


def _degenerate_path(positions: np.ndarray) -> str | None:
    """'static' / 'collinear' when camera centres (N, 3) make Sim(3) alignment degenerate.

    evo's Umeyama refuses a covariance of rank < 2 against an absolute epsilon, so on a straight
    GT path it fails or not depending on rounding noise; checking GT with a relative tolerance
    first makes that outcome deterministic and gives a clearer reason.
    """
    centred = positions - positions.mean(axis=0)
    sv = np.linalg.svd(centred, compute_uv=False)
    if sv[0] <= STATIC_ATOL * max(1.0, float(np.abs(positions).max())):
        return "static"
    if sv[1] <= COLLINEAR_RTOL * sv[0]:
        return "collinear"
    return None


def _umeyama_sim3(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Sim(3) (R, t, s) minimising |dst - (s R src + t)|^2 for (N, 3) point sets (Umeyama 1991).

    evo's ``umeyama_alignment`` is the same closed form but refuses covariances of rank < 2;
    for collinear ``dst`` the solution is unique up to a rotation about the line, which moves
    no point of ``dst``'s line, so the cost is the same for every choice and this one is used.
    """
    mean_src, mean_dst = src.mean(axis=0), dst.mean(axis=0)
    var_src = float(np.mean(np.sum((src - mean_src) ** 2, axis=1)))
    if var_src <= STATIC_ATOL**2:
        raise ValueError("estimated camera centres are static: Sim(3) scale is undefined")
    cov = (dst - mean_dst).T @ (src - mean_src) / len(src)
    u, d, vt = np.linalg.svd(cov)
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1
    rot = u @ sign @ vt
    scale = float(np.trace(np.diag(d) @ sign)) / var_src
    return rot, mean_dst - scale * rot @ mean_src, scale


def camera_pose_errors(
    gt_w2c: np.ndarray, est_w2c: EstPoses, min_registered: float = 0.8
) -> PoseErrors:
    """ATE and RPE (translation, rotation in degrees) exactly as ParticleSfM evaluates with evo.

    Both trajectories become evo ``PoseTrajectory3D`` of c2w = inv(w2c) on the registered frames
    (timestamps = frame indices). ATE = ``ape(..., translation_part, align=True,
    correct_scale=True)`` RMSE; RPE = ``rpe(..., delta=1, delta_unit=frames, align=True,
    correct_scale=True, all_pairs=False)`` RMSE for ``translation_part`` and
    ``rotation_angle_deg``. evo aligns ``est`` in place, so every call gets deep copies.

    Unregistered frames: evo runs on the registered subsequence, so RPE's "consecutive" pairs
    are consecutive *registered* frames (a pair skips over an unregistered frame between them).

    A static GT path (pure rotation: pan, tilt, roll) has no translation to align: ATE and
    RPE trans are then None ("ATE undefined" in ``reason``) and only RPE rot is reported.

    Failures are recorded (``status="failed"`` with ``reason``), never raised: fewer than
    ``min_registered`` of the frames registered, fewer than 3 registered, NaN/inf or
    non-rigid poses, and any
    ``GeometryException`` from evo (e.g. an estimate whose camera centres are collinear while
    GT's are not). A straight GT path (dolly, truck, pedestal) is aligned by
    :func:`_umeyama_sim3` first, since evo refuses it although the errors are well defined.
    Bad shapes or lengths are caller bugs: ValueError.
    """
    ids, gt_c2w, est_c2w, reason = _registered(gt_w2c, est_w2c)
    num_frames = int(np.shape(gt_w2c)[0])
    n = len(ids)

    def failed(why: str) -> PoseErrors:
        return PoseErrors("failed", why, None, None, None, num_frames, n, n / num_frames)

    if reason is not None:
        return failed(reason)
    reason = _ratio_reason(n, num_frames, min_registered)
    if reason is not None:
        return failed(reason)
    if n < 3:
        return failed(f"only {n} registered pose(s): Sim(3) alignment needs at least 3")
    kind = _degenerate_path(gt_c2w[:, :3, 3])
    ref, est = _traj(gt_c2w, ids), _traj(est_c2w, ids)
    if kind == "static":
        # Pure rotation: no translation to align, so ATE and RPE trans are undefined (never
        # a number); relative rotations do not depend on any alignment and are still scored.
        try:
            rot = rpe_rotation_deg(copy.deepcopy(ref), copy.deepcopy(est))
        except GeometryException as exc:
            return failed(f"evo: {exc}")
        return PoseErrors(
            "ok",
            "ATE undefined: ground-truth camera centres are static (pure rotation)",
            None,
            None,
            float(rot),
            num_frames,
            n,
            n / num_frames,
        )
    if _degenerate_path(est_c2w[:, :3, 3]) == "static":
        # evo would say "Degenerate covariance rank": name the cause instead.
        return failed("estimated camera centres are static: Sim(3) scale is undefined")
    align = True
    if kind == "collinear":
        # A straight GT path (dolly, truck, pedestal) leaves the rotation about the line free,
        # and evo refuses the rank-1 covariance; but every optimal Sim(3) gives the same
        # aligned positions up to that free rotation, so ATE/RPE are well defined. Align once
        # with Umeyama's closed form (no rank check) and let evo score the aligned copy.
        try:
            rot, trans, scale = _umeyama_sim3(est.positions_xyz, ref.positions_xyz)
        except ValueError as exc:
            return failed(str(exc))
        est.scale(scale)
        pose = np.eye(4)
        pose[:3, :3], pose[:3, 3] = rot, trans
        est.transform(pose)
        align = False
    try:
        ate = ape(
            copy.deepcopy(ref),
            copy.deepcopy(est),
            PoseRelation.translation_part,
            align=align,
            correct_scale=align,
        ).stats["rmse"]
        rpe_values = [
            rpe(
                copy.deepcopy(ref),
                copy.deepcopy(est),
                relation,
                delta=1,
                delta_unit=Unit.frames,
                align=align,
                correct_scale=align,
                all_pairs=False,
            ).stats["rmse"]
            for relation in (PoseRelation.translation_part, PoseRelation.rotation_angle_deg)
        ]
    except GeometryException as exc:
        return failed(f"evo: {exc}")
    values = [float(ate), *(float(v) for v in rpe_values)]
    if not all(math.isfinite(v) for v in values):
        return failed(f"evo returned non-finite errors {values}")
    return PoseErrors("ok", None, *values, num_frames, n, n / num_frames)


def rotation_only_errors(
    gt_w2c: np.ndarray, est_w2c: EstPoses, min_registered: float = 0.8
) -> PoseErrors:
    """RPE rotation of rotation-only estimates (no SfM model; rotations from homographies).

    The estimate has no translation, so ATE and RPE trans are undefined (None) whatever the
    ground truth; RPE rot is evo's ``rotation_angle_deg`` RPE with ``align=False`` (relative
    rotations need no alignment), as for static ground truth in :func:`camera_pose_errors`.
    Status "ok" when the ground-truth centres are static (pan, tilt, roll); otherwise
    "failed" (the path translates and no translation was recovered), with RPE rot still
    reported. Registration gates as in :func:`camera_pose_errors`."""
    ids, gt_c2w, est_c2w, reason = _registered(gt_w2c, est_w2c)
    num_frames = int(np.shape(gt_w2c)[0])
    n = len(ids)
    if reason is None:
        reason = _ratio_reason(n, num_frames, min_registered)
    if reason is None and n < 2:
        reason = f"only {n} registered pose(s): no relative rotation"
    if reason is not None:
        return PoseErrors("failed", reason, None, None, None, num_frames, n, n / max(num_frames, 1))
    try:
        rot = rpe_rotation_deg(_traj(gt_c2w, ids), _traj(est_c2w, ids))
    except GeometryException as exc:
        return PoseErrors("failed", f"evo: {exc}", None, None, None, num_frames, n, n / num_frames)
    if _degenerate_path(gt_c2w[:, :3, 3]) == "static":
        status, why = "ok", "ATE undefined: rotation-only poses (no SfM model; pure rotation)"
    else:
        status, why = (
            "failed",
            (
                "rotation-only poses (no SfM model: homographies explain the matches) but the "
                "ground-truth camera translates: ATE and translation undefined"
            ),
        )
    return PoseErrors(status, why, None, None, float(rot), num_frames, n, n / num_frames)


def aligned_centres(
    gt_w2c: np.ndarray, est_w2c: EstPoses
) -> tuple[list[int], np.ndarray, np.ndarray] | None:
    """Registered frame ids, GT camera centres and Sim(3)-aligned estimated centres (N, 3),
    both in GT's frame-0 camera coordinates (for plots); None when alignment is impossible."""
    ids, gt_c2w, est_c2w, reason = _registered(gt_w2c, est_w2c)
    if reason is not None or len(ids) < 3 or _degenerate_path(gt_c2w[:, :3, 3]) == "static":
        return None
    try:
        rot, trans, scale = _umeyama_sim3(est_c2w[:, :3, 3], gt_c2w[:, :3, 3])
    except ValueError:
        return None
    est = scale * est_c2w[:, :3, 3] @ rot.T + trans
    to_cam0 = _check_gt(gt_w2c)[0]
    gt = gt_c2w[:, :3, 3] @ to_cam0[:3, :3].T + to_cam0[:3, 3]
    return ids, gt, est @ to_cam0[:3, :3].T + to_cam0[:3, 3]
