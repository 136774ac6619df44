"""Synthetic scenes and their ray caster, checked against independently computed truth.

The hand-built scene is one fronto-parallel card in front of a wall, seen by a camera whose
pose is written out by hand (no helper of the module under test), so every expected depth,
edge and pixel position is a closed-form number.
"""

from __future__ import annotations

import json
import pickle

import cv2
import numpy as np
import pytest

from benchmark.sources.synthetic import (
    Rect,
    SceneSpec,
    SyntheticScene,
    canonical_K,
    cast_rays,
    make_scene,
    render,
    render_depth,
    render_frames,
)

# ---- the hand-built scene ------------------------------------------------------------------

W, H = 80, 60
K = np.array([[100.0, 0.0, 40.3], [0.0, 100.0, 30.7], [0.0, 0.0, 1.0]])
# z-up world; the camera looks along +y: x_cam = +x, y_cam = -z, z_cam = +y
R_HAND = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
C_HAND = np.array([0.1, -0.25, 0.05])
CARD_Y, WALL_Y = 2.0, 5.0
CARD_LO, CARD_HI = (-0.5, -0.2), (0.3, 0.4)  # (x, z) bounds of the card


def w2c_from(R: np.ndarray, center: np.ndarray) -> np.ndarray:
    w2c = np.eye(4)
    w2c[:3, :3] = R
    w2c[:3, 3] = -R @ center
    return w2c


