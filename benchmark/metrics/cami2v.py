"""CamI2V's RotErr / TransErr / CamMC (its ``glomap_evaluation.py``, "rel" variant), written
by hand: no library provides them."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmark.metrics.checks import (
    STATIC_ATOL,
    EstPoses,
    _ratio_reason,
    _registered,
)


def _relative_normalised(c2w: np.ndarray) -> tuple[np.ndarray, bool]:
    """c2w relative to the first pose, translations divided by the farthest camera's distance.

    Returns the (N, 4, 4) poses and whether the path is static (farthest distance below
    ``STATIC_ATOL``: translations are then set to exactly 0 instead of divided).
    """
    rel = np.linalg.inv(c2w[0]) @ c2w
    rel[0] = np.eye(4)
    scale = float(np.linalg.norm(rel[:, :3, 3], axis=1).max())
    static = scale < STATIC_ATOL
    if static:
        rel[:, :3, 3] = 0.0
    else:
        rel[:, :3, 3] /= scale
    return rel, static


def _geodesic_angle(r_gt: np.ndarray, r_est: np.ndarray) -> np.ndarray:
    """Angle (radians) of ``R_gt^T R_est`` for (N, 3, 3) rotations.

    Equal to CamI2V's ``arccos((trace - 1) / 2)`` (clipped), but as ``atan2(sin, cos)`` so it
    stays accurate near 0: arccos of a cosine rounded to 1 - 1e-16 is already 1.5e-8 rad, an
    error that the sum over frames would accumulate on identical rotations.
    """
    m = np.swapaxes(r_gt, 1, 2) @ r_est
    cos = (np.trace(m, axis1=1, axis2=2) - 1.0) / 2.0
    skew = np.stack([m[:, 2, 1] - m[:, 1, 2], m[:, 0, 2] - m[:, 2, 0], m[:, 1, 0] - m[:, 0, 1]])
    sin = np.linalg.norm(skew, axis=0) / 2.0
    return np.arctan2(sin, cos)


def cami2v_errors(
    gt_w2c: np.ndarray, est_w2c: EstPoses, *, min_registered: float = 0.8
) -> dict[str, Any]:
    """CamI2V's RotErr, TransErr and CamMC (its ``glomap_evaluation.metric``, "rel" variant).

    Written by hand: no library provides these metrics. On the frames registered in ``est``
    (frame 0 must be one), both trajectories become c2w relative to frame 0
    (``inv(c2w_0) @ c2w_i``) and each one's translations are divided by its own farthest
    camera's distance from frame 0, over those same frames (static path: left at 0, flagged
    ``gt_static`` / ``est_static``). Then, summed over the registered frames:

    - ``rot_err``: geodesic angle (radians) ``arccos((trace(R_gt^T R_est) - 1) / 2)``
      (evaluated as an equivalent, better-conditioned atan2);
    - ``trans_err``: Euclidean distance between normalised translations;
    - ``cam_mc``: L2 norm of the difference of the flattened 3x4 ``[R|t]`` matrices.

    Sums grow with the number of frames, so a clip with fewer registered frames looks better:
    hence the same ``min_registered`` gate as :func:`camera_pose_errors` (pass 0.0 to disable).
    Returns those three (None when failed) plus ``status``, ``reason``, ``num_frames``,
    ``num_registered``, ``gt_static``, ``est_static``. Failures are recorded, not raised.
    """
    ids, gt_c2w, est_c2w, reason = _registered(gt_w2c, est_w2c)
    num_frames = int(np.shape(gt_w2c)[0])
    out: dict[str, Any] = {
        "rot_err": None,
        "trans_err": None,
        "cam_mc": None,
        "status": "failed",
        "reason": reason,
        "num_frames": num_frames,
        "num_registered": len(ids),
        "gt_static": None,
        "est_static": None,
    }
    if reason is None and (not ids or ids[0] != 0):
        reason = "frame 0 is not registered: CamI2V metrics are relative to frame 0"
    if reason is None:
        reason = _ratio_reason(len(ids), num_frames, min_registered)
    if reason is not None:
        out["reason"] = reason
        return out

    gt_rel, gt_static = _relative_normalised(gt_c2w)
    est_rel, est_static = _relative_normalised(est_c2w)
    rot = _geodesic_angle(gt_rel[:, :3, :3], est_rel[:, :3, :3])
    trans = np.linalg.norm(gt_rel[:, :3, 3] - est_rel[:, :3, 3], axis=1)
    cam_mc = np.linalg.norm((gt_rel[:, :3, :4] - est_rel[:, :3, :4]).reshape(-1, 12), axis=1)
    out.update(
        rot_err=float(rot.sum()),
        trans_err=float(trans.sum()),
        cam_mc=float(cam_mc.sum()),
        status="ok",
        reason=None,
        gt_static=bool(gt_static),
        est_static=bool(est_static),
    )
    return out
