r"""Trajectories for re-shooting a video along a new camera path (paper Alg. 4).

The input video has its own motion (its camera and its objects). Point tracks ``P`` of frame-0
points through the video carry that motion; the requested camera change moves every point of
frame ``f`` further, by the displacement its depth induces under the camera offset ``M_f``
(original camera of frame f -> new camera of frame f). The trajectories are ``P + P_t`` with
``P_t`` that displacement evaluated *at each track's own position in its own frame*, and the
validity is ``visible AND inside the new image AND a valid camera projection of that same
point`` (in front of the new camera, not occluded there, not back-facing).

The official code ANDs the track visibility with a camera-validity array indexed in raster
order of frame-0 pixels rather than at the tracks' positions; here validity is looked up where
each track is (a test covers the difference).

Written here because no library combines point tracks with depth-induced camera motion.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from trajattn.geometry import relative_w2c
from trajattn.tracking import PointTracker, PointTracks
from trajattn.trajectories import OCCLUSION_RTOL, trajectories_from_depth

#: Depth is interpolated bilinearly between four pixels unless their depths differ by more
#: than this fraction (a depth edge): then the nearest pixel's depth is used, so a point on an
#: edge never gets a depth between foreground and background.
EDGE_RTOL = 0.05


class CameraPathLike(Protocol):
    """What this module reads from a camera path (``benchmark.cameras.CameraPath`` fits).

    A protocol rather than the harness's type, so that trajattn imports nothing from it.
    """

    @property
    def w2c(self) -> np.ndarray: ...  # (F, 4, 4) world-to-camera, OpenCV axes

    @property
    def num_frames(self) -> int: ...

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...


def camera_offsets(new_camera: CameraPathLike) -> np.ndarray:
    r"""Per-frame camera offsets ``M_f = w2c_f @ inv(w2c_0)`` of the requested path, applied
    in each original frame's camera coordinates: the re-shot frame f has world-to-camera
    ``M_f @ w2c_video_f``. Frame 0's offset is the identity when the path starts at the
    video's first view, as every parametric path does.

    Returns:
        (F, 4, 4) float64.
    """
    return relative_w2c(new_camera.w2c)


def _sample_depth(depth: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Depth at sub-pixel xy (centres at +0.5): bilinear on smooth surfaces, nearest across
    depth edges; NaN outside the image or where depth is invalid."""
    h, w = depth.shape
    u, v = xy[:, 0] - 0.5, xy[:, 1] - 0.5
    x0 = np.clip(np.floor(u).astype(int), 0, w - 2) if w > 1 else np.zeros(len(u), int)
    y0 = np.clip(np.floor(v).astype(int), 0, h - 2) if h > 1 else np.zeros(len(v), int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    ax, ay = np.clip(u - x0, 0, 1), np.clip(v - y0, 0, 1)
    corners = np.stack([depth[y0, x0], depth[y0, x1], depth[y1, x0], depth[y1, x1]])
    weights = np.stack([(1 - ax) * (1 - ay), ax * (1 - ay), (1 - ax) * ay, ax * ay])
    bilinear = (corners * weights).sum(0)
    lo, hi = corners.min(0), corners.max(0)
    smooth = np.isfinite(corners).all(0) & (lo > 0) & (hi <= lo * (1 + EDGE_RTOL))
    near_x = np.clip(np.floor(xy[:, 0]).astype(int), 0, w - 1)
    near_y = np.clip(np.floor(xy[:, 1]).astype(int), 0, h - 1)
    out = np.where(smooth, bilinear, depth[near_y, near_x])
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
    return np.where(inside & np.isfinite(out) & (out > 0), out, np.nan)


def combine_with_camera(
    tracks: PointTracks,
    depths: np.ndarray,
    K: np.ndarray,
    offsets: np.ndarray,
    occlusion_rtol: float = OCCLUSION_RTOL,
) -> PointTracks:
    r"""Alg. 4 steps 3-6: move tracked points by the camera offset of their own frame.

    Args:
        tracks: tracks (F, L, 2) and visibility (F, L) of frame-0 points in the input video.
        depths: (F, H, W) z-depth of every input frame.
        K: (3, 3) intrinsics of the video (also used for the new frames).
        offsets: (F, 4, 4) original camera f -> new camera f (:func:`camera_offsets`).
        occlusion_rtol: z-buffer tolerance of the new view's occlusion test (as Alg. 3).

    Returns:
        PointTracks in the new frames' pixels; validity as in the module docstring.
    """
    depths = np.asarray(depths, np.float64)
    offsets = np.asarray(offsets, np.float64)
    num_frames, num_points = tracks.visible.shape
    if depths.ndim != 3 or depths.shape[0] != num_frames:
        raise ValueError(f"depths must be ({num_frames}, H, W), got {depths.shape}")
    if offsets.shape != (num_frames, 4, 4):
        raise ValueError(f"offsets must be ({num_frames}, 4, 4), got {offsets.shape}")
    if not np.all(np.isfinite(offsets)):
        raise ValueError("camera offsets must be finite")
    K = np.asarray(K, np.float64)
    h, w = depths.shape[1:]
    out = np.empty((num_frames, num_points, 2), np.float32)
    valid = np.zeros((num_frames, num_points), bool)
    k_inv = np.linalg.inv(K)
    for f in range(num_frames):
        xy = tracks.tracks[f].astype(np.float64)
        z = _sample_depth(depths[f], xy)
        known = np.isfinite(z)
        rays = np.concatenate([xy, np.ones((num_points, 1))], axis=1) @ k_inv.T
        cam = rays * np.where(known, z, 1.0)[:, None]
        moved = cam @ offsets[f, :3, :3].T + offsets[f, :3, 3]
        front = moved[:, 2] > 1e-9
        proj = moved @ K.T
        new_xy = proj[:, :2] / np.where(front, proj[:, 2], 1.0)[:, None]
        # Camera validity of the pixel this track is on in frame f (Alg. 3 from frame f's
        # depth: front, unoccluded and facing in the new view), looked up at the track itself.
        camera_ok = trajectories_from_depth(
            depths[f], K, np.stack([np.eye(4), offsets[f]]), occlusion_rtol=occlusion_rtol
        ).visible[1].reshape(h, w)
        px = np.clip(np.floor(xy[:, 0]).astype(int), 0, w - 1)
        py = np.clip(np.floor(xy[:, 1]).astype(int), 0, h - 1)
        inside = (new_xy[:, 0] >= 0) & (new_xy[:, 0] < w) & (new_xy[:, 1] >= 0)
        inside &= new_xy[:, 1] < h
        ok = tracks.visible[f] & known & front & inside & camera_ok[py, px]
        out[f] = np.where(ok[:, None], new_xy, xy)
        valid[f] = ok
    return PointTracks(out, valid)


def trajectories_from_video(
    video: np.ndarray,
    depths: np.ndarray,
    K: np.ndarray,
    new_camera: CameraPathLike,
    tracker: PointTracker,
    stride: int = 4,
    occlusion_rtol: float = OCCLUSION_RTOL,
) -> tuple[PointTracks, PointTracks]:
    r"""Paper Alg. 4: track the frame-0 grid through ``video`` and move it along ``new_camera``.

    Args:
        video: (F, H, W, 3) uint8 input video; depths: (F, H, W) its per-frame z-depth.
        K: (3, 3) intrinsics of the video; new_camera: the requested path (its offsets from the
            video's cameras, :func:`camera_offsets`), F frames, the video's size.
        tracker: a :mod:`trajattn.tracking` backend.
        stride: pixel stride of the tracked grid.

    Returns:
        The trajectories for generation, and the raw tracks in the input video.
    """
    from trajattn.flow_tracks import grid_points  # OpenCV (cv2), only for this path

    video = np.asarray(video)
    if new_camera.num_frames != video.shape[0]:
        raise ValueError(
            f"camera path has {new_camera.num_frames} frames, the video {video.shape[0]}"
        )
    if (new_camera.height, new_camera.width) != video.shape[1:3]:
        raise ValueError("camera path and video differ in size")
    raw = tracker.track(video, grid_points(video.shape[2], video.shape[1], stride))
    combined = combine_with_camera(raw, depths, K, camera_offsets(new_camera), occlusion_rtol)
    return combined, raw
