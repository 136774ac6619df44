"""Scoring stage: recovered poses (and frames) of one run -> metrics.json.

Pose metrics compare the poses COLMAP recovered from the generated frames with the camera
path the method was asked to follow. On synthetic scenes the frames are also compared with
the exact render of the path (PSNR/SSIM), which needs no network weights.

Track scores (weight-free tracker, :mod:`benchmark.metrics.tracks`):

- ``traj_epe`` (issue 8 item 6): when the method saved the trajectories it was conditioned on
  (``extras.npz`` with ``tracks``/``visible``, e.g. ``trajattn``), the generated frames are
  tracked from the same frame-0 points and compared with them: does the video follow its
  trajectories? Median (``traj_epe``) and mean (``traj_epe_mean``) px over points valid in
  both, frames 1..
- editing clips (paper Sec. 4.3): ``track_epe``, the generated frames and the original video
  tracked from the same frame-0 grid (stride :data:`EDIT_TRACK_STRIDE` of the output
  frames), EPE in output pixels; ``edit_persistence``, mean absolute RGB difference (0-255)
  between the output along the original video's tracks and the edited first frame at the
  tracks' start (``edit_persistence_region``: only points the edit changed).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.cameras import CameraFileError, load_camera_path
from benchmark.io import atomic_write_text, read_frames
from benchmark.metrics import (
    camera_pose_errors,
    cami2v_errors,
    frame_fidelity,
    rotation_only_errors,
)
from benchmark.sfm.records import load_poses  # the record alone: no COLMAP, OpenCV or PIL
from benchmark.sources.videos import load_video

#: Weight-free tracker of the track scores (:func:`trajattn.tracking.make_tracker`).
TRACKER = "dis"
#: Pixel stride (output frames) of the frame-0 grid the editing scores track.
EDIT_TRACK_STRIDE = 8
#: Gaussian blur (px of the output frames) before colours are compared along tracks
#: (:func:`benchmark.metrics.tracks.blur`). Measured on the tiny editing suite (192x112):
#: persistence of the exact edited render 14.9 / 9.2 / 6.5 / 5.3 at sigma 0 / 1 / 2 / 3, of
#: the static edited frame 56.8 / 46.4 / 37.8 / 32.1: sigma 2 separates them best.
EDIT_BLUR_SIGMA = 2.0
#: A point counts as edited when the edit changed its frame-0 colour by more than this mean
#: absolute RGB difference (0-255).
EDIT_REGION_THRESHOLD = 12.0


def _finite_or_none(value: Any) -> Any:
    """JSON has no inf/NaN: +inf (PSNR of identical frames) becomes the string "inf", which
    pandas reads back as infinity; NaN becomes None (the reason is kept elsewhere)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else None
    return value


