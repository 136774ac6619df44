"""Reliability corpus (issue 9, item 6): every stage fed its bad inputs.

Each case checks one of two outcomes: a clear error (the exception type, and a message naming
the file, field or problem), or a recorded failure (meta.json / poses.json / metrics.json with
``status: failed`` and a reason) that leaves every other run of the workflow intact. Cases
that showed a gap were fixed where the gap was; a case that cannot be fixed yet would be marked
``xfail(strict=True)`` with the fix it needs.

The adapters below are deliberately broken methods; the harness loads them by import path
(``"tests.test_reliability:RaisesMidRun"``), as it loads any out-of-tree adapter.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from benchmark.cameras import (
    CameraFileError,
    CameraPath,
    camera_path_to_dict,
    load_camera_path,
    read_realestate10k,
    save_camera_path,
)
from benchmark.io import atomic_write_text, read_frames, read_image, write_frames, write_png
from methods.base import GenerationRequest, GenerationResult, Method, MethodUnavailable

ROOT = Path(__file__).resolve().parent.parent
W, H, F = 96, 64, 6
ADAPTERS = __name__  # "tests.test_reliability" when run from the repository root

SUITE_YAML = f"""name: rel
kind: synthetic
num_frames: {F}
width: {W}
height: {H}
cameras: [orbit_left_15deg]
methods: [gt_render]
seeds: [0]
scenes:
  - {{name: room05, seed: 5}}
"""


# ------------------------------------------------------------------------- broken adapters


class _Broken(Method):
    """Base of the broken test adapters: the request's own image repeated F times."""

    name = "broken"
    default_conf: dict = {}

    @staticmethod
    def _still(request: GenerationRequest) -> np.ndarray:
        return np.repeat(request.image[None], request.num_frames, axis=0)


class Unavailable(_Broken):
    """Weights missing: what a real adapter raises when it cannot load its model."""

    def generate(self, request: GenerationRequest) -> GenerationResult:
        raise MethodUnavailable(
            "weights not found: run `huggingface-cli download org/model model.safetensors`"
        )


class RaisesMidRun(_Broken):
    """Crashes half way through sampling."""

    def generate(self, request: GenerationRequest) -> GenerationResult:
        raise RuntimeError(f"sampler diverged at step 3 of {request.num_frames}")


class WrongFrameCount(_Broken):
    def generate(self, request: GenerationRequest) -> GenerationResult:
        return GenerationResult(self._still(request)[:-1], request.camera.K)


class WrongDtype(_Broken):
    def generate(self, request: GenerationRequest) -> GenerationResult:
        return GenerationResult(self._still(request).astype(np.float32), request.camera.K)


class NanK(_Broken):
    def generate(self, request: GenerationRequest) -> GenerationResult:
        k = request.camera.K.copy()
        k[0, 0] = np.nan
        return GenerationResult(self._still(request), k)


class NegativeFocalK(_Broken):
    def generate(self, request: GenerationRequest) -> GenerationResult:
        k = request.camera.K.copy()
        k[1, 1] = -k[1, 1]
        return GenerationResult(self._still(request), k)


class HalfSizeFullK(_Broken):
    """Renders at half the requested size and returns the full-size K (field report 8)."""

    def generate(self, request: GenerationRequest) -> GenerationResult:
        return GenerationResult(self._still(request)[:, ::2, ::2].copy(), request.camera.K)


class DoubleSizeHalfK(_Broken):
    """Renders at twice the size and returns the K of half-size frames."""

    def generate(self, request: GenerationRequest) -> GenerationResult:
        big = np.repeat(np.repeat(self._still(request), 2, axis=1), 2, axis=2)
        k = request.camera.K.copy()
        k[:2] /= 2.0
        return GenerationResult(big, k)


