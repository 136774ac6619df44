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

from collections.abc import Callable
from typing import Any

import numpy as np

from methods.base import GenerationRequest, GenerationResult, MethodUnavailable
from methods.framing import fit_to_resolution, resolve_device_dtype
from methods.svd import DiffusionMethod
from methods.trajattn_common import model_info, require_image_depth, trajectory_extras
from trajattn.model_files import (  # no torch
    WAN,
    WAN_BRANCH_WEIGHTS,
    check_base_model,
    check_weights_file,
)


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


class WanTrajectoryAttentionMethod(DiffusionMethod):
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

    def device_dtype(self) -> tuple[str, Any]:
        """Like the SVD adapters, but ``dtype: auto`` is bfloat16 on cuda (Wan's model card)."""
        import torch  # heavy optional dependency: only when a model is built

        device = self.conf["device"]
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = self.conf["dtype"]
        if dtype == "auto":
            dtype = "bfloat16" if str(device).startswith("cuda") else "float32"
        return resolve_device_dtype(device, dtype)

    def _attention_config(self) -> Any:
        from trajattn.attention import TrajectoryAttentionConfig  # torch

        return TrajectoryAttentionConfig(
            variant=self.conf["variant"],
            num_trajectories_factor=self.conf["num_trajectories_factor"],
        )

    def tiny_pipeline(self, dtype: Any) -> Any:
        """Tiny random Wan components (:mod:`trajattn.wan.tiny`)."""
        from trajattn.wan.tiny import build_tiny_pipeline  # torch, diffusers

        return build_tiny_pipeline(seed=0, config=self._attention_config())

    def check_model_files(self) -> None:
        """Refuses a branch variant without weights (an untrained inherit branch is plain
        Wan), then the base class's check of :meth:`model_file_checks`."""
        conf = self.conf
        if conf["variant"] != "vanilla" and conf["weights"] is None:
            raise MethodUnavailable(
                f"trajattn_wan variant {conf['variant']!r} needs trained branch weights "
                "(none have been released; an untrained inherit branch is plain Wan): "
                "train them with `python -m trajattn.wan.train` and give the file as "
                "weights, or use variant vanilla"
            )
        super().check_model_files()

    def model_file_checks(self) -> list[Callable[[], Any]]:
        """Wan (not the base class's SVD) and the branch ``weights``."""
        conf = self.conf
        checks = [lambda: check_base_model(conf["base_model"], WAN, conf["local_files_only"])]
        if conf["weights"] is not None:
            checks.append(lambda: check_weights_file(
                conf["weights"], conf["local_files_only"], *WAN_BRANCH_WEIGHTS
            ))
        return checks

    def load_pipeline(self, dtype: Any) -> Any:
        """Wan from ``base_model`` with the branch ``weights`` (checked first by
        :meth:`check_model_files`)."""
        import torch  # heavy optional dependencies: only when a model is built

        from trajattn.wan.pipeline import WanTrajectoryPipeline  # torch

        conf = self.conf
        config = self._attention_config()
        return WanTrajectoryPipeline.from_pretrained(
            conf["base_model"],
            trajattn_weights=conf["weights"],
            attention_config=config,
            local_files_only=conf["local_files_only"],
            # Wan's VAE and CLIP image encoder run in float32 (model card; the
            # pipeline feeds the image encoder float32 pixels)
            dtype={"default": dtype, "vae": torch.float32, "image_encoder": torch.float32},
        )

    def place(self, pipe: Any, device: str, dtype: Any) -> Any:
        """Tiny: to the device, then the dtype; real: per-component dtypes as loaded, moved to
        the device or CPU-offloaded (``cpu_offload``)."""
        import torch  # as above

        if self.conf["tiny"]:
            pipe = pipe.to(device)
            if dtype != torch.float32:
                pipe.to(dtype=dtype)
        elif self.conf["cpu_offload"]:
            pipe.enable_model_cpu_offload()
        else:
            pipe.to(device)
        return pipe

    def _prompt_kwargs(self) -> dict[str, Any]:
        if self.conf["tiny"]:
            from trajattn.wan.tiny import tiny_prompt_embeds  # torch

            embeds, negative = tiny_prompt_embeds(0)
            return {"prompt_embeds": embeds, "negative_prompt_embeds": negative}
        return {"prompt": self.conf["prompt"], "negative_prompt": self.conf["negative_prompt"]}

    def generate(self, request: GenerationRequest) -> GenerationResult:
        if request.video is not None:
            raise MethodUnavailable(
                "trajattn_wan handles image requests (paper Alg. 3) only: video re-shooting "
                "(Alg. 4) is not implemented for Wan; use trajattn for video suites"
            )
        require_image_depth(request, self.name)
        pipe = self.pipeline()  # first: a missing model fails before any other work or import
        # heavy optional dependencies (torch, trajattn): loaded per call
        import torch

        from trajattn.trajectories import trajectories_from_depth  # torch

        conf = self.conf
        width, height = int(conf["width"]), int(conf["height"])
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
        extras, extras_stride = trajectory_extras(
            traj.tracks[:wanted], traj.visible[:wanted], width, height, stride,
            conf["trajectory_extras_stride"],
        )
        return GenerationResult(
            frames=frames,
            K=K,
            extras=extras,
            info={
                **model_info(conf, width, height, crop),
                "guidance_scale": float(conf["guidance_scale"]),
                "generated_frames": generated,
                "mode": "image",
                "trajectories": "paper Alg. 3 (depth + camera path), latent frame t = pixel "
                "frame 4t",
                "trajectory_extras_stride": extras_stride,
            },
        )
