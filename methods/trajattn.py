"""``trajattn``: Trajectory Attention (Xiao et al., ICLR 2025) on SVD, camera control by Alg. 3.

The conditioning image and its depth are fitted to the model resolution (centre crop to its
aspect ratio, then resize; K follows), trajectories of every pixel through the requested
camera path are computed from depth + K + w2c (:func:`trajattn.trajectories_from_depth`), and
:class:`trajattn.pipeline.TrajectoryAttentionPipeline` generates ``request.num_frames`` frames
at the model resolution. The returned K describes those frames.

``tiny: true`` swaps SVD for a tiny random pipeline (:mod:`trajattn.tiny`): it runs on a CPU
in seconds and checks the wiring only (its frames are noise).
"""

from __future__ import annotations

from typing import Any

from methods.base import GenerationRequest, GenerationResult, Method, MethodUnavailable
from methods.framing import fit_to_resolution, resolve_device_dtype
from trajattn.settings import PAPER_DEFAULTS


class TrajectoryAttentionMethod(Method):
    name = "trajattn"
    default_conf: dict[str, Any] = {
        "base_model": "stabilityai/stable-video-diffusion-img2vid-xt",  # folder or hub id
        # official .pth, our .safetensors, "repo_id:filename" on the hub, or null (none)
        "weights": "zeqixiao/TrajectoryAttention:trajattn_temp.pth",
        "variant": "inherit",  # Table 3: vanilla, tuning, addon, inherit
        "num_trajectories_factor": 2,  # trajectories per call = factor * h * w (null: all)
        "compat_mixed_pairs": False,  # reproduce the official processor's reshape
        "track_stride": 1,  # pixel stride of the Alg. 3 trajectories
        **{k: v for k, v in PAPER_DEFAULTS.items() if k not in ("num_frames", "width", "height")},
        "decode_chunk_size": None,  # frames per VAE decode; null = all at once
        "width": PAPER_DEFAULTS["width"],
        "height": PAPER_DEFAULTS["height"],
        "device": "auto",  # "auto": cuda when available, else cpu
        "dtype": "auto",  # "auto": float16 on cuda, float32 on cpu
        "local_files_only": None,  # never download; null: only when HF_HUB_OFFLINE is set
        "tiny": False,  # tiny random pipeline for CPU tests (ignores base_model/weights)
    }

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__(conf)
        self._pipe = None

    def pipeline(self) -> Any:
        """The loaded pipeline (built on first use). Raises MethodUnavailable when SVD or the
        trajectory-attention weights are missing, naming what to download."""
        if self._pipe is not None:
            return self._pipe
        from trajattn.attention import TrajectoryAttentionConfig
        from trajattn.pipeline import MissingModelError, TrajectoryAttentionPipeline

        conf = self.conf
        config = TrajectoryAttentionConfig(
            variant=conf["variant"],
            num_trajectories_factor=conf["num_trajectories_factor"],
            compat_mixed_pairs=conf["compat_mixed_pairs"],
        )
        device, dtype = resolve_device_dtype(self.conf["device"], self.conf["dtype"])
        if conf["tiny"]:
            from trajattn.tiny import build_tiny_pipeline

            pipe = build_tiny_pipeline(seed=0, config=config)
        else:
            try:
                pipe = TrajectoryAttentionPipeline.from_pretrained(
                    conf["base_model"],
                    trajattn_weights=conf["weights"],
                    attention_config=config,
                    local_files_only=conf["local_files_only"],
                    torch_dtype=dtype,
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
                "trajattn needs the conditioning view's depth for its trajectories (paper "
                "Alg. 3): give the scene's depth.npy (synthetic suites) or run the suite's "
                "depth stage (Depth-Anything-V2)"
            )
        import torch

        conf = self.conf
        width, height = int(conf["width"]), int(conf["height"])
        cam = request.camera
        image, depth, K, crop = fit_to_resolution(
            request.image, request.depth, cam.K, width, height
        )
        pipe = self.pipeline()
        generator = torch.Generator().manual_seed(int(request.seed))
        frames = pipe(
            image,
            depth=depth,
            K=K,
            w2c=cam.w2c,
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
            track_stride=conf["track_stride"],
        )
        return GenerationResult(
            frames=frames,
            K=K,
            info={
                "variant": conf["variant"],
                "tiny": bool(conf["tiny"]),
                "base_model": None if conf["tiny"] else str(conf["base_model"]),
                "weights": None if conf["tiny"] else conf["weights"],
                "resolution": [width, height],
                "crop_box_xywh": list(crop),
            },
        )