def project(K: np.ndarray, w2c: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel xy (N, 2) and z-depth (N,) of world points X (N, 3)."""
    xc = X @ w2c[:3, :3].T + w2c[:3, 3]
    uvw = xc @ K.T
    return uvw[:, :2] / uvw[:, 2:3], xc[:, 2]


def pixel_centres(width: int, height: int) -> np.ndarray:
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    return np.stack([u, v], axis=-1)


@pytest.fixture(scope="module")
def card_scene() -> SyntheticScene:
    card = Rect(axis=1, coord=CARD_Y, lo=CARD_LO, hi=CARD_HI)
    wall = Rect(axis=1, coord=WALL_Y, lo=(-50.0, -50.0), hi=(50.0, 50.0))
    return SyntheticScene([card, wall], w2c_from(R_HAND, C_HAND), seed=3, max_texture_size=256)


def card_mask(K: np.ndarray, w2c: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixels whose centre lies inside the card's projected corners (axis-aligned here)."""
    xs, zs = (CARD_LO[0], CARD_HI[0]), (CARD_LO[1], CARD_HI[1])
    corners = np.array([[x, CARD_Y, z] for x in xs for z in zs])
    uv, _ = project(K, w2c, corners)
    c = pixel_centres(width, height)
    (u0, v0), (u1, v1) = uv.min(axis=0), uv.max(axis=0)
    return (c[..., 0] > u0) & (c[..., 0] < u1) & (c[..., 1] > v0) & (c[..., 1] < v1)


def test_card_depth_is_its_plane_z_and_its_edges_fall_where_K_projects_its_corners(card_scene):
    w2c = w2c_from(R_HAND, C_HAND)
    rgb, depth = render(card_scene, K, w2c, W, H)
    assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8
    assert depth.shape == (H, W) and depth.dtype == np.float32
    mask = card_mask(K, w2c, W, H)
    # corners at u = 13.63, 49.19 and v = 15.14, 41.81: columns 14..48, rows 15..41
    assert mask.sum() == 35 * 27 and mask[15, 14] and mask[41, 48]
    assert not mask[14, 14] and not mask[15, 13] and not mask[42, 48] and not mask[41, 49]
    np.testing.assert_allclose(depth[mask], CARD_Y - C_HAND[1], rtol=1e-6)
    np.testing.assert_allclose(depth[~mask], WALL_Y - C_HAND[1], rtol=1e-6)
    np.testing.assert_array_equal(render_depth(card_scene, K, w2c, W, H), depth)


def test_depth_is_z_depth_not_distance_along_the_ray(card_scene):
    depth = render_depth(card_scene, K, w2c_from(R_HAND, C_HAND), W, H)
    ray = np.linalg.inv(K) @ np.array([0.5, 0.5, 1.0])  # the corner pixel, far off-axis
    z = WALL_Y - C_HAND[1]
    assert depth[0, 0] == pytest.approx(z, rel=1e-6)
    assert z * np.linalg.norm(ray) > z * 1.1  # what a ray-length depth would have given


def test_translating_the_camera_changes_plane_depth_by_exactly_t_z(card_scene):
    w2c = w2c_from(R_HAND, C_HAND)
    d0 = render_depth(card_scene, K, w2c, W, H)
    t = np.array([0.03, -0.02, 0.4])  # camera-frame translation (x right, y down, z forward)
    moved = w2c.copy()
    moved[:3, 3] -= t  # centre moves by R^T t
    d1 = render_depth(card_scene, K, moved, W, H)
    for i, j in [(30, 30), (20, 40), (5, 5), (55, 75)]:
        assert d1[i, j] == pytest.approx(d0[i, j] - t[2], rel=1e-6)


def test_points_reproject_to_their_pixel_centres(card_scene):
    w2c = w2c_from(R_HAND, C_HAND)
    _, depth, pts = render(card_scene, K, w2c, W, H, return_points=True)
    uv, z = project(K, w2c, pts.reshape(-1, 3).astype(np.float64))
    centres = pixel_centres(W, H).reshape(-1, 2)
    assert np.abs(uv - centres).max() < 1e-3
    np.testing.assert_allclose(z, depth.ravel(), rtol=1e-6)


def test_procedural_points_reproject_exactly_from_a_rotated_camera():
    scene = make_scene(4)
    w2c = rotate_in_place(scene, 9.0, -7.0)
    Kp = canonical_K(224, 128)
    depth, pts = render_depth(scene, Kp, w2c, 224, 128, return_points=True)
    uv, z = project(Kp, w2c, pts.reshape(-1, 3).astype(np.float64))
    assert np.abs(uv - pixel_centres(224, 128).reshape(-1, 2)).max() < 1e-3
    np.testing.assert_allclose(z, depth.ravel(), rtol=1e-5)


def test_hand_built_scene_without_a_room_reports_misses_as_inf():
    card = Rect(axis=1, coord=CARD_Y, lo=CARD_LO, hi=CARD_HI)
    scene = SyntheticScene([card], w2c_from(R_HAND, C_HAND), max_texture_size=64)
    w2c = w2c_from(R_HAND, C_HAND)
    rgb, depth, pts = render(scene, K, w2c, W, H, return_points=True)
    mask = card_mask(K, w2c, W, H)
    assert np.isinf(depth[~mask]).all() and np.isfinite(depth[mask]).all()
    assert np.isnan(pts[~mask]).all()
    assert (rgb[0, 0] == 0).all() and rgb[mask].max() > 0


# ---- procedural scenes ---------------------------------------------------------------------


def orbit(scene: SyntheticScene, deg: float, radius: float = 1.0) -> np.ndarray:
    """Base camera orbited by ``deg`` about the world vertical through the point ``radius``
    ahead on its optical axis (keeps looking at that point)."""
    w2c = scene.base_w2c
    R, C = w2c[:3, :3], -w2c[:3, :3].T @ w2c[:3, 3]
    target = C + R[2] * radius
    a = np.radians(deg)
    Rz = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
    return w2c_from(R @ Rz.T, target + Rz @ (C - target))


def rotate_in_place(scene: SyntheticScene, pan_deg: float, tilt_deg: float) -> np.ndarray:
    """Base camera turned about its own y (pan) then x (tilt) axis."""
    a, b = np.radians(pan_deg), np.radians(tilt_deg)
    Ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    Rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    rot = np.eye(4)
    rot[:3, :3] = Rx @ Ry
    return rot @ scene.base_w2c


def dolly(scene: SyntheticScene, t_cam: tuple[float, float, float]) -> np.ndarray:
    w2c = scene.base_w2c.copy()
    w2c[:3, 3] -= np.asarray(t_cam)
    return w2c


@pytest.fixture(scope="module")
def scene0() -> SyntheticScene:
    return make_scene(0)


def test_base_view_median_depth_is_one_at_the_canonical_fov(scene0):
    assert scene0.median_depth(canonical_K(256, 144), 256, 144) == pytest.approx(1.0, abs=1e-6)
    assert scene0.median_depth(canonical_K(1024, 576), 1024, 576) == pytest.approx(1.0, abs=0.03)
    depth = render_depth(scene0, canonical_K(512, 288), scene0.base_w2c, 512, 288)
    assert np.median(depth) == pytest.approx(1.0, abs=0.03)


def test_world_frame_is_not_the_camera_frame(scene0):
    R = scene0.base_w2c[:3, :3]
    assert np.abs(R - np.eye(3)).max() > 0.5  # z-up world vs y-down camera
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    forward = R[2]
    assert -0.35 < forward[2] < -0.1  # tilted down
    assert abs(forward[0]) > 1e-3  # and yawed
    assert np.linalg.norm(scene0.base_center) > 1e-3


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 7])
def test_closed_room_every_pixel_hits_and_paths_keep_clear(seed):
    scene = make_scene(seed)
    spec = scene.spec
    assert spec is not None
    objects = [m for m, r in enumerate(scene.rects) if r.kind != "wall"]
    assert len(objects) >= 6
    near = scene.clearance_per_rect(scene.base_center)
    assert near[objects].min() >= spec.min_clearance - 1e-9
    Kc = canonical_K(192, 108)
    cams = [scene.base_w2c]
    cams += [orbit(scene, d) for d in (-20.0, 20.0)]
    turns = ((-20, 0), (20, 0), (0, -15), (0, 15), (12, 8))
    cams += [rotate_in_place(scene, p, t) for p, t in turns]
    cams += [dolly(scene, t) for t in ((0, 0, 0.3), (0, 0, -0.3), (0.3, 0, 0), (-0.3, 0, 0))]
    lo, hi = scene.room_bounds
    for w2c in cams:
        depth = render_depth(scene, Kc, w2c, 192, 108)
        assert np.isfinite(depth).all()
        assert depth.min() > 0.3
        center = -w2c[:3, :3].T @ w2c[:3, 3]
        assert np.all(center > lo) and np.all(center < hi)
        assert float(scene.clearance(center)) > 0.25