class HalfSizeHalfK(_Broken):
    """Renders at half size with the K of its frames: consistent, so it must pass."""

    def generate(self, request: GenerationRequest) -> GenerationResult:
        k = request.camera.K.copy()
        k[:2] /= 2.0
        return GenerationResult(self._still(request)[:, ::2, ::2].copy(), k)


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A prepared 96x64 synthetic scene, its 6-frame orbit camera file and exact renders."""
    from benchmark.config.suites import load_suite
    from benchmark.sources.scenes import load_scene_view, make_scene_camera, prepare_synthetic_scene
    from benchmark.sources.synthetic import render_frames

    root = tmp_path_factory.mktemp("reliability")
    suite_file = root / "suite.yaml"
    suite_file.write_text(SUITE_YAML)
    scene_dir = prepare_synthetic_scene(load_suite(suite_file), "room05", root / "room05")
    view = load_scene_view(scene_dir)
    camera = make_scene_camera(view, "orbit_left_15deg", F)
    camera_file = save_camera_path(camera, root / "orbit_left_15deg.json")
    frames, _ = render_frames(view.synthetic_scene(), camera.K, camera.w2c, W, H)
    return SimpleNamespace(
        root=root, suite_file=suite_file, scene_dir=scene_dir, camera=camera,
        camera_file=camera_file, frames=frames,
    )


def _run_folder(path: Path, frames: np.ndarray, K: object, num_frames: int | None = None) -> Path:
    """A run folder as the generate stage leaves it after a success."""
    write_frames(path / "frames", frames)
    atomic_write_text(path / "K.json", json.dumps(np.asarray(K).tolist()))
    meta = {"method": "m", "seed": 0, "status": "ok", "reason": "",
            "num_frames": len(frames) if num_frames is None else num_frames}
    atomic_write_text(path / "meta.json", json.dumps(meta))
    return path


def _poses_file(run: Path, w2c: list, status: str = "ok") -> Path:
    from benchmark.sfm.poses import RecoveredPoses, save_poses

    save_poses(RecoveredPoses([None if p is None else np.asarray(p) for p in w2c], status), run
               / "poses.json")
    return run / "poses.json"


# ------------------------------------------------------------------------------ camera files


def _mutate(d: dict, case: str) -> dict:
    """A camera dict with one defect (see CAMERA_CASES)."""
    if case == "missing_key":
        del d["w2c"]
    elif case == "K_wrong_shape":
        d["K"] = d["K"][:2]
    elif case == "w2c_wrong_shape":
        d["w2c"][2] = d["w2c"][2][:3]
    elif case == "K_nan":
        d["K"][0][0] = math.nan
    elif case == "w2c_inf":
        d["w2c"][1][0][3] = math.inf
    elif case == "non_orthonormal":
        d["w2c"][3] = (np.asarray(d["w2c"][3]) @ np.diag([1.01, 1.0, 1.0, 1.0])).tolist()
    elif case == "reflection":
        d["w2c"][4] = (np.asarray(d["w2c"][4]) @ np.diag([1.0, 1.0, -1.0, 1.0])).tolist()
    elif case == "zero_focal":
        d["K"][0][0] = 0.0
    elif case == "negative_focal":
        d["K"][1][1] = -d["K"][1][1]
    elif case == "frame_count_mismatch":
        d["num_frames"] = F + 1
    elif case == "width_wrong_type":
        d["width"] = str(d["width"])
    return d


CAMERA_CASES = {
    # case: fragment the message must contain (besides the file name)
    "missing_key": "w2c: missing key",
    "K_wrong_shape": "K: wrong shape: expected 3 entries, got 2",
    "w2c_wrong_shape": "w2c[2]: wrong shape: expected 4 entries, got 3",
    "K_nan": "K[0][0]: not finite",
    "w2c_inf": "w2c[1][0][3]: not finite",
    "non_orthonormal": "w2c[3]: rotation is not orthonormal",
    "reflection": "w2c[4]: rotation has det(R) = -1",
    "zero_focal": "K: focal lengths must be positive (fx=0.0",
    "negative_focal": "K: focal lengths must be positive",
    "frame_count_mismatch": f"num_frames: frame-count mismatch (num_frames={F + 1}, w2c has {F}",
    "width_wrong_type": "width: wrong type: expected an integer, got str",
}


@pytest.mark.parametrize("case", sorted(CAMERA_CASES))
def test_bad_camera_file_is_a_clear_error(world, tmp_path, case):
    file = tmp_path / f"{case}.json"
    file.write_text(json.dumps(_mutate(camera_path_to_dict(world.camera), case)))
    with pytest.raises(CameraFileError) as info:
        load_camera_path(file)
    assert str(file) in str(info.value)
    assert CAMERA_CASES[case] in str(info.value)


@pytest.mark.parametrize("text", ["truncated", "empty", "binary"])
def test_malformed_camera_json_is_a_clear_error(world, tmp_path, text):
    good = world.camera_file.read_bytes()
    data = {"truncated": good[: len(good) // 2], "empty": b"", "binary": b"\xff\xfe\x00"}[text]
    file = tmp_path / "camera.json"
    file.write_bytes(data)
    with pytest.raises(CameraFileError, match="malformed JSON") as info:
        load_camera_path(file)
    assert str(file) in str(info.value)


def test_missing_camera_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist") as info:
        load_camera_path(tmp_path / "nope.json")
    assert "nope.json" in str(info.value)


def test_realestate10k_line_with_nan_names_line_and_column(tmp_path):
    file = tmp_path / "clip.txt"
    row = "0 0.5 0.8 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0"  # identity pose
    file.write_text("https://example.org/v\n" + row + "\n" + row.replace("0.8", "nan", 1) + "\n")
    with pytest.raises(CameraFileError, match=r"line 3, column 3 \(fy\): not finite"):
        read_realestate10k(file, W, H)


# ------------------------------------------- RealEstate10K files from the field (issue 14)


def _re10k_rows(decimals: int | None = None, frames: int = 8) -> tuple[list[str], CameraPath]:
    """Frame rows of a plausible RealEstate10K file (720x480, 55 deg, tilted orbit) and its
    exact camera; ``decimals``: print every value after the timestamp with that many."""
    from benchmark.cameras.paths import make_camera_path

    width, height = 720, 480
    f = 0.5 * width / math.tan(math.radians(27.5))
    k = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
    tilt = np.eye(4)
    tilt[:3, :3] = np.array([[1, 0, 0], [0, 0.8, -0.6], [0, 0.6, 0.8]])
    cam = make_camera_path("orbit_right_20deg", k, width, height, frames, depth=2.0,
                           base_w2c=tilt)
    rows = []
    for i, m in enumerate(cam.w2c):
        values = [f / width, f / height, 0.5, 0.5, 0, 0, *m[:3].ravel()]
        fmt = (lambda x: repr(float(x))) if decimals is None else (lambda x: f"{x:.{decimals}f}")
        rows.append(" ".join([str(1000 + 40000 * i), *(fmt(v) for v in values)]))
    return rows, cam


def test_re10k_file_without_url_line_keeps_its_first_frame(tmp_path):
    """Field report 1: a first line that parses as a frame row is frame 0, never the URL."""
    rows, cam = _re10k_rows()
    file = tmp_path / "no_url.txt"
    file.write_text("\n".join(rows) + "\n")
    clip = read_realestate10k(file, cam.width, cam.height)
    assert clip.url == "" and clip.camera.num_frames == len(rows)
    assert clip.timestamps[0] == 1000
    np.testing.assert_allclose(clip.camera.w2c, cam.w2c, atol=1e-15)


@pytest.mark.parametrize("head", ["", "\n\n", "# exported by a tool\n", "\n# c\nhttps://x/v\n"])
def test_re10k_blank_or_comment_lines_before_the_rows(tmp_path, head):
    rows, cam = _re10k_rows()
    file = tmp_path / "clip.txt"
    file.write_text(head + "\n".join(rows[:3]) + "\n# trailing note\n" + "\n".join(rows[3:]))
    clip = read_realestate10k(file, cam.width, cam.height)
    assert clip.camera.num_frames == len(rows)
    assert clip.url == ("https://x/v" if "https" in head else "")
    np.testing.assert_allclose(clip.camera.w2c, cam.w2c, atol=1e-15)


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("pixels", "look like pixels: RealEstate10K stores them normalised by width and height"),
        ("pixels_other_size", "look like pixels"),
        ("principal_point_pixels", "principal point"),
        ("fx_fy_swapped_sizes", "pixel aspect"),
    ],
)
def test_re10k_implausible_intrinsics_name_file_line_and_cause(tmp_path, case, fragment):
    """Field report 2: intrinsics written in pixels (or otherwise not normalised)."""
    rows, cam = _re10k_rows()
    f = cam.K[0, 0]
    intr = {
        "pixels": [f"{f:.6f}", f"{f:.6f}", "360.000000", "240.000000"],
        "pixels_other_size": [f"{2 * f:.3f}", f"{2 * f:.3f}", "720.0", "480.0"],
        "principal_point_pixels": [f"{f / 720:.9f}", f"{f / 480:.9f}", "360", "240"],
        "fx_fy_swapped_sizes": [f"{f / 720:.9f}", f"{f / 720 * 720 / 480 * 3:.9f}", "0.5", "0.5"],
    }[case]
    bad = [" ".join([r.split()[0], *intr, *r.split()[5:]]) for r in rows]
    file = tmp_path / "clip.txt"
    file.write_text("https://example.org/v\n" + "\n".join(bad) + "\n")
    with pytest.raises(CameraFileError) as info:
        read_realestate10k(file, cam.width, cam.height)
    message = str(info.value)
    assert f"{file}: line 2" in message and fragment in message


@pytest.mark.parametrize(
    ("case", "line", "fragment"),
    [
        ("jump_back", 7, "timestamp 1000 goes back from line 6's 281000"),
        ("duplicate_row", 6, "timestamp 121000 repeats line 5's 121000"),
        ("equal_stamp_new_pose", 4, "timestamp 41000 repeats line 3's 41000"),
    ],
)
def test_re10k_timestamps_out_of_order_name_the_line(tmp_path, case, line, fragment):
    """Field report 3: a jump back (clip starting mid-way) or a duplicated row."""
    rows, cam = _re10k_rows()
    if case == "jump_back":  # lines 2-6: 121000 ... 281000, line 7: back to 1000
        rows = rows[3:] + rows[:3]
    elif case == "duplicate_row":
        rows = rows[:4] + [rows[3]] + rows[4:]
    else:
        rows[2] = " ".join([rows[1].split()[0], *rows[2].split()[1:]])
    file = tmp_path / "clip.txt"
    file.write_text("https://example.org/v\n" + "\n".join(rows) + "\n")
    with pytest.raises(CameraFileError) as info:
        read_realestate10k(file, cam.width, cam.height)
    assert f"{file}: line {line}: " in str(info.value) and fragment in str(info.value)


@pytest.mark.parametrize("decimals", [6, 5, 4])
def test_re10k_printed_with_few_decimals_is_accepted_and_reorthonormalised(tmp_path, decimals):
    """Field report 4: ``%f`` prints 6 decimals, some tools fewer; rounding alone moves R off
    SO(3) by ~10^-decimals. Accepted, projected back onto SO(3) (recorded), close to truth."""
    rows, cam = _re10k_rows(decimals)
    file = tmp_path / "clip.txt"
    file.write_text("https://example.org/v\n" + "\n".join(rows) + "\n")
    from benchmark.cameras import ORTHONORMAL_TOL

    clip = read_realestate10k(file, cam.width, cam.height)
    rot = clip.camera.w2c[:, :3, :3]
    err = np.abs(np.swapaxes(rot, 1, 2) @ rot - np.eye(3)).max(axis=(1, 2))
    assert np.all(err <= ORTHONORMAL_TOL) and np.all(np.linalg.det(rot) > 0)
    np.testing.assert_allclose(clip.camera.w2c, cam.w2c, atol=10.0 ** -decimals * 4)
    fixed = clip.metadata["reorthonormalised_lines"]
    assert fixed and set(fixed) <= set(range(2, 2 + len(rows)))
    assert np.all(err[[line - 2 for line in fixed]] < 1e-12)  # projected onto SO(3)
    assert 10.0 ** -(decimals + 2) < clip.metadata["max_rotation_error"] < 4 * 10.0 ** -decimals


@pytest.mark.parametrize(
    ("decimals", "scale"),
    [(6, 1.0001), (6, 1.01), (5, 1.001), (None, 1.00001), (2, 1.0)],
)
def test_re10k_rotation_off_by_more_than_its_printing_explains_is_refused(
    tmp_path, decimals, scale
):
    """Real garbage stays refused: a scaled rotation (off by more than its printed precision
    explains), and files printed too coarsely to tell (2 decimals) even when scale is 1."""
    rows, cam = _re10k_rows(decimals)
    toks = rows[2].split()
    toks[7:10] = [(f"{float(t) * scale:.{decimals}f}" if decimals is not None
                   else repr(float(t) * scale)) for t in toks[7:10]]
    rows[2] = " ".join(toks)
    file = tmp_path / "clip.txt"
    file.write_text("https://example.org/v\n" + "\n".join(rows) + "\n")
    with pytest.raises(CameraFileError, match="rotation is not orthonormal") as info:
        read_realestate10k(file, cam.width, cam.height)
    assert f"{file}: line " in str(info.value)


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda k, w, h: k.__setitem__((slice(0, 2), slice(None)), k[:2] / [[w], [h]]),
         "intrinsics look normalised by width and height"),
        (lambda k, w, h: k.__setitem__((slice(0, 2), slice(None)), k[:2] * 2), "principal point"),
        (lambda k, w, h: k.__setitem__((0, 2), -w / 2), "principal point"),
        (lambda k, w, h: k.__setitem__((slice(0, 2), slice(0, 2)), k[:2, :2] * 200),
         "implausible field of view"),
    ],
    ids=["normalised", "K_of_double_size", "negative_cx", "pixels_x200"],
)
def test_json_camera_with_implausible_K_is_a_clear_error(world, tmp_path, edit, fragment):
    """Field report 2 for JSON camera files: the same check as RealEstate10K files."""
    d = camera_path_to_dict(world.camera)
    k = np.array(d["K"])
    edit(k, W, H)
    d["K"] = k.tolist()
    file = tmp_path / "camera.json"
    file.write_text(json.dumps(d))
    with pytest.raises(CameraFileError) as info:
        load_camera_path(file)
    assert str(file) in str(info.value) and fragment in str(info.value)


@pytest.mark.parametrize("hfov", [0.5, 175.0])
def test_real_image_scene_with_an_implausible_K_is_refused_before_any_download(tmp_path, hfov):
    """Field report 2 for a real image's K (the suite's hfov_deg): the same check, naming the
    suite file, before the image is fetched or a depth model loaded."""
    from benchmark.config.suites import load_suite
    from benchmark.sources.real_images import prepare_image_scene

    suite_file = tmp_path / "img.yaml"
    suite_file.write_text(
        f"name: img\nkind: image\nnum_frames: 6\nwidth: 96\nheight: 64\nhfov_deg: {hfov}\n"
        "cameras: [orbit_left_15deg]\nscenes:\n  - {name: a, url: 'http://127.0.0.1:9/a.png', "
        f"sha256: '{'0' * 64}'}}\n"
    )
    with pytest.raises(CameraFileError, match="implausible field of view") as info:
        prepare_image_scene(load_suite(suite_file), "a", tmp_path / "scene")
    assert str(suite_file) in str(info.value)
    assert not (tmp_path / "scene" / "source").exists()


# ------------------------------------------------------------------------- frames and images


def _frames_folder(world, folder: Path) -> Path:
    write_frames(folder, world.frames[:4])
    return folder


@pytest.mark.parametrize(
    ("case", "error", "fragment"),
    [
        ("corrupt_png", ValueError, "not a decodable image"),
        ("truncated_png", ValueError, "not a decodable image"),
        ("zero_byte_png", ValueError, "the file is empty (0 bytes)"),
        ("missing_frame", ValueError, "not contiguous: missing 00002.png"),
        ("size_mismatch", ValueError, "differ in size"),
    ],
)
def test_bad_frame_in_a_frames_folder_names_the_problem(world, tmp_path, case, error, fragment):
    folder = _frames_folder(world, tmp_path / "frames")
    bad = folder / "00002.png"
    if case == "corrupt_png":
        bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not image data")
    elif case == "truncated_png":
        bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    elif case == "zero_byte_png":
        bad.write_bytes(b"")
    elif case == "missing_frame":
        bad.unlink()
    else:
        write_png(bad, np.zeros((H // 2, W // 2, 3), np.uint8))
    with pytest.raises(error) as info:
        read_frames(folder)
    assert fragment in str(info.value)
    named = folder if case in ("missing_frame", "size_mismatch") else bad
    assert str(named) in str(info.value)


@pytest.mark.parametrize("kind", ["gray8", "gray16", "gray_alpha", "rgba", "palette", "rgb16"])
def test_every_image_kind_reads_as_its_8bit_rgb(tmp_path, kind):
    """Field report 5: one reader, one rule (benchmark.io.to_rgb8) for every kind of image
    file; a 16-bit image is its 8-bit twin, never clipped to white."""
    import cv2
    from PIL import Image

    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    gray = rgb[..., 0]
    alpha = rng.integers(0, 256, (H, W), dtype=np.uint8)
    file = tmp_path / f"{kind}.png"
    expected = np.repeat(gray[..., None], 3, -1)
    if kind == "gray8":
        Image.fromarray(gray).save(file)
    elif kind == "gray16":
        Image.fromarray(gray.astype(np.uint16) * 257).save(file)
    elif kind == "gray_alpha":
        Image.fromarray(np.dstack([gray, alpha]), "LA").save(file)
    elif kind == "rgba":
        Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(file)
        expected = rgb
    elif kind == "palette":
        pal = Image.fromarray(rgb).quantize(colors=64)
        pal.save(file)
        expected = np.asarray(pal.convert("RGB"))
    else:
        cv2.imwrite(str(file), (rgb.astype(np.uint16) * 257)[..., ::-1])
        expected = rgb
    image = read_image(file)
    assert image.dtype == np.uint8 and image.shape == (H, W, 3)
    np.testing.assert_array_equal(image, expected)


def test_empty_frames_folder(tmp_path):
    (tmp_path / "frames").mkdir()
    with pytest.raises(ValueError, match="empty frames folder") as info:
        read_frames(tmp_path / "frames")
    assert str(tmp_path / "frames") in str(info.value)


def test_missing_frames_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="frames folder .* does not exist"):
        read_frames(tmp_path / "frames")


def test_missing_image_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="image .*image.png does not exist"):
        read_image(tmp_path / "image.png")


# -------------------------------------------------------------------------------- videos


def test_video_whose_frame_count_differs_from_its_camera_path(world, tmp_path):
    from benchmark.sources.videos import load_video

    write_frames(tmp_path / "video" / "frames", world.frames[:5])
    save_camera_path(world.camera, tmp_path / "video" / "camera.json")
    with pytest.raises(ValueError, match=rf"\({F} frames, {W}x{H}\) does not match the 5 frames"):
        load_video(tmp_path / "video")


def test_one_frame_video_is_a_recorded_failure_through_poses_and_score(world, tmp_path):
    """One frame: nothing to match; poses.json and metrics.json say so, nothing raises."""
    from benchmark.sfm.poses import run_poses
    from benchmark.stages.score import score_run

    one = CameraPath(K=world.camera.K, w2c=world.camera.w2c[:1], width=W, height=H)
    camera_file = save_camera_path(one, tmp_path / "one.json")
    run = _run_folder(tmp_path / "run", world.frames[:1], world.camera.K)
    poses = run_poses(run)
    assert poses.status == "failed" and poses.reason == "1 frame(s): nothing to match"
    metrics = score_run(run, camera_file)
    assert metrics["status"] == "failed" and metrics["reason"] == poses.reason
    assert json.loads((run / "metrics.json").read_text())["status"] == "failed"


# ----------------------------------------------------------------------------- generation


def _generate(world, tmp_path: Path, method: str, camera_file: Path | None = None) -> dict:
    from benchmark.stages.generate import run_generation

    return run_generation(method, world.scene_dir, camera_file or world.camera_file, 0,
                          tmp_path / "run")


def test_missing_weights_is_a_recorded_failure_naming_the_download(world, tmp_path):
    meta = _generate(world, tmp_path, f"{ADAPTERS}:Unavailable")
    assert meta["status"] == "failed"
    assert meta["reason"].startswith("unavailable: weights not found")
    assert "huggingface-cli download org/model model.safetensors" in meta["reason"]
    assert json.loads((tmp_path / "run" / "meta.json").read_text()) == json.loads(
        json.dumps(meta, default=str)
    )
    assert not (tmp_path / "run" / "K.json").exists()


def test_method_raising_mid_run_is_recorded_and_flows_through_poses_and_score(world, tmp_path):
    """A preset file with ``adapter: "module:Class"``; stale frames of an earlier run go."""
    from benchmark.sfm.poses import run_poses
    from benchmark.stages.score import score_run

    preset = tmp_path / "raises.yaml"
    preset.write_text(f'adapter: "{ADAPTERS}:RaisesMidRun"\nargs: {{}}\n')
    write_frames(tmp_path / "run" / "frames", world.frames)  # an earlier run's frames
    meta = _generate(world, tmp_path, str(preset))
    assert meta["status"] == "failed"
    assert meta["reason"] == f"RuntimeError: sampler diverged at step 3 of {F}"
    assert meta["preset"] == {"adapter": f"{ADAPTERS}:RaisesMidRun", "args": {}}
    assert not (tmp_path / "run" / "frames").exists()
    poses = run_poses(tmp_path / "run")
    assert poses.status == "failed" and "generation failed: RuntimeError" in poses.reason
    metrics = score_run(tmp_path / "run", world.camera_file)
    assert metrics["status"] == "failed" and metrics["generation_status"] == "failed"
    assert "sampler diverged" in metrics["generation_reason"]


@pytest.mark.parametrize(
    ("adapter", "reason"),
    [
        ("WrongFrameCount", f"ValueError: method returned {F - 1} frames, the camera path has {F}"),
        ("WrongDtype", "ValueError: frames must be uint8 (F, H, W, 3), got float32"),
    ],
)
def test_method_returning_a_wrong_result_is_a_recorded_failure(world, tmp_path, adapter, reason):
    meta = _generate(world, tmp_path, f"{ADAPTERS}:{adapter}")
    assert meta["status"] == "failed"
    assert meta["reason"].startswith(reason)
    assert not (tmp_path / "run" / "frames").exists()


@pytest.mark.parametrize("adapter", ["NanK", "NegativeFocalK"])
def test_method_returning_an_invalid_K_is_a_recorded_failure(world, tmp_path, adapter):
    meta = _generate(world, tmp_path, f"{ADAPTERS}:{adapter}")
    assert meta["status"] == "failed" and "K" in meta["reason"]


@pytest.mark.parametrize(
    ("adapter", "size", "fragment"),
    [
        ("HalfSizeFullK", f"{W // 2}x{H // 2}", f"looks like it describes {W}x{H} frames"),
        ("DoubleSizeHalfK", f"{2 * W}x{2 * H}", f"describes {W // 2}x{H // 2} frames"),
    ],
)
def test_method_K_for_another_frame_size_is_a_recorded_failure(
    world, tmp_path, adapter, size, fragment
):
    """Field report 8: frames at one size, K of another; the run fails with the reason
    instead of scoring 9x worse ATE without a word."""
    meta = _generate(world, tmp_path, f"{ADAPTERS}:{adapter}")
    assert meta["status"] == "failed"
    assert f"the method's K for its {size} frames" in meta["reason"]
    assert fragment in meta["reason"]
    assert not (tmp_path / "run" / "K.json").exists()


def test_method_K_matching_its_smaller_frames_is_accepted(world, tmp_path):
    meta = _generate(world, tmp_path, f"{ADAPTERS}:HalfSizeHalfK")
    assert meta["status"] == "ok", meta["reason"]


@pytest.mark.parametrize("adapter", ["NanK", "NegativeFocalK"])
def test_invalid_K_json_is_recorded_by_the_pose_stage(world, tmp_path, adapter):
    """Whatever generation lets through, pose recovery records it instead of feeding COLMAP a
    NaN focal ('Check failed: options_.Check()') or a negative one ('no model')."""
    from benchmark.sfm.poses import load_poses, run_poses

    k = world.camera.K.copy()
    if adapter == "NanK":
        k[0, 0] = np.nan
    else:
        k[1, 1] = -k[1, 1]
    run = _run_folder(tmp_path / "run", world.frames, k)
    poses = run_poses(run)
    assert poses.status == "failed"
    assert poses.reason.startswith(f"invalid intrinsics: {run / 'K.json'}: ")
    assert ("contains NaN or inf" if adapter == "NanK" else "focal lengths") in poses.reason
    assert load_poses(run / "poses.json").reason == poses.reason
    assert poses.num_frames == F


def test_unknown_method_is_a_recorded_failure_with_suggestions(world, tmp_path):
    meta = _generate(world, tmp_path, "gt_rendr")
    assert meta["status"] == "failed"
    assert "unknown method 'gt_rendr'. Did you mean 'gt_render'?" in meta["reason"]


def test_broken_camera_file_is_a_recorded_generation_failure(world, tmp_path):
    camera_file = tmp_path / "camera.json"
    camera_file.write_text('{"format": "trajbench.camera_path/1", "K": [[1')
    meta = _generate(world, tmp_path, "gt_render", camera_file)
    assert meta["status"] == "failed"
    assert meta["reason"].startswith(f"CameraFileError: {camera_file}: malformed JSON")


# ----------------------------------------------------------------------------------- depth


def _scene_with_depth(world, tmp_path: Path, case: str) -> Path:
    scene = tmp_path / "scene"
    shutil.copytree(world.scene_dir, scene)
    depth = np.load(scene / "depth.npy")
    if case == "zeros":
        depth[:] = 0.0
    elif case == "nan":
        depth[:] = np.nan
    else:  # a NaN hole
        depth[10:20, 10:20] = np.nan
    np.save(scene / "depth.npy", depth)
    return scene


@pytest.mark.parametrize("case", ["zeros", "nan"])
def test_camera_from_unusable_depth_is_a_clear_error(world, tmp_path, case):
    from benchmark.sources.scenes import load_scene_view

    with pytest.raises(ValueError, match="depth.npy: only 0% of its pixels"):
        load_scene_view(_scene_with_depth(world, tmp_path, case))


def test_camera_from_depth_with_a_nan_hole_uses_the_valid_depths(world, tmp_path):
    """The median ignores the hole: the path equals the one from the intact depth."""
    from benchmark.sources.scenes import load_scene_view, make_scene_camera

    scene = load_scene_view(_scene_with_depth(world, tmp_path, "hole"))
    intact = np.load(world.scene_dir / "depth.npy")
    valid = np.ones(intact.shape, bool)
    valid[10:20, 10:20] = False
    camera = make_scene_camera(scene, "orbit_left_15deg", F)
    expected = make_scene_camera(
        scene.__class__(scene.image, np.where(valid, intact, -1.0), scene.view, scene.spec),
        "orbit_left_15deg", F,
    )
    assert camera == expected


@pytest.mark.parametrize("case", ["zeros", "nan"])
def test_generation_from_unusable_depth_is_a_recorded_failure(world, tmp_path, case):
    from benchmark.stages.generate import run_generation

    scene = _scene_with_depth(world, tmp_path, case)
    meta = run_generation("depth_warp", scene, world.camera_file, 0, tmp_path / "run")
    assert meta["status"] == "failed" and "depth.npy" in meta["reason"]


def test_unreadable_image_of_a_real_image_scene_names_the_file(tmp_path, capsys):
    """prepare-scene on a fetched 'image' that is not one: exit 2, message names the file."""
    from benchmark.cli import main

    suite = tmp_path / "img.yaml"
    suite.write_text(
        "name: img\nkind: image\nnum_frames: 6\nwidth: 96\nheight: 64\n"
        "cameras: [orbit_left_15deg]\n"
        f"scenes: [{{name: photo, url: 'https://example.invalid/p.jpg', sha256: '{'0' * 64}'}}]\n"
    )
    out = tmp_path / "scenes" / "photo"
    out.mkdir(parents=True)
    (out / "source").write_bytes(b"<html>404 not found</html>")
    code = main(["prepare-scene", "--suite", str(suite), "--scene", "photo", "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert f"cannot read image {out / 'source'}: not a decodable image" in err
    assert not (out / "image.png").exists()


# ------------------------------------------------------------------------------ poses (COLMAP)


def test_colmap_finding_nothing_is_a_recorded_failure(world, tmp_path):
    from benchmark.sfm.poses import recover_poses

    paths = write_frames(tmp_path / "frames", np.full_like(world.frames, 128))
    result = recover_poses(paths, world.camera.K, tmp_path / "sfm")
    assert result.status == "failed"
    assert result.reason.startswith("COLMAP reconstructed no model (SIFT keypoints in 0/6 frames")
    assert result.w2c == [None] * F


def test_colmap_registering_too_few_frames_is_a_recorded_failure(world, tmp_path):
    from benchmark.sfm.poses import recover_poses

    frames = world.frames.copy()
    frames[-2:] = 128  # two blank frames cannot register: 4/6 < 80%
    paths = write_frames(tmp_path / "frames", frames)
    result = recover_poses(paths, world.camera.K, tmp_path / "sfm")
    assert result.status == "failed"
    assert result.reason == "registered 4/6 frames < 80%"
    assert result.w2c[-2:] == [None, None]


@pytest.mark.parametrize("case", ["missing_K", "fewer_frames_than_meta", "no_frames"])
def test_inconsistent_run_folder_is_recorded_by_the_pose_stage(world, tmp_path, case):
    from benchmark.sfm.poses import run_poses

    run = _run_folder(tmp_path / "run", world.frames, world.camera.K)
    if case == "missing_K":
        (run / "K.json").unlink()
        fragment = f"{run / 'K.json'} is missing"
    elif case == "fewer_frames_than_meta":
        (run / "frames" / "00005.png").unlink()
        fragment = f"{run / 'frames'} holds 5 PNG frames, meta.json says {F}"
    else:
        shutil.rmtree(run / "frames")
        fragment = f"no PNG frames in {run / 'frames'}"
    poses = run_poses(run)
    assert poses.status == "failed" and poses.reason == fragment
    assert (run / "poses.json").exists()


@pytest.mark.parametrize("case", ["missing", "malformed"])
def test_pose_stage_without_a_readable_meta_json_is_a_clear_error(tmp_path, case):
    from benchmark.sfm.poses import run_poses

    if case == "malformed":
        (tmp_path / "meta.json").write_text("{ not json")
        with pytest.raises(ValueError, match="meta.json: malformed JSON"):
            run_poses(tmp_path)
    else:
        with pytest.raises(FileNotFoundError, match="meta.json is missing: run the generate"):
            run_poses(tmp_path)
    assert not (tmp_path / "poses.json").exists()


# ---------------------------------------------------------------------- poses.json and scoring


def test_poses_json_with_nan_is_a_recorded_scoring_failure(world, tmp_path):
    from benchmark.stages.score import score_run

    run = _run_folder(tmp_path / "run", world.frames, world.camera.K)
    est = [p.copy() for p in world.camera.w2c]
    est[2][1, 3] = np.nan
    _poses_file(run, est)
    assert "NaN" in (run / "poses.json").read_text()  # json writes the token; we read it back
    metrics = score_run(run, world.camera_file)
    assert metrics["status"] == "failed"
    assert metrics["reason"] == "estimated pose(s) of frame(s) [2] contain NaN/inf"
    assert metrics["ate"] is None and metrics["cam_mc"] is None


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("malformed", "malformed JSON"),
        ("pose_3x4", "w2c[2]: expected shape (4, 4) or null, got (3, 4)"),
        ("bad_status", "status: expected 'ok' or 'failed', got 'done'"),
        ("count_mismatch", f"num_frames: {F + 1} but w2c has {F} entries"),
    ],
)
def test_malformed_poses_json_is_a_clear_error_naming_the_file(world, tmp_path, case, fragment):
    from benchmark.sfm.poses import load_poses

    file = _poses_file(tmp_path, list(world.camera.w2c))
    data = json.loads(file.read_text())
    if case == "malformed":
        file.write_text(file.read_text()[:100])
    else:
        if case == "pose_3x4":
            data["w2c"][2] = data["w2c"][2][:3]
        elif case == "bad_status":
            data["status"] = "done"
        else:
            data["num_frames"] = F + 1
        file.write_text(json.dumps(data))
    with pytest.raises(ValueError) as info:
        load_poses(file)
    assert str(file) in str(info.value) and fragment in str(info.value)


def test_poses_of_a_different_length_than_the_camera_path_are_recorded(world, tmp_path):
    from benchmark.stages.score import score_run

    run = _run_folder(tmp_path / "run", world.frames, world.camera.K)
    _poses_file(run, list(world.camera.w2c[:5]))
    metrics = score_run(run, world.camera_file)
    assert metrics["status"] == "failed"
    assert metrics["reason"] == f"5 posed frames for a {F}-frame path"


def test_score_cli_with_a_broken_camera_file_records_the_failure(world, tmp_path, capsys):
    """The score job succeeds with a failed metrics.json, so the suite's tables still build."""
    from benchmark.cli import main

    run = _run_folder(tmp_path / "run", world.frames, world.camera.K)
    _poses_file(run, list(world.camera.w2c))
    camera_file = tmp_path / "camera.json"
    camera_file.write_text("")
    code = main(["score", "--run-dir", str(run), "--camera-file", str(camera_file)])
    assert code == 0 and "score: failed" in capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "failed" and f"{camera_file}: malformed JSON" in metrics["reason"]


