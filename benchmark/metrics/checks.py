"""Shared checks of ground-truth and estimated poses (the pose metrics' common ground)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Estimated poses: one (4, 4) world-to-camera matrix per frame, or None when SfM did not
#: register that frame.
EstPoses = Sequence[np.ndarray | None]

#: Tolerance on ``R^T R == I`` and ``det R == 1`` for a pose to count as a rigid transform
#: (loose enough for float32-derived poses, tight enough to catch non-rotations).
ROTATION_ATOL = 1e-5
#: Below this ratio of the second to the first singular value of the centred camera centres a
#: ground-truth path counts as collinear (Sim(3) Umeyama alignment is then degenerate).
COLLINEAR_RTOL = 1e-9
#: Camera-centre spread (and CamI2V farthest-camera distance) below which a path is static.
STATIC_ATOL = 1e-9


def _check_gt(gt_w2c: np.ndarray) -> np.ndarray:
    """(F, 4, 4) float64 copy of the ground-truth w2c; raises ValueError on a bad shape."""
    gt = np.array(gt_w2c, dtype=np.float64)
    if gt.ndim != 3 or gt.shape[1:] != (4, 4) or gt.shape[0] == 0:
        raise ValueError(f"gt_w2c must have shape (F, 4, 4) with F > 0, got {gt.shape}")
    return gt


def _check_est(est_w2c: EstPoses, num_frames: int) -> list[np.ndarray | None]:
    """Float64 copies of the estimated poses; raises ValueError on a bad length or shape."""
    if len(est_w2c) != num_frames:
        raise ValueError(f"est_w2c has {len(est_w2c)} entries, gt_w2c has {num_frames} frames")
    out: list[np.ndarray | None] = []
    for i, pose in enumerate(est_w2c):
        if pose is None:
            out.append(None)
            continue
        arr = np.array(pose, dtype=np.float64)
        if arr.shape != (4, 4):
            raise ValueError(f"est_w2c[{i}] must have shape (4, 4) or be None, got {arr.shape}")
        out.append(arr)
    return out


def _pose_problem(name: str, poses: np.ndarray, frames: Sequence[int]) -> str | None:
    """Why ``poses`` (N, 4, 4) are not finite rigid transforms, or None when they are."""
    bad = [f for f, p in zip(frames, poses, strict=True) if not np.all(np.isfinite(p))]
    if bad:
        return f"{name} pose(s) of frame(s) {bad} contain NaN/inf"
    rot = poses[:, :3, :3]
    eye = np.eye(3)
    ortho = np.abs(np.swapaxes(rot, 1, 2) @ rot - eye).max(axis=(1, 2)) <= ROTATION_ATOL
    det = np.abs(np.linalg.det(rot) - 1.0) <= ROTATION_ATOL
    row = np.abs(poses[:, 3] - np.array([0.0, 0.0, 0.0, 1.0])).max(axis=1) <= ROTATION_ATOL
    bad = [f for f, ok in zip(frames, ortho & det & row, strict=True) if not ok]
    if bad:
        return f"{name} pose(s) of frame(s) {bad} are not rigid transforms [R|t; 0 0 0 1]"
    return None


def _rigid_inverse(w2c: np.ndarray) -> np.ndarray:
    """c2w = inv(w2c) for (N, 4, 4) rigid transforms (R^T, -R^T t: exact, no LU)."""
    rot_t = np.swapaxes(w2c[:, :3, :3], 1, 2)
    c2w = np.zeros_like(w2c)
    c2w[:, :3, :3] = rot_t
    c2w[:, :3, 3] = -(rot_t @ w2c[:, :3, 3:4])[..., 0]
    c2w[:, 3, 3] = 1.0
    return c2w


def _registered(
    gt_w2c: np.ndarray, est_w2c: EstPoses
) -> tuple[list[int], np.ndarray, np.ndarray, str | None]:
    """Registered frame ids, their GT and est c2w (N, 4, 4), and a failure reason or None."""
    gt = _check_gt(gt_w2c)
    est = _check_est(est_w2c, gt.shape[0])
    ids = [i for i, p in enumerate(est) if p is not None]
    gt_reg = gt[ids]
    est_reg = np.stack([est[i] for i in ids]) if ids else np.zeros((0, 4, 4))
    reason = _pose_problem("ground-truth", gt, range(gt.shape[0])) or _pose_problem(
        "estimated", est_reg, ids
    )
    if reason is not None:
        return ids, gt_reg, est_reg, reason
    return ids, _rigid_inverse(gt_reg), _rigid_inverse(est_reg), None


def _ratio_reason(num_registered: int, num_frames: int, min_registered: float) -> str | None:
    """'registered 9/14 frames < 80%' when too few frames are registered, else None."""
    if num_registered / num_frames < min_registered:
        return f"registered {num_registered}/{num_frames} frames < {min_registered:.0%}"
    return None