def test_same_seed_is_bit_identical_and_another_seed_differs():
    spec = SceneSpec(seed=11, texels_per_pixel=0.25, max_texture_size=256)
    Kc = canonical_K(112, 64)
    a_rgb, a_d = render(make_scene(spec), Kc, make_scene(spec).base_w2c, 112, 64)
    twin = make_scene(SceneSpec.from_dict(json.loads(json.dumps(spec.to_dict()))))
    b_rgb, b_d = render(twin, Kc, twin.base_w2c, 112, 64)
    np.testing.assert_array_equal(a_rgb, b_rgb)
    np.testing.assert_array_equal(a_d, b_d)
    other = make_scene(SceneSpec(seed=12, texels_per_pixel=0.25, max_texture_size=256))
    c_rgb, c_d = render(other, Kc, other.base_w2c, 112, 64)
    assert np.abs(a_rgb.astype(int) - c_rgb).mean() > 20
    assert not np.allclose(a_d, c_d)
    # same geometry for the same seed whatever the texture density
    assert make_scene(11).rects == make_scene(spec).rects


def test_sift_finds_plenty_of_keypoints(scene0):
    Kc = canonical_K(448, 256)
    for w2c in (scene0.base_w2c, orbit(scene0, -15.0)):
        rgb, _ = render(scene0, Kc, w2c, 448, 256)
        kps = cv2.SIFT_create().detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), None)
        assert len(kps) > 500


def test_depth_trajectories_land_on_the_surface_point_the_renderer_draws(scene0):
    """Unproject frame A's depth, project into camera B: wherever the point is visible in B,
    B's own ray through that position hits the very same point (exact geometry), and the
    colour B draws there matches A's colour better than half a pixel away."""
    w, h = 224, 128
    Kc = canonical_K(w, h)
    wa, wb = scene0.base_w2c, orbit(scene0, 8.0)
    wb[:3, 3] -= (0.02, -0.03, 0.15)  # and a move, mostly forward
    rgb_a, depth_a = render(scene0, Kc, wa, w, h)
    rgb_b, _ = render(scene0, Kc, wb, w, h)
    # independent unprojection: X = C + depth * R^T K^-1 (u, v, 1)
    uv1 = np.concatenate([pixel_centres(w, h), np.ones((h, w, 1))], axis=-1).reshape(-1, 3)
    Ra, Ca = wa[:3, :3], -wa[:3, :3].T @ wa[:3, 3]
    X = Ca + depth_a.reshape(-1, 1).astype(np.float64) * (uv1 @ np.linalg.inv(Kc).T @ Ra)
    q, zb = project(Kc, wb, X)
    inside = (q[:, 0] > 1) & (q[:, 0] < w - 1) & (q[:, 1] > 1) & (q[:, 1] < h - 1) & (zb > 0)
    Cb = -wb[:3, :3].T @ wb[:3, 3]
    dirs = np.concatenate([q, np.ones((len(q), 1))], axis=1) @ np.linalg.inv(Kc).T @ wb[:3, :3]
    t, _ = cast_rays(scene0, np.broadcast_to(Cb, dirs.shape), dirs)  # t is B's z-depth
    same = inside & (np.abs(t - zb) < 1e-5 * zb)
    assert same.sum() > 0.7 * inside.sum()
    # Anything else is an occluder in front, never a hole behind; the only exceptions are
    # surfaces seen edge-on or pixel centres on a silhouette, where float32 depth cannot say.
    holes = inside & (t > zb * (1 + 1e-5))
    assert holes.sum() <= 1e-3 * inside.sum()
    hit = cast_rays(scene0, np.broadcast_to(Cb, dirs.shape)[same], dirs[same])[0]
    Y = Cb + hit[:, None] * dirs[same]
    assert np.abs(Y - X[same]).max() < 1e-5

    # photometric check away from depth edges (where a pixel mixes surfaces)
    box = np.ones((5, 5), np.uint8)
    edge = cv2.dilate(depth_a, box) - cv2.erode(depth_a, box) > 0.05 * depth_a
    keep = same & ~edge.reshape(-1)

    def diff(offset: tuple[float, float]) -> float:
        qq = (q[keep] + offset - 0.5).astype(np.float32)  # remap samples at pixel-centre coords
        s = cv2.remap(rgb_b, qq[:, None, 0], qq[:, None, 1], cv2.INTER_LINEAR)[:, 0]
        return float(np.abs(s.astype(float) - rgb_a.reshape(-1, 3)[keep]).mean())

    d0 = diff((0.0, 0.0))
    assert d0 < 12
    for off in ((0.5, 0.0), (-0.5, 0.0), (0.0, 0.5), (0.0, -0.5)):
        assert d0 < diff(off)


