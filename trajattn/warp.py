r"""Warp one image with its depth into the frames of a camera path.

Used by the ``depth_warp`` reference method and by NVS-Solver-style guidance (the warped
frames and their hole masks guide denoising). Conventions are those of
:mod:`trajattn.trajectories`.

Method: the frame-0 depth is reprojected into each target frame and rasterised into a
z-buffer (which pixels are covered, and by what depth). Colours are then *pulled* from the
source image at sub-pixel positions found by a fixed-point iteration
``q <- q + (p - proj(X(q)))`` where ``X(q)`` is the 3-D point of source position ``q`` from
bilinearly sampled depth. Pulling with bilinear interpolation keeps the texture sharp, where
pushing pixels would leave cracks and blocky resampling. A target pixel is a hole when
nothing covers it, when the iteration does not land within a tenth of a pixel (depth edges),
or when the point found is behind the z-buffer (occluded). No library offers this
occlusion-aware backward warp, so it is written here.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from trajattn.trajectories import OCCLUSION_RTOL, _check_inputs, reproject_depth

#: Fixed-point iterations of the inverse mapping; converges geometrically for the local
#: magnifications of camera paths (0.5x to 1.9x).
ITERATIONS = 6
#: Largest reprojection residual (pixels) accepted after the iteration.
RESIDUAL_PX = 0.1


def _bilinear(image: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Sample (C, H, W) at continuous pixel xy (F, N, 2) -> (F, N, C), border-clamped."""
    c, h, w = image.shape
    grid = torch.empty_like(uv)
    grid[..., 0] = uv[..., 0] / w * 2 - 1  # corner-origin pixels -> align_corners=False
    grid[..., 1] = uv[..., 1] / h * 2 - 1
    out = F.grid_sample(
        image[None].expand(uv.shape[0], c, h, w),
        grid[:, None],
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    )
    return out[:, :, 0].permute(0, 2, 1)


def warp_image(
    image: np.ndarray,
    depth: np.ndarray,
    K: np.ndarray,
    w2c: np.ndarray,
    occlusion_rtol: float = OCCLUSION_RTOL,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Warp ``image`` (frame 0 of the path) into every frame of the path.

    Args:
        image: (H, W, C) image of the frame-0 view (any dtype; returned as float32).
        depth: (H, W) z-depth of the frame-0 view.
        K: (3, 3) intrinsics shared by all frames.
        w2c: (F, 4, 4) world-to-camera per frame.
        occlusion_rtol: relative depth tolerance of the occlusion test (Alg. 3's, so that warps
            and trajectories agree on what is occluded).

    Returns:
        warped (F, H, W, C) float32 (zeros in holes) and valid (F, H, W) bool.
    """
    depth, K = _check_inputs(depth, K)
    height, width = depth.shape
    if image.shape[:2] != (height, width):
        raise ValueError(f"image {image.shape[:2]} and depth {depth.shape} differ in size")
    rep = reproject_depth(depth, K, w2c)
    rel, filled = rep.rel, rep.filled
    t_K = torch.from_numpy(K)
    zbuf = rep.zbuf.double().reshape(rel.shape[0], -1)

    # Target pixel centres and their source positions from the z-buffer depth as a start.
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    target = torch.from_numpy(np.stack([u, v], -1).reshape(-1, 2))
    covered = torch.isfinite(zbuf)
    rays = torch.cat([target, torch.ones(len(target), 1, dtype=target.dtype)], 1)
    rays = rays @ torch.linalg.inv(t_K).T
    cam_t = rays[None] * torch.where(covered, zbuf, torch.ones_like(zbuf))[..., None]
    inv_rel = torch.linalg.inv(rel)
    cam_0 = cam_t @ inv_rel[:, :3, :3].transpose(1, 2) + inv_rel[:, None, :3, 3]
    q = (cam_0 @ t_K.T)[..., :2] / cam_0[..., 2:3].clamp_min(1e-9)

    src_depth = torch.from_numpy(filled)[None]
    k_inv = torch.linalg.inv(t_K)

    def reproject(q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Source depth at q, the 3-D point in each target camera, and its target pixel."""
        d = _bilinear(src_depth, q)[..., 0]
        x0 = torch.cat([q, torch.ones_like(q[..., :1])], -1) @ k_inv.T * d[..., None]
        xt = x0 @ rel[:, :3, :3].transpose(1, 2) + rel[:, None, :3, 3]
        return d, xt, (xt @ t_K.T)[..., :2] / xt[..., 2:3].clamp_min(1e-9)

    for _ in range(ITERATIONS):
        q = q + (target[None] - reproject(q)[2])
    d, xt, p = reproject(q)
    residual = (p - target[None]).norm(dim=-1)
    inside = (q[..., 0] >= 0) & (q[..., 0] < width) & (q[..., 1] >= 0) & (q[..., 1] < height)
    valid = covered & inside & (d > 0) & (xt[..., 2] > 0) & (residual < RESIDUAL_PX)
    valid &= xt[..., 2] <= zbuf * (1 + occlusion_rtol)

    src = torch.from_numpy(np.asarray(image, dtype=np.float64))
    src = src.reshape(height, width, -1).permute(2, 0, 1)
    colours = _bilinear(src, q)
    colours[~valid] = 0
    warped = colours.reshape(rel.shape[0], height, width, -1).float().numpy()
    if image.ndim == 2:
        warped = warped[..., 0]
    return warped, valid.reshape(rel.shape[0], height, width).numpy()


def warp_video_frames(
    frames: np.ndarray,
    depths: np.ndarray,
    K: np.ndarray,
    offsets: np.ndarray,
    occlusion_rtol: float = OCCLUSION_RTOL,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Re-shoot a video frame by frame: frame f warped with its own depth by the camera
    offset ``offsets[f]`` (its camera -> the new camera of frame f), each as the two-frame
    path ``[I, M_f]`` of :func:`warp_image`.

    Args:
        frames: (F, H, W, 3) input video; depths: (F, H, W) its z-depth; K: (3, 3) shared;
        offsets: (F, 4, 4).

    Returns:
        (F, H, W, 3) float64 warped colours and (F, H, W) bool validity.
    """
    frames, depths, offsets = np.asarray(frames), np.asarray(depths), np.asarray(offsets)
    num = frames.shape[0]
    if depths.shape != frames.shape[:3] or offsets.shape != (num, 4, 4):
        raise ValueError(
            f"need depths {frames.shape[:3]} and offsets {(num, 4, 4)}, got {depths.shape} "
            f"and {offsets.shape}"
        )
    warped = np.empty(frames.shape, np.float64)
    valid = np.empty(frames.shape[:3], bool)
    for f in range(num):  # each frame has its own depth and offset: one warp each
        colours, ok = warp_image(frames[f], depths[f], K, np.stack([np.eye(4), offsets[f]]),
                                 occlusion_rtol)
        warped[f], valid[f] = colours[1], ok[1]
    return warped, valid
