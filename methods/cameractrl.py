"""``cameractrl``: CameraCtrl-SVD (He et al. 2024) as released for SVD / SVD-XT.

The conditioning image is fitted to 576x320 (centre crop to the aspect ratio, then resize; K
follows), the camera path becomes per-pixel Plücker rays of the fitted frames relative to
frame 0 (:func:`methods.camera_formats.plucker_embedding`: what upstream ``inference.py``
feeds the pose encoder) and :class:`methods.cameractrl_parts.pipeline.CameraCtrlPipeline` generates
``request.num_frames`` frames. Defaults follow upstream ``inference.py``: SVD-XT with
``CameraCtrl_svdxt.ckpt`` (the paper's comparison, 25 frames), 25 steps, guidance 1 -> 3,
fps 7, motion bucket 127, noise augmentation 0.02. The returned K describes the output frames.

``tiny: true`` swaps the models for tiny random ones (:func:`methods.cameractrl_parts.
tiny.build_tiny_pipeline`): runs on a CPU in seconds, checks the wiring only (its frames are noise).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmark.cameras import CameraPath
from methods.base import GenerationRequest, GenerationResult
from methods.cameractrl_parts.defaults import (
    CAMERACTRL_DEFAULTS,
    CKPT_REPO,
    CKPT_SVD_XT,
    SVD_XT_POSE_ENCODER,
)
from methods.framing import fit_to_resolution, svd_sampling_options
from methods.svd import SVD_OPTIONS, SVD_XT, DiffusionMethod
from trajattn.model_files import check_weights_file, collect_missing  # no torch


class CameraCtrl(DiffusionMethod):
    name = "cameractrl"
    default_conf: dict[str, Any] = {
        "base_model": SVD_XT,  # diffusers folder or hub id of SVD / SVD-XT
        # CameraCtrl-SVD checkpoint: local path or "repo_id:filename" on the hub
        "checkpoint": f"{CKPT_REPO}:{CKPT_SVD_XT}",
        "max_frames": 25,  # rows of the pose encoder's position table: 25 SVD-XT, 14 SVD
        **CAMERACTRL_DEFAULTS,  # upstream inference settings: 576x320, 25 steps, CFG 1 -> 3...
        **SVD_OPTIONS,
    }

    def tiny_pipeline(self, dtype: Any) -> Any:
        """Tiny random SVD parts with a tiny pose encoder (:mod:`methods.cameractrl_parts.tiny`)."""
        from methods.cameractrl_parts.tiny import build_tiny_pipeline  # torch, diffusers

        return build_tiny_pipeline(seed=0, max_frames=int(self.conf["max_frames"]))

    def _checkpoint(self) -> tuple[str, str, str]:
        """The checkpoint spec, its name in messages and how to download it."""
        spec = str(self.conf["checkpoint"])
        filename = Path(spec).name or CKPT_SVD_XT
        hint = (
            f"download it with `huggingface-cli download {CKPT_REPO} {filename}` "
            "and give its path as checkpoint"
        )
        return spec, "CameraCtrl-SVD checkpoint", hint

    def model_file_checks(self) -> list[Callable[[], Any]]:
        """The checkpoint, then SVD (base class)."""
        spec, what, hint = self._checkpoint()
        local_files_only = self.conf["local_files_only"]
        return [
            lambda: check_weights_file(spec, local_files_only, what, hint),
            *super().model_file_checks(),
        ]

    def load_pipeline(self, dtype: Any) -> Any:
        """SVD from ``base_model`` with the CameraCtrl checkpoint; a missing checkpoint and a
        missing SVD are reported together."""
        # heavy optional dependencies (torch, diffusers): loaded only when a model is built
        from diffusers import StableVideoDiffusionPipeline

        from methods.cameractrl_parts.checkpoint import load_cameractrl_checkpoint  # torch
        from methods.cameractrl_parts.encoder import CameraPoseEncoder  # torch, diffusers
        from methods.cameractrl_parts.pipeline import CameraCtrlPipeline  # torch, diffusers
        from methods.cameractrl_parts.processors import attach_pose_processors  # torch, diffusers
        from trajattn.pipeline import load_svd, resolve_weights_file  # torch

        conf = self.conf
        spec, what, hint = self._checkpoint()
        ckpt, svd = collect_missing([  # downloads allowed: the loaders find out, not the checks
            lambda: resolve_weights_file(spec, conf["local_files_only"], what, hint),
            lambda: load_svd(StableVideoDiffusionPipeline, conf["base_model"],
                             conf["local_files_only"], torch_dtype=dtype),
        ])
        sizes = {**SVD_XT_POSE_ENCODER, "max_frames": int(conf["max_frames"])}
        encoder = CameraPoseEncoder(**sizes)
        attach_pose_processors(svd.unet)
        load_cameractrl_checkpoint(svd.unet, encoder, ckpt)
        return CameraCtrlPipeline(**svd.components, pose_encoder=encoder)

    def generate(self, request: GenerationRequest) -> GenerationResult:
        conf = self.conf
        width, height = int(conf["width"]), int(conf["height"])
        cam = request.camera
        if request.num_frames > int(conf["max_frames"]):
            raise ValueError(
                f"cameractrl with max_frames={conf['max_frames']} cannot make "
                f"{request.num_frames} frames (its pose encoder's position table); run this "
                "preset at that many frames or fewer"
            )
        pipe = self.pipeline()  # a missing model fails before the heavy imports below
        # heavy optional dependencies (torch; camera_formats imports trajattn): loaded per call
        import torch

        from methods.camera_formats import plucker_embedding  # imports trajattn (torch)

        image, _, K, crop = fit_to_resolution(request.image, None, cam.K, width, height)
        fitted = CameraPath(K=K, w2c=cam.w2c, width=width, height=height, name=cam.name)
        plucker = plucker_embedding(fitted, height, width)
        generator = torch.Generator().manual_seed(int(request.seed))
        frames = pipe(
            image,
            plucker=plucker,
            height=height,
            width=width,
            num_frames=request.num_frames,
            **svd_sampling_options(conf),
            generator=generator,
        )
        return GenerationResult(
            frames=frames,
            K=K,
            info={
                "tiny": bool(conf["tiny"]),
                "base_model": None if conf["tiny"] else str(conf["base_model"]),
                "checkpoint": None if conf["tiny"] else str(conf["checkpoint"]),
                "resolution": [width, height],
                "crop_box_xywh": list(crop),
            },
        )
