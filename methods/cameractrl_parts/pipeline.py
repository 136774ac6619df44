"""The CameraCtrl pipeline: SVD image-to-video whose temporal attention reads the pose
features of a camera path's Plücker rays."""

from __future__ import annotations

from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers import StableVideoDiffusionPipeline

from benchmark.cameras import CameraPath
from methods.camera_formats import plucker_embedding
from methods.cameractrl_parts.defaults import DEFAULTS
from methods.cameractrl_parts.processors import pose_features
from trajattn.pipeline import to_uint8_frames


class CameraCtrlPipeline(StableVideoDiffusionPipeline):
    r"""SVD image-to-video conditioned on a camera path by CameraCtrl.

    Build it from SVD components plus a :class:`CameraPoseEncoder`, with the processors
    attached to the UNet (:func:`attach_pose_processors`) and, for real use, a checkpoint
    loaded (:func:`load_cameractrl_checkpoint`).
    """

    def __init__(self, vae, image_encoder, unet, scheduler, feature_extractor, pose_encoder):
        super().__init__(vae, image_encoder, unet, scheduler, feature_extractor)
        self.register_modules(pose_encoder=pose_encoder)

    @torch.no_grad()
    def encode_pose(self, plucker: np.ndarray | torch.Tensor) -> list[torch.Tensor]:
        """Pose features of Plücker rays (F, 6, H, W) or (B, F, 6, H, W)."""
        rays = torch.as_tensor(plucker)
        if rays.ndim == 4:
            rays = rays[None]
        encoder = self.pose_encoder
        return encoder(rays.to(device=encoder.device, dtype=encoder.dtype))

    @torch.no_grad()
    def __call__(  # type: ignore[override]
        self,
        image: np.ndarray | PIL.Image.Image,
        plucker: np.ndarray | torch.Tensor | None = None,
        camera: CameraPath | None = None,
        height: int = DEFAULTS["height"],
        width: int = DEFAULTS["width"],
        num_frames: int | None = None,
        num_inference_steps: int = DEFAULTS["num_inference_steps"],
        min_guidance_scale: float = DEFAULTS["min_guidance_scale"],
        max_guidance_scale: float = DEFAULTS["max_guidance_scale"],
        fps: int = DEFAULTS["fps"],
        motion_bucket_id: int = DEFAULTS["motion_bucket_id"],
        noise_aug_strength: float = DEFAULTS["noise_aug_strength"],
        decode_chunk_size: int | None = None,
        generator: torch.Generator | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        r"""Generate a clip whose camera follows ``camera`` (or the given Plücker rays).

        Args:
            image: (height, width, 3) uint8 conditioning image (or a PIL image of that size).
            plucker: (F, 6, height, width) rays as CameraCtrl's ``ray_condition`` makes them
                (:func:`methods.camera_formats.plucker_embedding`); or give ``camera``.
            camera: the path with K for ``width`` x ``height`` frames.
            num_frames: defaults to the rays' frame count.
            generator: seeds the noise; the same state gives the same frames.
            kwargs: passed to ``StableVideoDiffusionPipeline.__call__``.

        Returns:
            (F, height, width, 3) uint8 frames.
        """
        if plucker is None:
            if camera is None:
                raise ValueError("give plucker rays or a camera")
            if (camera.width, camera.height) != (width, height):
                raise ValueError(
                    f"camera is for {camera.width}x{camera.height} frames, not {width}x{height}"
                )
            plucker = plucker_embedding(camera, height, width)
        shape = tuple(plucker.shape[-3:])
        if shape != (6, height, width):
            raise ValueError(f"plucker must be (F, 6, {height}, {width}), got {shape}")
        rays_frames = int(plucker.shape[-4])
        num_frames = num_frames or rays_frames
        if num_frames != rays_frames:
            raise ValueError(f"num_frames {num_frames} but the rays have {rays_frames}")
        if isinstance(image, np.ndarray):
            if image.shape != (height, width, 3) or image.dtype != np.uint8:
                raise ValueError(
                    f"image must be uint8 ({height}, {width}, 3), got {image.dtype} {image.shape}"
                )
            image = PIL.Image.fromarray(image)
        elif image.size != (width, height):
            raise ValueError(f"image must be {width}x{height}, got {image.size}")
        features = self.encode_pose(plucker)
        with pose_features(self.unet, features):
            frames = super().__call__(
                image,
                height=height,
                width=width,
                num_frames=num_frames,
                num_inference_steps=num_inference_steps,
                min_guidance_scale=min_guidance_scale,
                max_guidance_scale=max_guidance_scale,
                fps=fps,
                motion_bucket_id=motion_bucket_id,
                noise_aug_strength=noise_aug_strength,
                decode_chunk_size=decode_chunk_size,
                generator=generator,
                output_type="np",
                return_dict=False,
                **kwargs,
            )
        return to_uint8_frames(frames)
