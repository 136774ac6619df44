"""First-frame-guided editing of real clips (issue 8 item 5, suite kind ``editing``): suite
validation, the edit stage on a local clip and edited frame (offline), generation and scoring
of a real edit unchanged, and the paper-editing suite's dry run."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest
import yaml

from benchmark.cameras import CameraPath, camera_path_to_dict, save_camera_path
from benchmark.cli import main as cli_main
from benchmark.config.suites import SuiteError, load_suite
from benchmark.io import read_frames, read_image, write_npy, write_png
from benchmark.sfm.poses import RecoveredPoses, save_poses
from benchmark.sources.editing import fit_edited_frame, load_edit
from benchmark.sources.real_images import center_crop_resize
from benchmark.sources.real_videos import read_clip
from benchmark.sources.scenes import load_scene_view
from benchmark.sources.synthetic import canonical_K
from benchmark.sources.videos import InputVideo, compose_camera, write_video
from benchmark.stages.generate import run_generation
from benchmark.stages.score import score_run
from tests.workflow.test_workflow import ROOT, _snakemake

GREY = 128
#: Clip frames (width, height) and the suite's frame size: the suite crops 6 columns a side.
CLIP_W, CLIP_H = 96, 64
WIDTH, HEIGHT = 84, 64


def write_mp4(path, frames: np.ndarray, fps: float = 8.0) -> None:
    """(F, H, W, 3) RGB frames as an mp4 ('mp4v') file at ``path`` (any name: OpenCV picks
    the container by extension, so it writes ``.mp4`` first, then renames)."""
    tmp = path.with_name(path.name + ".tmp.mp4")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                             (frames.shape[2], frames.shape[1]))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    tmp.rename(path)


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_suite(tmp_path, scenes, **changes):
    data = {"name": "realedit", "kind": "editing", "num_frames": 4, "width": WIDTH,
            "height": HEIGHT, "cameras": ["static"], "methods": ["static"], "scenes": scenes}
    data.update(changes)
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


CLIP = {"name": "clip", "url": "https://example.org/clip.mp4", "sha256": "0" * 64}
EDITED = {"url": "https://example.org/edited.png", "sha256": "1" * 64}


# ----------------------------------------------------------------------------- suites


def test_real_editing_suite_validation(tmp_path):
    suite = load_suite(write_suite(tmp_path, [{**CLIP, "edited_image": EDITED}]))
    assert suite.is_editing and suite.is_video and not suite.is_synthetic
    with pytest.raises(SuiteError, match=r"needs \['edited_image'\].*url, sha256"):
        load_suite(write_suite(tmp_path, [CLIP]))
    with pytest.raises(SuiteError, match="edited_image: 'sha256' is a required property"):
        load_suite(write_suite(tmp_path, [{**CLIP, "edited_image": {"url": "x"}}]))
    with pytest.raises(SuiteError, match="'static'"):
        load_suite(write_suite(tmp_path, [{**CLIP, "edited_image": EDITED}],
                               cameras=["orbit_left_10deg"]))
    with pytest.raises(SuiteError, match="recolouring needs a synthetic scene"):
        load_suite(write_suite(tmp_path, [{**CLIP, "edited_image": EDITED,
                                           "edit": {"recolour": {"hue_deg": 90}}}]))
    with pytest.raises(SuiteError, match="not by a fetched image"):
        load_suite(write_suite(tmp_path, [{"name": "a", "seed": 1, "edited_image": EDITED,
                                           "edit": {"recolour": {}}}],
                               kind="synthetic-editing"))


def test_paper_editing_suite_pins_its_files():
    suite = load_suite("paper-editing")
    assert suite.kind == "editing" and suite.cameras == ["static"]
    assert 1 <= len(suite.scenes) <= 2
    for entry in suite.scenes.values():
        for spec in (entry, entry["edited_image"]):
            # a commit-pinned raw URL: 40 hex digits of the commit in the path
            parts = spec["url"].split("/")
            assert spec["url"].startswith("https://raw.githubusercontent.com/")
            assert len(parts[5]) == 40 and int(parts[5], 16) >= 0
    # AnyV2V's demo clips have 16 frames: the suite must not ask for more
    assert max(suite.frame_counts) <= 16


# ----------------------------------------------------------------------------- edit stage


def texture(num: int = 6, shift: int = 2) -> np.ndarray:
    """A smooth random RGB texture wide enough for :func:`window` to move over."""
    rng = np.random.default_rng(0)
    canvas = rng.integers(0, 256, (CLIP_H, CLIP_W + shift * num, 3)).astype(np.float32)
    canvas = cv2.GaussianBlur(canvas, (0, 0), 2.0)
    return ((canvas - canvas.min()) / (canvas.max() - canvas.min()) * 200 + 28).astype(np.uint8)


def window(canvas: np.ndarray, num: int = 6, shift: int = 2) -> np.ndarray:
    """The clip of ``canvas`` seen through a window moving ``shift`` px right a frame."""
    return np.stack([canvas[:, shift * t: shift * t + CLIP_W] for t in range(num)])


def make_scene(folder, frames: np.ndarray) -> None:
    """A real clip's scene folder as the fetch and scene rules leave it (the clip as
    ``source``; frame 0 cropped as the view; flat depth stands in for the depth model's)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_mp4(folder / "source", frames)
    image = center_crop_resize(read_clip(folder / "source", 0, 1, 1)[0], WIDTH, HEIGHT)
    write_png(folder / "image.png", image)
    write_npy(folder / "depth.npy", np.ones((HEIGHT, WIDTH), np.float32))
    view = CameraPath(K=canonical_K(WIDTH, HEIGHT, 60.0), w2c=np.eye(4)[None], width=WIDTH,
                      height=HEIGHT, name="clip")
    (folder / "view.json").write_text(
        json.dumps(camera_path_to_dict(view)))


