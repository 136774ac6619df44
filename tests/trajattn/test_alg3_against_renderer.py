"""Alg. 3 trajectories, occlusion and depth warping checked against the ray caster.

The renderer is an independent truth: it casts rays through each frame's pixels, whereas
the trajectories reproject frame 0's depth. A convention error (pixel centres, w2c vs c2w,
depth semantics) would show up here as a pixel offset.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.cameras.paths import make_camera_path
from benchmark.metrics import masked_psnr
from benchmark.sources.synthetic import canonical_K, cast_rays, make_scene, render, render_frames
from methods import create_method
from methods.base import GenerationRequest
from trajattn.trajectories import trajectories_from_depth

W, H = 256, 144
FRAMES = 4
PATHS = [
    "pan_left_10deg",
    "tilt_up_8deg",
    "roll_cw_10deg",
    "dolly_in_25pct",
    "dolly_out_25pct",
    "truck_left_20pct",
    "truck_right_20pct",
    "pedestal_up_15pct",
    "pedestal_down_15pct",
    "orbit_left_15deg",
    "orbit_right_15deg",
    "orbit_up_10deg",
    "orbit_down_10deg",
    "orbit_left_10deg+pedestal_up_10pct",
]


@pytest.fixture(scope="module")
def scene_view():
    scene = make_scene(3)
    K = canonical_K(W, H)
    rgb, depth, points = render(scene, K, scene.base_w2c, W, H, return_points=True)
    return scene, K, rgb, depth, points


def _depth_edges(depth: np.ndarray, rtol: float = 0.02) -> np.ndarray:
    """Pixels next to a depth discontinuity (3x3 neighbourhood)."""
    pad = np.pad(depth, 1, mode="edge")
    neighbours = np.stack(
        [pad[1 + dy : 1 + dy + depth.shape[0], 1 + dx : 1 + dx + depth.shape[1]]
         for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    )
    return (neighbours.max(0) - neighbours.min(0)) > rtol * depth


@pytest.mark.parametrize("name", PATHS)
def test_trajectory_lands_where_the_renderer_draws_the_point(scene_view, name):
    scene, K, _, depth, points = scene_view
    cam = make_camera_path(name, K, W, H, FRAMES, depth=float(np.median(depth)),
                           base_w2c=scene.base_w2c)
    traj = trajectories_from_depth(depth, K, cam.w2c, stride=3)
    world = points[::3, ::3].reshape(-1, 3).astype(np.float64)
    f = FRAMES - 1
    vis = traj.visible[f]
    _, depth_f = render(scene, K, cam.w2c[f], W, H)
    px = np.floor(traj.tracks[f]).astype(int)
    ok = vis.copy()
    ok[vis] &= ~_depth_edges(depth_f)[px[vis, 1], px[vis, 0]]
    assert ok.sum() > 0.3 * len(ok)
    # Cast the frame-f ray through each track position: it must hit the tracked point.
    c2w = np.linalg.inv(cam.w2c[f])
    uv1 = np.concatenate([traj.tracks[f][ok], np.ones((ok.sum(), 1))], 1)
    dirs = (uv1 @ np.linalg.inv(K).T) @ c2w[:3, :3].T
    origins = np.broadcast_to(c2w[:3, 3], dirs.shape)
    t, _ = cast_rays(scene, origins, dirs)
    hits = origins + t[:, None] * dirs
    z = traj.depths[f][ok]
    error_px = np.linalg.norm(hits - world[ok], axis=1) * K[0, 0] / z
    assert np.max(error_px) < 0.5, f"{name}: worst {np.max(error_px):.3f} px"


@pytest.mark.parametrize("name", ["truck_right_20pct", "truck_left_20pct", "orbit_left_15deg"])
def test_occlusion_flags_exactly_the_points_the_renderer_hides(scene_view, name):
    scene, K, _, depth, points = scene_view
    cam = make_camera_path(name, K, W, H, FRAMES, depth=float(np.median(depth)),
                           base_w2c=scene.base_w2c)
    traj = trajectories_from_depth(depth, K, cam.w2c, stride=1)
    f = FRAMES - 1
    world = points.reshape(-1, 3).astype(np.float64)
    c2w = np.linalg.inv(cam.w2c[f])
    centre = c2w[:3, 3]
    to_point = world - centre
    t, _ = cast_rays(scene, np.broadcast_to(centre, to_point.shape), to_point)
    hidden = t < 1 - 1e-3  # something lies between the camera and the point (t=1 at point)
    uv = traj.tracks[f]
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < W) & (uv[:, 1] >= 0) & (uv[:, 1] < H)
    # Judge away from depth edges in both views: a point within a pixel of an occluding
    # contour is ambiguous at pixel resolution.
    _, depth_f = render(scene, K, cam.w2c[f], W, H)
    px = np.clip(np.floor(uv).astype(int), 0, [W - 1, H - 1])
    clear = inside & ~_depth_edges(depth).ravel() & ~_depth_edges(depth_f)[px[:, 1], px[:, 0]]
    assert hidden[clear].sum() > 50, "this move should hide part of the scene"
    agree = traj.visible[f][clear] == ~hidden[clear]
    assert agree.mean() > 0.999, f"{(~agree).sum()} disagreements of {clear.sum()}"


@pytest.mark.parametrize("name", ["orbit_left_15deg", "truck_right_20pct", "dolly_in_30pct"])
def test_depth_warp_matches_ground_truth_render_where_trajectories_are_valid(name):
    w, h = 448, 256
    scene = make_scene(1)
    K = canonical_K(w, h)
    image, depth = render(scene, K, scene.base_w2c, w, h)
    cam = make_camera_path(name, K, w, h, 6, depth=float(np.median(depth)),
                           base_w2c=scene.base_w2c)
    request = GenerationRequest(image=image, camera=cam, depth=depth)
    result = create_method("depth_warp").generate(request)
    truth, _ = render_frames(scene, K, cam.w2c, w, h)
    valid = result.extras["valid"]
    assert valid[1:].mean() > 0.6
    psnr = masked_psnr(result.frames[1:], truth[1:], valid[1:])
    assert psnr > 28.0, f"{name}: {psnr:.2f} dB"
    # The static control is far below on the same pixels: the threshold separates them.
    static = np.repeat(image[None], 6, 0)
    assert masked_psnr(static[1:], truth[1:], valid[1:]) < 22.0


def test_gt_render_reproduces_the_conditioning_view_and_needs_a_scene():
    from methods.base import MethodUnavailable

    w, h = 96, 64
    scene = make_scene(0)
    K = canonical_K(w, h)
    image, depth = render(scene, K, scene.base_w2c, w, h)
    cam = make_camera_path("orbit_left_15deg", K, w, h, 3, base_w2c=scene.base_w2c)
    method = create_method("gt_render")
    result = method.generate(GenerationRequest(image=image, camera=cam, scene=scene))
    np.testing.assert_array_equal(result.frames[0], image)
    with pytest.raises(MethodUnavailable, match="synthetic scene"):
        method.generate(GenerationRequest(image=image, camera=cam))