def score_run(
    run_dir: str | Path,
    camera_file: str | Path,
    reference_dir: str | Path | None = None,
    min_registered: float = 0.8,
    video_dir: str | Path | None = None,
    edit_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Score one run folder (meta.json, poses.json, frames/) and write metrics.json.

    ``reference_dir`` holds the exact render of the path (synthetic suites, see
    :func:`benchmark.stages.reference.render_reference`); without it no fidelity metric is
    computed. ``video_dir`` and ``edit_dir`` (editing clips: the original video and the
    edit) add the editing scores."""
    run = Path(run_dir)
    meta = json.loads((run / "meta.json").read_text())
    out: dict[str, Any] = {
        "method": meta["method"],
        "seed": meta["seed"],
        "generation_status": meta["status"],
        "generation_reason": meta.get("reason", ""),
    }
    try:
        camera = load_camera_path(camera_file)
    except (CameraFileError, OSError) as exc:  # recorded: the suite's tables still get built
        out.update(num_frames=meta.get("num_frames"), status="failed",
                   reason=f"ground-truth camera file unusable: {exc}")
        atomic_write_text(run / "metrics.json", json.dumps(out, indent=1))
        return out
    out["num_frames"] = camera.num_frames
    poses = load_poses(run / "poses.json")
    out["sfm_status"] = poses.status
    out["sfm_reason"] = poses.reason
    out["registered_ratio"] = poses.registered_ratio
    out.update(ate=None, rpe_trans=None, rpe_rot_deg=None)
    if poses.status != "ok":
        out.update(status="failed", reason=poses.reason)
    elif poses.num_frames != camera.num_frames:
        out.update(
            status="failed",
            reason=f"{poses.num_frames} posed frames for a {camera.num_frames}-frame path",
        )
    else:
        if poses.kind == "rotation_only":  # no SfM model: rotations only, translation undefined
            out["pose_kind"] = poses.kind
            errors = rotation_only_errors(camera.w2c, poses.w2c, min_registered=min_registered)
        else:
            errors = camera_pose_errors(camera.w2c, poses.w2c, min_registered=min_registered)
        out.update(status=errors.status, reason=errors.reason or "")
        out.update(ate=errors.ate, rpe_trans=errors.rpe_trans, rpe_rot_deg=errors.rpe_rot_deg)
        cam = cami2v_errors(camera.w2c, poses.w2c, min_registered=min_registered)
        out.update(rot_err=cam.get("rot_err"), trans_err=cam.get("trans_err"))
        out["cam_mc"] = cam.get("cam_mc")
        if poses.kind == "rotation_only":
            out.update(trans_err=None, cam_mc=None)
    if edit_dir is not None and video_dir is None:
        raise ValueError("editing scores need the original video (video_dir)")
    if meta["status"] == "ok" and reference_dir is not None:
        out.update(_secondary("fidelity", lambda: _fidelity(run, camera, Path(reference_dir))))
    if meta["status"] == "ok" and (run / "extras.npz").exists():
        out.update(_secondary("traj_epe", lambda: trajectory_scores(run)))
    if meta["status"] == "ok" and edit_dir is not None:
        out.update(_secondary("edit", lambda: editing_scores(run, video_dir, edit_dir)))
    out = {k: _finite_or_none(v) for k, v in out.items()}
    atomic_write_text(run / "metrics.json", json.dumps(out, indent=1))
    return out


def _secondary(name: str, score: Any) -> dict[str, Any]:
    """Scores beside the pose errors: a broken input (e.g. a corrupt frame that COLMAP already
    counted unregistered) is recorded as ``{name}_reason``, never lost with the whole run."""
    try:
        return score()
    except (ValueError, OSError) as exc:
        return {f"{name}_reason": f"{type(exc).__name__}: {exc}"}


def trajectory_scores(run: Path) -> dict[str, Any]:
    """``traj_epe*`` of a run whose ``extras.npz`` holds its conditioning ``tracks`` and
    ``visible`` (in the frames' pixels); empty when it holds none."""
    # OpenCV (cv2) trackers and metrics: loaded only for runs with tracks, so score jobs
    # of other runs start light
    from benchmark.metrics.tracks import end_point_error  # cv2
    from trajattn.tracking import make_tracker  # cv2

    with np.load(run / "extras.npz") as extras:
        if "tracks" not in extras or "visible" not in extras:
            return {}
        tracks, visible = extras["tracks"], extras["visible"].astype(bool)
    frames, _ = read_frames(run / "frames")
    h, w = frames.shape[1:3]
    if tracks.shape[0] != len(frames):
        return {"traj_epe_reason": f"{tracks.shape[0]} frames of tracks, {len(frames)} frames"}
    start = tracks[0]
    inside = (start[:, 0] >= 0) & (start[:, 0] < w) & (start[:, 1] >= 0) & (start[:, 1] < h)
    keep = inside & np.isfinite(start).all(-1)
    if not keep.any():
        return {"traj_epe_reason": "no conditioning track starts inside frame 0"}
    output = make_tracker(TRACKER).track(frames, start[keep])
    epe = end_point_error(tracks[:, keep], visible[:, keep], output.tracks, output.visible)
    return {**epe.as_dict("traj_epe"), "traj_epe_tracker": TRACKER}


def editing_scores(run: Path, video_dir: str | Path, edit_dir: str | Path) -> dict[str, Any]:
    """Track agreement with the original video and persistence of the edit (module doc)."""
    # OpenCV (cv2) trackers and metrics: loaded only for editing runs (score jobs start light)
    from benchmark.metrics.tracks import (  # cv2
        apply_pixel_map,
        blur,
        colour_persistence,
        end_point_error,
        pixel_map,
        sample_colours,
    )
    from benchmark.sources.editing import load_edit  # cv2
    from trajattn.flow_tracks import grid_points  # cv2
    from trajattn.tracking import make_tracker  # cv2

    frames, _ = read_frames(run / "frames")
    video = load_video(video_dir)
    edited = load_edit(edit_dir).image
    if len(frames) != len(video.frames):
        return {"edit_reason": f"{len(frames)} frames for a {len(video.frames)}-frame video"}
    K_out = np.asarray(json.loads((run / "K.json").read_text()), np.float64)
    to_input = pixel_map(K_out, video.camera.K)  # output pixels -> input video pixels
    h, w = frames.shape[1:3]
    points = grid_points(w, h, EDIT_TRACK_STRIDE)
    points_in = apply_pixel_map(to_input, points)
    vh, vw = video.frames.shape[1:3]
    keep = (points_in[:, 0] >= 0) & (points_in[:, 0] < vw) & (points_in[:, 1] >= 0)
    keep &= points_in[:, 1] < vh
    points, points_in = points[keep], points_in[keep]
    tracker = make_tracker(TRACKER)
    original = tracker.track(video.frames, points_in)
    original_out = apply_pixel_map(np.linalg.inv(to_input), original.tracks)
    output = tracker.track(frames, points)
    epe = end_point_error(original_out, original.visible, output.tracks, output.visible)
    sigma = EDIT_BLUR_SIGMA
    sigma_in = sigma * float(np.sqrt(abs(np.linalg.det(to_input[:2, :2]))))  # input px
    first = sample_colours(blur(edited, sigma_in), points_in)
    changed = np.abs(first - sample_colours(blur(video.frames[0], sigma_in), points_in))
    region = changed.mean(-1) > EDIT_REGION_THRESHOLD
    args = (frames, original_out, original.visible, first)
    return {
        **epe.as_dict("track_epe"),
        "edit_persistence": colour_persistence(*args, blur_sigma=sigma),
        "edit_persistence_region": colour_persistence(*args, points=region, blur_sigma=sigma),
        "edit_region_points": int(region.sum()),
        "edit_blur_sigma": sigma,
        "track_tracker": TRACKER,
        "track_stride": EDIT_TRACK_STRIDE,
    }


def _fidelity(run: Path, camera: Any, reference_dir: Path) -> dict[str, Any]:
    """PSNR/SSIM of the frames against the exact render of the path (synthetic scenes)."""
    frames, _ = read_frames(run / "frames")
    reference, _ = read_frames(reference_dir)
    if frames.shape != reference.shape:
        return {"fidelity_reason": f"frames {frames.shape} vs reference {reference.shape}"}
    # Frame 0 is the conditioning image itself for every method: score frames 1.. only.
    result = frame_fidelity(frames[1:], reference[1:])
    return {"psnr": result["psnr"], "ssim": result["ssim"]}