@pytest.fixture()
def grey_clip(tmp_path):
    """A uniform grey clip and an edited first frame at twice its size whose left quarter
    (x < 48 of 192) is red."""
    frames = np.full((4, CLIP_H, CLIP_W, 3), GREY, np.uint8)
    make_scene(tmp_path / "scene", frames)
    edited = np.full((2 * CLIP_H, 2 * CLIP_W, 3), GREY, np.uint8)
    edited[:, :48] = (255, 0, 0)
    edited_file = tmp_path / "edited.png"
    write_png(edited_file, edited)
    return tmp_path, edited_file


def test_edit_stage_fetches_crops_like_the_clip_and_records(grey_clip):
    """Hand-computed: the 192x128 edit is resized by 64/128 = 0.5 to 96x64 and cropped by
    (96 - 84) / 2 = 6 columns a side, so its red quarter (x < 48) ends at column 24 - 6 = 18;
    INTER_AREA at an exact factor 2 does not blend across that boundary."""
    tmp_path, edited_file = grey_clip
    spec = {"url": edited_file.as_uri(), "sha256": sha256(edited_file)}
    suite_file = write_suite(tmp_path, [{**CLIP, "edited_image": spec}])
    out = tmp_path / "edits" / "clip"
    assert cli_main(["prepare-edit", "--suite", str(suite_file), "--scene", "clip",
                     "--scene-dir", str(tmp_path / "scene"), "--out", str(out)]) == 0
    assert (out / "source").read_bytes() == edited_file.read_bytes()  # fetched, checked
    image = read_image(out / "image.png")
    assert image.shape == (HEIGHT, WIDTH, 3)
    np.testing.assert_array_equal(image[:, :18], np.broadcast_to([255, 0, 0], (HEIGHT, 18, 3)))
    np.testing.assert_array_equal(image[:, 18:], np.full((HEIGHT, WIDTH - 18, 3), GREY))
    recipe = json.loads((out / "edit.json").read_text())
    assert recipe["edit"] is None and load_edit(out).recolour is None
    assert recipe["edited_image"]["size"] == [2 * CLIP_W, 2 * CLIP_H]
    assert recipe["clip_frame_size"] == [CLIP_W, CLIP_H]
    # mp4 coding moves grey by a level or two at most: only the red columns count as changed
    assert recipe["changed_fraction"] == pytest.approx(18 / WIDTH, abs=1e-3)


def test_edit_stage_rejects_a_wrong_checksum_or_framing(grey_clip, tmp_path_factory):
    tmp_path, edited_file = grey_clip
    suite = load_suite(write_suite(tmp_path, [{**CLIP, "edited_image": {
        "url": edited_file.as_uri(), "sha256": "f" * 64}}]))
    from benchmark.sources.editing import prepare_edit

    with pytest.raises(ValueError, match="does not match the suite's"):
        prepare_edit(suite, "clip", tmp_path / "scene", tmp_path / "edit")
    out = tmp_path_factory.mktemp("stale")  # a download already there is checked too
    (out / "source").write_bytes(b"not the image")
    with pytest.raises(ValueError, match="does not match the suite's"):
        prepare_edit(suite, "clip", tmp_path / "scene", out)
    with pytest.raises(ValueError, match="100x64 but the clip's frames are 96x64"):
        fit_edited_frame(np.zeros((64, 100, 3), np.uint8), (96, 64), WIDTH, HEIGHT)
    # 0.5 % off (rounding of an editor's output size) is the same framing
    assert fit_edited_frame(np.zeros((128, 193, 3), np.uint8), (96, 64), WIDTH,
                            HEIGHT).shape == (HEIGHT, WIDTH, 3)


