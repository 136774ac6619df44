"""``trajattn_wan``: trajectory attention on Wan 2.1 image-to-video (paper Sec. 5.6 on a
full-3D-attention DiT; :mod:`trajattn.wan`), camera control of an image (paper Alg. 3).

The conditioning image and its depth are fitted to the model resolution (centre crop to its
aspect ratio, then resize; K follows), trajectories of a ``track_stride`` pixel grid through
the camera path are computed from depth + K + w2c (:func:`trajattn.trajectories_from_depth`),
and :class:`trajattn.wan.pipeline.WanTrajectoryPipeline` generates the clip at the model
resolution. Wan's VAE needs ``4k + 1`` frames: another request length ``F`` is generated at the
next ``4k + 1`` frames with the camera held at its last pose and cut to ``F`` (recorded in
``info.generated_frames``). The returned K describes the frames.

No branch weights have been released: the branch variants need weights trained with
``python -m trajattn.wan.train`` (an untrained ``inherit`` branch is an exact no-op, i.e.
plain Wan, so it is refused rather than reported as trajectory attention); ``vanilla`` runs
without weights. Video requests (Alg. 4) are not supported yet.

Every run keeps the trajectories it was conditioned on, subsampled to a
``trajectory_extras_stride`` grid (``extras``: ``tracks``/``visible``), for ``traj_epe``.

``tiny: true`` swaps Wan for tiny random components (:mod:`trajattn.wan.tiny`): it runs on a
CPU in seconds and checks the wiring only (its frames are noise).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from methods.base import GenerationRequest, GenerationResult, Method, MethodUnavailable
from methods.framing import fit_to_resolution, resolve_device_dtype


def wan_frame_count(num_frames: int, ratio: int = 4) -> int:
    """The smallest ``ratio * k + 1 >= num_frames``."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    return -(-(num_frames - 1) // ratio) * ratio + 1


def hold_last_pose(w2c: np.ndarray, num_frames: int) -> np.ndarray:
    """``w2c (F, 4, 4)`` extended to ``num_frames`` by repeating its last pose."""
    w2c = np.asarray(w2c, np.float64)
    extra = num_frames - len(w2c)
    if extra < 0:
        raise ValueError(f"cannot shorten {len(w2c)} poses to {num_frames}")
    return np.concatenate([w2c, np.repeat(w2c[-1:], extra, axis=0)])