def test_scoring_against_a_broken_camera_file_is_recorded(world, tmp_path):
    from benchmark.stages.score import score_run

    run = _run_folder(tmp_path / "run", world.frames, world.camera.K)
    _poses_file(run, list(world.camera.w2c))
    camera_file = tmp_path / "camera.json"
    camera_file.write_text('{"format": "trajbench.camera_path/1"}')
    metrics = score_run(run, camera_file)
    assert metrics["status"] == "failed" and str(camera_file) in metrics["reason"]


def test_fidelity_of_a_run_with_a_corrupt_frame_is_recorded(world, tmp_path):
    from benchmark.stages.score import score_run

    run = _run_folder(tmp_path / "run", world.frames, world.camera.K)
    (run / "frames" / "00003.png").write_bytes(b"garbage")
    _poses_file(run, list(world.camera.w2c))
    reference = tmp_path / "reference"
    write_frames(reference, world.frames)
    metrics = score_run(run, world.camera_file, reference)
    assert "00003.png" in metrics.get("fidelity_reason", "")


# ----------------------------------------------------------------------------------- metrics


def _est_with(world, case: str) -> tuple[np.ndarray, list]:
    gt = np.array(world.camera.w2c)
    est = [p.copy() for p in gt]
    if case == "nan_ground_truth":
        gt[1, 0, 3] = np.nan
    elif case == "inf_estimate":
        est[4][2, 2] = np.inf
    elif case == "non_orthonormal_estimate":
        est[3][:3, :3] *= 1.1
    elif case == "static_estimate":
        est = [gt[0].copy() for _ in gt]
    return gt, est


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("nan_ground_truth", "ground-truth pose(s) of frame(s) [1] contain NaN/inf"),
        ("inf_estimate", "estimated pose(s) of frame(s) [4] contain NaN/inf"),
        ("non_orthonormal_estimate",
         "estimated pose(s) of frame(s) [3] are not rigid transforms [R|t; 0 0 0 1]"),
        ("static_estimate", "estimated camera centres are static: Sim(3) scale is undefined"),
    ],
)
def test_bad_poses_give_recorded_metric_failures(world, case, reason):
    from benchmark.metrics import camera_pose_errors, cami2v_errors

    gt, est = _est_with(world, case)
    errors = camera_pose_errors(gt, est)
    assert (errors.status, errors.reason, errors.ate, errors.rpe_rot_deg) == (
        "failed", reason, None, None
    )
    if case != "static_estimate":  # CamI2V scores a static estimate (flagged est_static)
        cam = cami2v_errors(gt, est)
        assert (cam["status"], cam["reason"], cam["cam_mc"]) == ("failed", reason, None)


