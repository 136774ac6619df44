"""Video camera control in the trajattn and NVS-Solver adapters, and "Ours w. NVS-Solver".

A synthetic scene filmed along path A (a truck) is the input video; the request re-shoots it
with the offsets of path B (a pedestal up), so the re-shot camera of frame f is ``M_f @ w2c_A_f``
and everything a method derives from the video can be checked against exact renders.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.cameras import CameraPath
from benchmark.cameras.paths import make_camera_path
from benchmark.sources.synthetic import canonical_K, make_scene, render_frames
from benchmark.stages.generate import load_preset
from methods import create_method
from methods.base import GenerationRequest, MethodUnavailable
from methods.framing import fit_to_resolution, fit_video
from methods.nvs_solver import video_warp_targets
from trajattn.flow_tracks import grid_points
from trajattn.tracking import make_tracker
from trajattn.trajectories import relative_w2c, trajectories_from_depth
from trajattn.video_trajectories import combine_with_camera

W, H, F = 128, 72, 6  # 16:9 as 1024x576: the nvs_solver_tiny size, no crop
TINY = 64  # trajattn_tiny / trajattn_nvs_tiny: 64x64, a centre crop of the 16:9 frames
STRIDE = 4  # trajattn's default video_track_stride


@pytest.fixture(scope="module")
def shot():
    scene = make_scene(6)
    K = canonical_K(W, H)
    _, base_depth = render_frames(scene, K, scene.base_w2c[None], W, H)
    median = float(np.median(base_depth))
    path_a = make_camera_path("truck_right_10pct", K, W, H, F, depth=median,
                              base_w2c=scene.base_w2c)
    video, depths = render_frames(scene, K, path_a.w2c, W, H)
    path_b = make_camera_path("pedestal_up_10pct", K, W, H, F, depth=median,
                              base_w2c=scene.base_w2c)
    offsets = relative_w2c(path_b.w2c)  # what the harness applies (benchmark.sources.videos)
    composed = CameraPath(K=K, w2c=offsets @ path_a.w2c, width=W, height=H, name="b@a")
    return {"scene": scene, "K": K, "video": video, "depths": depths, "a": path_a,
            "composed": composed, "offsets": offsets}


def video_request(shot, camera=None, depth=True, seed=0) -> GenerationRequest:
    return GenerationRequest(
        image=shot["video"][0], camera=camera or shot["composed"], seed=seed,
        video=shot["video"], video_depth=shot["depths"] if depth else None,
        video_camera=shot["a"],
    )


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


class PipelineSpy:
    """Wraps a pipeline: records the keyword arguments of every call, then delegates."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.calls: list[dict] = []

    def __call__(self, *args, **kwargs):
        self.calls.append(kwargs)
        return self.pipe(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.pipe, name)


def tiny_method(preset: str, **overrides):
    return create_method("trajattn", {**load_preset(preset)["args"], **overrides})


@pytest.fixture(scope="module")
def tiny():
    return tiny_method("trajattn_tiny")


def run_spied(method, request):
    spy = PipelineSpy(method.pipeline())
    method.pipeline = lambda: spy  # instance attribute shadows the method
    try:
        result = method.generate(request)
    finally:
        del method.pipeline
    assert len(spy.calls) == 1
    return result, spy.calls[0]


@pytest.fixture(scope="module")
def video_run(tiny, shot):
    return run_spied(tiny, video_request(shot))


def fitted(shot):
    """The video, depths and K fitted to 64x64 frame by frame (crop 28 px each side)."""
    outs = [fit_to_resolution(shot["video"][f], shot["depths"][f], shot["K"], TINY, TINY)
            for f in range(F)]
    return (np.stack([o[0] for o in outs]), np.stack([o[1] for o in outs]), outs[0][2])


# ----------------------------------------------------------------------------- helpers


def test_video_offsets_recover_the_applied_offsets(shot):
    video = np.zeros((shot["a"].num_frames, H, W, 3), np.uint8)
    request = GenerationRequest(image=video[0], camera=shot["composed"], video=video,
                                video_camera=shot["a"])
    offsets = request.camera_offsets()
    np.testing.assert_allclose(offsets, shot["offsets"], atol=1e-9)
    np.testing.assert_allclose(offsets[0], np.eye(4), atol=1e-12)


