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

import numpy as np

from methods.base import GenerationRequest, GenerationResult, Method, MethodUnavailable
from methods.framing import fit_to_resolution, fit_video, resolve_device_dtype, svd_sampling_options

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


def video_warp_targets(
    frames: np.ndarray, depths: np.ndarray, K: np.ndarray, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    r"""Guidance targets of a video request (upstream svd_interpolate_dyn_img.py setting).

    Target frame f is video frame f warped with its own depth by the offset ``M_f``
    (:func:`trajattn.warp.warp_image` with the path ``[I, M_f]``, index 1); frame 0 is video
    frame 0 (the conditioning image), valid everywhere, as upstream guides it with the image.

    Args:
        frames: (F, H, W, 3) uint8 input video; depths: (F, H, W) its z-depth; K: (3, 3);
        offsets: (F, 4, 4) from :meth:`GenerationRequest.camera_offsets`.

    Returns:
        (F, H, W, 3) uint8 warped frames (zeros in holes) and (F, H, W) bool validity.
    """
    from trajattn.warp import warp_video_frames

    frames = np.asarray(frames)
    colours, valid = warp_video_frames(frames, depths, K, offsets)
    warped = np.clip(np.rint(colours), 0, 255).astype(np.uint8)
    warped[0], valid[0] = frames[0], True
    return warped, valid


def guidance_targets(
    request: GenerationRequest, width: int, height: int, method: str
) -> dict[str, Any]:
    r"""Everything a depth-warp-guided method needs from a request, fitted to the model size.

    Image requests: the image and its depth warped along ``request.camera``
    (:func:`warp_targets`). Video requests: each video frame warped by its own offset
    (:func:`video_warp_targets`). Used by this adapter and by ``trajattn`` with
    ``nvs_guidance: true``.

    Returns:
        dict with ``image`` (height, width, 3), ``K``, ``crop`` and ``warped``/``valid``.

    Raises:
        MethodUnavailable: the depth it needs is missing (names where it comes from).
    """
    require_depth(request, method)
    cam = request.camera
    if request.video is not None:
        frames, depths, K, crop = fit_video(
            request.video, request.video_depth, request.video_camera.K, width, height
        )
        offsets = request.camera_offsets()
        warped, valid = video_warp_targets(frames, depths, K, offsets)
        image = fit_to_resolution(request.image, None, cam.K, width, height)[0]
        return {"image": image, "K": K, "crop": crop, "warped": warped, "valid": valid}
    image, depth, K, crop = fit_to_resolution(request.image, request.depth, cam.K, width, height)
    warped, valid = warp_targets(image, depth, K, cam.w2c)
    return {"image": image, "K": K, "crop": crop, "warped": warped, "valid": valid}


def require_depth(request: GenerationRequest, method: str) -> None:
    """Raise MethodUnavailable when the depth a warp needs is missing (image: the conditioning
    view's depth; video: every frame's depth), naming where it comes from."""
    if request.video is not None and request.video_depth is None:
        raise MethodUnavailable(video_depth_message(method))
    if request.video is None and request.depth is None:
        raise MethodUnavailable(
            f"{method} warps the conditioning image with its depth: give the scene's depth.npy "
            "(synthetic suites) or run the suite's depth stage (Depth-Anything-V2)"
        )


def video_depth_message(method: str) -> str:
    """The MethodUnavailable message of a video request without per-frame depth."""
    return (
        f"{method} re-shoots a video with the depth of every input frame: give the video's "
        "depths.npy (synthetic-video suites render it; `trajbench prepare-video` runs the "
        "suite's depth model, Depth-Anything-V2, on every frame of a real clip)"
    )


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
        require_depth(request, self.name)
        import PIL.Image
        import torch

        from trajattn.nvs_guidance import NVSGuidanceConfig, nvs_guidance
        from trajattn.pipeline import to_uint8_frames

        conf = self.conf
        width, height = int(conf["width"]), int(conf["height"])
        pipe = self.pipeline()  # first: a missing model fails before the warp's work
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


def guidance_info(valid: np.ndarray, guided: Any, video: bool) -> dict[str, Any]:
    """What meta.json records about an NVS-Solver-guided call (warp, schedule, updates)."""
    return {
        "warp": (
            "each video frame warped with its own depth by its camera offset M_f "
            "(trajattn.warp.warp_image)"
            if video
            else "trajattn.warp.warp_image with the request's K and w2c (upstream: forward "
            "splatting with focal 260 px on look-at paths)"
        ),
        "valid_fraction_per_frame": [round(float(v), 4) for v in valid.mean((1, 2))],
        "weight_schedule_v1_v2_v3": list(guided.chosen) if guided.chosen else None,
        "guidance_rms_per_step": [round(h["rms"], 6) for h in guided.history],
    }