def test_pose_list_of_the_wrong_length_is_a_caller_error(world):
    from benchmark.metrics import camera_pose_errors

    with pytest.raises(ValueError, match=f"est_w2c has 5 entries, gt_w2c has {F} frames"):
        camera_pose_errors(world.camera.w2c, list(world.camera.w2c[:5]))


# ------------------------------------------------------------------------- suites and config


SUITE_BASE = (
    "name: s\nkind: synthetic\nnum_frames: 6\nwidth: 96\nheight: 64\n"
    "cameras: [orbit_left_15deg]\nscenes: [{name: a, seed: 0}]\n"
)


@pytest.mark.parametrize(
    ("case", "text", "fragment"),
    [
        ("unknown_field", SUITE_BASE + "colour: red\n", "('colour' was unexpected)"),
        ("unknown_scene_field", SUITE_BASE.replace("seed: 0}", "seed: 0, sed: 1}"),
         "scenes/0: Additional properties are not allowed ('sed' was unexpected)"),
        ("bad_camera_name", SUITE_BASE.replace("orbit_left_15deg", "orbit_sideways_15deg"),
         "cameras: bad camera name 'orbit_sideways_15deg'"),
        ("bad_camera_magnitude", SUITE_BASE.replace("15deg", "fifteen"),
         "bad magnitude 'fifteen'"),
        ("duplicate_scenes", SUITE_BASE.replace("seed: 0}", "seed: 0}, {name: a, seed: 1}"),
         "scenes: duplicate names ['a']"),
        ("not_yaml", SUITE_BASE + "cameras: [unclosed\n", "not valid YAML"),
        ("one_frame", SUITE_BASE.replace("num_frames: 6", "num_frames: 1"),
         "num_frames: 1 is not valid"),
    ],
)
def test_bad_suite_yaml_is_a_clear_error(tmp_path, case, text, fragment):
    from benchmark.config.suites import SuiteError, load_suite

    file = tmp_path / f"{case}.yaml"
    file.write_text(text)
    with pytest.raises(SuiteError) as info:
        load_suite(file)
    assert str(file) in str(info.value) and fragment in str(info.value)


