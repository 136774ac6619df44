r"""Tiny randomly initialised Wan 2.1 image-to-video components for CPU tests.

Every component of ``WanImageToVideoPipeline`` at toy size, deterministic from a seed: a
2-block ``WanTransformer3DModel`` (2 heads x 8 channels, patch 1x2x2, image cross-attention
as in Wan 2.1 I2V), an ``AutoencoderKLWan`` with Wan's compression (8x space, 4x time) and 4
latent channels, a 1-layer CLIP vision encoder and the flow-matching Euler scheduler. There is
no text encoder: callers pass :func:`tiny_prompt_embeds` (Wan's image cross-attention assumes
exactly 512 text tokens). Its frames are noise-like: it checks wiring, not quality.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanTransformer3DModel
from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

from trajattn.attention import TrajectoryAttentionConfig
from trajattn.tiny import randomise_branch_outputs, tiny_feature_extractor
from trajattn.wan.pipeline import WanTrajectoryPipeline

Z_DIM = 4
TEXT_DIM = 16
TEXT_TOKENS = 512  # WanAttnProcessor hard-codes the text context length
IMAGE_DIM = 16
CLIP_IMAGE_SIZE = 224
CLIP_PATCH_SIZE = 56


def tiny_transformer(seed: int = 0, num_layers: int = 2) -> WanTransformer3DModel:
    """I2V transformer: noise (4) + frame mask (4) + image latents (4) channels in."""
    torch.manual_seed(seed)
    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=3 * Z_DIM,
        out_channels=Z_DIM,
        text_dim=TEXT_DIM,
        freq_dim=16,
        ffn_dim=32,
        num_layers=num_layers,
        cross_attn_norm=True,
        image_dim=IMAGE_DIM,
        added_kv_proj_dim=16,
        rope_max_seq_len=64,
    ).eval()


def tiny_vae(seed: int = 0) -> AutoencoderKLWan:
    """Wan's causal video VAE at 8 base channels: 8x spatial, 4x temporal compression."""
    torch.manual_seed(seed)
    return AutoencoderKLWan(
        base_dim=8,
        z_dim=Z_DIM,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
        latents_mean=[0.0] * Z_DIM,
        latents_std=[1.0] * Z_DIM,
    ).eval()


def tiny_image_encoder(seed: int = 0) -> CLIPVisionModel:
    torch.manual_seed(seed)
    config = CLIPVisionConfig(
        hidden_size=IMAGE_DIM,
        intermediate_size=32,
        num_hidden_layers=2,  # the pipeline reads hidden_states[-2]
        num_attention_heads=2,
        image_size=CLIP_IMAGE_SIZE,
        patch_size=CLIP_PATCH_SIZE,
    )
    return CLIPVisionModel(config).eval()


def tiny_image_processor() -> CLIPImageProcessor:
    return tiny_feature_extractor(CLIP_IMAGE_SIZE)


def tiny_scheduler() -> FlowMatchEulerDiscreteScheduler:
    """Flow matching with Wan 480p's shift 3."""
    return FlowMatchEulerDiscreteScheduler(shift=3.0)


def tiny_prompt_embeds(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(prompt_embeds, negative_prompt_embeds)``, each (1, 512, TEXT_DIM)."""
    generator = torch.Generator().manual_seed(seed)
    shape = (1, TEXT_TOKENS, TEXT_DIM)
    return torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)


def tiny_components(seed: int = 0) -> dict:
    """Keyword arguments of ``WanImageToVideoPipeline`` (no tokenizer/text encoder)."""
    return {
        "tokenizer": None,
        "text_encoder": None,
        "vae": tiny_vae(seed),
        "scheduler": tiny_scheduler(),
        "image_processor": tiny_image_processor(),
        "image_encoder": tiny_image_encoder(seed),
        "transformer": tiny_transformer(seed),
    }


def build_tiny_pipeline(seed: int = 0, config: TrajectoryAttentionConfig | None = None):
    r"""The tiny :class:`trajattn.wan.pipeline.WanTrajectoryPipeline` with trajectory attention
    attached (default variant ``inherit``).

    The inherit branch's zero output projection gets small random weights (from ``seed``) so
    trajectories change the output, as trained weights would.
    """

    pipe = WanTrajectoryPipeline(**tiny_components(seed))
    config = config or TrajectoryAttentionConfig(variant="inherit")
    pipe.attach_trajectory_attention(config)
    if config.has_branch:
        randomise_branch_outputs(pipe.transformer, seed + 1)
    pipe.set_progress_bar_config(disable=True)
    return pipe
