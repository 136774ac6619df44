"""Tests for benchmark.cameras: validation, geometry helpers and exact file round trips."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from benchmark.cameras import (
    FORMAT,
    CameraFileError,
    CameraPath,
    camera_path_from_dict,
    camera_path_to_dict,
    invert_rigid,
    load_camera_path,
    read_realestate10k,
    save_camera_path,
    to_evo_trajectory,
    write_realestate10k,
    write_tum,
)

K0 = np.array([[500.0, 0.0, 320.0], [0.0, 510.0, 240.0], [0.0, 0.0, 1.0]])
WIDTHS = (1024, 576, 512, 320, 256, 144)


def _pose(rot: np.ndarray, t: np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = rot
    m[:3, 3] = t
    return m


def _random_w2c(num: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rots = Rotation.random(num, random_state=seed).as_matrix()
    return np.stack([_pose(r, rng.normal(size=3)) for r in rots])


def _path(num: int = 4, seed: int = 0, name: str = "clip") -> CameraPath:
    return CameraPath(K=K0, w2c=_random_w2c(num, seed), width=640, height=480, name=name)


# ---------------------------------------------------------------------------- validation


def test_arrays_are_float64_copies_and_read_only() -> None:
    k = [[500, 0, 320], [0, 500, 240], [0, 0, 1]]
    w2c = np.eye(4, dtype=np.float32)[None]
    path = CameraPath(K=k, w2c=w2c, width=np.int64(640), height=480)
    assert path.K.dtype == np.float64 and path.w2c.dtype == np.float64
    assert isinstance(path.width, int)
    assert path.num_frames == 1
    with pytest.raises(ValueError):
        path.K[0, 0] = 1.0


def _bad(field: str, value: object) -> dict:
    kwargs = {"K": K0.copy(), "w2c": _random_w2c(4), "width": 640, "height": 480}
    kwargs[field] = value
    return kwargs


def _with_frame(i: int, m: np.ndarray) -> np.ndarray:
    w2c = _random_w2c(4)
    w2c[i] = m
    return w2c


def _scaled_rotation() -> np.ndarray:
    m = _random_w2c(1, seed=3)[0]
    m[:3, :3] *= 1.2
    return m


def _reflection() -> np.ndarray:
    return _pose(np.diag([1.0, 1.0, -1.0]), np.zeros(3))


def _bad_last_row() -> np.ndarray:
    m = np.eye(4)
    m[3, 0] = 0.5
    return m


def _nan_pose() -> np.ndarray:
    m = np.eye(4)
    m[1, 2] = np.nan
    return m


def _inf_pose() -> np.ndarray:
    m = np.eye(4)
    m[0, 3] = np.inf
    return m


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        (_bad("K", np.eye(3)[:2]), ["K:", "shape"]),
        (_bad("K", np.array([[500.0, 0, 320], [3.0, 500, 240], [0, 0, 1]])), ["K:", "upper"]),
        (_bad("K", np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 2]])), ["K:", "K[2]"]),
        (_bad("K", np.array([[-500.0, 0, 320], [0, 500, 240], [0, 0, 1]])), ["K:", "positive"]),
        (_bad("K", np.array([[500.0, 0, np.nan], [0, 500, 240], [0, 0, 1]])), ["K:", "NaN"]),
        (_bad("w2c", np.zeros((3, 3, 4))), ["w2c:", "shape"]),
        (_bad("w2c", np.eye(4)), ["w2c:", "shape"]),
        (_bad("w2c", np.zeros((0, 4, 4))), ["w2c:", "F >= 1"]),
        (_bad("w2c", _with_frame(2, _nan_pose())), ["w2c[2]:", "NaN"]),
        (_bad("w2c", _with_frame(1, _inf_pose())), ["w2c[1]:", "inf"]),
        (_bad("w2c", _with_frame(3, _scaled_rotation())), ["w2c[3]:", "orthonormal"]),
        (_bad("w2c", _with_frame(1, _reflection())), ["w2c[1]:", "det"]),
        (_bad("w2c", _with_frame(0, _bad_last_row())), ["w2c[0]:", "last row"]),
        (_bad("width", 0), ["width:"]),
        (_bad("height", -3), ["height:"]),
        (_bad("width", 640.0), ["width:"]),
    ],
)
def test_invalid_camera_path_rejected(kwargs: dict, fragments: list[str]) -> None:
    with pytest.raises(CameraFileError) as info:
        CameraPath(**kwargs)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_orthonormality_tolerance() -> None:
    nearly = np.eye(4)
    nearly[0, 0] += 1e-9  # numerical noise is accepted
    CameraPath(K=K0, w2c=nearly[None], width=640, height=480)
    off = np.eye(4)
    off[0, 0] += 1e-4
    with pytest.raises(CameraFileError, match="orthonormal"):
        CameraPath(K=K0, w2c=off[None], width=640, height=480)


# ------------------------------------------------------------------------------ geometry


def test_c2w_and_centers_by_hand() -> None:
    # R = 90 deg about z, t = (1, 2, 3): centre = -R^T t = -(2, -1, 3).
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    path = CameraPath(K=K0, w2c=_pose(rot, np.array([1.0, 2.0, 3.0]))[None], width=64, height=48)
    np.testing.assert_allclose(path.centers[0], [-2.0, 1.0, -3.0], atol=1e-15)
    np.testing.assert_allclose(path.c2w[0], np.linalg.inv(path.w2c[0]), atol=1e-15)


def test_invert_rigid_matches_linalg_inv() -> None:
    w2c = _random_w2c(5)
    inv = invert_rigid(w2c)
    np.testing.assert_allclose(inv, np.linalg.inv(w2c), atol=1e-12)
    assert np.array_equal(inv[:, 3], np.tile([0.0, 0.0, 0.0, 1.0], (5, 1)))


def test_relative_to_first() -> None:
    path = _path(5)
    rel = path.relative_to_first()
    assert np.array_equal(rel.w2c[0], np.eye(4))
    # Relative motion between any two frames is unchanged.
    for i in range(5):
        for j in range(5):
            np.testing.assert_allclose(
                rel.w2c[i] @ np.linalg.inv(rel.w2c[j]),
                path.w2c[i] @ np.linalg.inv(path.w2c[j]),
                atol=1e-12,
            )
    # Camera centres become frame-0 camera coordinates of the original centres.
    for i in range(5):
        expected = (path.w2c[0] @ np.append(path.centers[i], 1.0))[:3]
        np.testing.assert_allclose(rel.centers[i], expected, atol=1e-12)
    assert rel.name == path.name and np.array_equal(rel.K, path.K)


def test_resample_same_count_is_identical() -> None:
    path = _path(6)
    assert np.array_equal(path.resample(6).w2c, path.w2c)


def test_resample_midpoint_of_two_frames() -> None:
    axis = np.array([1.0, 2.0, 2.0]) / 3.0
    angle = 0.8
    centre = np.array([0.3, -0.6, 1.2])
    c2w1 = _pose(Rotation.from_rotvec(axis * angle).as_matrix(), centre)
    path = CameraPath(K=K0, w2c=np.stack([np.eye(4), np.linalg.inv(c2w1)]), width=640, height=480)
    out = path.resample(3)
    assert out.num_frames == 3
    assert np.array_equal(out.w2c[0], path.w2c[0])
    assert np.array_equal(out.w2c[2], path.w2c[1])
    mid = out.c2w[1]
    np.testing.assert_allclose(mid[:3, 3], centre / 2, atol=1e-12)
    rotvec = Rotation.from_matrix(mid[:3, :3]).as_rotvec()
    np.testing.assert_allclose(rotvec, axis * angle / 2, atol=1e-12)


def test_resample_keeps_input_frames_and_edge_cases() -> None:
    path = _path(4)
    up = path.resample(7)  # sample times 0, 0.5, ..., 3
    for k in (0, 2, 4, 6):
        assert np.array_equal(up.w2c[k], path.w2c[k // 2])
    assert np.array_equal(path.resample(1).w2c, path.w2c[:1])
    single = CameraPath(K=K0, w2c=path.w2c[:1], width=640, height=480)
    assert np.array_equal(single.resample(3).w2c, np.repeat(path.w2c[:1], 3, axis=0))
    with pytest.raises(CameraFileError):
        path.resample(0)


def test_rescaled_corner_origin() -> None:
    path = _path(2)
    half = path.rescaled(320, 240)
    expected = np.array([[250.0, 0.0, 160.0], [0.0, 255.0, 120.0], [0.0, 0.0, 1.0]])
    assert np.array_equal(half.K, expected)
    assert (half.width, half.height) == (320, 240)
    assert np.array_equal(half.w2c, path.w2c)
    # The ray through the far image corner (W, H) still hits the far corner after resizing.
    ray = np.linalg.inv(path.K) @ np.array([640.0, 480.0, 1.0])
    pix = half.K @ ray
    np.testing.assert_allclose(pix[:2] / pix[2], [320.0, 240.0], atol=1e-12)


def test_with_w2c_and_equality() -> None:
    path = _path(3)
    other = path.with_w2c(_random_w2c(2, seed=7))
    assert other.num_frames == 2 and other.name == path.name
    assert path == _path(3)
    assert path != other


# ---------------------------------------------------------------------------------- JSON


def test_json_round_trip_is_bit_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    k = np.array([[rng.uniform(100, 900), 0.1, rng.uniform(0, 640)], [0, 777.7, 240.3], [0, 0, 1]])
    path = CameraPath(K=k, w2c=_random_w2c(9, seed=2), width=640, height=480, name="a b/ü")
    file = tmp_path / "cam.json"
    save_camera_path(path, file)
    # An arbitrary K (cx off centre) on purpose: exactness, not plausibility, is tested here.
    loaded = load_camera_path(file, check_plausible=False)
    assert np.array_equal(loaded.K, path.K) and np.array_equal(loaded.w2c, path.w2c)
    assert loaded == path
    raw = json.loads(file.read_text())
    assert raw["format"] == FORMAT and raw["num_frames"] == 9
    # Overwriting goes through a temp file that is renamed away.
    save_camera_path(path.with_w2c(path.w2c[:2]), file)
    assert load_camera_path(file, check_plausible=False).num_frames == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cam.json"]
    assert camera_path_from_dict(camera_path_to_dict(path), check_plausible=False) == path


def _valid_dict() -> dict:
    return camera_path_to_dict(_path(4))


def _mutate(edit):
    def make() -> dict:
        d = _valid_dict()
        edit(d)
        return d

    return make


def _set(path: list, value: object):
    def edit(d: dict) -> None:
        target = d
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return _mutate(edit)


def _scale_frame(d: dict) -> None:
    d["w2c"][3][0][0] *= 1.2


def _reflect_frame(d: dict) -> None:
    d["w2c"][1] = _reflection().tolist()


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (_mutate(lambda d: d.pop("K")), ["K: missing key"]),
        (_mutate(lambda d: d.pop("num_frames")), ["num_frames: missing key"]),
        (_set(["format"], "other/1"), ["format:"]),
        (_set(["width"], "640"), ["width:", "type"]),
        (_set(["height"], True), ["height:", "type"]),
        (_set(["name"], 3), ["name:", "type"]),
        (_set(["K"], [[500.0, 0.0, 320.0], [0.0, 500.0, 240.0]]), ["K:", "shape"]),
        (_set(["w2c", 1], [[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]]), ["w2c[1]:", "shape"]),
        (_set(["w2c", 0, 0, 0], "1"), ["w2c[0][0][0]:", "type"]),
        (_set(["w2c", 2, 0, 1], float("nan")), ["w2c[2][0][1]:", "not finite"]),
        (_set(["K", 0, 2], float("inf")), ["K[0][2]:", "not finite"]),
        (_set(["num_frames"], 5), ["num_frames:", "frame-count mismatch"]),
        (_mutate(_scale_frame), ["w2c[3]:", "orthonormal"]),
        (_mutate(_reflect_frame), ["w2c[1]:", "det"]),
        (_set(["K", 1, 0], 2.0), ["K:", "upper-triangular"]),
        (_set(["K", 1, 1], -500.0), ["K:", "positive"]),
        (_set(["w2c"], []), ["w2c:", "empty"]),
    ],
)
def test_bad_json_rejected_naming_field(tmp_path: Path, make, fragments: list[str]) -> None:
    file = tmp_path / "bad.json"
    file.write_text(json.dumps(make()))  # json writes NaN/Infinity tokens for non-finite floats
    with pytest.raises(CameraFileError) as info:
        load_camera_path(file)
    message = str(info.value)
    assert str(file) in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("text", ['{"format": "trajbench.camera_path/1", "K": [[1', "", "{]"])
def test_malformed_json_names_file(tmp_path: Path, text: str) -> None:
    file = tmp_path / "broken.json"
    file.write_text(text)
    with pytest.raises(CameraFileError, match="malformed JSON") as info:
        load_camera_path(file)
    assert str(file) in str(info.value)


def test_json_top_level_must_be_object(tmp_path: Path) -> None:
    file = tmp_path / "list.json"
    file.write_text("[1, 2]")
    with pytest.raises(CameraFileError, match="top level"):
        load_camera_path(file)


# ------------------------------------------------------------------------- RealEstate10K

RE10K_TEXT = """https://www.youtube.com/watch?v=abc
1000 0.5 0.9 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0
34366 0.5 0.9 0.5 0.5 0 0 0 -1 0 0.25 1 0 0 -0.5 0 0 1 2
"""


def test_read_realestate10k_by_hand(tmp_path: Path) -> None:
    file = tmp_path / "0123abcd.txt"
    file.write_text(RE10K_TEXT)
    clip = read_realestate10k(file, width=640, height=360)
    assert clip.url == "https://www.youtube.com/watch?v=abc"
    assert clip.timestamps == [1000, 34366]
    cam = clip.camera
    assert cam.name == "0123abcd" and (cam.width, cam.height) == (640, 360)
    assert np.array_equal(cam.K, [[320.0, 0, 320.0], [0, 324.0, 180.0], [0, 0, 1]])
    assert np.array_equal(cam.w2c[0], np.eye(4))
    expected = np.array([[0.0, -1, 0, 0.25], [1, 0, 0, -0.5], [0, 0, 1, 2], [0, 0, 0, 1]])
    assert np.array_equal(cam.w2c[1], expected)


def _re10k_line(rng: np.random.Generator, intr: list[str], ts: int) -> str:
    rot = Rotation.random(random_state=rng).as_matrix()
    t = rng.normal(size=3)
    pose = np.hstack([rot, t[:, None]]).ravel()
    return " ".join([str(ts), *intr, "0.0", "0.0", *(f"{x:.9f}" for x in pose)])


@pytest.mark.parametrize("width", WIDTHS)
def test_re10k_text_round_trip_is_exact(tmp_path: Path, width: int) -> None:
    rng = np.random.default_rng(width)
    height = WIDTHS[(WIDTHS.index(width) + 1) % len(WIDTHS)]
    for trial in range(20):
        intr = [f"{x:.9f}" for x in rng.uniform(0.05, 2.0, 4)]
        stamps = np.sort(rng.choice(10**9, size=3, replace=False))  # strictly increasing
        lines = ["https://example.com/v"] + [_re10k_line(rng, intr, int(t)) for t in stamps]
        src = tmp_path / f"in{trial}.txt"
        src.write_text("\n".join(lines) + "\n")
        clip = read_realestate10k(src, width, height, check_plausible=False)
        dst = tmp_path / f"out{trial}.txt"
        write_realestate10k(dst, clip.camera, url=clip.url, timestamps=clip.timestamps)
        got = dst.read_text().splitlines()
        assert got[0] == lines[0]
        for a, b in zip(lines[1:], got[1:], strict=True):
            assert [Decimal(x) for x in a.split()] == [Decimal(x) for x in b.split()]


def _ordinary_values(rng: np.random.Generator, size: int, n: int) -> np.ndarray:
    return np.concatenate(
        [
            rng.integers(1, 4 * size, n).astype(np.float64),  # integers
            rng.integers(1, 8 * size, n) / 2.0,  # halves
            np.round(rng.uniform(1, 4 * size, n), 1),  # values like 512.3
            rng.uniform(1, 4 * size, n),  # arbitrary doubles
        ]
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_re10k_camera_round_trip_is_exact(tmp_path: Path, width: int) -> None:
    rng = np.random.default_rng(100 + width)
    height = WIDTHS[(WIDTHS.index(width) + 2) % len(WIDTHS)]
    fxs = _ordinary_values(rng, width, 25)
    fys = rng.permutation(_ordinary_values(rng, height, 25))
    cxs = rng.permutation(_ordinary_values(rng, width, 25)) - width
    cys = rng.permutation(_ordinary_values(rng, height, 25))
    w2c = _random_w2c(2, seed=width)
    file = tmp_path / "cam.txt"
    for fx, fy, cx, cy in zip(fxs, fys, cxs, cys, strict=True):
        k = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        cam = CameraPath(K=k, w2c=w2c, width=width, height=height, name="cam")
        write_realestate10k(file, cam)
        back = read_realestate10k(file, width, height, check_plausible=False).camera
        assert np.array_equal(back.K, cam.K), (fx, fy, cx, cy)
        assert np.array_equal(back.w2c, cam.w2c)


def test_write_realestate10k_defaults_and_checks(tmp_path: Path) -> None:
    cam = _path(3)
    file = tmp_path / "c.txt"
    write_realestate10k(file, cam)
    clip = read_realestate10k(file, 640, 480)
    assert clip.url == "" and clip.timestamps == [0, 33333, 66666]
    skewed = CameraPath(
        K=[[500.0, 1.0, 320], [0, 500, 240], [0, 0, 1]], w2c=cam.w2c, width=640, height=480
    )
    with pytest.raises(CameraFileError, match=r"K\[0\]\[1\]"):
        write_realestate10k(file, skewed)
    with pytest.raises(CameraFileError, match="timestamps"):
        write_realestate10k(file, cam, timestamps=[0, 1])


GOOD = "0 0.5 0.9 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0"


@pytest.mark.parametrize(
    ("lines", "fragments"),
    [
        ([GOOD, GOOD.rsplit(" ", 1)[0]], ["line 3", "expected 19 numbers, got 18"]),
        ([GOOD + " 7"], ["line 2", "got 20"]),
        ([GOOD.replace("0.9", "abc")], ["line 2", "column 3 (fy)", "not a number"]),
        ([GOOD.replace("0 0 1 0 0 0 0 1 0", "0 0 nan 0 0 0 0 1 0")], ["line 2", "r00", "finite"]),
        ([GOOD, GOOD.replace("0.9", "0.8")], ["line 3", "intrinsics", "line 2"]),
        ([GOOD.replace("0.5 0 0 1", "0.5 0 0 2")], ["line 2", "orthonormal"]),
        ([GOOD.replace("0.5 0.5 0 0", "0.5 0.5 0.1 0")], ["line 2", "k1"]),
        ([GOOD.replace("0.5 0.9", "-0.5 0.9")], ["line 2", "K", "positive"]),
        ([GOOD.replace("0 0.5", "0.5 0.5", 1)], ["line 2", "timestamp_us", "integer"]),
        ([], ["no frame lines"]),
    ],
)
def test_bad_re10k_rejected_naming_line(tmp_path: Path, lines: list[str], fragments) -> None:
    file = tmp_path / "bad.txt"
    file.write_text("\n".join(["http://url", *lines]) + "\n")
    with pytest.raises(CameraFileError) as info:
        read_realestate10k(file, 640, 480)
    message = str(info.value)
    assert str(file) in message
    for fragment in fragments:
        assert fragment in message


# ------------------------------------------------------------------------------- evo/TUM


def test_write_tum_read_back_with_evo(tmp_path: Path) -> None:
    from evo.tools import file_interface

    cam = _path(5)
    file = tmp_path / "traj.tum"
    write_tum(file, cam)
    traj = file_interface.read_tum_trajectory_file(str(file))
    np.testing.assert_allclose(traj.timestamps, np.arange(5) * 0.033333, atol=1e-12)
    for pose, w2c in zip(traj.poses_se3, cam.w2c, strict=True):
        np.testing.assert_allclose(pose, np.linalg.inv(w2c), atol=1e-12)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["traj.tum"]


def test_to_evo_trajectory_positions_and_stamps() -> None:
    cam = _path(4)
    traj = to_evo_trajectory(cam, timestamps=[0.0, 1.0, 2.5, 3.0])
    np.testing.assert_allclose(traj.positions_xyz, cam.centers, atol=1e-12)
    assert np.array_equal(traj.timestamps, [0.0, 1.0, 2.5, 3.0])
    assert math.isclose(
        traj.path_length,
        float(np.sum(np.linalg.norm(np.diff(cam.centers, axis=0), axis=1))),
        rel_tol=1e-12,
    )


# ------------------------------------------------------- intrinsics plausibility (issue 14)


def _k_for(hfov_deg: float, width: int, height: int, aspect: float = 1.0,
           offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    fx = 0.5 * width / math.tan(math.radians(hfov_deg) / 2)
    cx, cy = width * (0.5 + offset[0]), height * (0.5 + offset[1])
    return np.array([[fx, 0, cx], [0, fx * aspect, cy], [0, 0, 1.0]])


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"hfov_deg": 60.0}, None),
        ({"hfov_deg": 169.0}, None),
        ({"hfov_deg": 171.0}, "implausible field of view"),
        ({"hfov_deg": 1.5}, None),  # vertical: 1.5 * 480/640 deg, still above 1
        ({"hfov_deg": 0.9}, "implausible field of view"),
        ({"hfov_deg": 60.0, "aspect": 1.9}, None),
        ({"hfov_deg": 60.0, "aspect": 2.1}, "pixel aspect"),
        ({"hfov_deg": 60.0, "aspect": 0.45}, "pixel aspect"),
        ({"hfov_deg": 60.0, "offset": (0.19, -0.19)}, None),
        ({"hfov_deg": 60.0, "offset": (0.21, 0.0)}, "far from the centre of"),
        ({"hfov_deg": 60.0, "offset": (0.0, -0.6)}, "is outside the 640x480 frame"),
    ],
)
def test_validate_intrinsics_thresholds(kwargs, fragment) -> None:
    """The documented thresholds, each side of each: FOV 1-170 deg, fy/fx 0.5-2, principal
    point within 20% of the size from the centre."""
    from benchmark.cameras import validate_intrinsics

    k = _k_for(width=640, height=480, **kwargs)
    validate_intrinsics(k, "K")  # the form alone is always fine here
    if fragment is None:
        np.testing.assert_array_equal(validate_intrinsics(k, "K", 640, 480), k)
    else:
        with pytest.raises(CameraFileError, match=fragment):
            validate_intrinsics(k, "my K", 640, 480)


@pytest.mark.parametrize(
    ("row", "tolerance"),
    [
        ("0.995031 0.059741 0.079655 0.000000 0.800000 -0.600000 -0.099568 0.597018 0.796025",
         4 * 0.5e-6),  # %f: 6 decimals, trailing zeros kept
        ("0.99503 0.05974 0.07966 0.00000 0.80000 -0.60000 -0.09957 0.59702 0.79603",
         4 * 0.5e-5),
        ("0.995031 0.0597407 0.0796543 0 0.8 -0.6 -0.0995678 0.597018 0.796025",
         4 * 0.5e-6),  # %g: 6 significant digits at magnitude 0.1-1
        ("0.9950307753654014 0.05974070795748999 0.07965427727665332 0.0 0.8 -0.6 "
         "-0.09956784659581665 0.5970184652192408 0.7960246202923211", 1e-6),  # repr: floor
        ("0.99 0.06 0.08 0.00 0.80 -0.60 -0.10 0.60 0.80", 2e-4),  # 2 decimals: the cap
    ],
)
def test_re10k_rotation_tolerance_follows_printed_precision(row, tolerance) -> None:
    from benchmark.cameras import _rounding_tolerance

    assert _rounding_tolerance(row.split()) == pytest.approx(tolerance, rel=1e-12)
