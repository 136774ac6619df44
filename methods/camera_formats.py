"""Conversions from the project's camera convention to each baseline's own camera input.

One small function per upstream format, each tested on hand-computed cases: this is where a
comparison silently goes wrong. Input everywhere is a :class:`benchmark.cameras.CameraPath`
(K in pixels, world-to-camera per frame, OpenCV axes, frame 0 = the conditioning view).
"""

from __future__ import annotations

import numpy as np

from benchmark.cameras import DEFAULT_FRAME_INTERVAL_US, CameraPath
from trajattn.trajectories import trajectories_from_depth


def motionctrl_rt(camera: CameraPath, translation_scale: float = 1.0) -> np.ndarray:
    r"""MotionCtrl-SVD's camera input: per frame the world-to-camera pose relative to frame 0,
    ``[R_i R_0^T | t_i - R_i R_0^T t_0]`` flattened row-major to 12 numbers.

    Scale policy: translations are in units of the scene's median depth and multiplied by
    ``translation_scale`` (default 1). MotionCtrl's own CLI multiplies by [3, 1, 4] * speed and
    its demo by [1.5, 1, 1.3]; those per-axis factors distort the requested path, so this
    harness applies one isotropic factor and records it.

    Returns:
        (F, 12) float64.
    """
    w2c = camera.w2c
    rot0 = w2c[0, :3, :3]
    rel_rot = w2c[:, :3, :3] @ rot0.T
    rel_t = w2c[:, :3, 3] - (rel_rot @ w2c[0, :3, 3][:, None])[..., 0]
    rt = np.concatenate([rel_rot, translation_scale * rel_t[..., None]], axis=2)
    return rt.reshape(len(w2c), 12)


def cameractrl_rows(camera: CameraPath, timestamps: np.ndarray | None = None) -> np.ndarray:
    r"""CameraCtrl's input as RealEstate10K rows, all 19 columns: ``timestamp fx fy cx cy 0 0``
    (intrinsics normalised by width/height, two zero distortion terms) then the 3x4
    world-to-camera row-major, made relative so frame 0's camera-to-world is the identity.

    CameraCtrl (hehao13/CameraCtrl) reads these rows as RealEstate10K gives them (its
    ``Camera`` class takes ``entry[1:5]`` as intrinsics and ``entry[7:]`` as the pose), so the
    rows written by ``np.savetxt`` under a URL line are a RealEstate10K camera file that
    :func:`benchmark.cameras.read_realestate10k` reads back.

    Args:
        timestamps: (F,) integer microseconds; default ``i * 33333`` (RealEstate10K's 30 fps,
            :data:`benchmark.cameras.DEFAULT_FRAME_INTERVAL_US`).

    Returns:
        (F, 19) float64.
    """
    num = camera.num_frames
    if timestamps is None:
        timestamps = np.arange(num) * DEFAULT_FRAME_INTERVAL_US
    timestamps = np.asarray(timestamps, dtype=np.float64)
    if timestamps.shape != (num,):
        raise ValueError(f"timestamps: expected {num} entries, got shape {timestamps.shape}")
    rel = camera.relative_to_first()
    k = camera.K
    intr = np.array([k[0, 0] / camera.width, k[1, 1] / camera.height,
                     k[0, 2] / camera.width, k[1, 2] / camera.height, 0.0, 0.0])
    poses = rel.w2c[:, :3, :].reshape(num, 12)
    return np.concatenate([timestamps[:, None], np.tile(intr, (num, 1)), poses], axis=1)


def plucker_embedding(camera: CameraPath, height: int, width: int) -> np.ndarray:
    r"""Per-pixel Plücker rays ``(o x d, d)`` of the path relative to frame 0, as CameraCtrl
    feeds its pose encoder: pixel centres at +0.5, unit directions, world = frame-0 camera.

    ``height``/``width`` are the resolution of the embedding; K is rescaled to it.

    Returns:
        (F, 6, height, width) float32.
    """
    rel = camera.relative_to_first().rescaled(width, height)
    c2w = np.linalg.inv(rel.w2c)
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    pixels = np.stack([u, v, np.ones_like(u)], axis=-1)  # (H, W, 3)
    rays_cam = pixels @ np.linalg.inv(rel.K).T
    dirs = np.einsum("fij,hwj->fhwi", c2w[:, :3, :3], rays_cam)
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    origins = np.broadcast_to(c2w[:, None, None, :3, 3], dirs.shape)
    moment = np.cross(origins, dirs)
    return np.concatenate([moment, dirs], axis=-1).transpose(0, 3, 1, 2).astype(np.float32)


def camera_flow(depth: np.ndarray, camera: CameraPath) -> tuple[np.ndarray, np.ndarray]:
    r"""Camera-induced forward flow from frame 0 to every frame (Motion-I2V's stage-2 input):
    where each frame-0 pixel moves, in pixels, from depth, K and the relative poses.

    Returns:
        flow (F, H, W, 2) float32 (frame 0 all zero) and valid (F, H, W) bool (in front, inside
        the image, not occluded: the Alg. 3 validity).
    """
    traj = trajectories_from_depth(depth, camera.K, camera.w2c)
    h, w = traj.grid_shape
    flow = traj.tracks - traj.tracks[:1]
    return (
        flow.reshape(camera.num_frames, h, w, 2).astype(np.float32),
        traj.visible.reshape(camera.num_frames, h, w),
    )