def test_adaptive_antialiasing_approaches_full_supersampling(scene0):
    Kc = canonical_K(160, 90)
    w2c = orbit(scene0, -6.0)
    ref, d_ref = render(scene0, Kc, w2c, 160, 90, supersample=4, adaptive=False)
    ada, d_ada = render(scene0, Kc, w2c, 160, 90)
    raw, _ = render(scene0, Kc, w2c, 160, 90, supersample=1)

    def psnr(a: np.ndarray) -> float:
        return float(10 * np.log10(255.0**2 / np.mean((a.astype(float) - ref) ** 2)))

    assert psnr(ada) > 28 and psnr(ada) > psnr(raw)
    np.testing.assert_array_equal(d_ref, d_ada)  # depth never averaged


def test_render_frames_matches_render_per_frame(scene0):
    Kc = canonical_K(64, 36)
    path = np.stack([scene0.base_w2c, orbit(scene0, 5.0), dolly(scene0, (0, 0, 0.1))])
    frames, depths = render_frames(scene0, Kc, path, 64, 36)
    assert frames.shape == (3, 36, 64, 3) and depths.shape == (3, 36, 64)
    for f in range(3):
        rgb, depth = render(scene0, Kc, path[f], 64, 36)
        np.testing.assert_array_equal(frames[f], rgb)
        np.testing.assert_array_equal(depths[f], depth)
    frames_k, _ = render_frames(scene0, np.stack([Kc] * 3), path, 64, 36)
    np.testing.assert_array_equal(frames_k, frames)


def test_spec_round_trips_through_json_and_rejects_unknown_keys():
    spec = SceneSpec(seed=5, num_boxes=3, num_billboards=2, tilt_deg=(6.0, 9.0))
    back = SceneSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert back == spec
    assert make_scene(spec.to_dict()).rects == make_scene(spec).rects
    with pytest.raises(ValueError, match="unknown"):
        SceneSpec.from_dict({"seed": 1, "colour": "red"})


def test_pickled_scene_renders_identically_and_clearance_is_point_to_rect_distance():
    scene = make_scene(SceneSpec(seed=2, texels_per_pixel=0.25, max_texture_size=256))
    Kc = canonical_K(96, 54)
    rgb, depth = render(scene, Kc, scene.base_w2c, 96, 54)
    twin = pickle.loads(pickle.dumps(scene))
    rgb2, depth2 = render(twin, Kc, twin.base_w2c, 96, 54)
    np.testing.assert_array_equal(rgb, rgb2)
    np.testing.assert_array_equal(depth, depth2)
    card = SyntheticScene([Rect(axis=1, coord=CARD_Y, lo=CARD_LO, hi=CARD_HI)], np.eye(4))
    pts = np.array([[0.0, 0.0, 0.0], [1.3, 2.0, 0.1], [0.0, 2.5, 0.0]])
    np.testing.assert_allclose(card.clearance(pts), [2.0, 1.0, 0.5])
