r"""Camera-control and fidelity metrics: pure functions over numpy arrays (no file I/O).

Conventions (the same as ``benchmark.cameras``): cameras are world-to-camera 4x4 float64
matrices per frame (``w2c``), OpenCV axes; frames are uint8 RGB ``(F, H, W, 3)``. An estimated
trajectory (from SfM on a generated clip) is a sequence with one ``(4, 4)`` w2c or ``None``
(not registered) per frame, in an arbitrary world frame and scale.

Three families:

1. :func:`camera_pose_errors`: ATE and RPE exactly as ParticleSfM evaluates them, through evo's
   own Python API (``evo.main_ape.ape`` / ``evo.main_rpe.rpe`` with Sim(3) Umeyama alignment,
   ``align=True, correct_scale=True``). Failures are recorded in the result, never raised.
2. :func:`cami2v_errors`: RotErr / TransErr / CamMC as CamI2V's ``glomap_evaluation.py``
   computes them (poses relative to frame 0, translations normalised by each trajectory's
   farthest camera). No library provides these, so they are written here by hand.
3. :func:`frame_fidelity` / :func:`masked_psnr`: PSNR and SSIM against a ground-truth render
   (synthetic scenes), with torchmetrics.
"""

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
#: Frames per SSIM batch (bounds memory on 576x1024 clips).
SSIM_CHUNK = 4


# --------------------------------------------------------------------------------------------
# Shared pose checks
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# ATE / RPE (ParticleSfM protocol through evo)
# --------------------------------------------------------------------------------------------


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
            rot = rpe(
                copy.deepcopy(ref), copy.deepcopy(est), PoseRelation.rotation_angle_deg,
                delta=1, delta_unit=Unit.frames, align=False, all_pairs=False,
            ).stats["rmse"]
        except GeometryException as exc:
            return failed(f"evo: {exc}")
        return PoseErrors(
            "ok", "ATE undefined: ground-truth camera centres are static (pure rotation)",
            None, None, float(rot), num_frames, n, n / num_frames,
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
        rot = rpe(
            _traj(gt_c2w, ids), _traj(est_c2w, ids), PoseRelation.rotation_angle_deg,
            delta=1, delta_unit=Unit.frames, align=False, all_pairs=False,
        ).stats["rmse"]
    except GeometryException as exc:
        return PoseErrors("failed", f"evo: {exc}", None, None, None, num_frames, n,
                          n / num_frames)
    if _degenerate_path(gt_c2w[:, :3, 3]) == "static":
        status, why = "ok", "ATE undefined: rotation-only poses (no SfM model; pure rotation)"
    else:
        status, why = "failed", (
            "rotation-only poses (no SfM model: homographies explain the matches) but the "
            "ground-truth camera translates: ATE and translation undefined")
    return PoseErrors(status, why, None, None, float(rot), num_frames, n, n / num_frames)


# --------------------------------------------------------------------------------------------
# CamI2V RotErr / TransErr / CamMC
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Fidelity against a ground-truth render
# --------------------------------------------------------------------------------------------


def _check_video(name: str, video: np.ndarray) -> None:
    """Raise ValueError unless ``video`` is uint8 (F, H, W, 3)."""
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 (F, H, W, 3), got {video.dtype} {video.shape}")


def masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray, data_range: float = 255.0) -> float:
    """PSNR (dB) over the pixels where ``mask`` is True, pooled over all frames and channels.

    ``mask`` has the shape of ``a`` without its last (channel) axis, or exactly ``a``'s shape.
    torchmetrics' PSNR takes no mask, so the MSE over masked pixels is computed here (float64;
    exact for uint8 inputs). Identical masked pixels give ``inf``; an empty mask is a
    ValueError.
    """
    a, b, mask = np.asarray(a), np.asarray(b), np.asarray(mask, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: a {a.shape} vs b {b.shape}")
    if mask.shape == a.shape[:-1]:
        mask = mask[..., None]
    elif mask.shape != a.shape:
        raise ValueError(f"mask shape {mask.shape} matches neither {a.shape} nor {a.shape[:-1]}")
    mask = np.broadcast_to(mask, a.shape)
    count = int(mask.sum())
    if count == 0:
        raise ValueError("mask selects no pixels")
    diff = a[mask].astype(np.float64) - b[mask].astype(np.float64)
    mse = float(np.dot(diff, diff)) / count
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def frame_fidelity(
    frames: np.ndarray, reference: np.ndarray, mask: np.ndarray | None = None
) -> dict[str, float]:
    """PSNR (dB) and SSIM of generated ``frames`` against a ground-truth render ``reference``.

    Both are uint8 (F, H, W, 3); data range 255. PSNR is of the whole clip as one signal (MSE
    pooled over all frames, pixels and channels, torchmetrics' ``PeakSignalNoiseRatio``
    accumulated over frame chunks), *not* the mean of per-frame PSNR: one identical frame
    (frame 0 is the conditioning view, which e.g. the ``static`` control copies) would make that
    mean infinite. A clip identical throughout gives ``inf``. SSIM is torchmetrics'
    (Gaussian 11x11, sigma 1.5, per RGB channel then averaged), mean over frames.

    With ``mask`` (F, H, W) bool, only True pixels count: PSNR via :func:`masked_psnr`, SSIM as
    the mean of torchmetrics' full SSIM map over masked pixels (the map is computed on the
    whole frame, so unmasked neighbours still enter each window). Shape mismatches raise
    ValueError naming both shapes.
    """
    frames, reference = np.asarray(frames), np.asarray(reference)
    if frames.shape != reference.shape:
        raise ValueError(f"shape mismatch: frames {frames.shape} vs reference {reference.shape}")
    _check_video("frames", frames)
    _check_video("reference", reference)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != frames.shape[:3]:
            raise ValueError(f"mask shape {mask.shape} must be {frames.shape[:3]} (frames' F,H,W)")

    # torch (about 4 s, 650 MB per process) and torchmetrics (torchvision's model zoo) are
    # imported here, not at module level: only fidelity scoring pays for them, while pose
    # scoring, tables and aggregation stay torch-free.
    import torch
    from torchmetrics.functional.image import structural_similarity_index_measure
    from torchmetrics.image import PeakSignalNoiseRatio

    psnr_metric = PeakSignalNoiseRatio(data_range=255.0).set_dtype(torch.float64)
    ssim_sum, ssim_count = 0.0, 0
    for start in range(0, frames.shape[0], SSIM_CHUNK):
        sl = slice(start, start + SSIM_CHUNK)
        pred = torch.from_numpy(frames[sl]).permute(0, 3, 1, 2).to(torch.float64)
        target = torch.from_numpy(reference[sl]).permute(0, 3, 1, 2).to(torch.float64)
        if mask is None:
            psnr_metric.update(pred, target)
            per_frame = structural_similarity_index_measure(
                pred.float(), target.float(), data_range=255.0, reduction="none"
            )
            ssim_sum += float(per_frame.double().sum())
            ssim_count += int(per_frame.numel())
        else:
            _, ssim_map = structural_similarity_index_measure(
                pred.float(), target.float(), data_range=255.0, return_full_image=True
            )
            m = torch.from_numpy(mask[sl])[:, None].expand_as(ssim_map)
            ssim_sum += float(ssim_map.double()[m].sum())
            ssim_count += int(m.sum())

    if mask is None:
        psnr = float(psnr_metric.compute())
    else:
        psnr = masked_psnr(frames, reference, mask)
    if ssim_count == 0:
        raise ValueError("mask selects no pixels")
    return {"psnr": psnr, "ssim": ssim_sum / ssim_count}


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
