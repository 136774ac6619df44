"""``cameractrl``: CameraCtrl-SVD (He et al. 2024) as released for SVD / SVD-XT.

The conditioning image is fitted to 576x320 (centre crop to the aspect ratio, then resize; K
follows), the camera path becomes per-pixel Plücker rays of the fitted frames relative to
frame 0 (:func:`methods.camera_formats.plucker_embedding`: what upstream ``inference.py``
feeds the pose encoder) and :class:`methods.cameractrl_model.CameraCtrlPipeline` generates
``request.num_frames`` frames. Defaults follow upstream ``inference.py``: SVD-XT with
``CameraCtrl_svdxt.ckpt`` (the paper's comparison, 25 frames), 25 steps, guidance 1 -> 3,
fps 7, motion bucket 127, noise augmentation 0.02. The returned K describes the output frames.

``tiny: true`` swaps the models for tiny random ones (:func:`methods.cameractrl_model.
build_tiny_pipeline`): runs on a CPU in seconds, checks the wiring only (its frames are noise).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmark.cameras import CameraPath
from methods.base import GenerationRequest, GenerationResult, Method, MethodUnavailable
from methods.framing import fit_to_resolution, resolve_device_dtype, svd_sampling_options

SVD_XT = "stabilityai/stable-video-diffusion-img2vid-xt"
CKPT_REPO = "hehao13/CameraCtrl_SVD_ckpts"
CKPT_SVD_XT = "CameraCtrl_svdxt.ckpt"


#: Upstream inference settings (``inference.py`` arguments and the pipeline's defaults).
CAMERACTRL_DEFAULTS: dict[str, Any] = {
    "width": 576,
    "height": 320,
    "num_inference_steps": 25,
    "min_guidance_scale": 1.0,
    "max_guidance_scale": 3.0,
    "fps": 7,
    "motion_bucket_id": 127,
    "noise_aug_strength": 0.02,
}


class CameraCtrl(Method):
    name = "cameractrl"
    default_conf: dict[str, Any] = {
        "base_model": SVD_XT,  # diffusers folder or hub id of SVD / SVD-XT
        # CameraCtrl-SVD checkpoint: local path or "repo_id:filename" on the hub
        "checkpoint": f"{CKPT_REPO}:{CKPT_SVD_XT}",
        "max_frames": 25,  # rows of the pose encoder's position table: 25 SVD-XT, 14 SVD
        **CAMERACTRL_DEFAULTS,  # upstream inference settings: 576x320, 25 steps, CFG 1 -> 3...
        "decode_chunk_size": None,  # frames per VAE decode; null = all at once
        "device": "auto",  # "auto": cuda when available, else cpu
        "dtype": "auto",  # "auto": float16 on cuda, float32 on cpu
        "local_files_only": None,  # never download; null: only when HF_HUB_OFFLINE is set
        "tiny": False,  # tiny random models for CPU tests (ignores base_model/checkpoint)
    }

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__(conf)
        self._pipe = None

    def pipeline(self) -> Any:
        """The loaded pipeline (built on first use). Raises MethodUnavailable when SVD or the
        CameraCtrl checkpoint is missing, naming what to download."""
        if self._pipe is not None:
            return self._pipe
        from methods import cameractrl_model as cm
        from trajattn.pipeline import MissingModelError, load_svd, resolve_weights_file

        conf = self.conf
        device, dtype = resolve_device_dtype(conf["device"], conf["dtype"])
        if conf["tiny"]:
            pipe = cm.build_tiny_pipeline(seed=0, max_frames=int(conf["max_frames"]))
        else:
            from diffusers import StableVideoDiffusionPipeline

            spec = str(conf["checkpoint"])
            filename = Path(spec).name or CKPT_SVD_XT
            problems, ckpt, svd = [], None, None
            try:
                ckpt = resolve_weights_file(
                    spec,
                    conf["local_files_only"],
                    what="CameraCtrl-SVD checkpoint",
                    download_hint=(
                        f"download it with `huggingface-cli download {CKPT_REPO} {filename}` "
                        "and give its path as checkpoint"
                    ),
                )
            except MissingModelError as exc:
                problems.append(str(exc))
            try:
                svd = load_svd(
                    StableVideoDiffusionPipeline, conf["base_model"], conf["local_files_only"],
                    torch_dtype=dtype,
                )
            except MissingModelError as exc:
                problems.append(str(exc))
            if problems:
                raise MethodUnavailable("; ".join(problems))
            encoder = cm.CameraPoseEncoder(
                **{**cm.SVD_XT_POSE_ENCODER, "max_frames": int(conf["max_frames"])}
            )
            cm.attach_pose_processors(svd.unet)
            cm.load_cameractrl_checkpoint(svd.unet, encoder, ckpt)
            pipe = cm.CameraCtrlPipeline(**svd.components, pose_encoder=encoder)
        pipe = pipe.to(device=device, dtype=dtype)
        pipe.set_progress_bar_config(disable=True)
        self._pipe = pipe
        return pipe

    def generate(self, request: GenerationRequest) -> GenerationResult:
        import torch

        from methods.camera_formats import plucker_embedding

        conf = self.conf
        width, height = int(conf["width"]), int(conf["height"])
        cam = request.camera
        if request.num_frames > int(conf["max_frames"]):
            raise ValueError(
                f"cameractrl with max_frames={conf['max_frames']} cannot make "
                f"{request.num_frames} frames (its pose encoder's position table); run this "
                "preset at that many frames or fewer"
            )
        image, _, K, crop = fit_to_resolution(request.image, None, cam.K, width, height)
        fitted = CameraPath(K=K, w2c=cam.w2c, width=width, height=height, name=cam.name)
        plucker = plucker_embedding(fitted, height, width)
        pipe = self.pipeline()
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
