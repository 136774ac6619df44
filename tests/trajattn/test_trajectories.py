"""Alg. 3 trajectories on analytic depth maps, where every answer is known in closed form."""

from __future__ import annotations

import numpy as np
import pytest

from trajattn.trajectories import trajectories_from_depth

H, W = 48, 64
K = np.array([[50.0, 0, W / 2], [0, 50.0, H / 2], [0, 0, 1]])


def truck(offsets_x: list[float]) -> np.ndarray:
    """w2c of a camera translated along +x by each offset (world = frame-0 camera)."""
    w2c = np.tile(np.eye(4), (len(offsets_x), 1, 1))
    w2c[:, 0, 3] = -np.asarray(offsets_x)
    return w2c


def test_fronto_parallel_plane_shifts_by_focal_times_baseline_over_depth():
    depth = np.full((H, W), 2.0)
    w2c = truck([0.0, 0.1, 0.2])
    traj = trajectories_from_depth(depth, K, w2c)
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    for f, tx in enumerate([0.0, 0.1, 0.2]):
        np.testing.assert_allclose(traj.tracks[f, :, 0], u.ravel() - 50.0 * tx / 2.0, atol=1e-4)
        np.testing.assert_allclose(traj.tracks[f, :, 1], v.ravel(), atol=1e-4)
        inside = u.ravel() - 50.0 * tx / 2.0 >= 0
        np.testing.assert_array_equal(traj.visible[f], inside)
    np.testing.assert_allclose(traj.depths, 2.0, atol=1e-6)


