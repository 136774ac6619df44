r"""A tiny randomly initialised :class:`TrajectoryAttentionPipeline` for CPU tests.

Every SVD component at toy size, deterministic from a seed: the UNet of
``tests/tiny_models.py`` (8 input channels = 4 noise + 4 image latents, 4 outputs), a 3-level
temporal-decoder VAE (downsampling factor 4, 4 latent channels), a 1-layer CLIP vision
encoder whose projection matches the UNet's ``cross_attention_dim`` and the scheduler with
SVD's settings. Its frames are noise-like: it checks wiring and shapes, not quality.
"""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderKLTemporalDecoder,
    EulerDiscreteScheduler,
    UNetSpatioTemporalConditionModel,
)
from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

from trajattn.attention import TrajectoryAttentionConfig
from trajattn.pipeline import TrajectoryAttentionPipeline

CROSS_ATTENTION_DIM = 32
#: SVD's pipeline always resizes the CLIP input to 224x224 (``_encode_image``); large patches
#: keep the tiny encoder cheap (16 tokens).
CLIP_IMAGE_SIZE = 224
CLIP_PATCH_SIZE = 56
#: SVD-XT's scheduler_config.json.
SVD_SCHEDULER = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "sigma_max": 700.0,
    "sigma_min": 0.002,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "timestep_type": "continuous",
    "use_karras_sigmas": True,
}


def tiny_unet(seed: int = 0) -> UNetSpatioTemporalConditionModel:
    """A 2-level SVD UNet with 4 temporal transformer blocks."""
    torch.manual_seed(seed)
    return UNetSpatioTemporalConditionModel(
        sample_size=8,
        in_channels=8,
        out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        num_attention_heads=(2, 4),
        cross_attention_dim=CROSS_ATTENTION_DIM,
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=24,  # 3 added time ids x 8
    ).eval()


def tiny_vae(seed: int = 0) -> AutoencoderKLTemporalDecoder:
    """3 levels of 32 channels (GroupNorm needs multiples of 32): downsampling factor 4."""
    torch.manual_seed(seed)
    return AutoencoderKLTemporalDecoder(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        block_out_channels=(32, 32, 32),
        layers_per_block=1,
        latent_channels=4,
        sample_size=64,
    ).eval()


def tiny_image_encoder(seed: int = 0) -> CLIPVisionModelWithProjection:
    torch.manual_seed(seed)
    config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        projection_dim=CROSS_ATTENTION_DIM,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=CLIP_IMAGE_SIZE,
        patch_size=CLIP_PATCH_SIZE,
    )
    return CLIPVisionModelWithProjection(config).eval()


def tiny_feature_extractor(size: int = CLIP_IMAGE_SIZE) -> CLIPImageProcessor:
    """CLIP normalisation; SVD's and Wan's pipelines resize themselves, so size/crop only
    document 224."""
    return CLIPImageProcessor(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    )


def randomise_branch_outputs(model: torch.nn.Module, seed: int) -> None:
    """Small random weights (from ``seed``) in every branch's zeroed output projection, so
    that trajectories change a tiny model's output, as trained weights would."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".traj_attn.to_out." in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.05)


def build_tiny_pipeline(
    seed: int = 0, config: TrajectoryAttentionConfig | None = None
) -> TrajectoryAttentionPipeline:
    r"""The tiny pipeline with trajectory attention attached (default variant ``inherit``).

    The inherit branch's zero output projection is given small random weights (from ``seed``)
    so trajectories change the output, as trained weights would.
    """
    pipe = TrajectoryAttentionPipeline(
        vae=tiny_vae(seed),
        image_encoder=tiny_image_encoder(seed),
        unet=tiny_unet(seed),
        scheduler=EulerDiscreteScheduler(**SVD_SCHEDULER),
        feature_extractor=tiny_feature_extractor(),
    )
    config = config or TrajectoryAttentionConfig(variant="inherit")
    pipe.attach_trajectory_attention(config)
    if config.has_branch:
        randomise_branch_outputs(pipe.unet, seed + 1)
    pipe.set_progress_bar_config(disable=True)
    return pipe