def test_fit_video_crops_every_frame_like_the_image():
    video = np.zeros((3, H, W, 3), np.uint8)
    video[:, :, :28] = 255  # the 28 columns cropped away on the left of 128x72 -> 72x72
    depths = np.ones((3, H, W), np.float32)
    frames, out_depths, k, crop = fit_video(video, depths, canonical_K(W, H), TINY, TINY)
    assert crop == (28, 0, 72, 72)
    assert frames.shape == (3, TINY, TINY, 3) and out_depths.shape == (3, TINY, TINY)
    assert frames[:, :, :2].max() == 0
    # cx = 64 -> (64 - 28) * 64 / 72 = 32; focal scaled by 64 / 72.
    np.testing.assert_allclose(k[:2, 2], [32.0, 32.0])
    np.testing.assert_allclose(k[0, 0], canonical_K(W, H)[0, 0] * TINY / 72)


# ----------------------------------------------------------------------------- trajattn


def test_trajattn_tiny_on_a_video_request_generates_frames_and_K(video_run, shot):
    result, _ = video_run
    assert result.frames.shape == (F, TINY, TINY, 3) and result.frames.dtype == np.uint8
    np.testing.assert_allclose(result.K, fitted(shot)[2])
    info = result.info
    assert info["mode"] == "video" and info["tracker"] == "dis"
    assert info["video_track_stride"] == STRIDE and info["num_tracks"] == (TINY // STRIDE) ** 2
    assert 0.3 < info["valid_fraction"] <= 1.0 and info["valid_fraction_per_frame"][0] > 0.9
    assert "nvs_guidance" not in info


def test_trajattn_passes_alg4_trajectories_of_the_fitted_video(video_run, shot):
    _, call = video_run
    assert {"depth", "K", "w2c"}.isdisjoint(call)  # tracks, not the image path's Alg. 3
    frames, depths, k = fitted(shot)
    offsets = shot["composed"].w2c @ np.linalg.inv(shot["a"].w2c)
    raw = make_tracker("dis").track(frames, grid_points(TINY, TINY, STRIDE))
    expected = combine_with_camera(raw, depths, k, offsets)
    np.testing.assert_array_equal(call["tracks"], expected.tracks)
    np.testing.assert_array_equal(call["visible"], expected.visible)
    # ... and they follow the scene along the composed cameras (exact, from the depth).
    exact = trajectories_from_depth(depths[0], k, shot["composed"].w2c, stride=STRIDE)
    both = call["visible"] & exact.visible
    assert both[1:].mean() > 0.5
    error = np.linalg.norm(call["tracks"] - exact.tracks, axis=-1)[1:][both[1:]]
    assert np.median(error) < 1.0
    # The camera part matters: the video's own tracks alone are pixels off.
    alone = np.linalg.norm(raw.tracks - exact.tracks, axis=-1)[1:][both[1:]]
    assert np.median(alone) > 3.0


def test_identity_offsets_pass_the_raw_tracks(tiny, shot):
    _, call = run_spied(tiny, video_request(shot, camera=shot["a"]))
    frames = fitted(shot)[0]
    raw = make_tracker("dis").track(frames, grid_points(TINY, TINY, STRIDE))
    np.testing.assert_allclose(call["tracks"], raw.tracks, atol=1e-3)
    assert not (call["visible"] & ~raw.visible).any()  # validity only ever removes
    assert (call["visible"] == raw.visible).mean() > 0.98


def test_missing_video_depth_is_unavailable(tiny, shot):
    request = video_request(shot, depth=False)
    for method in (tiny, create_method("nvs_solver", load_preset("nvs_solver_tiny")["args"])):
        with pytest.raises(MethodUnavailable, match="depth of every input frame"):
            method.generate(request)


def test_tracker_that_cannot_run_is_unavailable(shot):
    try:
        import cotracker  # noqa: F401
    except ImportError:
        method = tiny_method("trajattn_tiny", tracker="cotracker3")
        with pytest.raises(MethodUnavailable, match="pip install"):
            method.generate(video_request(shot))
    else:  # pragma: no cover - only where CoTracker is installed
        pytest.skip("CoTracker is installed here")


# ----------------------------------------------------------------------------- NVS-Solver


def test_video_targets_match_renders_of_the_composed_cameras(shot):
    warped, valid = video_warp_targets(shot["video"], shot["depths"], shot["K"], shot["offsets"])
    truth, _ = render_frames(shot["scene"], shot["K"], shot["composed"].w2c, W, H)
    assert np.array_equal(warped[0], shot["video"][0]) and valid[0].all()
    for f in range(1, F):
        assert valid[f].mean() > 0.6
        good = psnr(warped[f][valid[f]], truth[f][valid[f]])
        assert good > 25, (f, good)
    # Upstream's image setting (frame 0 warped by M_f) is not this: far from the truth.
    from_first, ok = video_warp_targets(np.repeat(shot["video"][:1], F, 0),
                                        np.repeat(shot["depths"][:1], F, 0), shot["K"],
                                        shot["offsets"])
    assert psnr(from_first[-1][ok[-1]], truth[-1][ok[-1]]) < good - 5


def test_nvs_solver_video_request_guides_toward_the_video_targets(shot, monkeypatch):
    import trajattn.nvs_guidance as guidance_module

    seen = {}
    real = guidance_module.nvs_guidance

    def spy(pipe, warped, valid, config=None):
        seen.update(warped=warped, valid=valid, config=config)
        return real(pipe, warped, valid, config)

    monkeypatch.setattr(guidance_module, "nvs_guidance", spy)
    # 64x40 (SVD needs multiples of 8): the 16:9 frames are cropped to 115x72, then resized.
    args = {**load_preset("nvs_solver_tiny")["args"], "width": 64, "height": 40}
    result = create_method("nvs_solver", args).generate(video_request(shot))
    assert result.frames.shape == (F, 40, 64, 3)
    frames, depths, k, crop = fit_video(shot["video"], shot["depths"], shot["K"], 64, 40)
    assert crop == (6, 0, 115, 72) and result.info["crop_box_xywh"] == list(crop)
    np.testing.assert_allclose(result.K, k)
    warped, valid = video_warp_targets(frames, depths, k, shot["offsets"])
    assert np.array_equal(seen["warped"], warped) and np.array_equal(seen["valid"], valid)
    assert seen["config"].weight_clamp == 0.6  # upstream's dynamic setting (demo.sh)
    assert result.info["mode"] == "video"
    assert "svd_interpolate_dyn_img.py" in result.info["upstream"]
    assert len(result.info["guidance_rms_per_step"]) == 4


# ----------------------------------------------------------------------------- Ours w. NVS


def test_trajattn_nvs_tiny_guidance_is_active(tiny, video_run, shot):
    plain = video_run[0].frames
    def nvs_method(**overrides):
        method = tiny_method("trajattn_nvs_tiny", **overrides)
        method._pipe = tiny.pipeline()  # the same tiny model; the guidance is per call
        return method

    guided = nvs_method().generate(video_request(shot))
    assert guided.frames.shape == plain.shape
    assert not np.array_equal(guided.frames, plain)
    info = guided.info["nvs_guidance"]
    assert info["weight_clamp"] == 0.6 and max(info["guidance_rms_per_step"]) > 0
    assert info["valid_fraction_per_frame"][0] == 1.0
    unguided = nvs_method(nvs_lr=0.0).generate(video_request(shot))
    assert np.array_equal(unguided.frames, plain)  # zero step: exactly trajattn_tiny


def test_trajattn_nvs_presets(tmp_path, shot):
    real = load_preset("trajattn_nvs")
    assert real["adapter"] == "trajattn"
    assert real["args"]["nvs_guidance"] is True and real["args"]["num_inference_steps"] == 50
    method = create_method("trajattn", {**real["args"], "base_model": str(tmp_path / "svd")})
    with pytest.raises(MethodUnavailable, match="huggingface-cli download"):
        method.generate(video_request(shot))
    tiny_args = load_preset("trajattn_nvs_tiny")["args"]
    plain_args = load_preset("trajattn_tiny")["args"]
    assert {k: v for k, v in tiny_args.items() if not k.startswith("nvs_")} == plain_args
