"""Video camera control (paper Table 2) through the harness: input videos, composed cameras,
video requests, Table 2 — on a tiny synthetic-video suite, plus dry runs of the real suites."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark.cameras import load_camera_path
from benchmark.cameras.paths import make_camera_path
from benchmark.config.suites import load_suite
from benchmark.sources.scenes import load_scene_view, make_scene_camera
from benchmark.sources.videos import InputVideo, compose_camera, load_video, prepare_synthetic_video
from tests.workflow.test_workflow import ROOT, _snakemake

TINY_VIDEO = ROOT / "tests" / "data" / "tiny-video-suite.yaml"


@pytest.fixture(scope="module")
def scene(prepared_scene):
    suite = load_suite(TINY_VIDEO)
    return suite, load_scene_view(prepared_scene(TINY_VIDEO.name, "room00"))


def test_offsets_compose_with_the_video_cameras(scene, tmp_path):
    """A truck video re-shot with a further truck is the truck of the summed distance; a
    static video re-shot along an orbit is that orbit."""
    suite, view = scene
    truck = make_scene_camera(view, "truck_right_10pct", 6)
    composed = compose_camera(view, "truck_right_10pct", InputVideo(
        np.zeros((6, truck.height, truck.width, 3), np.uint8), None, truck))
    expected = make_scene_camera(view, "truck_right_20pct", 6)
    np.testing.assert_allclose(composed.w2c, expected.w2c, atol=1e-9)
    still = make_scene_camera(view, "static", 6)
    composed = compose_camera(view, "orbit_left_10deg", InputVideo(
        np.zeros((6, still.height, still.width, 3), np.uint8), None, still))
    np.testing.assert_allclose(composed.w2c, make_scene_camera(view, "orbit_left_10deg", 6).w2c,
                               atol=1e-9)


@pytest.mark.workflow
def test_synthetic_input_video_is_the_scene_along_its_path(scene, tmp_path):
    suite, view = scene
    prepare_synthetic_video(suite, view, "room00", 5, tmp_path / "video")
    video = load_video(tmp_path / "video")
    assert video.frames.shape == (5, view.view.height, view.view.width, 3)
    np.testing.assert_array_equal(video.frames[0], view.image)  # frame 0 = conditioning view
    np.testing.assert_allclose(video.depths[0], view.depth, rtol=1e-6)
    path = make_camera_path(suite.video_camera("room00"), view.view.K, view.view.width,
                            view.view.height, 5, depth=float(np.median(view.depth)),
                            base_w2c=view.view.w2c[0])
    np.testing.assert_allclose(video.camera.w2c, path.w2c, atol=1e-12)


@pytest.fixture(scope="module")
def video_results(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    out = _snakemake("--cores", "2", "--config", f"suite={TINY_VIDEO}", f"results={results}",
                     cwd=ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return results / "tinyvideo"


@pytest.mark.workflow
def test_video_suite_writes_table2_and_the_truth_ranks_first(video_results):
    table = (video_results / "tables" / "table2.md").read_text()
    assert "setting" not in table.splitlines()[2]  # one frame count: no setting column
    assert "re-shoots an input video" in table
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("|")}
    assert "inf" in rows["gt_render"] and "0/1" in rows["gt_render"]
    assert "0/1" in rows["depth_warp"] and "1/1" in rows["static"]
    run = video_results / "gt_render" / "f8" / "room00__orbit_left_10deg" / "seed0"
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "ok" and meta["video_dir"].endswith("videos/f8/room00")


@pytest.mark.workflow
def test_camera_file_is_the_composed_path(video_results):
    video = load_video(video_results / "videos" / "f8" / "room00")
    camera = load_camera_path(video_results / "cameras" / "f8" / "room00" / "orbit_left_10deg.json")
    view = load_scene_view(video_results / "scenes" / "room00")
    offsets = make_scene_camera(view, "orbit_left_10deg", 8)
    expected = offsets.w2c @ np.linalg.inv(offsets.w2c[0]) @ video.camera.w2c
    np.testing.assert_allclose(camera.w2c, expected, atol=1e-12)
    assert not np.allclose(camera.w2c, video.camera.w2c)  # the offsets did something


@pytest.mark.workflow
def test_depth_warp_reshoots_each_video_frame(video_results):
    """depth_warp on a video warps frame f of the input by its own depth, so where the warp is
    valid it reproduces the exact render of the composed camera."""
    from benchmark.io import read_frames

    run = video_results / "depth_warp" / "f8" / "room00__orbit_left_10deg" / "seed0"
    frames, _ = read_frames(run / "frames")
    reference, _ = read_frames(video_results / "reference" / "f8" / "room00__orbit_left_10deg")
    valid = np.load(run / "extras.npz")["valid"]
    assert valid.shape == frames.shape[:3] and valid[-1].mean() > 0.6
    error = (frames[-1].astype(float) - reference[-1])[valid[-1]]
    psnr = 10 * np.log10(255**2 / np.mean(error**2))
    assert psnr > 26, psnr


@pytest.mark.workflow
@pytest.mark.parametrize("suite, rules", [
    ("paper-video", ["fetch_image", "video", "camera", "generate"]),
    ("synthetic-video", ["video", "camera", "generate", "reference"]),
])
@pytest.mark.workflow
def test_video_suites_dry_run(tmp_path, suite, rules):
    out = _snakemake("-n", "--config", f"suite={suite}", f"results={tmp_path}", cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    stats = out.stdout[out.stdout.index("Job stats"):]
    for rule in rules:
        assert f"\n{rule} " in stats, stats
    assert "table2.md" in out.stdout


def test_depth_warp_uses_each_video_frame_not_just_the_first(scene):
    """With a camera path equal to the video's own (zero offsets), re-shooting must give the
    video back, including what changes over time (here the frames brighten)."""
    from methods import create_method
    from methods.base import GenerationRequest

    _, view = scene
    still = make_scene_camera(view, "static", 4)
    video = np.stack([np.clip(view.image.astype(int) + 20 * f, 0, 255) for f in range(4)])
    video = video.astype(np.uint8)
    depths = np.repeat(view.depth[None], 4, 0)
    request = GenerationRequest(image=video[0], camera=still, depth=view.depth, video=video,
                                video_depth=depths, video_camera=still)
    out = create_method("depth_warp").generate(request)
    np.testing.assert_array_equal(out.frames, video)
    with pytest.raises(Exception, match="video_depth"):
        create_method("depth_warp").generate(GenerationRequest(
            image=video[0], camera=still, depth=view.depth, video=video, video_camera=still))


def test_a_clip_without_recoverable_cameras_fails_its_runs_not_the_suite(scene, tmp_path):
    """When COLMAP cannot recover a real clip's cameras the video stage records why; every
    stage after it records failed runs with that reason and the tables still build."""
    from benchmark.cameras import camera_path_to_dict, save_unavailable_camera
    from benchmark.cli import main
    from benchmark.io import write_png
    from benchmark.reporting.report import aggregate_suite

    suite, view = scene
    root = tmp_path / "tinyvideo"
    scene_dir = root / "scenes" / "room00"
    write_png(scene_dir / "image.png", view.image)
    np.save(scene_dir / "depth.npy", view.depth)
    (scene_dir / "view.json").write_text(json.dumps(camera_path_to_dict(view.view)))
    video_dir = root / "videos" / "f8" / "room00"
    save_unavailable_camera("room00: COLMAP registered 3/8 frames", video_dir / "camera.json")
    camera_file = root / "cameras" / "f8" / "room00" / "orbit_left_10deg.json"
    assert main(["make-camera", "--scene-dir", str(scene_dir), "--camera", "orbit_left_10deg",
                 "--frames", "8", "--video-dir", str(video_dir), "--out", str(camera_file)]) == 0
    run = root / "depth_warp" / "f8" / "room00__orbit_left_10deg" / "seed0"
    assert main(["generate", "--method", "depth_warp", "--scene-dir", str(scene_dir),
                 "--camera-file", str(camera_file), "--video-dir", str(video_dir),
                 "--out", str(run)]) == 0
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "failed" and "COLMAP registered 3/8 frames" in meta["reason"]
    assert main(["poses", "--run-dir", str(run)]) == 0
    assert main(["score", "--run-dir", str(run), "--camera-file", str(camera_file)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "COLMAP registered 3/8" in metrics["reason"]
    runs = aggregate_suite(root, root, "t", table_name="table2")
    assert len(runs) == 1 and "1/1" in (root / "tables" / "table2.md").read_text()
