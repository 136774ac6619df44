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
Guidance rules are upstream's by default (:mod:`trajattn.nvs_guidance`): black hole fill,
upstream's kept-fraction index, statistics per 40x72 latent crop, x0 from the unconditional
pass. Each departure is an option, off by default: ``hole_fill: grey``,
``compat_cutoff: false``, ``crop_latent: null``, ``x0_pass: cfg``.

Video requests (paper Table 2, re-shooting a clip) follow upstream's dynamic setting
(svd_interpolate_dyn_img.py ``save_warped_image``, run by demo.sh with ``--weight_clamp 0.6``
and the same 100 steps and lr 0.02): target frame ``f`` is *video frame f* warped with *its
own depth* by that frame's camera offset ``M_f`` (upstream: ``forward_warp(images[f],
depth[f], pose_s, pose_t)``, offset ``pose_t @ inv(pose_s)`` of its look-at path); frame 0 is
the conditioning image. Here ``M_f = camera.w2c[f] @ inv(video_camera.w2c[f])`` of the
request, and ``video_weight_clamp`` replaces ``weight_clamp`` for video requests.

``tiny: true`` swaps SVD for a tiny random ``StableVideoDiffusionPipeline``
(:mod:`trajattn.tiny` parts): it runs on a CPU in seconds and checks the wiring only.
"""

from __future__ import annotations

from typing import Any

import PIL.Image

from methods.base import GenerationRequest, GenerationResult
from methods.framing import svd_sampling_options
from methods.svd import SVD_OPTIONS, SVD_XT, DiffusionMethod

# The warp targets live in methods.warp_guidance (shared with trajattn); re-exported here.
from methods.warp_guidance import (  # noqa: F401
    guidance_info,
    guidance_targets,
    require_depth,
    video_depth_message,
    video_warp_targets,
    warp_targets,
)


class NVSSolver(DiffusionMethod):
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
        "video_weight_clamp": 0.6,  # video requests: demo.sh dynamic setting --weight_clamp 0.6
        "refresh": True,  # re-run the UNet on the guided latents (upstream's order)
        # Guidance rules: upstream's by default; the alternatives are our departures.
        "compat_cutoff": True,  # upstream's kept-fraction index; false: exactly w of the valid
        "crop_latent": [40, 72],  # statistics per upstream crop (latent cells); null: frame
        "x0_pass": "unconditional",  # upstream: zero CLIP embedding; "cfg": CFG prediction
        "hole_fill": "black",  # upstream zeroes the uint8 frame; "grey": 0 after scaling
        "latent_divisor": 5.6,  # upstream factor_s; null: 1 / vae.config.scaling_factor
        "width": 1024,
        "height": 576,
        **{k: v for k, v in SVD_OPTIONS.items() if k != "decode_chunk_size"},
    }

    def tiny_pipeline(self, dtype: Any) -> Any:
        """A plain SVD pipeline of tiny random parts (:mod:`trajattn.tiny`)."""
        # heavy optional dependencies (torch, diffusers): loaded only when a model is built
        from diffusers import EulerDiscreteScheduler, StableVideoDiffusionPipeline

        from trajattn.tiny import (  # torch
            SVD_SCHEDULER,
            tiny_feature_extractor,
            tiny_image_encoder,
            tiny_unet,
            tiny_vae,
        )

        return StableVideoDiffusionPipeline(
            vae=tiny_vae(0),
            image_encoder=tiny_image_encoder(0),
            unet=tiny_unet(0),
            scheduler=EulerDiscreteScheduler(**SVD_SCHEDULER),
            feature_extractor=tiny_feature_extractor(),
        )

    def load_pipeline(self, dtype: Any) -> Any:
        """SVD-XT from ``base_model`` (``svd_variant`` when set)."""
        from diffusers import StableVideoDiffusionPipeline  # heavy: as above

        from trajattn.pipeline import load_svd  # torch

        kwargs: dict[str, Any] = {"torch_dtype": dtype}
        if self.conf["svd_variant"]:
            kwargs["svd_variant"] = self.conf["svd_variant"]
        return load_svd(
            StableVideoDiffusionPipeline, self.conf["base_model"], self.conf["local_files_only"],
            **kwargs,
        )

    def generate(self, request: GenerationRequest) -> GenerationResult:
        require_depth(request, self.name)
        pipe = self.pipeline()  # first: a missing model fails before any other work or import
        # heavy optional dependencies (torch, trajattn's diffusers code): loaded per call
        import torch

        from trajattn.nvs_guidance import NVSGuidanceConfig, nvs_guidance  # torch
        from trajattn.pipeline import to_uint8_frames  # torch

        conf = self.conf
        width, height = int(conf["width"]), int(conf["height"])
        targets = guidance_targets(request, width, height, self.name)
        video = request.video is not None
        clamp = float(conf["video_weight_clamp"] if video else conf["weight_clamp"])
        guidance = NVSGuidanceConfig(
            lr=float(conf["lr"]),
            weight_clamp=clamp,
            refresh=bool(conf["refresh"]),
            compat_cutoff=bool(conf["compat_cutoff"]),
            crop=None if conf["crop_latent"] is None else tuple(map(int, conf["crop_latent"])),
            x0_pass=str(conf["x0_pass"]),
            hole_fill=str(conf["hole_fill"]),
            latent_divisor=conf["latent_divisor"],
        )
        generator = torch.Generator().manual_seed(int(request.seed))
        with nvs_guidance(pipe, targets["warped"], targets["valid"], guidance) as guided:
            frames = pipe(
                PIL.Image.fromarray(targets["image"]),
                height=height,
                width=width,
                num_frames=request.num_frames,
                **svd_sampling_options(conf),
                generator=generator,
                output_type="np",
                return_dict=False,
            )
        return GenerationResult(
            frames=to_uint8_frames(frames),
            K=targets["K"],
            info={
                "tiny": bool(conf["tiny"]),
                "base_model": None if conf["tiny"] else str(conf["base_model"]),
                "resolution": [width, height],
                "crop_box_xywh": list(targets["crop"]),
                "mode": "video" if video else "image",
                "upstream": "ZHU-Zhiyu/NVS_Solver@b69f2f7 "
                + ("svd_interpolate_dyn_img.py" if video else "svd_interpolate_single_img.py"),
                "num_inference_steps": int(conf["num_inference_steps"]),
                "weight_clamp": clamp,
                "guidance_rules": {
                    "compat_cutoff": guidance.compat_cutoff,
                    "crop_latent": None if guidance.crop is None else list(guidance.crop),
                    "x0_pass": guidance.x0_pass,
                    "hole_fill": guidance.hole_fill,
                },
                **guidance_info(targets["valid"], guided, video),
            },
        )
