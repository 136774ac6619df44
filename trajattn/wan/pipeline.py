r"""Wan 2.1 image-to-video with trajectory attention (paper Sec. 5.6, Alg. 3 camera control).

:class:`WanTrajectoryPipeline` subclasses diffusers' ``WanImageToVideoPipeline`` (its code is
not copied): the transformer carries trajectory attention
(:func:`trajattn.wan.attention.apply_trajectory_attention`) and ``__call__`` runs Wan's whole
sampling loop inside :func:`trajattn.wan.attention.trajectories`, so every denoising step and
both classifier-free-guidance passes attend along the same trajectories. Trajectories come as
pixel tracks ``(F, L, 2)`` + ``visible (F, L)`` of the generated frames, or from depth + K +
w2c (paper Alg. 3, :func:`trajattn.trajectories.trajectories_from_depth`); they are mapped to
latent frames by :mod:`trajattn.wan.frames`.

Frame counts must be ``4k + 1`` (Wan's VAE; default 81) and sizes multiples of 16 (VAE 8 x
patch 2): unlike the parent pipeline, which rounds silently, other values are refused, since
the trajectories were computed for the requested frames and size.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers import WanImageToVideoPipeline

from trajattn.attention import TrajectoryAttentionConfig
from trajattn.model_files import WAN, WAN_BRANCH_WEIGHTS, WAN_I2V_480P
from trajattn.pipeline import (
    conditioning_image,
    load_pretrained,
    resolve_trajectories,
    resolve_weights_file,
    to_uint8_frames,
)
from trajattn.wan.attention import apply_trajectory_attention, is_applied, trajectories
from trajattn.wan.frames import num_latent_frames
from trajattn.wan.weights import load_weights

#: Wan's I2V defaults (diffusers' pipeline and model card): 832x480, 81 frames, 50 steps, CFG 5.
DEFAULTS: dict[str, Any] = {
    "width": 832,
    "height": 480,
    "num_frames": 81,
    "num_inference_steps": 50,
    "guidance_scale": 5.0,
}


class WanTrajectoryPipeline(WanImageToVideoPipeline):
    r"""Wan image-to-video with trajectory attention active at every denoising step.

    Build it with :meth:`from_pretrained`, or from components
    (``WanTrajectoryPipeline(**pipe.components)``) and :meth:`attach_trajectory_attention`.
    """

    def _transformers(self) -> list[torch.nn.Module]:
        """The transformers that denoise (Wan 2.2 has a second, low-noise one)."""
        models = (self.transformer, getattr(self, "transformer_2", None))
        return [m for m in models if m is not None]

    def attach_trajectory_attention(
        self,
        config: TrajectoryAttentionConfig | None = None,
        weights: str | Path | None = None,
        local_files_only: bool = True,
    ) -> WanTrajectoryPipeline:
        """Apply trajectory attention to the transformer(s) and load ``weights`` (a
        safetensors path or hub spec ``repo_id:filename``) into the first."""
        config = config or TrajectoryAttentionConfig()
        for model in self._transformers():
            apply_trajectory_attention(model, config)
        if weights is not None:
            path = resolve_weights_file(weights, local_files_only, *WAN_BRANCH_WEIGHTS)
            load_weights(self.transformer, path)
        return self

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls,
        base_model: str | Path = WAN_I2V_480P,
        trajattn_weights: str | Path | None = None,
        variant: str = "inherit",
        attention_config: TrajectoryAttentionConfig | None = None,
        local_files_only: bool | None = None,
        **kwargs: Any,
    ) -> WanTrajectoryPipeline:
        r"""Load Wan I2V from a local folder or the hub cache, attach trajectory attention.

        Args:
            base_model: diffusers folder or hub id (default Wan 2.1 I2V 14B 480p).
            trajattn_weights: branch safetensors (path or ``repo_id:filename``), or None.
            local_files_only: never download; default True when ``HF_HUB_OFFLINE`` is set.
            kwargs: passed to ``DiffusionPipeline.from_pretrained`` (torch_dtype...).

        Raises:
            MissingModelError: Wan or the weights are not available (names the download).
        """
        pipe = load_pretrained(
            cls, base_model, WAN, local_files_only, **kwargs
        )
        config = attention_config or TrajectoryAttentionConfig(variant=variant)
        return pipe.attach_trajectory_attention(config, trajattn_weights, local_files_only)

    @torch.no_grad()
    def __call__(  # type: ignore[override]
        self,
        image: np.ndarray | PIL.Image.Image,
        tracks: np.ndarray | torch.Tensor | None = None,
        visible: np.ndarray | torch.Tensor | None = None,
        depth: np.ndarray | None = None,
        K: np.ndarray | None = None,
        w2c: np.ndarray | None = None,
        height: int = DEFAULTS["height"],
        width: int = DEFAULTS["width"],
        num_frames: int | None = None,
        num_inference_steps: int = DEFAULTS["num_inference_steps"],
        guidance_scale: float = DEFAULTS["guidance_scale"],
        generator: torch.Generator | None = None,
        track_stride: int = 1,
        **kwargs: Any,
    ) -> np.ndarray:
        r"""Generate a clip whose motion follows the trajectories.

        Args:
            image: (height, width, 3) uint8 conditioning image (or a PIL image of that size).
            tracks, visible: (F, L, 2) pixel xy (pixel centres at +0.5) in the generated
                frames' pixels and (F, L) bool; or give ``depth``/``K``/``w2c`` instead.
            depth: (height, width) z-depth of the image; K: (3, 3) in the frames' pixels;
                w2c: (F, 4, 4) world-to-camera, frame 0 the image's view (paper Alg. 3).
            num_frames: ``4k + 1``; defaults to the trajectories' frame count.
            track_stride: pixel stride of the depth trajectories.
            kwargs: passed to ``WanImageToVideoPipeline.__call__`` (prompt, negative_prompt,
                prompt_embeds, negative_prompt_embeds...).

        Returns:
            (F, height, width, 3) uint8 frames.
        """
        tracks, visible, num_frames = resolve_trajectories(
            tracks, visible, depth, K, w2c, (height, width), num_frames, track_stride
        )
        ratio = int(self.vae_scale_factor_temporal)
        num_latent_frames(num_frames, ratio)  # raises unless 4k + 1
        multiple = self.vae_scale_factor_spatial * self.transformer.config.patch_size[1]
        if height % multiple or width % multiple:
            raise ValueError(f"height and width must be multiples of {multiple}: {width}x{height}")
        image = conditioning_image(image, (height, width))
        models = self._transformers()
        if not all(is_applied(m) for m in models):
            raise RuntimeError("call attach_trajectory_attention first")
        with contextlib.ExitStack() as stack:
            for model in models:
                stack.enter_context(trajectories(model, tracks, visible, (height, width), ratio))
            frames = super().__call__(
                image,
                height=height,
                width=width,
                num_frames=num_frames,
                num_inference_steps=num_inference_steps,
                guidance_scale=guidance_scale,
                generator=generator,
                output_type="np",
                return_dict=False,
                **kwargs,
            )[0]
        return to_uint8_frames(frames)
