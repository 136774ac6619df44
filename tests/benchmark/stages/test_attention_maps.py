"""Fig. 2-style attention maps (benchmark.stages.attention_maps) on the tiny random pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.cameras import CameraPath
from benchmark.stages.attention_maps import (
    AttentionMaps,
    attention_figure,
    collect_attention_maps,
    load_maps,
    main,
    normalise_map,
    plot_attention_maps,
    resolve_blocks,
    resolve_steps,
    save_maps,
)
from methods.base import GenerationRequest
from trajattn.attention import TrajectoryAttentionConfig, capture_attention_maps, temporal_blocks
from trajattn.tiny import build_tiny_pipeline

SIZE = 32  # latent 8x8, UNet levels 8x8 and 4x4: both divide the image exactly
FRAMES = 4
STEPS = 3
K = np.array([[30.0, 0.0, 16.0], [0.0, 30.0, 16.0], [0.0, 0.0, 1.0]])
OPTIONS = {"width": SIZE, "height": SIZE, "num_inference_steps": STEPS}


def make_request(moving: bool = True) -> GenerationRequest:
    """A random image on a sinusoidal surface 2 +- 0.5 deep; the camera trucks right (or stays)."""
    xx = np.arange(SIZE)[None, :].repeat(SIZE, 0)
    depth = (2.0 + 0.5 * np.sin(xx / 5.0)).astype(np.float32)
    w2c = np.repeat(np.eye(4)[None], FRAMES, 0)
    if moving:
        w2c[:, 0, 3] = -np.linspace(0.0, 0.4, FRAMES)
    image = (np.random.default_rng(0).random((SIZE, SIZE, 3)) * 255).astype(np.uint8)
    camera = CameraPath(K=K, w2c=w2c, width=SIZE, height=SIZE)
    return GenerationRequest(image=image, camera=camera, seed=0, depth=depth)


def plain_capture(pipe, request: GenerationRequest, steps: int) -> dict:
    """Independent reference: the core capture context around one direct pipeline call."""
    with capture_attention_maps(pipe.unet) as maps:
        pipe(
            request.image, depth=request.depth, K=K, w2c=request.camera.w2c, height=SIZE,
            width=SIZE, num_inference_steps=steps, generator=torch.Generator().manual_seed(0),
        )
    return maps


@pytest.fixture(scope="module")
def pipe():
    return build_tiny_pipeline(seed=0, config=TrajectoryAttentionConfig(variant="inherit"))


@pytest.fixture(scope="module")
def full(pipe) -> AttentionMaps:
    return collect_attention_maps(pipe, make_request(), options=OPTIONS)


def assert_maps_close(a: dict, b: dict, atol: float = 1e-6) -> None:
    assert set(a) == set(b)
    for block in a:
        assert set(a[block]) == set(b[block])
        for kind in a[block]:
            np.testing.assert_allclose(a[block][kind], b[block][kind], atol=atol, rtol=0)


def max_difference(a: dict, b: dict) -> float:
    return max(float(np.abs(a[bl][k] - b[bl][k]).max()) for bl in a for k in a[bl])


# ------------------------------------------------------------------ capture


def test_maps_are_frame_by_frame_distributions(pipe, full):
    names = list(temporal_blocks(pipe.unet))
    assert len(names) == 4  # the tiny UNet's temporal blocks
    # forward order: down, mid, up (named_modules lists up_blocks before mid_block)
    assert full.blocks == [names[0], names[3], names[1], names[2]]
    assert [b.split(".")[0] for b in full.blocks] == [
        "down_blocks", "mid_block", "up_blocks", "up_blocks"
    ]
    assert full.steps == list(range(STEPS)) and sorted(full.per_step) == full.steps
    assert full.frames.shape == (FRAMES, SIZE, SIZE, 3) and full.frames.dtype == np.uint8
    for block_maps in [full.maps, *full.per_step.values()]:
        for entry in block_maps.values():
            assert set(entry) == {"temporal", "trajectory"}
            for probs in entry.values():
                assert probs.shape == (FRAMES, FRAMES)
                assert np.all(probs >= 0)
                # rows are query frames: a softmax over key frames sums to 1
                np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_all_steps_mean_equals_core_capture(pipe, full):
    # capture_attention_maps averages over every UNet call (one per step here) and records
    # blocks in call order, which forward_order must reproduce
    reference = plain_capture(pipe, make_request(), STEPS)
    assert list(reference) == full.blocks
    assert_maps_close(full.maps, reference, atol=1e-5)


def test_trajectory_differs_from_temporal_for_moving_camera(full):
    for block, entry in full.maps.items():
        diff = np.abs(entry["trajectory"] - entry["temporal"]).max()
        assert diff > 1e-3, block


def test_static_camera_trajectory_equals_temporal():
    # With a static camera every trajectory stays on its pixel; with all trajectories used
    # each latent cell is read the same number of times, and the inherit branch's q/k/v are
    # attn1's: the trajectory map is then exactly the temporal map.
    config = TrajectoryAttentionConfig(variant="inherit", num_trajectories_factor=None)
    static_pipe = build_tiny_pipeline(seed=0, config=config)
    maps = collect_attention_maps(
        static_pipe, make_request(moving=False), options={**OPTIONS, "num_inference_steps": 1}
    )
    for entry in maps.maps.values():
        np.testing.assert_allclose(entry["trajectory"], entry["temporal"], atol=1e-5)


def test_step_zero_equals_one_step_run(pipe, full):
    # SVD's Karras sigmas start at sigma_max whatever the step count, and the noise comes from
    # the same seed: the first step of a 3-step run sees the same UNet input as a 1-step run.
    one_step = plain_capture(pipe, make_request(), 1)
    assert_maps_close(full.per_step[0], one_step, atol=1e-5)
    assert max_difference(full.per_step[0], full.per_step[STEPS - 1]) > 1e-3
    assert max_difference(full.per_step[0], full.maps) > 1e-4


def test_step_filter_captures_only_chosen_steps(pipe, full):
    chosen = collect_attention_maps(pipe, make_request(), steps=[-2], options=OPTIONS)
    assert chosen.steps == [1] and list(chosen.per_step) == [1]
    assert_maps_close(chosen.maps, full.per_step[1], atol=1e-5)
    assert max_difference(chosen.maps, full.per_step[0]) > 1e-3
    with pytest.raises(KeyError, match="not captured"):
        chosen.at(0)


def test_block_filter_and_errors(pipe):
    names = list(temporal_blocks(pipe.unet))
    assert resolve_blocks([3, names[0], "1", names[0]], names) == [names[3], names[0], names[1]]
    assert resolve_blocks(None, names) == names
    with pytest.raises(ValueError, match="unknown block"):
        resolve_blocks(["nowhere"], names)
    with pytest.raises(ValueError, match="outside"):
        resolve_blocks([4], names)
    assert resolve_steps([0, -1, 2], 3) == [0, 2]
    assert resolve_steps(None, 3) is None
    with pytest.raises(ValueError, match="outside"):
        resolve_steps([3], 3)
    with pytest.raises(ValueError, match="outside"):  # checked before anything runs
        collect_attention_maps(pipe, make_request(), steps=[STEPS], options=OPTIONS)


def test_save_and_load_round_trip(full, tmp_path):
    path = save_maps(full, tmp_path / "maps.npz")
    loaded = load_maps(path)
    assert loaded.steps == full.steps and loaded.num_inference_steps == STEPS
    assert loaded.blocks == full.blocks
    assert_maps_close(loaded.maps, full.maps, atol=0)
    for step in full.steps:
        assert_maps_close(loaded.per_step[step], full.per_step[step], atol=0)


# ------------------------------------------------------------------ figure


def test_normalise_map():
    probs = np.array([[0.2, 0.8], [0.5, 0.5]])
    np.testing.assert_allclose(normalise_map(probs), [[0.0, 1.0], [0.5, 0.5]])
    rng = np.random.default_rng(1)
    out = normalise_map(rng.random((5, 5)) * 0.1 + 0.3)
    assert out.min() == 0.0 and out.max() == 1.0
    np.testing.assert_array_equal(normalise_map(np.full((3, 3), 1 / 3)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        normalise_map(np.array([[np.nan, 1.0]]))


def synthetic_maps(blocks: int = 3, frames: int = 5) -> dict:
    rng = np.random.default_rng(2)
    out = {}
    for b in range(blocks):
        out[f"down_blocks.{b}.attentions.0.temporal_transformer_blocks.0"] = {
            kind: rng.dirichlet(np.ones(frames), size=frames).astype(np.float32)
            for kind in ("temporal", "trajectory")
        }
    return out


def test_figure_panels_are_normalised_pairs():
    maps = synthetic_maps(blocks=3)
    names = list(maps)
    fig = attention_figure(maps, blocks=[names[2], 0], title="t")
    axes = fig.get_axes()
    assert len(axes) == 2 * 2 + 1  # a (temporal | trajectory) pair per block + the colour bar
    panels = axes[:4]
    expected = [
        maps[names[2]]["temporal"], maps[names[2]]["trajectory"],
        maps[names[0]]["temporal"], maps[names[0]]["trajectory"],
    ]
    for ax, probs, kind in zip(panels, expected, ["temporal", "trajectory"] * 2, strict=True):
        shown = np.asarray(ax.images[0].get_array())
        assert shown.min() == 0.0 and shown.max() == 1.0
        np.testing.assert_allclose(shown, normalise_map(probs))
        assert ax.images[0].get_clim() == (0.0, 1.0)  # one scale: the shared colour bar
        assert ax.get_xlabel() == "key frame" and ax.get_ylabel() == "query frame"
        assert kind in ax.get_title()
    assert len(axes[4].images) == 0 and axes[4].get_ylabel() == "normalised attention weight"


def test_figure_of_one_step_and_missing_map(full):
    fig = attention_figure(full, step=1)
    assert len(fig.get_axes()) == 2 * len(full.blocks) + 1
    shown = np.asarray(fig.get_axes()[0].images[0].get_array())
    np.testing.assert_allclose(shown, normalise_map(full.per_step[1][full.blocks[0]]["temporal"]))
    assert "step(s) 1 of 3" in fig._suptitle.get_text()
    only_temporal = {"a": {"temporal": np.eye(3) * 0.5 + 1 / 6}}
    fig = attention_figure(only_temporal)
    axes = fig.get_axes()
    assert len(axes) == 3 and len(axes[1].images) == 0
    assert axes[1].texts[0].get_text() == "not captured"


def test_plot_writes_png_and_pdf(tmp_path):
    from PIL import Image

    png, pdf = plot_attention_maps(synthetic_maps(blocks=1), tmp_path / "fig" / "attention.png")
    assert png.is_file() and pdf.is_file()
    assert pdf.read_bytes()[:5] == b"%PDF-"
    with Image.open(png) as image:
        assert image.format == "PNG" and image.width > image.height > 100
    assert sorted(p.name for p in png.parent.iterdir()) == ["attention.pdf", "attention.png"]


# ------------------------------------------------------------------ preset + CLI


def test_cli_with_tiny_preset(tmp_path, capsys):
    out = tmp_path / "attn"
    status = main([
        "--preset", "trajattn_tiny", "--suite", "smoke", "--scene", "room00",
        "--camera", "orbit_left_15deg", "--frames", "4", "--steps", "-1", "--blocks", "0", "3",
        "--set", "width=32", "--set", "height=32", "--set", "num_inference_steps=2",
        "--out", str(out),
    ])
    assert status == 0
    assert sorted(p.name for p in out.iterdir()) == ["attention.pdf", "attention.png", "maps.npz"]
    maps = load_maps(out / "maps.npz")
    assert maps.steps == [1] and maps.num_inference_steps == 2
    assert maps.blocks == [
        "down_blocks.0.attentions.0.temporal_transformer_blocks.0",
        "up_blocks.1.attentions.1.temporal_transformer_blocks.0",
    ]
    assert maps.info["preset"] == "trajattn_tiny" and maps.info["num_frames"] == 4
    assert maps.info["generation"]["resolution"] == [32, 32]
    for entry in maps.maps.values():
        for probs in entry.values():
            assert probs.shape == (4, 4)
            np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert "png:" in capsys.readouterr().out


def test_cli_reports_unavailable_model(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    status = main([
        "--preset", "trajattn", "--scene", "room00", "--frames", "4",
        "--set", "base_model=/nonexistent/svd", "--out", str(tmp_path / "x"),
    ])
    assert status == 2
    assert "huggingface-cli download" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_real_suite_needs_scene_dir():
    from benchmark.stages.attention_maps import scene_request

    with pytest.raises(ValueError, match="--scene-dir"):
        with scene_request("paper-image-230", "anything", "orbit_left_15deg", 4):
            pass


def test_trajbench_attention_is_the_same_command(tmp_path, capsys, monkeypatch):
    """``trajbench attention`` takes the stage's own arguments and exit codes."""
    from benchmark.cli import main as trajbench

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    status = trajbench([
        "attention", "--preset", "trajattn", "--scene", "room00", "--frames", "4",
        "--set", "base_model=/nonexistent/svd", "--out", str(tmp_path / "x"),
        "--card-if-unavailable",
    ])
    assert status == 0  # the workflow's card: written, exit 0
    assert "huggingface-cli download" in capsys.readouterr().err
    assert (tmp_path / "x" / "attention.png").is_file()
    assert (tmp_path / "x" / "attention.pdf").is_file()
    assert not (tmp_path / "x" / "maps.npz").exists()
    with pytest.raises(SystemExit):
        trajbench(["attention", "--scene", "room00"])  # --preset and --out are required
