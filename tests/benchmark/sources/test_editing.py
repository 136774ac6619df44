"""First-frame-guided editing (paper Sec. 4.3, issue 8 item 5) and the trajectory end-point
error (item 6): edited scenes, the tiny editing suite end to end, and the track scores on
runs whose truth is known."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import yaml

from benchmark.cameras import load_camera_path
from benchmark.config.suites import SuiteError, load_suite
from benchmark.io import read_frames, write_frames
from benchmark.sfm.poses import RecoveredPoses, save_poses
from benchmark.sources.editing import Recolour, edited_scene, edited_surfaces, load_edit, parse_edit
from benchmark.sources.scenes import load_scene_view
from benchmark.sources.synthetic import render
from benchmark.sources.videos import load_video
from benchmark.stages.score import score_run
from tests.workflow.test_workflow import ROOT, _snakemake
from trajattn.trajectories import trajectories_from_depth

TINY_EDIT = ROOT / "tests" / "data" / "tiny-editing-suite.yaml"


# ----------------------------------------------------------------------------- the edit


@pytest.mark.workflow
def test_recolour_rotates_hue_and_applies_gain():
    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 0] = 200
    green = Recolour(hue_deg=120).apply(red)
    assert green[..., 1].min() > 190 and green[..., [0, 2]].max() < 10
    out = Recolour(hue_deg=0, gain=(0.5, 1.0, 2.0)).apply(np.full((1, 1, 3), 100, np.uint8))
    np.testing.assert_array_equal(out[0, 0], [50, 100, 200])
    with pytest.raises(ValueError, match="changes nothing"):
        Recolour(hue_deg=360)
    with pytest.raises(ValueError, match="kinds"):
        Recolour(kinds=("floor",))
    with pytest.raises(ValueError, match="unknown recolour keys"):
        parse_edit({"recolour": {"hue": 10}})
    assert parse_edit({"recolour": {"groups": [3]}}) == Recolour(groups=(3,))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """The tiny editing suite through the whole workflow."""
    out = tmp_path_factory.mktemp("results")
    done = _snakemake("--cores", "2", "--config", f"suite={TINY_EDIT}", f"results={out}",
                      cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out / "tinyedit"


def test_edited_scene_changes_colour_only_on_the_edited_surfaces(results):
    """Same depth everywhere; colours equal wherever no edited surface is within the pixel's
    3x3 neighbourhood (the renderer supersamples pixels at geometry edges), changed on the
    edited surfaces."""
    view = load_scene_view(results / "scenes" / "room00")
    recolour = load_edit(results / "edits" / "room00").recolour
    assert recolour == Recolour(kinds=("box",), hue_deg=120.0)
    original = view.synthetic_scene()
    scene = edited_scene(original, recolour)
    cam = view.view
    rgb, depth = render(scene, cam.K, cam.w2c[0], cam.width, cam.height)
    np.testing.assert_array_equal(depth, view.depth)
    np.testing.assert_array_equal(rgb, load_edit(results / "edits" / "room00").image)
    mask = edited_surfaces(original, cam.K, cam.w2c[0], cam.width, cam.height, recolour)
    assert 0.05 < mask.mean() < 0.8  # the boxes are in view
    near = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    diff = np.abs(rgb.astype(int) - view.image).sum(-1)
    assert diff[~near].max() == 0
    assert diff[mask].mean() > 60 and (diff[mask] > 10).mean() > 0.8
    with pytest.raises(ValueError, match="selects no surface"):
        edited_scene(original, Recolour(groups=(99,)))


# ----------------------------------------------------------------------------- the workflow


def table_rows(results):
    table = (results / "tables" / "table_edit.md").read_text()
    lines = [line for line in table.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header, cells, strict=True))
    return header, rows, table


def metrics(results, method):
    run = results / method / "f8" / "room00__static" / "seed0"
    return json.loads((run / "metrics.json").read_text())


def test_table_edit_layout(results):
    header, rows, table = table_rows(results)
    assert header[:6] == ["method", "track EPE (px)", "tracked (%)", "edit persistence",
                          "PSNR (dB)", "SSIM"]
    assert header[-1] == "failed" and "ATE" not in header
    assert set(rows) == {"gt_render", "depth_warp", "static", "trajattn_tiny"}
    assert "First-frame-guided editing" in table
    assert all(row["failed"] == "0/1" for row in rows.values())  # all generated


def test_ground_truth_keeps_motion_and_edit_static_does_not(results):
    truth, still = metrics(results, "gt_render"), metrics(results, "static")
    assert truth["track_epe"] < 1.0 and truth["track_epe_fraction"] > 0.8
    assert still["track_epe"] > 5.0
    assert truth["edit_persistence"] < 10.0 and still["edit_persistence"] > 25.0
    assert truth["edit_region_points"] > 20
    assert truth["psnr"] == "inf"  # the reference is the *edited* video, as gt_render's


def test_depth_warp_carries_the_edit_along_the_videos_cameras(results):
    """depth_warp warps the *edited* first frame with the original cameras: it follows the
    motion (exact geometry) and keeps the edit, unlike static."""
    warp, still = metrics(results, "depth_warp"), metrics(results, "static")
    assert warp["track_epe"] < 1.0 and warp["edit_persistence"] < still["edit_persistence"] / 2
    edit = load_edit(results / "edits" / "room00").image
    frames, _ = read_frames(results / "depth_warp" / "f8" / "room00__static" / "seed0" / "frames")
    np.testing.assert_array_equal(frames[0], edit)
    assert warp["psnr"] > still["psnr"] + 5


def test_methods_get_the_edited_frame_and_the_original_video(results):
    """gt_render rendered the edited scene (its frames are the reference, which differs from
    the input video on the edit); static repeats the edited frame."""
    edit = load_edit(results / "edits" / "room00").image
    video = load_video(results / "videos" / "f8" / "room00")
    gt, _ = read_frames(results / "gt_render" / "f8" / "room00__static" / "seed0" / "frames")
    st, _ = read_frames(results / "static" / "f8" / "room00__static" / "seed0" / "frames")
    reference, _ = read_frames(results / "reference" / "f8" / "room00__static")
    np.testing.assert_array_equal(gt, reference)
    np.testing.assert_array_equal(gt[0], edit)
    assert np.abs(gt.astype(int) - video.frames).mean() > 3  # the edit shows in every frame
    assert (np.abs(gt[-1].astype(int) - video.frames[-1]).sum(-1) > 30).mean() > 0.05
    np.testing.assert_array_equal(st, np.repeat(edit[None], 8, 0))
    camera = load_camera_path(results / "cameras" / "f8" / "room00" / "static.json")
    np.testing.assert_allclose(camera.w2c, video.camera.w2c, atol=1e-12)  # no re-shoot
    meta = json.loads((results / "trajattn_tiny" / "f8" / "room00__static" / "seed0" /
                       "meta.json").read_text())
    assert meta["edit_dir"].endswith("edits/room00") and meta["info"]["mode"] == "video"


def fabricate_run(results, name, frames, K, extras=None):
    """A run folder next to the real ones: frames, K.json, meta.json, failed poses.json."""
    run = results / name / "f8" / "room00__static" / "seed0"
    if run.exists():
        shutil.rmtree(run)
    write_frames(run / "frames", frames)
    (run / "K.json").write_text(json.dumps(np.asarray(K).tolist()))
    (run / "meta.json").write_text(json.dumps({"method": name, "seed": 0, "status": "ok"}))
    save_poses(RecoveredPoses(w2c=[None] * len(frames), status="failed", reason="not run"),
               run / "poses.json")
    if extras is not None:
        with open(run / "extras.npz", "wb") as handle:
            np.savez(handle, **extras)
    return run


def score(results, run, edit=True):
    return score_run(
        run, results / "cameras" / "f8" / "room00" / "static.json",
        video_dir=results / "videos" / "f8" / "room00" if edit else None,
        edit_dir=results / "edits" / "room00" if edit else None,
    )


def test_dropping_the_edit_keeps_motion_but_fails_persistence(results, tmp_path):
    """The original video itself (motion right, edit lost) scores as well as the truth on
    track agreement and far worse on persistence of the edited region."""
    video = load_video(results / "videos" / "f8" / "room00")
    run = fabricate_run(tmp_path, "dropped", video.frames, video.camera.K)
    dropped, truth = score(results, run), metrics(results, "gt_render")
    assert dropped["track_epe"] < 1.0
    assert dropped["edit_persistence_region"] > 3 * truth["edit_persistence_region"]
    assert dropped["edit_persistence_region"] > 25


def test_traj_epe_is_zero_for_frames_that_follow_their_trajectories(results, tmp_path):
    """gt_render's frames follow the exact Alg. 3 trajectories of the same path (same
    geometry as the edited scene): traj_epe ~ 0; the static frames do not follow them."""
    view = load_scene_view(results / "scenes" / "room00")
    camera = load_camera_path(results / "cameras" / "f8" / "room00" / "static.json")
    traj = trajectories_from_depth(view.depth, camera.K, camera.w2c, stride=8)
    extras = {"tracks": traj.tracks, "visible": traj.visible}
    frames, _ = read_frames(results / "gt_render" / "f8" / "room00__static" / "seed0" / "frames")
    follows = score(results, fabricate_run(tmp_path, "follows", frames, camera.K, extras),
                    edit=False)
    assert follows["traj_epe"] < 0.5 and follows["traj_epe_fraction"] > 0.8
    assert follows["traj_epe_points"] > 100 and follows["traj_epe_tracker"] == "dis"
    still = np.repeat(frames[:1], len(frames), 0)
    static = score(results, fabricate_run(tmp_path, "still", still, camera.K, extras),
                   edit=False)
    assert static["traj_epe"] > 5.0


def test_trajattn_runs_record_traj_epe(results):
    """trajattn keeps its conditioning trajectories (stride-8 grid of its 64x64 frames); its
    random tiny model makes noise, which the tracker cannot follow: no point, no EPE."""
    run = results / "trajattn_tiny" / "f8" / "room00__static" / "seed0"
    with np.load(run / "extras.npz") as extras:
        assert extras["tracks"].shape == (8, 64, 2) and extras["visible"].shape == (8, 64)
        np.testing.assert_allclose(extras["tracks"][0, :9],  # the grid, row-major
                                   [[0.5 + 8 * i, 0.5] for i in range(8)] + [[0.5, 8.5]])
    meta = json.loads((run / "meta.json").read_text())
    assert meta["info"]["trajectory_extras_stride"] == 8
    out = metrics(results, "trajattn_tiny")
    assert {"traj_epe", "traj_epe_mean", "traj_epe_fraction", "track_epe"} <= set(out)
    assert out["traj_epe_tracker"] == "dis" and out["traj_epe_fraction"] < 0.5


# ----------------------------------------------------------------------------- suites


def write_suite(tmp_path, **changes):
    data = yaml.safe_load(TINY_EDIT.read_text())
    data.update(changes)
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_editing_suite_validation(tmp_path):
    suite = load_suite(TINY_EDIT)
    assert suite.is_editing and suite.is_video and suite.is_synthetic
    with pytest.raises(SuiteError, match="'static'"):
        load_suite(write_suite(tmp_path, cameras=["orbit_left_10deg"]))
    with pytest.raises(SuiteError, match="needs 'edit'"):
        load_suite(write_suite(tmp_path, scenes=[{"name": "a", "seed": 1}]))
    with pytest.raises(SuiteError, match="changes nothing"):
        load_suite(write_suite(tmp_path, scenes=[
            {"name": "a", "seed": 1, "edit": {"recolour": {"hue_deg": 0}}}]))
    with pytest.raises(SuiteError, match="recolour"):
        load_suite(write_suite(tmp_path, scenes=[
            {"name": "a", "seed": 1, "edit": {"recolour": {"colour": "red"}}}]))
    assert load_suite("synthetic-editing").is_editing


@pytest.mark.workflow
def test_synthetic_editing_suite_dry_run(tmp_path):
    out = _snakemake("-n", "--config", "suite=synthetic-editing", f"results={tmp_path}",
                     cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    stats = out.stdout[out.stdout.index("Job stats"):]
    for rule in ["edit", "video", "camera", "generate", "reference", "score"]:
        assert f"\n{rule} " in stats, stats
    assert "table_edit.md" in out.stdout
