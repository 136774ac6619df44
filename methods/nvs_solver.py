"""``nvs_solver``: NVS-Solver (Zhu et al., ICLR 2025), training-free camera control on SVD-XT.

The conditioning image and its depth are fitted to the model resolution (1024x576: centre crop
to its aspect ratio, then resize; K follows), warped along the request's camera path with our
K and w2c (:func:`trajattn.warp.warp_image`), and SVD-XT samples ``request.num_frames`` frames
while :func:`trajattn.nvs_guidance.nvs_guidance` pulls every Euler step toward the warped
frames outside their holes. Upstream (ZHU-Zhiyu/NVS_Solver @ b69f2f7,
svd_interpolate_single_img.py) instead forward-warps with a hard-coded focal of 260 px along
look-at camera paths and converts Depth-Anything-V2 disparity to depth (``10000 / d``); our
request already carries z-depth. Sampling settings are upstream's: 100 Euler steps, fps 7,
motion bucket 127, noise augmentation 0.02, guidance 1 -> 3, lr 0.02, weight clamp 0.2.

``tiny: true`` swaps SVD for a tiny random ``StableVideoDiffusionPipeline``
(:mod:`trajattn.tiny` parts): it runs on a CPU in seconds and checks the wiring only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from methods.base import GenerationRequest, GenerationResult, Method, MethodUnavailable
from methods.framing import fit_to_resolution, resolve_device_dtype

SVD_XT = "stabilityai/stable-video-diffusion-img2vid-xt"


def warp_targets(
    image: np.ndarray, depth: np.ndarray, K: np.ndarray, w2c: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    r"""Warped frames and validity of the conditioning image along a camera path.

    Args:
        image: (H, W, 3) uint8; depth: (H, W) z-depth; K: (3, 3) in the image's pixels;
        w2c: (F, 4, 4) world-to-camera, frame 0 the image's view.

    Returns:
        (F, H, W, 3) uint8 warped frames (zeros in holes) and (F, H, W) bool validity; frame 0
        is the image itself, valid everywhere (upstream guides frame 0 with the full image).
    """
    from trajattn.warp import warp_image

    warped, valid = warp_image(image, depth, K, w2c)
    frames = np.clip(np.rint(warped), 0, 255).astype(np.uint8)
    frames[0] = image
    valid[0] = True
    return frames, valid


class NVSSolver(Method):
    name = "nvs_solver"
    default_conf: dict[str, Any] = {
        "base_model": SVD_XT,  # diffusers folder or hub id of SVD-XT
        "svd_variant": None,  # checkpoint variant to load ("fp16" as upstream), null: default
        "num_inference_steps": 100,  # upstream single-image script (its sigmas_100.npy)
        "fps": 7,
        "motion_bucket_id": 127,
        "noise_aug_strength": 0.02,
        "min_guidance_scale": 1.0,
        "max_guidance_scale": 3.0,
        "decode_chunk_size": 8,  # upstream decodes 8 frames at a time
        "lr": 0.02,  # guidance step size (demo.sh --lr)
        "weight_clamp": 0.2,  # lower clamp of the kept fraction (demo.sh --weight_clamp)
        "refresh": True,  # re-run the UNet on the guided latents (upstream's order)
        "compat_cutoff": False,  # reproduce upstream's hole-count slip in the cutoff index
        "latent_divisor": 5.6,  # upstream factor_s; null: 1 / vae.config.scaling_factor
        "width": 1024,
        "height": 576,
        "device": "auto",  # "auto": cuda when available, else cpu
        "dtype": "auto",  # "auto": float16 on cuda, float32 on cpu
        "local_files_only": None,  # never download; null: only when HF_HUB_OFFLINE is set
        "tiny": False,  # tiny random SVD for CPU tests (ignores base_model)
    }

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__(conf)
        self._pipe = None

    def pipeline(self) -> Any:
        """The loaded SVD pipeline (built on first use). Raises MethodUnavailable naming the
        download when SVD-XT is missing."""
        if self._pipe is not None:
            return self._pipe
        from diffusers import EulerDiscreteScheduler, StableVideoDiffusionPipeline

        from trajattn.pipeline import MissingModelError, load_svd

        conf = self.conf
        device, dtype = resolve_device_dtype(conf["device"], conf["dtype"])
        if conf["tiny"]:
            from trajattn.tiny import (
                SVD_SCHEDULER,
                tiny_feature_extractor,
                tiny_image_encoder,
                tiny_unet,
                tiny_vae,
            )

            pipe = StableVideoDiffusionPipeline(
                vae=tiny_vae(0),
                image_encoder=tiny_image_encoder(0),
                unet=tiny_unet(0),
                scheduler=EulerDiscreteScheduler(**SVD_SCHEDULER),
                feature_extractor=tiny_feature_extractor(),
            )
        else:
            kwargs: dict[str, Any] = {"torch_dtype": dtype}
            if conf["svd_variant"]:
                kwargs["svd_variant"] = conf["svd_variant"]
            try:
                pipe = load_svd(
                    StableVideoDiffusionPipeline,
                    conf["base_model"],
                    conf["local_files_only"],
                    **kwargs,
                )
            except MissingModelError as exc:
                raise MethodUnavailable(str(exc)) from exc
        pipe = pipe.to(device=device, dtype=dtype)
        pipe.set_progress_bar_config(disable=True)
        self._pipe = pipe
        return pipe

    def generate(self, request: GenerationRequest) -> GenerationResult:
        if request.depth is None:
            raise MethodUnavailable(
                "nvs_solver warps the conditioning image with its depth: give the scene's "
                "depth.npy (synthetic suites) or run the suite's depth stage (Depth-Anything-V2)"
            )
        import PIL.Image
        import torch

        from trajattn.nvs_guidance import NVSGuidanceConfig, nvs_guidance
        from trajattn.pipeline import to_uint8_frames

        conf = self.conf
        width, height = int(conf["width"]), int(conf["height"])
        cam = request.camera
        image, depth, K, crop = fit_to_resolution(
            request.image, request.depth, cam.K, width, height
        )
        pipe = self.pipeline()  # first: a missing model fails before the warp's work
        warped, valid = warp_targets(image, depth, K, cam.w2c)
        guidance = NVSGuidanceConfig(
            lr=float(conf["lr"]),
            weight_clamp=float(conf["weight_clamp"]),
            refresh=bool(conf["refresh"]),
            compat_cutoff=bool(conf["compat_cutoff"]),
            latent_divisor=conf["latent_divisor"],
        )
        generator = torch.Generator().manual_seed(int(request.seed))
        with nvs_guidance(pipe, warped, valid, guidance) as guided:
            frames = pipe(
                PIL.Image.fromarray(image),
                height=height,
                width=width,
                num_frames=request.num_frames,
                num_inference_steps=conf["num_inference_steps"],
                fps=conf["fps"],
                motion_bucket_id=conf["motion_bucket_id"],
                noise_aug_strength=conf["noise_aug_strength"],
                min_guidance_scale=conf["min_guidance_scale"],
                max_guidance_scale=conf["max_guidance_scale"],
                decode_chunk_size=conf["decode_chunk_size"],
                generator=generator,
                output_type="np",
                return_dict=False,
            )
        return GenerationResult(
            frames=to_uint8_frames(frames),
            K=K,
            info={
                "tiny": bool(conf["tiny"]),
                "base_model": None if conf["tiny"] else str(conf["base_model"]),
                "resolution": [width, height],
                "crop_box_xywh": list(crop),
                "warp": "trajattn.warp.warp_image with the request's K and w2c (upstream: "
                "forward splatting with focal 260 px on look-at paths)",
                "valid_fraction_per_frame": [round(float(v), 4) for v in valid.mean((1, 2))],
                "weight_schedule_v1_v2_v3": list(guided.chosen) if guided.chosen else None,
                "guidance_rms_per_step": [round(h["rms"], 6) for h in guided.history],
            },
        )
