r"""Stable Video Diffusion with trajectory attention (paper Sec. 3, Alg. 3 camera control).

:class:`TrajectoryAttentionPipeline` subclasses diffusers' ``StableVideoDiffusionPipeline``
(its code is not copied): the UNet carries trajectory attention
(:func:`trajattn.attention.apply_trajectory_attention`) and ``__call__`` runs the whole SVD
sampling loop inside :func:`trajattn.attention.trajectories`, so every denoising step (both
CFG halves) attends along the given trajectories. Trajectories come either as pixel tracks
``(F, L, 2)`` + ``visible (F, L)`` in the generated frames' pixels, or from depth + K + w2c
(paper Alg. 3, :func:`trajattn.trajectories.trajectories_from_depth`).

Defaults are the paper's / official code's settings: SVD-XT, 1024x576, 25 frames, 25 steps,
fps 7, motion bucket 127, noise augmentation 0.02, guidance 1.0 -> 3.0.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers import DiffusionPipeline, StableVideoDiffusionPipeline

from trajattn.attention import (
    TrajectoryAttentionConfig,
    apply_trajectory_attention,
    get_config,
    temporal_blocks,
    trajectories,
)
from trajattn.model_files import (
    OFFICIAL_WEIGHTS,
    SVD,
    SVD_XT,
    BaseModel,
    MissingModelError,
    check_base_model,
    local_only,
    looks_like_path,
    resolve_weights_file,
)
from trajattn.settings import PAPER_DEFAULTS
from trajattn.trajectories import trajectories_from_depth
from trajattn.weights import load_branch_weights, load_official_weights

log = logging.getLogger(__name__)

#: Paper / official inference settings.
DEFAULTS: dict[str, Any] = PAPER_DEFAULTS


def load_pretrained(
    pipeline_class: type,
    base_model: str | Path,
    family: BaseModel,
    local_files_only: bool | None = None,
    **kwargs: Any,
) -> Any:
    r"""Load a diffusers pipeline (local folder or hub id) as ``pipeline_class``.

    Shared by the SVD and Wan pipelines so that a missing base model is reported the same way
    (``family`` names it and its download; :func:`trajattn.model_files.check_base_model`
    first, which the adapters also run before importing this module).

    Args:
        pipeline_class: the pipeline class or a subclass (its own ``from_pretrained``
            override, if any, is bypassed).
        local_files_only: never download; default True when ``HF_HUB_OFFLINE`` is set.
        kwargs: passed to ``DiffusionPipeline.from_pretrained``.

    Raises:
        MissingModelError: the model is not available (names the download).
    """
    local_files_only = local_only(local_files_only)
    check_base_model(base_model, family, local_files_only)
    base = str(base_model)
    local = looks_like_path(base)
    try:
        return DiffusionPipeline.from_pretrained.__func__(  # type: ignore[attr-defined]
            pipeline_class,
            str(Path(base).expanduser()) if local else base,
            local_files_only=local_files_only,
            **kwargs,
        )
    except (OSError, ValueError) as exc:
        raise MissingModelError(
            f"cannot load the {family.what} base model {base!r}: download it with "
            f"`{family.download(family.default if local else base)}` "
            f"({type(exc).__name__}: {exc})"
        ) from exc


def load_svd(
    pipeline_class: type[StableVideoDiffusionPipeline],
    base_model: str | Path = SVD_XT,
    local_files_only: bool | None = None,
    **kwargs: Any,
) -> Any:
    r"""Load an SVD checkpoint (local folder or hub id) as ``pipeline_class``.

    Shared by every SVD-based method (trajattn, CameraCtrl, NVS-Solver) so a missing base model
    is reported the same way everywhere (:func:`load_pretrained`).

    Args:
        pipeline_class: ``StableVideoDiffusionPipeline`` or a subclass.
        local_files_only: never download; default True when ``HF_HUB_OFFLINE`` is set.
        kwargs: passed to ``DiffusionPipeline.from_pretrained`` (torch_dtype,
            ``svd_variant="fp16"`` for the checkpoint variant...).

    Raises:
        MissingModelError: SVD is not available (names the download).
    """
    if "svd_variant" in kwargs:
        kwargs["variant"] = kwargs.pop("svd_variant")
    return load_pretrained(pipeline_class, base_model, SVD, local_files_only, **kwargs)


def load_trajattn_weights(unet: torch.nn.Module, path: str | Path) -> list[str]:
    r"""Load weights into a UNet that has trajectory attention applied.

    ``.pth``/``.pt``: the official positional list (:func:`load_official_weights`).
    ``.safetensors``: branch weights (:func:`load_branch_weights`) for ``addon``/``inherit``;
    for ``tuning``, the temporal blocks' ``attn1`` tensors keyed by module path.

    Returns:
        The keys or module paths loaded.
    """
    path = Path(path)
    variant = get_config(unet).variant
    if path.suffix in (".pth", ".pt"):
        return load_official_weights(unet, path)
    if path.suffix != ".safetensors":
        raise ValueError(f"{path}: weights must be .pth (official) or .safetensors")
    if variant in ("addon", "inherit"):
        return load_branch_weights(unet, path)
    if variant == "vanilla":
        raise ValueError("the vanilla variant trains nothing: give no weights")
    from safetensors.torch import load_file

    state = load_file(str(path))
    expected = {
        f"{name}.attn1.{key}"
        for name, block in temporal_blocks(unet).items()
        for key, _ in block.attn1.named_parameters()
    }
    if set(state) != expected:
        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        raise KeyError(f"{path}: missing {missing[:3]}..., unexpected {extra[:3]}...")
    unet.load_state_dict(state, strict=False)
    return sorted(state)


def to_uint8_frames(frames: np.ndarray) -> np.ndarray:
    """Float frames in [0, 1] (any leading batch of 1 dropped) to uint8 (F, H, W, 3)."""
    frames = np.asarray(frames)
    if frames.ndim == 5:
        if frames.shape[0] != 1:
            raise ValueError(f"expected one video, got {frames.shape[0]}")
        frames = frames[0]
    return np.clip(np.rint(frames * 255.0), 0, 255).astype(np.uint8)


def resolve_trajectories(
    tracks: np.ndarray | torch.Tensor | None,
    visible: np.ndarray | torch.Tensor | None,
    depth: np.ndarray | None,
    K: np.ndarray | None,
    w2c: np.ndarray | None,
    size: tuple[int, int],
    num_frames: int | None,
    track_stride: int,
) -> tuple[Any, Any, int]:
    r"""The trajectories a pipeline call follows: ``tracks``/``visible`` as given, or from
    ``depth``/``K``/``w2c`` (paper Alg. 3); checks them against ``size`` (height, width) and
    ``num_frames`` (None: the trajectories' count). Returns tracks, visible, frame count."""
    height, width = size
    if tracks is None:
        if depth is None or K is None or w2c is None:
            raise ValueError("give tracks + visible, or depth + K + w2c")
        if np.shape(depth) != (height, width):
            raise ValueError(f"depth must be ({height}, {width}), got {np.shape(depth)}")
        traj = trajectories_from_depth(depth, K, w2c, stride=track_stride)
        tracks, visible = traj.tracks, traj.visible
    elif visible is None:
        raise ValueError("tracks need visible (F, L)")
    frames_in_tracks = int(tracks.shape[0])
    num_frames = num_frames or frames_in_tracks
    if num_frames != frames_in_tracks:
        raise ValueError(f"num_frames {num_frames} but trajectories have {frames_in_tracks}")
    return tracks, visible, num_frames


def conditioning_image(image: np.ndarray | PIL.Image.Image, size: tuple[int, int]):
    """The conditioning image as PIL, checked to be ``size`` (height, width) (uint8 RGB)."""
    height, width = size
    if isinstance(image, np.ndarray):
        if image.shape != (height, width, 3) or image.dtype != np.uint8:
            raise ValueError(
                f"image must be uint8 ({height}, {width}, 3), got {image.dtype} {image.shape}"
            )
        return PIL.Image.fromarray(image)
    if image.size != (width, height):
        raise ValueError(f"image must be {width}x{height}, got {image.size}")
    return image


class TrajectoryAttentionPipeline(StableVideoDiffusionPipeline):
    r"""SVD image-to-video with trajectory attention active at every denoising step.

    Build it with :meth:`from_pretrained`, or wrap loaded SVD components
    (``TrajectoryAttentionPipeline(**svd.components)``) and call
    :meth:`attach_trajectory_attention`.
    """

    def attach_trajectory_attention(
        self,
        config: TrajectoryAttentionConfig | None = None,
        weights: str | Path | None = None,
        local_files_only: bool = True,
    ) -> TrajectoryAttentionPipeline:
        """Apply trajectory attention to the UNet and load ``weights`` (path or hub spec)."""
        apply_trajectory_attention(self.unet, config or TrajectoryAttentionConfig())
        if weights is not None:
            load_trajattn_weights(self.unet, resolve_weights_file(weights, local_files_only))
        return self

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls,
        base_model: str | Path = SVD_XT,
        trajattn_weights: str | Path | None = OFFICIAL_WEIGHTS,
        variant: str = "inherit",
        attention_config: TrajectoryAttentionConfig | None = None,
        local_files_only: bool | None = None,
        **kwargs: Any,
    ) -> TrajectoryAttentionPipeline:
        r"""Load SVD from a local folder or hub id, attach trajectory attention, load weights.

        Args:
            base_model: diffusers folder or hub id of SVD (default SVD-XT).
            trajattn_weights: official ``.pth``, our ``.safetensors``, a hub spec
                ``"repo_id:filename"``, or None (no weights: an untrained branch).
            variant: Table 3 variant, used when ``attention_config`` is None.
            local_files_only: never download; default True when ``HF_HUB_OFFLINE`` is set.
            kwargs: passed to ``StableVideoDiffusionPipeline.from_pretrained`` (torch_dtype,
                variant="fp16" as ``svd_variant``...).

        Raises:
            MissingModelError: SVD or the weights are not available (names the download).
        """
        pipe = load_svd(cls, base_model, local_files_only, **kwargs)
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
        fps: int = DEFAULTS["fps"],
        motion_bucket_id: int = DEFAULTS["motion_bucket_id"],
        noise_aug_strength: float = DEFAULTS["noise_aug_strength"],
        min_guidance_scale: float = DEFAULTS["min_guidance_scale"],
        max_guidance_scale: float = DEFAULTS["max_guidance_scale"],
        decode_chunk_size: int | None = None,
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
            num_frames: defaults to the trajectories' frame count (25 for the paper).
            track_stride: pixel stride of the depth trajectories.
            generator: seeds the noise; the same generator state gives the same frames.
            kwargs: passed to ``StableVideoDiffusionPipeline.__call__``.

        Returns:
            (F, height, width, 3) uint8 frames.
        """
        tracks, visible, num_frames = resolve_trajectories(
            tracks, visible, depth, K, w2c, (height, width), num_frames, track_stride
        )
        image = conditioning_image(image, (height, width))
        with trajectories(self.unet, tracks, visible, image_size=(height, width)):
            frames = super().__call__(
                image,
                height=height,
                width=width,
                num_frames=num_frames,
                num_inference_steps=num_inference_steps,
                fps=fps,
                motion_bucket_id=motion_bucket_id,
                noise_aug_strength=noise_aug_strength,
                min_guidance_scale=min_guidance_scale,
                max_guidance_scale=max_guidance_scale,
                decode_chunk_size=decode_chunk_size,
                generator=generator,
                output_type="np",
                return_dict=False,
                **kwargs,
            )
        return to_uint8_frames(frames)
