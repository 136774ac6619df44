"""Tiny random CameraCtrl models for CPU tests (noise-like frames, wiring only)."""

from __future__ import annotations

import torch
from diffusers import EulerDiscreteScheduler

from methods.cameractrl_parts.checkpoint import processor_parameters
from methods.cameractrl_parts.encoder import CameraPoseEncoder
from methods.cameractrl_parts.pipeline import CameraCtrlPipeline
from methods.cameractrl_parts.processors import attach_pose_processors
from trajattn.tiny import (
    SVD_SCHEDULER,
    tiny_feature_extractor,
    tiny_image_encoder,
    tiny_unet,
    tiny_vae,
)


def tiny_pose_encoder(seed: int = 0, max_frames: int = 25) -> CameraPoseEncoder:
    """A pose encoder sized for ``trajattn.tiny.tiny_unet`` (levels 32, 64; VAE factor 4)."""
    torch.manual_seed(seed)
    return CameraPoseEncoder(
        downscale_factor=4, channels=(32, 64), nums_rb=2, cin=96, ksize=1, num_heads=2,
        max_frames=max_frames,
    ).eval()


def build_tiny_pipeline(seed: int = 0, max_frames: int = 25) -> CameraCtrlPipeline:
    r"""Tiny random CameraCtrl pipeline for CPU tests (noise-like frames, wiring only).

    The zero ``qkv_merge`` layers get small random weights (from ``seed``) so the camera
    changes the output, as trained weights would.
    """
    unet = tiny_unet(seed)
    attach_pose_processors(unet)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for param in processor_parameters(unet).values():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.1)
    pipe = CameraCtrlPipeline(
        vae=tiny_vae(seed),
        image_encoder=tiny_image_encoder(seed),
        unet=unet,
        scheduler=EulerDiscreteScheduler(**SVD_SCHEDULER),
        feature_extractor=tiny_feature_extractor(),
        pose_encoder=tiny_pose_encoder(seed, max_frames),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