def test_config_with_an_unknown_key_is_a_clear_error():
    from benchmark.config.suites import SuiteError, validate

    with pytest.raises(SuiteError, match="'method' was unexpected"):
        validate("config", {"suite": "smoke", "method": ["gt_render"]}, "workflow config")


@pytest.mark.workflow
def test_check_method_with_an_unknown_method_is_a_clear_error(capsys):
    from benchmark.cli import main

    assert main(["check-method", "depth_wrap"]) == 2
    assert "unknown method 'depth_wrap'. Did you mean 'depth_warp'?" in capsys.readouterr().err


def _snakemake(*args: str) -> subprocess.CompletedProcess:
    """The workflow from a fresh temporary working directory (nothing lands in the checkout,
    and no results folder is created before the workflow checks it); the checkout is on the
    jobs' PYTHONPATH for this module's test adapters."""
    exe = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")
    workdir = tempfile.mkdtemp(prefix="trajbench-snakemake-")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    return subprocess.run(
        [exe, "--snakefile", str(ROOT / "Snakefile"), "--directory", workdir, *args],
        cwd=ROOT, capture_output=True, text=True, env=env,
    )


@pytest.mark.workflow
def test_workflow_config_with_an_unknown_method_is_refused_before_running(world, tmp_path):
    out = _snakemake("-n", "--config", f"suite={world.suite_file}", f"results={tmp_path}",
                     "methods=[gt_rendr]")
    text = out.stdout + out.stderr  # Snakemake prints parse errors on stdout
    assert out.returncode != 0 and "unknown method 'gt_rendr'" in text
    assert "Did you mean 'gt_render'" in text