def test_frame_zero_is_the_pixel_grid_and_stride_subsamples_it():
    depth = np.full((H, W), 3.0)
    traj = trajectories_from_depth(depth, K, truck([0.0, 0.3]), stride=4)
    assert traj.grid_shape == (H // 4, W // 4)
    grid = traj.tracks[0].reshape(H // 4, W // 4, 2)
    np.testing.assert_array_equal(grid[0, :3, 0], [0.5, 4.5, 8.5])
    np.testing.assert_array_equal(grid[:3, 0, 1], [0.5, 4.5, 8.5])
    assert traj.visible[0].all()


def test_points_leaving_the_image_or_going_behind_the_camera_are_invalid():
    depth = np.full((H, W), 1.0)
    w2c = np.tile(np.eye(4), (2, 1, 1))
    w2c[1, 2, 3] = -1.5  # camera moves 1.5 forward: the plane at z=1 is now behind it
    traj = trajectories_from_depth(depth, K, w2c)
    assert not traj.visible[1].any()
    # A large truck: exactly the points whose analytic x leaves [0, W) are invalid.
    traj = trajectories_from_depth(depth, K, truck([0.0, 0.5]))
    x = np.tile(np.arange(W) + 0.5, H) - 25.0
    np.testing.assert_array_equal(traj.visible[1], x >= 0)


def test_invalid_depth_is_never_tracked_and_never_occludes():
    depth = np.full((H, W), 2.0)
    depth[10:20, 10:20] = np.nan
    depth[30:35, 40:45] = 0.0
    traj = trajectories_from_depth(depth, K, truck([0.0, 0.05]))
    bad = ~np.isfinite(depth) | (depth <= 0)
    assert not traj.visible[:, bad.ravel()].any()
    # Neighbours of the holes stay visible (holes must not act as occluders).
    x = np.tile(np.arange(W) + 0.5, H) - 50 * 0.05 / 2
    np.testing.assert_array_equal(traj.visible[1, ~bad.ravel()], (x >= 0)[~bad.ravel()])


def box_on_wall_depth(box: tuple[int, int, int, int], z_box: float, z_wall: float):
    """Depth map of a wall with a fronto-parallel box face covering pixel rows/cols ``box``."""
    depth = np.full((H, W), z_wall)
    r0, r1, c0, c1 = box
    depth[r0:r1, c0:c1] = z_box
    return depth


@pytest.mark.parametrize("tx", [0.15, -0.2, 0.37])
def test_truck_occlusion_marks_exactly_the_wall_points_behind_the_box(tx):
    z_box, z_wall = 1.0, 3.0
    box = (12, 36, 24, 40)
    depth = box_on_wall_depth(box, z_box, z_wall)
    traj = trajectories_from_depth(depth, K, truck([0.0, tx]))
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    u, v = u.ravel(), v.ravel()
    on_wall = depth.ravel() == z_wall
    # Analytic truth: the box face's pixel-centre extent [c0, c1) shifts by -f*tx/z_box,
    # a wall point by -f*tx/z_wall; it is hidden iff it lands inside the shifted face.
    box_u0 = box[2] - 50 * tx / z_box
    box_u1 = box[3] - 50 * tx / z_box
    wall_u = u - 50 * tx / z_wall
    hidden = on_wall & (wall_u >= box_u0) & (wall_u < box_u1) & (v >= box[0]) & (v < box[1])
    inside = (wall_u >= 0) & (wall_u < W)
    # Points within one pixel of the face's edge are ambiguous at pixel resolution.
    near_edge = (np.abs(wall_u - box_u0) < 1) | (np.abs(wall_u - box_u1) < 1)
    check = on_wall & inside & ~near_edge
    assert hidden[check].sum() > 30  # the move really hides wall points
    np.testing.assert_array_equal(traj.visible[1][check], ~hidden[check])
    # The box itself is never occluded.
    box_inside = ~on_wall & (u - 50 * tx / z_box >= 0) & (u - 50 * tx / z_box < W)
    assert traj.visible[1][box_inside].all()


def test_occluder_magnified_by_dolly_still_hides_what_is_behind_it():
    """A dolly-in magnifies the near face; the z-buffer must have no cracks in it."""
    z_box, z_wall = 1.0, 2.0
    depth = box_on_wall_depth((14, 34, 22, 42), z_box, z_wall)
    w2c = np.tile(np.eye(4), (2, 1, 1))
    w2c[1, 2, 3] = -0.45  # forward by 0.45: the box face grows 1.8x, the wall 1.29x
    w2c[1, 0, 3] = -0.1
    traj = trajectories_from_depth(depth, K, w2c)
    on_wall = depth.ravel() == z_wall
    x, y = traj.tracks[1, :, 0], traj.tracks[1, :, 1]
    # Analytic box face in frame 1: pixel-centre extent scaled about the principal point.
    s = z_box / (z_box - 0.45)
    u0 = (22 - W / 2) * s + W / 2 - 50 * 0.1 / (z_box - 0.45)
    u1 = (42 - W / 2) * s + W / 2 - 50 * 0.1 / (z_box - 0.45)
    v0, v1 = (14 - H / 2) * s + H / 2, (34 - H / 2) * s + H / 2
    deep_inside = (x > u0 + 1) & (x < u1 - 1) & (y > v0 + 1) & (y < v1 - 1)
    assert (on_wall & deep_inside).sum() > 20
    assert not traj.visible[1][on_wall & deep_inside].any()


def _pan(deg: float, axis: str = "y") -> np.ndarray:
    """w2c of frame 0 (identity) and a pure rotation by ``deg`` about the camera's ``axis``."""
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    rot = {"y": [[c, 0, s], [0, 1, 0], [-s, 0, c]], "x": [[1, 0, 0], [0, c, -s], [0, s, c]]}
    w2c = np.tile(np.eye(4), (2, 1, 1))
    w2c[1, :3, :3] = rot[axis]
    return w2c


@pytest.mark.parametrize("slope", [0.02, 0.03])
@pytest.mark.parametrize(("deg", "axis"), [(-2.0, "y"), (2.0, "y"), (-10.0, "y"), (2.0, "x")])
def test_pure_rotation_of_a_steep_plane_invalidates_no_in_image_point(slope, deg, axis):
    """A plane 1/z = (1 - slope (u - 32)) / 100 (u: pixel-centre x) seen by an 8x64 camera,
    f = 64, principal point (32, 4). A pure rotation moves every point along its own ray's
    image and cannot occlude anything, so each point that stays inside the image is valid.
    slope 0.02: neighbour depths differ by up to 5.4 % (before: 8 of 488 invalid at -2 deg);
    slope 0.03: up to 12 %, beyond any depth tolerance: only the plane's geometry explains it.
    """
    K = np.array([[64.0, 0, 32], [0, 64.0, 4], [0, 0, 1]])
    u = np.arange(64) + 0.5
    depth = np.tile(100.0 / (1 - slope * (u - 32)), (8, 1))
    traj = trajectories_from_depth(depth, K, _pan(deg, axis))
    uv = traj.tracks[1]
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < 64) & (uv[:, 1] >= 0) & (uv[:, 1] < 8)
    assert inside.sum() >= 100  # the move keeps part of the plane in view
    if (deg, axis) == (-2.0, "y"):
        assert inside.sum() == 488  # the case
    assert traj.visible[1][inside].all(), f"{(~traj.visible[1][inside]).sum()} invalid"
    assert not traj.visible[1][~inside].any()


def test_depth_edge_as_steep_as_the_plane_still_occludes():
    """The coplanar excuse needs affine inverse depth: a wall at z = 4 with a step to z = 3.6
    on its left third (the same 10 % jump the steep plane has between neighbours) still hides
    the wall points the step slides over when the camera trucks left."""
    K = np.array([[64.0, 0, 32], [0, 64.0, 4], [0, 0, 1]])
    depth = np.full((8, 64), 4.0)
    depth[:, :20] = 3.6
    w2c = np.tile(np.eye(4), (2, 1, 1))
    w2c[1, 0, 3] = 2.0  # camera 2 to the left: the near step shifts right by more
    traj = trajectories_from_depth(depth, K, w2c)
    # The step's edge x = 20 moves by 64 * 2 / 3.6 = 35.56 px to 55.56; wall pixel centres
    # j + 0.5 move by 64 * 2 / 4 = 32 px, hidden where j + 32.5 < 55.56: columns 20 to 23.
    hidden = np.zeros((8, 64), bool)
    hidden[:, 20:24] = True
    inside = (traj.tracks[1][:, 0] < 64).reshape(8, 64)
    np.testing.assert_array_equal(~traj.visible[1].reshape(8, 64) & inside, hidden & inside)
