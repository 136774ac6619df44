"""The trajectory-attention SVD pipeline (trajattn.pipeline) on the tiny random pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trajattn.pipeline import (
    MissingModelError,
    TrajectoryAttentionPipeline,
    resolve_weights_file,
    to_uint8_frames,
)
from trajattn.tiny import build_tiny_pipeline
from trajattn.trajectories import trajectories_from_depth

SIZE = 64
FRAMES = 8
K = np.array([[60.0, 0.0, 32.0], [0.0, 60.0, 32.0], [0.0, 0.0, 1.0]])


def analytic_scene(shift: float = 0.3):
    """A sinusoidal surface 2 +- 0.5 deep, a camera trucking right, a random image."""
    xx = np.arange(SIZE)[None, :].repeat(SIZE, 0)
    depth = 2.0 + 0.5 * np.sin(xx / 10.0)
    w2c = np.repeat(np.eye(4)[None], FRAMES, 0)
    w2c[:, 0, 3] = -np.linspace(0.0, shift, FRAMES)
    image = (np.random.default_rng(0).random((SIZE, SIZE, 3)) * 255).astype(np.uint8)
    return image, depth, w2c


def generate(pipe, **kwargs) -> np.ndarray:
    image, depth, w2c = analytic_scene(kwargs.pop("shift", 0.3))
    inputs = dict(depth=depth, K=K, w2c=w2c) if "tracks" not in kwargs else {}
    return pipe(
        image,
        **inputs,
        **kwargs,
        height=SIZE,
        width=SIZE,
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(0),
    )


@pytest.fixture(scope="module")
def pipe():
    return build_tiny_pipeline(seed=0)


@pytest.fixture(scope="module")
def frames(pipe):
    return generate(pipe)


def test_tiny_pipeline_shape_and_determinism(pipe, frames):
    assert isinstance(pipe, TrajectoryAttentionPipeline)
    assert pipe.vae_scale_factor == 4  # 64 px -> 16 latent cells, matching the UNet
    assert frames.shape == (FRAMES, SIZE, SIZE, 3) and frames.dtype == np.uint8
    assert np.array_equal(frames, generate(build_tiny_pipeline(seed=0)))  # same seed, same frames
    # trajectories reach the UNet at every step: another camera path changes the frames
    assert not np.array_equal(frames, generate(pipe, shift=-0.3))


def test_tracks_input_equals_depth_input(pipe, frames):
    _, depth, w2c = analytic_scene()
    traj = trajectories_from_depth(depth, K, w2c)
    assert np.array_equal(generate(pipe, tracks=traj.tracks, visible=traj.visible), frames)


def test_input_errors(pipe):
    image, depth, w2c = analytic_scene()
    with pytest.raises(ValueError, match="tracks"):
        pipe(image, height=SIZE, width=SIZE)
    with pytest.raises(ValueError, match="num_frames"):
        pipe(image, depth=depth, K=K, w2c=w2c, height=SIZE, width=SIZE, num_frames=5)
    with pytest.raises(ValueError, match="image must be"):
        pipe(image[:32], depth=depth, K=K, w2c=w2c, height=SIZE, width=SIZE)


def test_missing_model_and_weights_name_the_download(tmp_path):
    with pytest.raises(MissingModelError, match="huggingface-cli download stabilityai"):
        TrajectoryAttentionPipeline.from_pretrained(tmp_path / "no-svd-here")
    with pytest.raises(MissingModelError, match="zeqixiao/TrajectoryAttention trajattn_temp"):
        resolve_weights_file(tmp_path / "trajattn_temp.pth")
    with pytest.raises(MissingModelError, match="huggingface-cli download zeqixiao"):
        resolve_weights_file("zeqixiao/TrajectoryAttention:trajattn_temp.pth", True)


def test_to_uint8_frames():
    frames = np.array([[[[[0.0, 0.5, 1.2]]]]])
    assert to_uint8_frames(frames).tolist() == [[[[0, 128, 255]]]]


def test_from_pretrained_local_folder_and_branch_weights(tmp_path, pipe, frames):
    from diffusers import StableVideoDiffusionPipeline

    from trajattn.tiny import tiny_feature_extractor, tiny_image_encoder, tiny_unet, tiny_vae
    from trajattn.weights import official_state_list, save_branch_weights

    plain = StableVideoDiffusionPipeline(
        vae=tiny_vae(0),
        image_encoder=tiny_image_encoder(0),
        unet=tiny_unet(0),
        scheduler=pipe.scheduler,
        feature_extractor=tiny_feature_extractor(),
    )
    plain.save_pretrained(tmp_path / "svd")
    save_branch_weights(pipe.unet, tmp_path / "branch.safetensors")
    with pytest.raises(MissingModelError, match="trajattn_temp.pth"):
        TrajectoryAttentionPipeline.from_pretrained(
            tmp_path / "svd", trajattn_weights=tmp_path / "missing" / "trajattn_temp.pth"
        )
    loaded = TrajectoryAttentionPipeline.from_pretrained(
        tmp_path / "svd", trajattn_weights=tmp_path / "branch.safetensors", local_files_only=True
    )
    loaded.set_progress_bar_config(disable=True)
    assert np.array_equal(generate(loaded), frames)
    torch.save(official_state_list(pipe.unet), tmp_path / "trajattn_temp.pth")
    official = TrajectoryAttentionPipeline.from_pretrained(
        tmp_path / "svd", trajattn_weights=tmp_path / "trajattn_temp.pth", local_files_only=True
    )
    official.set_progress_bar_config(disable=True)
    assert np.array_equal(generate(official), frames)