# ----------------------------------------------------------------------------- generate, score


def test_real_edit_generates_and_scores_without_an_exact_video(tmp_path):
    """The method gets the edited frame; scores are track agreement and edit persistence, no
    PSNR/SSIM. Truth: the clip is a texture seen through a moving window, the edit recolours
    a block of the texture, so the exact edited video exists here: it scores well on both; the
    original video keeps the motion but loses the edit; the static edited frame loses the
    motion."""
    canvas = texture()
    frames = window(canvas)
    make_scene(tmp_path / "scene", frames)
    edited_canvas = canvas.copy()  # the edit moves with the texture: the exact edited video
    edited_canvas[16:48, 26:66] = edited_canvas[16:48, 26:66, ::-1]  # swap R and B in a block
    truth = np.stack([center_crop_resize(f, WIDTH, HEIGHT) for f in window(edited_canvas)])
    write_png(tmp_path / "edited.png", window(edited_canvas)[0])
    edited = truth[0]  # scale 1, 6 columns off a side
    spec = {"url": (tmp_path / "edited.png").as_uri(), "sha256": sha256(tmp_path / "edited.png")}
    suite = load_suite(write_suite(tmp_path, [{**CLIP, "edited_image": spec}],
                                   width=WIDTH, height=HEIGHT, num_frames=len(frames)))
    from benchmark.sources.editing import prepare_edit

    scene_dir, edit_dir, video_dir = tmp_path / "scene", tmp_path / "edit", tmp_path / "video"
    prepare_edit(suite, "clip", scene_dir, edit_dir)
    # the video stage's output (its depth model and COLMAP need a GPU box): the cropped frames
    scene = load_scene_view(scene_dir)
    cropped = np.stack([center_crop_resize(f, WIDTH, HEIGHT) for f in frames])
    video = InputVideo(cropped, np.ones(cropped.shape[:3], np.float32), CameraPath(
        K=scene.view.K, w2c=np.repeat(np.eye(4)[None], len(frames), 0), width=WIDTH,
        height=HEIGHT, name="clip_video"))
    write_video(video_dir, video)
    camera_file = save_camera_path(compose_camera(scene, "static", video), tmp_path / "cam.json")

    run = tmp_path / "static_run"
    meta = run_generation("static", scene_dir, camera_file, 0, run, video_dir, edit_dir)
    assert meta["status"] == "ok", meta["reason"]
    save_poses(RecoveredPoses(w2c=[None] * len(frames), status="failed", reason="not run"),
               run / "poses.json")
    static = score_run(run, camera_file, video_dir=video_dir, edit_dir=edit_dir)
    generated, _ = read_frames(run / "frames")
    np.testing.assert_array_equal(generated[0], edited)  # the method got the edited frame
    assert not {"psnr", "ssim"} & set(static)

    def fabricated(name: str, clip: np.ndarray) -> dict:
        """Score ``clip`` as a run's output (frames, K, meta, unregistered poses)."""
        folder = tmp_path / name
        write_video(folder, InputVideo(clip, None, video.camera))  # frames/ (+ camera.json)
        (folder / "K.json").write_text(json.dumps(scene.view.K.tolist()))
        (folder / "meta.json").write_text(json.dumps({"method": name, "seed": 0,
                                                      "status": "ok"}))
        save_poses(RecoveredPoses(w2c=[None] * len(clip), status="failed", reason="not run"),
                   folder / "poses.json")
        return score_run(folder, camera_file, video_dir=video_dir, edit_dir=edit_dir)

    exact, dropped = fabricated("exact", truth), fabricated("dropped", cropped)
    assert exact["track_epe"] < 0.5 and dropped["track_epe"] < 0.5
    assert static["track_epe"] > 2  # the window moves 2 px a frame, 10 px by the last
    assert exact["edit_region_points"] > 0
    assert dropped["edit_persistence_region"] > 3 * exact["edit_persistence_region"]


# ----------------------------------------------------------------------------- workflow


@pytest.mark.workflow
def test_paper_editing_suite_dry_run(tmp_path):
    out = _snakemake("-n", "--config", "suite=paper-editing", f"results={tmp_path}", cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    stats = out.stdout[out.stdout.index("Job stats"):]
    for rule in ["fetch_image", "fetch_edited_image", "video", "edit", "camera", "generate",
                 "score", "aggregate"]:
        assert f"\n{rule} " in stats, stats
    assert "\nreference " not in stats  # no exact edited video of a real clip
    assert "table_edit.md" in out.stdout
    assert "--edit-dir" in out.stdout and "edits/man_walking_red_shirt/source" in out.stdout
