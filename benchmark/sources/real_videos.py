r"""Real input clips for the ``video`` suites (paper Table 2 on real footage) and the real
``editing`` suites (paper Fig. 8: the original clip whose motion an edited first frame keeps).

A clip is fetched by URL and checked by sha256
(:func:`benchmark.sources.real_images.fetch_image` handles any file), decoded with OpenCV
(:mod:`benchmark.sources.clips`), subsampled (``start_frame``, ``frame_step``), centre cropped
and resized to the suite's size. Its conditioning view is frame 0 (image, depth, view written
like a real-image scene). The input video's own cameras, which the requested offsets are
composed with, are recovered with the benchmark's COLMAP protocol on the clip's frames and
brought to the depth map's units: the scale is the median ratio between the depth model's depth
and COLMAP's depth of the sparse points seen in frame 0. Per-frame depth comes from the suite's
depth model. All of it needs a GPU box (depth model) and network access once.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.cameras import CameraPath, save_unavailable_camera, validate_intrinsics
from benchmark.config.suites import Suite
from benchmark.io import write_frames
from benchmark.sfm.poses import recover_poses
from benchmark.sources.clips import VideoUnavailable, center_crop_resize, read_clip
from benchmark.sources.real_images import estimate_depth
from benchmark.sources.scenes import load_scene_view
from benchmark.sources.videos import InputVideo, write_video

#: Fewest sparse points seen in frame 0 to trust the depth scale.
MIN_SCALE_POINTS = 20


def depth_scale(reconstruction: Any, frame0_name: str, depth0: np.ndarray) -> float:
    """Factor taking COLMAP's units to the depth map's: median of depth-map depth over COLMAP
    depth at the sparse points observed in frame 0."""
    image = next((im for im in reconstruction.images.values() if im.name == frame0_name), None)
    if image is None or not image.has_pose:
        raise VideoUnavailable("frame 0 is not registered: cannot scale the clip's cameras")
    pose = image.cam_from_world().matrix()
    h, w = depth0.shape
    ratios = []
    for point in image.points2D:
        if not point.has_point3D():
            continue
        xyz = reconstruction.points3D[point.point3D_id].xyz
        z = float(pose[2, :3] @ xyz + pose[2, 3])
        col, row = int(point.xy[0]), int(point.xy[1])  # COLMAP: pixel centres at +0.5
        if z > 0 and 0 <= col < w and 0 <= row < h and depth0[row, col] > 0:
            ratios.append(depth0[row, col] / z)
    if len(ratios) < MIN_SCALE_POINTS:
        raise VideoUnavailable(
            f"only {len(ratios)} sparse points in frame 0 (< {MIN_SCALE_POINTS}): cannot scale"
        )
    return float(np.median(ratios))


def recover_clip_cameras(frames: np.ndarray, K: np.ndarray, depth0: np.ndarray) -> np.ndarray:
    """World-to-camera (F, 4, 4) of a clip in depth-map units, frame 0 = identity."""
    import pycolmap  # native library (~0.3 s): only posing a clip loads it

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_frames(Path(tmp) / "frames", frames)
        poses = recover_poses(paths, K, Path(tmp) / "sfm")
        if poses.status != "ok" or poses.kind != "sfm" or poses.num_registered != poses.num_frames:
            raise VideoUnavailable(
                f"COLMAP could not recover the clip's cameras ({poses.num_registered}/"
                f"{poses.num_frames} registered; {poses.reason or 'some frames missing'})"
            )
        models = [pycolmap.Reconstruction(str(p)) for p in (Path(tmp) / "sfm" / "models").iterdir()
                  if p.is_dir()]
        best = max(models, key=lambda r: r.num_reg_images())
        scale = depth_scale(best, paths[0].name, depth0)
    w2c = np.stack(poses.w2c)
    w2c = w2c @ np.linalg.inv(w2c[0])  # frame 0 = identity, as the conditioning view
    w2c[:, :3, 3] *= scale
    return w2c


def prepare_real_video(
    suite: Suite, scene_dir: str | Path, name: str, num_frames: int, out_dir: str | Path
) -> Path:
    """Decode, fit, depth-estimate and pose the clip of scene ``name`` (``num_frames``); the
    clip is ``scene_dir/source`` (the fetch rule's download). A clip too short or whose cameras
    cannot be recovered leaves a camera file recording why (its runs then fail with that
    reason); missing depth weights still stop the job with the download to run."""
    entry = suite.scene(name)
    source = Path(scene_dir) / "source"
    view = load_scene_view(scene_dir).view
    # the one plausibility check every K entering trajbench gets (here: the clip's K)
    validate_intrinsics(view.K, f"{scene_dir}/view.json: K of clip {name}", view.width,
                        view.height)
    try:
        raw = read_clip(source, entry.get("start_frame", 0), entry.get("frame_step", 1),
                        num_frames)
        frames = np.stack([center_crop_resize(f, view.width, view.height) for f in raw])
        depths = np.stack([estimate_depth(f, suite.data["depth_model"]) for f in frames])
        w2c = recover_clip_cameras(frames, view.K, depths[0])
    except VideoUnavailable as exc:
        # Recorded, not raised: every run of this clip fails with the reason, the rest of
        # the suite (and its tables) goes on.
        save_unavailable_camera(f"{name}: {exc}", Path(out_dir) / "camera.json")
        return Path(out_dir)
    camera = CameraPath(K=view.K, w2c=w2c, width=view.width, height=view.height,
                        name=f"{name}_video")
    return write_video(out_dir, InputVideo(frames, depths.astype(np.float32), camera))
