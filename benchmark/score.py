"""Scoring stage: recovered poses (and frames) of one run -> metrics.json.

Pose metrics compare the poses COLMAP recovered from the generated frames with the camera
path the method was asked to follow. On synthetic scenes the frames are also compared with
the exact render of the path (PSNR/SSIM), which needs no network weights.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from benchmark.cameras import load_camera_path
from benchmark.io import atomic_write_text, read_frames, write_frames
from benchmark.metrics import camera_pose_errors, cami2v_errors, frame_fidelity
from benchmark.poses import load_poses


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
) -> dict[str, Any]:
    """Score one run folder (meta.json, poses.json, frames/) and write metrics.json.

    ``reference_dir`` holds the exact render of the path (synthetic suites, see
    :func:`render_reference`); without it no fidelity metric is computed."""
    run = Path(run_dir)
    meta = json.loads((run / "meta.json").read_text())
    camera = load_camera_path(camera_file)
    out: dict[str, Any] = {
        "method": meta["method"],
        "seed": meta["seed"],
        "generation_status": meta["status"],
        "generation_reason": meta.get("reason", ""),
        "num_frames": camera.num_frames,
    }
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
        errors = camera_pose_errors(camera.w2c, poses.w2c, min_registered=min_registered)
        out.update(status=errors.status, reason=errors.reason or "")
        out.update(ate=errors.ate, rpe_trans=errors.rpe_trans, rpe_rot_deg=errors.rpe_rot_deg)
        cam = cami2v_errors(camera.w2c, poses.w2c, min_registered=min_registered)
        out.update(rot_err=cam.get("rot_err"), trans_err=cam.get("trans_err"))
        out["cam_mc"] = cam.get("cam_mc")
    if meta["status"] == "ok" and reference_dir is not None:
        out.update(_fidelity(run, camera, Path(reference_dir)))
    out = {k: _finite_or_none(v) for k, v in out.items()}
    atomic_write_text(run / "metrics.json", json.dumps(out, indent=1))
    return out


def render_reference(scene_dir: str | Path, camera_file: str | Path, out_dir: str | Path) -> Path:
    """Render the synthetic scene of ``scene_dir`` along the path into ``out_dir/*.png``."""
    from benchmark.scenes import load_scene_view
    from benchmark.synthetic import render_frames

    scene = load_scene_view(scene_dir).synthetic_scene()
    if scene is None:
        raise ValueError(f"{scene_dir} is not a synthetic scene: no reference render exists")
    camera = load_camera_path(camera_file)
    frames, _ = render_frames(scene, camera.K, camera.w2c, camera.width, camera.height)
    write_frames(out_dir, frames)
    return Path(out_dir)


def _fidelity(run: Path, camera: Any, reference_dir: Path) -> dict[str, Any]:
    """PSNR/SSIM of the frames against the exact render of the path (synthetic scenes)."""
    frames, _ = read_frames(run / "frames")
    reference, _ = read_frames(reference_dir)
    if frames.shape != reference.shape:
        return {"fidelity_reason": f"frames {frames.shape} vs reference {reference.shape}"}
    # Frame 0 is the conditioning image itself for every method: score frames 1.. only.
    result = frame_fidelity(frames[1:], reference[1:])
    return {"psnr": result["psnr"], "ssim": result["ssim"]}
