"""Tests for benchmark.cameras.paths against hand-derived pinhole projections."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from benchmark.cameras import CameraPath
from benchmark.cameras.paths import (
    MOTIONS,
    MotionSpec,
    camera_name,
    make_camera_path,
    parse_camera_name,
    relative_c2w,
)

FX, FY, CX, CY = 500.0, 400.0, 320.0, 240.0
K = np.array([[FX, 0.0, CX], [0.0, FY, CY], [0.0, 0.0, 1.0]])
F = 5
S = np.arange(F) / (F - 1)  # linear easing: progress per frame


def _path(name: str, depth: float = 1.0) -> CameraPath:
    return make_camera_path(name, K, 640, 480, F, depth=depth)


def _project(path: CameraPath, point: tuple[float, float, float]) -> np.ndarray:
    """Pixel (u, v) of a world point in every frame, shape (F, 2)."""
    cam = path.w2c @ np.append(np.asarray(point, dtype=np.float64), 1.0)
    assert np.all(cam[:, 2] > 0)
    return np.stack([FX * cam[:, 0] / cam[:, 2] + CX, FY * cam[:, 1] / cam[:, 2] + CY], axis=1)


# ------------------------------------------------------------------ motion directions


@pytest.mark.parametrize(
    ("name", "du_sign"),
    [("pan_left_20deg", 1.0), ("pan_right_20deg", -1.0)],
)
def test_pan_moves_point_ahead_by_fx_tan(name: str, du_sign: float) -> None:
    a = math.radians(20)
    uv = _project(_path(name), (0.0, 0.0, 1.0))
    np.testing.assert_allclose(uv[:, 0], CX + du_sign * FX * np.tan(a * S), atol=1e-9)
    np.testing.assert_allclose(uv[:, 1], CY, atol=1e-9)


@pytest.mark.parametrize(
    ("name", "dv_sign"),
    [("tilt_up_10deg", 1.0), ("tilt_down_10deg", -1.0)],
)
def test_tilt_moves_point_ahead_by_fy_tan(name: str, dv_sign: float) -> None:
    a = math.radians(10)
    uv = _project(_path(name), (0.0, 0.0, 3.0))
    np.testing.assert_allclose(uv[:, 1], CY + dv_sign * FY * np.tan(a * S), atol=1e-9)
    np.testing.assert_allclose(uv[:, 0], CX, atol=1e-9)


@pytest.mark.parametrize(("name", "dv_sign"), [("roll_cw_30deg", -1.0), ("roll_ccw_30deg", 1.0)])
def test_roll_turns_content_opposite_to_camera(name: str, dv_sign: float) -> None:
    # A point right of centre, (1, 0, 2): camera rolled by R_z(+a) sees R_z(-a) @ X =
    # (cos a, -sin a, 2), so under roll_cw it rises (content turns counter-clockwise).
    a = math.radians(30) * S
    uv = _project(_path(name), (1.0, 0.0, 2.0))
    np.testing.assert_allclose(uv[:, 0], CX + FX * np.cos(a) / 2.0, atol=1e-9)
    np.testing.assert_allclose(uv[:, 1], CY + dv_sign * FY * np.sin(a) / 2.0, atol=1e-9)


@pytest.mark.parametrize(("name", "dz"), [("dolly_in_20pct", 0.4), ("dolly_out_20pct", -0.4)])
def test_dolly_scales_offsets_from_centre(name: str, dz: float) -> None:
    depth = 2.0  # 20% of D = 0.4
    uv = _project(_path(name, depth), (0.5, 0.3, 2.0))
    z = 2.0 - dz * S
    np.testing.assert_allclose(uv[:, 0], CX + FX * 0.5 / z, atol=1e-9)
    np.testing.assert_allclose(uv[:, 1], CY + FY * 0.3 / z, atol=1e-9)
    moved_out = np.linalg.norm(uv[-1] - [CX, CY]) > np.linalg.norm(uv[0] - [CX, CY])
    assert moved_out == (dz > 0)


@pytest.mark.parametrize(("name", "sign"), [("truck_left_10pct", 1.0), ("truck_right_10pct", -1.0)])
def test_truck_parallax(name: str, sign: float) -> None:
    depth = 2.0  # camera moves 0.2 sideways
    path = _path(name, depth)
    near, far = _project(path, (0.0, 0.0, 1.0)), _project(path, (0.0, 0.0, 4.0))
    np.testing.assert_allclose(near[:, 0], CX + sign * FX * 0.2 * S / 1.0, atol=1e-9)
    np.testing.assert_allclose(far[:, 0], CX + sign * FX * 0.2 * S / 4.0, atol=1e-9)
    np.testing.assert_allclose(near[:, 1], CY, atol=1e-9)
    assert abs(near[-1, 0] - CX) > abs(far[-1, 0] - CX) > 0


@pytest.mark.parametrize(
    ("name", "sign"), [("pedestal_up_10pct", 1.0), ("pedestal_down_10pct", -1.0)]
)
def test_pedestal_moves_content_vertically(name: str, sign: float) -> None:
    uv = _project(_path(name, 2.0), (0.0, 0.0, 2.0))
    np.testing.assert_allclose(uv[:, 1], CY + sign * FY * 0.2 * S / 2.0, atol=1e-9)
    np.testing.assert_allclose(uv[:, 0], CX, atol=1e-9)


@pytest.mark.parametrize(
    ("name", "axis", "sign"),
    [
        ("orbit_left_30deg", 0, 1.0),
        ("orbit_right_30deg", 0, -1.0),
        ("orbit_up_30deg", 1, 1.0),
        ("orbit_down_30deg", 1, -1.0),
    ],
)
def test_orbit_keeps_look_at_point_centred(name: str, axis: int, sign: float) -> None:
    # Hand derivation (orbit_left, P = (0, 0, D), camera at P + R_y(a) (0, 0, -D)):
    # a point at depth D/2 projects to cx + fx sin a / (2 - cos a), one at 2D to
    # cx - fx tan(a / 2). orbit_up is the same about x with the camera moving up.
    depth = 3.0
    a = math.radians(30) * S
    path = _path(name, depth)
    focal, centre = (FX, CX) if axis == 0 else (FY, CY)
    other = CY if axis == 0 else CX
    np.testing.assert_allclose(_project(path, (0.0, 0.0, depth)), np.tile([CX, CY], (F, 1)))
    near = _project(path, (0.0, 0.0, depth / 2))
    np.testing.assert_allclose(near[:, axis], centre + sign * focal * np.sin(a) / (2 - np.cos(a)))
    np.testing.assert_allclose(near[:, 1 - axis], other, atol=1e-9)
    far = _project(path, (0.0, 0.0, 2 * depth))
    np.testing.assert_allclose(far[:, axis], centre - sign * focal * np.tan(a / 2), atol=1e-9)
    # The camera centre moves opposite to the near point's image motion (left/up = negative).
    expected_centre = np.zeros((F, 3))
    expected_centre[:, axis] = -sign * depth * np.sin(a)
    expected_centre[:, 2] = depth * (1 - np.cos(a))
    np.testing.assert_allclose(path.centers, expected_centre, atol=1e-12)


def test_static_is_identity() -> None:
    rel = relative_c2w("static", 4)
    assert np.array_equal(rel, np.tile(np.eye(4), (4, 1, 1)))


# ---------------------------------------------------------------------------- magnitudes

ROTATING = {"pan", "tilt", "roll", "orbit"}


@pytest.mark.parametrize("motion", [m for m in MOTIONS if m != "static"])
def test_magnitude_reached_exactly_at_last_frame(motion: str) -> None:
    depth = 2.5
    unit = "deg" if motion.split("_")[0] in ROTATING else "pct"
    rel = relative_c2w(f"{motion}_12p5{unit}", 9, depth=depth)
    assert np.array_equal(rel[0], np.eye(4))
    angle = Rotation.from_matrix(rel[-1, :3, :3]).magnitude()
    shift = np.linalg.norm(rel[-1, :3, 3])
    if motion.startswith("orbit"):
        assert math.isclose(angle, math.radians(12.5), rel_tol=1e-12)
        assert math.isclose(shift, 2 * depth * math.sin(math.radians(12.5) / 2), rel_tol=1e-12)
    elif unit == "deg":
        assert math.isclose(angle, math.radians(12.5), rel_tol=1e-12)
        assert shift == 0.0
    else:
        assert angle == 0.0
        assert math.isclose(shift, 0.125 * depth, rel_tol=1e-15)
    # Progress is linear: the middle frame has half the motion.
    mid_angle = Rotation.from_matrix(rel[4, :3, :3]).magnitude()
    assert math.isclose(mid_angle, angle / 2, rel_tol=1e-9, abs_tol=1e-15)


def test_single_frame_is_identity() -> None:
    assert np.array_equal(relative_c2w("orbit_left_30deg+dolly_in_10pct", 1), np.eye(4)[None])


# ------------------------------------------------------------------------- composition


def test_composition_is_matrix_product_in_name_order() -> None:
    a, b = "orbit_left_15deg", "pedestal_up_10pct"
    both = relative_c2w(f"{a}+{b}", 6, depth=2.0)
    np.testing.assert_allclose(
        both, relative_c2w(a, 6, depth=2.0) @ relative_c2w(b, 6, depth=2.0), atol=1e-15
    )
    # By hand: the pedestal happens in the orbiting camera's frame, whose y axis is world y.
    t = math.radians(15)
    np.testing.assert_allclose(
        both[-1, :3, 3], [-2 * math.sin(t), -0.2, 2 - 2 * math.cos(t)], atol=1e-15
    )
    reverse = relative_c2w(f"{b}+{a}", 6, depth=2.0)
    np.testing.assert_allclose(reverse[-1, :3, 3], both[-1, :3, 3], atol=1e-15)  # commute here
    pan_dolly = relative_c2w("pan_left_90deg+dolly_in_10pct", 2)
    np.testing.assert_allclose(pan_dolly[-1, :3, 3], [-0.1, 0.0, 0.0], atol=1e-15)
    dolly_pan = relative_c2w("dolly_in_10pct+pan_left_90deg", 2)
    np.testing.assert_allclose(dolly_pan[-1, :3, 3], [0.0, 0.0, 0.1], atol=1e-15)


def test_make_camera_path_applies_base_pose() -> None:
    base = np.eye(4)
    base[:3, :3] = Rotation.from_euler("xyz", [10, -20, 30], degrees=True).as_matrix()
    base[:3, 3] = [0.5, -1.0, 2.0]
    name = "truck_right_5pct+roll_ccw_3deg"
    path = make_camera_path(name, K, 640, 480, 7, depth=1.5, base_w2c=base)
    rel = relative_c2w(name, 7, depth=1.5)
    assert path.name == name and path.num_frames == 7
    assert np.array_equal(path.w2c[0], base)
    np.testing.assert_allclose(path.w2c, np.linalg.inv(rel) @ base, atol=1e-12)
    assert make_camera_path(name, K, 640, 480, 7, depth=1.5, base_w2c=base) == path


# -------------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name",
    [
        "static",
        "pan_left_15deg",
        "tilt_down_0p5deg",
        "roll_ccw_90deg",
        "dolly_in_12p5pct",
        "orbit_left_15deg+pedestal_up_10pct",
        "orbit_down_0deg+truck_right_100pct+static",
    ],
)
def test_name_round_trip(name: str) -> None:
    assert camera_name(parse_camera_name(name)) == name


def test_parse_and_format_by_hand() -> None:
    assert parse_camera_name("orbit_left_15deg+pedestal_up_12p5pct") == [
        MotionSpec("orbit", "left", 15.0, "deg"),
        MotionSpec("pedestal", "up", 12.5, "pct"),
    ]
    assert camera_name([MotionSpec("pan", "right", 15.0, "deg")]) == "pan_right_15deg"
    assert camera_name([MotionSpec("dolly", "out", 12.5, "pct")]) == "dolly_out_12p5pct"
    assert camera_name([MotionSpec("tilt", "up", 0.25, "deg")]) == "tilt_up_0p25deg"
    assert len(MOTIONS) == len(set(MOTIONS)) == 17


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("pan_lft_15deg", "pan_left_15deg"),
        ("zoom_in_10pct", "dolly_in_10pct"),
        ("orbitleft_15deg", "orbit_left_15deg"),
        ("pan_left_15", "pan_left_15deg"),
        ("pan_left_1.5deg", "pan_left_1p5deg"),
        ("pan_left_15p0deg", "pan_left_15deg"),
        ("pan_left_015deg", "pan_left_15deg"),
        ("dolly_in_10deg", "dolly_in_10pct"),
        ("orbit_left_15deg+pedestl_up_10pct", "pedestal_up_10pct"),
    ],
)
def test_bad_names_rejected_with_suggestion(name: str, suggestion: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_camera_name(name)
    message = str(info.value)
    assert f"Did you mean {suggestion!r}" in message
    assert "pan_left" in message and "orbit_down" in message  # lists the valid motions


@pytest.mark.parametrize("name", ["", "static+", "pan_left", "+pan_left_5deg"])
def test_malformed_names_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="Valid motions"):
        relative_c2w(name, 3)


def test_bad_frame_count_and_depth() -> None:
    with pytest.raises(ValueError, match="num_frames"):
        relative_c2w("static", 0)
    with pytest.raises(ValueError, match="depth"):
        relative_c2w("static", 3, depth=-1.0)