# ------------------------------------------------------------------ nothing else is lost


@pytest.mark.workflow
def test_workflow_with_a_method_that_raises_keeps_every_other_result(world, tmp_path):
    """Default Snakemake options (no --keep-going): the broken method's runs are recorded
    failures, gt_render's are scored, and the tables list both. The scene and camera files
    are seeded from the fixture (identical to what the scene/camera rules write)."""
    import pandas as pd

    broken = f"{ADAPTERS}:RaisesMidRun"
    suite = tmp_path / "wf.yaml"
    suite.write_text(SUITE_YAML.replace("name: rel", "name: wf").replace(
        "methods: [gt_render]", f'methods: [gt_render, "{broken}"]'))
    results = tmp_path / "results" / "wf"
    shutil.copytree(world.scene_dir, results / "scenes" / "room05")
    cameras = results / "cameras" / f"f{F}" / "room05"
    cameras.mkdir(parents=True)
    shutil.copy(world.camera_file, cameras / "orbit_left_15deg.json")

    out = _snakemake("--cores", "2", "--config", f"suite={suite}",
                     f"results={tmp_path / 'results'}")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    runs = {m: results / m / f"f{F}" / "room05__orbit_left_15deg" / "seed0"
            for m in ("gt_render", broken)}
    good = json.loads((runs["gt_render"] / "metrics.json").read_text())
    assert good["status"] == "ok" and good["ate"] is not None
    bad = json.loads((runs[broken] / "metrics.json").read_text())
    assert bad["status"] == "failed" and bad["generation_status"] == "failed"
    assert bad["generation_reason"] == f"RuntimeError: sampler diverged at step 3 of {F}"
    table = pd.read_csv(results / "metrics.csv").set_index("method")
    assert table.loc["gt_render", "status"] == "ok" and table.loc[broken, "status"] == "failed"
    markdown = (results / "tables" / "table1.md").read_text()
    assert "gt_render" in markdown and broken in markdown
    assert (results / "plots" / "errors.png").stat().st_size > 0


def test_reference_render_of_a_broken_camera_file_is_recorded(tmp_path):
    """The reference job records why there is no render, and scoring then says so."""
    from benchmark.config.suites import load_suite
    from benchmark.sources.scenes import prepare_synthetic_scene
    from benchmark.stages.reference import render_reference

    scene = prepare_synthetic_scene(load_suite(ROOT / "tests" / "data" / "tiny-video-suite.yaml"),
                                    "room00", tmp_path / "scene")
    camera_file = tmp_path / "camera.json"
    camera_file.write_text("{not json")
    out = render_reference(scene, camera_file, tmp_path / "reference")
    assert "malformed JSON" in (out / "reason.txt").read_text()
    assert not list(out.glob("*.png"))
