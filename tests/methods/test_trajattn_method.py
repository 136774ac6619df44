"""The ``trajattn`` adapter (methods/trajattn.py) with the tiny preset, and in the workflow."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark.cameras import save_camera_path
from benchmark.cameras.paths import make_camera_path
from benchmark.sources.scenes import load_scene_view, make_scene_camera
from benchmark.stages.generate import load_preset, run_generation
from methods import create_method
from methods.base import GenerationRequest, MethodUnavailable
from methods.framing import fit_to_resolution

W, H, FRAMES = 48, 40, 6
K = np.array([[40.0, 0.0, 24.0], [0.0, 40.0, 20.0], [0.0, 0.0, 1.0]])


def request(depth: bool = True, seed: int = 0) -> GenerationRequest:
    camera = make_camera_path("orbit_left_15deg", K, W, H, FRAMES, depth=2.0)
    image = (np.random.default_rng(1).random((H, W, 3)) * 255).astype(np.uint8)
    return GenerationRequest(
        image=image, camera=camera, seed=seed, depth=np.full((H, W), 2.0) if depth else None
    )


@pytest.fixture(scope="module")
def tiny():
    return create_method("trajattn", load_preset("trajattn_tiny")["args"])


def test_fit_to_resolution_crops_centre_and_scales_K():
    image = np.zeros((H, W, 3), np.uint8)
    image[:, :4] = 255  # the 4 columns cropped away on the left
    depth = np.arange(H * W, dtype=np.float32).reshape(H, W)
    out, out_depth, k, crop = fit_to_resolution(image, depth, K, 64, 64)
    assert crop == (4, 0, 40, 40)
    assert out.shape == (64, 64, 3) and out_depth.shape == (64, 64)
    assert out[:, :2].max() == 0  # the white columns are gone
    assert set(np.unique(out_depth)) <= set(np.unique(depth))  # nearest: no blended depths
    # A point seen at input pixel (x, y) lands at ((x - 4) * 1.6, y * 1.6) in the output.
    point = np.array([0.3, -0.2, 2.0])
    uv_in = (K @ point)[:2] / point[2]
    uv_out = (k @ point)[:2] / point[2]
    np.testing.assert_allclose(uv_out, (uv_in - [4, 0]) * 1.6)


def test_tiny_preset_generates_frames_and_K(tiny):
    result = tiny.generate(request())
    assert result.frames.shape == (FRAMES, 64, 64, 3) and result.frames.dtype == np.uint8
    expected = K.copy()
    expected[0, 2] -= 4
    expected[:2] *= 64 / 40
    np.testing.assert_allclose(result.K, expected)
    assert result.info["crop_box_xywh"] == [4, 0, 40, 40]
    assert np.array_equal(tiny.generate(request()).frames, result.frames)  # seeded


def test_needs_depth(tiny):
    with pytest.raises(MethodUnavailable, match="depth"):
        tiny.generate(request(depth=False))


def test_missing_model_is_unavailable_naming_the_download(tmp_path):
    method = create_method("trajattn", {"base_model": str(tmp_path / "svd-xt"), "tiny": False})
    with pytest.raises(MethodUnavailable, match="stabilityai/stable-video-diffusion-img2vid-xt"):
        method.generate(request())


def test_nvs_guidance_defaults_are_upstreams_rules():
    # "Ours w. NVS-Solver": the official trajattn code runs NVS-Solver's step_single (cutoff
    # index, refreshed prediction); a departure is an option, off by default, whichever
    # preset turns the guidance on
    from trajattn.nvs_guidance import NVSGuidanceConfig

    adapter = create_method("trajattn", {"nvs_guidance": True})._guidance_config()
    upstream = NVSGuidanceConfig()
    for option in ("compat_cutoff", "refresh", "crop", "x0_pass", "hole_fill", "lr"):
        assert getattr(adapter, option) == getattr(upstream, option), option
    assert adapter.weight_clamp == 0.6  # the official trajattn pipeline's, not NVS-Solver's demo


def test_presets_load_and_have_known_options():
    for name in [
        "trajattn",
        "trajattn_tiny",
        "trajattn_vanilla",
        "trajattn_tuning",
        "trajattn_addon",
        "trajattn_inherit",
    ]:
        preset = load_preset(name)
        assert preset["adapter"] == "trajattn"
        create_method("trajattn", preset["args"])  # unknown options would raise


def test_run_generation_with_tiny_preset(tmp_path, prepared_scene):
    scene_dir = prepared_scene(
        "name: t\nkind: synthetic\nnum_frames: 4\nwidth: 96\nheight: 64\n"
        "cameras: [orbit_left_15deg]\nscenes:\n  - {name: room00, seed: 0}\n", "room00")
    camera = make_scene_camera(load_scene_view(scene_dir), "orbit_left_15deg", 4)
    camera_file = save_camera_path(camera, tmp_path / "camera.json")
    out = tmp_path / "run"
    meta = run_generation("trajattn_tiny", scene_dir, camera_file, 0, out)
    assert meta["status"] == "ok", meta["reason"]
    assert json.loads((out / "meta.json").read_text())["num_frames"] == 4
    assert len(list((out / "frames").glob("*.png"))) == 4
    k = np.array(json.loads((out / "K.json").read_text()))
    assert k.shape == (3, 3) and k[0, 2] == pytest.approx(32.0) and k[1, 2] == pytest.approx(32.0)


@pytest.mark.parametrize("backbone", ["svd", "wan"])
def test_trajbench_train_hands_its_flags_to_the_trainer(backbone, monkeypatch):
    """``trajbench train [--backbone wan] FLAGS`` runs that trainer's command line."""
    import importlib

    from benchmark.cli import main as trajbench

    module = importlib.import_module("trajattn.train" if backbone == "svd"
                                     else "trajattn.wan.train")
    seen = {}

    def fake_train(config, resume):
        seen.update(config=config, resume=resume)
        return {"step": 2}

    monkeypatch.setattr(module, "train", fake_train)
    extra = [] if backbone == "svd" else ["--backbone", "wan"]
    argv = ["train", *extra, "--data", "clips", "--out", "runs/x", "--steps", "2", "--tiny"]
    assert trajbench(argv) == 0
    assert type(seen["config"]).__module__ == module.__name__
    assert (seen["config"].data, seen["config"].steps, seen["config"].tiny) == ("clips", 2, True)
    assert seen["resume"] is True