class WanTrajectoryAttentionMethod(Method):
    name = "trajattn_wan"
    default_conf: dict[str, Any] = {
        "base_model": "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",  # folder or hub id
        # branch safetensors (python -m trajattn.wan.train), "repo_id:filename", or null
        "weights": "weights/trajattn_wan_inherit.safetensors",
        "variant": "inherit",  # inherit, addon, vanilla, tuning
        "num_trajectories_factor": 2,  # trajectories per call = factor * h * w (null: all)
        "track_stride": 4,  # pixel stride of the Alg. 3 trajectories (16 per 16-px patch)
        "trajectory_extras_stride": 8,  # kept for traj_epe; null: none kept
        "width": 832,
        "height": 480,
        "num_inference_steps": 50,
        "guidance_scale": 5.0,
        "prompt": "",  # the benchmark gives no text; Wan I2V is text-conditioned too
        "negative_prompt": "",
        "device": "auto",  # "auto": cuda when available, else cpu
        "dtype": "auto",  # "auto": bfloat16 on cuda (VAE, image encoder: float32), else float32
        "cpu_offload": False,  # diffusers model CPU offload (less GPU memory, slower)
        "local_files_only": None,  # never download; null: only when HF_HUB_OFFLINE is set
        "tiny": False,  # tiny random Wan for CPU tests (ignores base_model/weights)
    }

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__(conf)
        self._pipe = None

    def pipeline(self) -> Any:
        """The loaded pipeline (built on first use). Raises MethodUnavailable when Wan or the
        branch weights are missing, naming what to download or train."""
        if self._pipe is not None:
            return self._pipe
        import torch

        from trajattn.attention import TrajectoryAttentionConfig
        from trajattn.pipeline import MissingModelError

        conf = self.conf
        config = TrajectoryAttentionConfig(
            variant=conf["variant"], num_trajectories_factor=conf["num_trajectories_factor"]
        )
        device = conf["device"]
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = conf["dtype"]
        if dtype == "auto":
            dtype = "bfloat16" if str(device).startswith("cuda") else "float32"
        device, dtype = resolve_device_dtype(device, dtype)
        if conf["tiny"]:
            from trajattn.wan.tiny import build_tiny_pipeline

            pipe = build_tiny_pipeline(seed=0, config=config).to(device)
            if dtype != torch.float32:
                pipe.to(dtype=dtype)
        else:
            from trajattn.wan.pipeline import WanTrajectoryPipeline

            if config.variant != "vanilla" and conf["weights"] is None:
                raise MethodUnavailable(
                    f"trajattn_wan variant {config.variant!r} needs trained branch weights "
                    "(none have been released; an untrained inherit branch is plain Wan): "
                    "train them with `python -m trajattn.wan.train` and give the file as "
                    "weights, or use variant vanilla"
                )
            try:
                pipe = WanTrajectoryPipeline.from_pretrained(
                    conf["base_model"],
                    trajattn_weights=conf["weights"],
                    attention_config=config,
                    local_files_only=conf["local_files_only"],
                    # Wan's VAE and CLIP image encoder run in float32 (model card; the
                    # pipeline feeds the image encoder float32 pixels)
                    dtype={"default": dtype, "vae": torch.float32,
                           "image_encoder": torch.float32},
                )
            except MissingModelError as exc:
                raise MethodUnavailable(str(exc)) from exc
            if conf["cpu_offload"]:
                pipe.enable_model_cpu_offload()
            else:
                pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        self._pipe = pipe
        return pipe

    def _prompt_kwargs(self) -> dict[str, Any]:
        if self.conf["tiny"]:
            from trajattn.wan.tiny import tiny_prompt_embeds

            embeds, negative = tiny_prompt_embeds(0)
            return {"prompt_embeds": embeds, "negative_prompt_embeds": negative}
        return {"prompt": self.conf["prompt"], "negative_prompt": self.conf["negative_prompt"]}

    def generate(self, request: GenerationRequest) -> GenerationResult:
        if request.video is not None:
            raise MethodUnavailable(
                "trajattn_wan handles image requests (paper Alg. 3) only: video re-shooting "
                "(Alg. 4) is not implemented for Wan; use trajattn for video suites"
            )
        if request.depth is None:
            raise MethodUnavailable(
                "trajattn_wan needs the conditioning view's depth for its trajectories (paper "
                "Alg. 3): give the scene's depth.npy (synthetic suites) or run the suite's "
                "depth stage (Depth-Anything-V2)"
            )
        import torch

        from trajattn.trajectories import trajectories_from_depth

        conf = self.conf
        width, height = int(conf["width"]), int(conf["height"])
        pipe = self.pipeline()  # first: a missing model fails before any other work
        cam = request.camera
        image, depth, K, crop = fit_to_resolution(request.image, request.depth, cam.K, width,
                                                  height)
        wanted = request.num_frames
        generated = wan_frame_count(wanted, int(pipe.vae_scale_factor_temporal))
        w2c = hold_last_pose(cam.w2c, generated)
        stride = int(conf["track_stride"])
        traj = trajectories_from_depth(depth, K, w2c, stride=stride)
        generator = torch.Generator().manual_seed(int(request.seed))
        frames = pipe(
            image,
            tracks=traj.tracks,
            visible=traj.visible,
            height=height,
            width=width,
            num_frames=generated,
            num_inference_steps=int(conf["num_inference_steps"]),
            guidance_scale=float(conf["guidance_scale"]),
            generator=generator,
            **self._prompt_kwargs(),
        )[:wanted]
        extras, extras_stride = self._extras(traj.tracks[:wanted], traj.visible[:wanted],
                                             width, height, stride)
        return GenerationResult(
            frames=frames,
            K=K,
            extras=extras,
            info={
                "variant": conf["variant"],
                "tiny": bool(conf["tiny"]),
                "base_model": None if conf["tiny"] else str(conf["base_model"]),
                "weights": None if conf["tiny"] else conf["weights"],
                "resolution": [width, height],
                "crop_box_xywh": list(crop),
                "num_inference_steps": int(conf["num_inference_steps"]),
                "guidance_scale": float(conf["guidance_scale"]),
                "generated_frames": generated,
                "mode": "image",
                "trajectories": "paper Alg. 3 (depth + camera path), latent frame t = pixel "
                "frame 4t",
                "trajectory_extras_stride": extras_stride,
            },
        )

    def _extras(
        self, tracks: np.ndarray, visible: np.ndarray, width: int, height: int, stride: int
    ) -> tuple[dict[str, np.ndarray], int | None]:
        """The conditioning trajectories on a coarser grid (every ``step``-th row/column of
        the row-major stride-``stride`` grid) and that grid's stride."""
        from benchmark.metrics.tracks import grid_subsample

        wanted = self.conf["trajectory_extras_stride"]
        if wanted is None:
            return {}, None
        step = max(1, -(-int(wanted) // stride))
        rows, cols = -(-height // stride), -(-width // stride)
        if tracks.shape[1] != rows * cols:
            raise ValueError(f"{tracks.shape[1]} trajectories for a {cols}x{rows} grid")
        index = grid_subsample(rows, cols, step)
        return (
            {"tracks": np.asarray(tracks[:, index], np.float32),
             "visible": np.asarray(visible[:, index], bool)},
            stride * step,
        )
