"""``trajattn``: Trajectory Attention (Xiao et al., ICLR 2025) on SVD: camera control of an
image (paper Alg. 3) or of a video (Alg. 4), optionally with NVS-Solver guidance.

The conditioning image and its depth are fitted to the model resolution (centre crop to its
aspect ratio, then resize; K follows), trajectories of every pixel through the requested
camera path are computed from depth + K + w2c (:func:`trajattn.trajectories_from_depth`), and
:class:`trajattn.pipeline.TrajectoryAttentionPipeline` generates ``request.num_frames`` frames
at the model resolution. The returned K describes those frames.

Video requests (paper Sec. 4.2, Table 2: re-shoot ``request.video`` along ``request.camera``):
every frame and its depth are fitted the same way, frame-0 grid points (``video_track_stride``)
are tracked through the fitted frames (``tracker``: :mod:`trajattn.tracking`, default the
weight-free ``dis``) and moved by each frame's camera offset ``M_f = camera.w2c[f] @
inv(video_camera.w2c[f])`` with that frame's depth (paper Alg. 4,
:func:`trajattn.video_trajectories.combine_with_camera`); the pipeline attends along those
tracks. The official code (xizaoqu/TrajectoryAttention @ 324823d, cotracker.py) tracks 4
jittered 8-px grids with CoTracker2: as many points as one 4-px grid, our default stride.

``nvs_guidance: true`` is "Ours w. NVS-Solver" (paper Table 2, last row; official
video_control.sh ``--use_nvs_solver --num_inference_steps 50``): the sampling also runs inside
:func:`trajattn.nvs_guidance.nvs_guidance`, pulled toward depth-warped frames built exactly as
the ``nvs_solver`` adapter builds them (:func:`methods.warp_guidance.guidance_targets`: video
frame f warped with its own depth by ``M_f``; for image requests the image warped along the
path). Official defaults (models/my_svd_pipeline_clean.py ``My_SVD.__call__``): lr 0.02, weight
clamp 0.6. Deviation: the official guidance pass predicts x0 *without* trajectory attention
(``use_traj=False``) on four latent crops; ours reuses the pipeline's own prediction, which
attends along the trajectories (see :mod:`trajattn.nvs_guidance` for the other deviations).

Every run returns the trajectories it was conditioned on, subsampled to a
``trajectory_extras_stride`` grid of the output frames (``extras``: ``tracks (F, L, 2)`` in the
output frames' pixels, ``visible (F, L)``), so the score stage can measure whether the video
follows them (``traj_epe``, :mod:`benchmark.stages.score`).

``tiny: true`` swaps SVD for a tiny random pipeline (:mod:`trajattn.tiny`): it runs on a CPU
in seconds and checks the wiring only (its frames are noise).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np

from methods.base import GenerationRequest, GenerationResult, MethodUnavailable
from methods.framing import fit_to_resolution, fit_video, svd_sampling_options
from methods.svd import SVD_OPTIONS, SVD_XT, DiffusionMethod
from methods.trajattn_common import model_info, require_image_depth, trajectory_extras
from methods.warp_guidance import guidance_info, guidance_targets, video_depth_message
from trajattn.model_files import check_weights_file  # no torch
from trajattn.settings import PAPER_DEFAULTS


class TrajectoryAttentionMethod(DiffusionMethod):
    name = "trajattn"
    default_conf: dict[str, Any] = {
        "base_model": SVD_XT,  # folder or hub id
        # official .pth, our .safetensors, "repo_id:filename" on the hub, or null (none)
        "weights": "zeqixiao/TrajectoryAttention:trajattn_temp.pth",
        "variant": "inherit",  # Table 3: vanilla, tuning, addon, inherit
        "num_trajectories_factor": 2,  # trajectories per call = factor * h * w (null: all)
        "compat_mixed_pairs": False,  # reproduce the official processor's reshape
        "track_stride": 1,  # pixel stride of the Alg. 3 trajectories (image requests)
        # video requests (Alg. 4): point tracker of trajattn.tracking and its options
        "tracker": "dis",  # dis (weight-free), lk, cotracker3 (official: CoTracker2)
        "tracker_options": {},  # e.g. {checkpoint: scaled_offline.pth} for cotracker3
        "video_track_stride": 4,  # pixel stride of the tracked frame-0 grid
        # conditioning trajectories kept in extras (for traj_epe): pixel stride of their grid,
        # a multiple of the conditioning grid's stride (rounded up); null: none kept
        "trajectory_extras_stride": 8,
        # "Ours w. NVS-Solver" (Table 2): NVS-Solver guidance on top of trajectory attention
        "nvs_guidance": False,
        "nvs_lr": 0.02,  # official My_SVD.__call__ lr
        "nvs_weight_clamp": 0.6,  # official My_SVD.__call__ weight_clamp
        "nvs_refresh": True,  # re-run the UNet on the guided latents (upstream's order)
        # upstream's kept-fraction index, hole cells counted once (NVS-Solver's and the official
        # trajattn code's utils/nvs_solver_schedule.py); false (a departure): exactly w of the
        # valid entries
        "nvs_compat_cutoff": True,
        "nvs_latent_divisor": 5.6,  # upstream factor_s; null: 1 / vae.config.scaling_factor
        **{k: v for k, v in PAPER_DEFAULTS.items() if k not in ("num_frames", "width", "height")},
        "width": PAPER_DEFAULTS["width"],
        "height": PAPER_DEFAULTS["height"],
        **SVD_OPTIONS,
    }

    def _attention_config(self) -> Any:
        # torch (trajattn.attention): loaded only when a model is built
        from trajattn.attention import TrajectoryAttentionConfig

        return TrajectoryAttentionConfig(
            variant=self.conf["variant"],
            num_trajectories_factor=self.conf["num_trajectories_factor"],
            compat_mixed_pairs=self.conf["compat_mixed_pairs"],
        )

    def model_file_checks(self) -> list[Callable[[], Any]]:
        """SVD (base class) and the branch ``weights``."""
        conf = self.conf
        checks = super().model_file_checks()
        if conf["weights"] is not None:
            checks.append(lambda: check_weights_file(
                conf["weights"], conf["local_files_only"], download_hint=self.weights_hint()
            ))
        return checks

    def weights_hint(self) -> str | None:
        """How to get missing ``weights``: the official checkpoint is the inherit variant's
        (None: :mod:`trajattn.model_files` names it); other variants must be trained."""
        variant = self.conf["variant"]
        if variant == "inherit":
            return None
        return (
            f"the {variant} variant needs trained weights, none have been released: train "
            f"them with `trajbench train "
            f"--variant {variant} --data CLIPS --out runs/{variant}` (docs/trajattn.md) and "
            f"give runs/{variant}/checkpoints/step-*/trainable.safetensors as weights"
        )

    def tiny_pipeline(self, dtype: Any) -> Any:
        """The tiny random trajectory-attention pipeline (:mod:`trajattn.tiny`)."""
        from trajattn.tiny import build_tiny_pipeline  # torch, diffusers

        return build_tiny_pipeline(seed=0, config=self._attention_config())

    def load_pipeline(self, dtype: Any) -> Any:
        """SVD from ``base_model`` with the trajectory-attention ``weights``."""
        from trajattn.pipeline import TrajectoryAttentionPipeline  # torch, diffusers

        conf = self.conf
        return TrajectoryAttentionPipeline.from_pretrained(
            conf["base_model"],
            trajattn_weights=conf["weights"],
            attention_config=self._attention_config(),
            local_files_only=conf["local_files_only"],
            torch_dtype=dtype,
        )

    def generate(self, request: GenerationRequest) -> GenerationResult:
        require_image_depth(request, self.name)
        if request.video is not None and request.video_depth is None:
            raise MethodUnavailable(video_depth_message("trajattn (paper Alg. 4)"))
        pipe = self.pipeline()  # first: a missing model fails before any other work or import
        import torch  # heavy optional dependency: loaded per call

        conf = self.conf
        width, height = int(conf["width"]), int(conf["height"])
        if request.video is not None:
            image, K, crop, trajectory_kwargs, info = self._video_trajectories(
                request, width, height
            )
        else:
            from trajattn.trajectories import trajectories_from_depth  # torch

            cam = request.camera
            image, depth, K, crop = fit_to_resolution(
                request.image, request.depth, cam.K, width, height
            )
            # What the pipeline computes from depth + K + w2c, computed here to keep a subset.
            traj = trajectories_from_depth(depth, K, cam.w2c, stride=int(conf["track_stride"]))
            trajectory_kwargs = {"tracks": traj.tracks, "visible": traj.visible}
            info = {"mode": "image", "trajectories": "paper Alg. 3 (depth + camera path)"}
        targets = self._guidance_targets(request, width, height)
        if targets is None:
            guidance: Any = contextlib.nullcontext()
        else:
            from trajattn.nvs_guidance import nvs_guidance  # torch

            guidance = nvs_guidance(
                pipe, targets["warped"], targets["valid"], self._guidance_config()
            )
        generator = torch.Generator().manual_seed(int(request.seed))
        with guidance as guided:
            frames = pipe(
                image,
                **trajectory_kwargs,
                height=height,
                width=width,
                num_frames=request.num_frames,
                **svd_sampling_options(conf),
                generator=generator,
            )
        extras = self._trajectory_extras(trajectory_kwargs, width, height, info)
        if guided is not None:
            info["nvs_guidance"] = {
                "lr": float(conf["nvs_lr"]),
                "weight_clamp": float(conf["nvs_weight_clamp"]),
                **guidance_info(targets["valid"], guided, request.video is not None),
            }
        return GenerationResult(
            frames=frames,
            K=K,
            extras=extras,
            info={**model_info(conf, width, height, crop), **info},
        )

    def _video_trajectories(
        self, request: GenerationRequest, width: int, height: int
    ) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int], dict[str, Any], dict[str, Any]]:
        """Paper Alg. 4 on the fitted video: the conditioning image, K, crop box, the
        pipeline's ``tracks``/``visible`` and what meta.json records about them."""
        # torch (trajattn's tracking and trajectory code): loaded per video request
        from trajattn.flow_tracks import grid_points
        from trajattn.tracking import TrackerUnavailable, make_tracker  # torch
        from trajattn.video_trajectories import combine_with_camera  # torch

        conf = self.conf
        frames, depths, K, crop = fit_video(
            request.video, request.video_depth, request.video_camera.K, width, height
        )
        offsets = request.camera_offsets()
        if not np.allclose(offsets[0], np.eye(4), atol=1e-6):
            raise ValueError(
                "frame 0 of the camera path must be the video's frame-0 camera (the "
                "conditioning view): its offset is not the identity"
            )
        image = fit_to_resolution(request.image, None, request.camera.K, width, height)[0]
        try:
            tracker = make_tracker(conf["tracker"], **(conf["tracker_options"] or {}))
        except TrackerUnavailable as exc:
            raise MethodUnavailable(str(exc)) from exc
        points = grid_points(width, height, int(conf["video_track_stride"]))
        raw = tracker.track(frames, points)
        moved = combine_with_camera(raw, depths, K, offsets)
        info = {
            "mode": "video",
            "trajectories": "paper Alg. 4 (tracks of the input video + camera offsets)",
            "tracker": tracker.name,
            "tracker_options": dict(conf["tracker_options"] or {}),
            "video_track_stride": int(conf["video_track_stride"]),
            "num_tracks": int(points.shape[0]),
            "track_visible_fraction": round(float(raw.visible.mean()), 4),
            "valid_fraction": round(float(moved.visible.mean()), 4),
            "valid_fraction_per_frame": [round(float(v), 4) for v in moved.visible.mean(1)],
        }
        return image, K, crop, {"tracks": moved.tracks, "visible": moved.visible}, info

    def _trajectory_extras(
        self, trajectories: dict[str, Any], width: int, height: int, info: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        """The conditioning ``tracks``/``visible`` on a coarser grid
        (:func:`methods.trajattn_common.trajectory_extras`); records the grid's stride in
        info."""
        stride = int(self.conf["track_stride"] if info["mode"] == "image"
                     else self.conf["video_track_stride"])
        extras, kept = trajectory_extras(
            trajectories["tracks"], trajectories["visible"], width, height, stride,
            self.conf["trajectory_extras_stride"],
        )
        if kept is not None:
            info["trajectory_extras_stride"] = kept
        return extras

    def _guidance_targets(
        self, request: GenerationRequest, width: int, height: int
    ) -> dict[str, Any] | None:
        """Warped frames and validity for NVS-Solver guidance (None when it is off), built as
        the ``nvs_solver`` adapter builds them."""
        if not self.conf["nvs_guidance"]:
            return None
        return guidance_targets(request, width, height, self.name)

    def _guidance_config(self) -> Any:
        """The :class:`trajattn.nvs_guidance.NVSGuidanceConfig` of the ``nvs_*`` options."""
        from trajattn.nvs_guidance import NVSGuidanceConfig  # torch

        conf = self.conf
        return NVSGuidanceConfig(
            lr=float(conf["nvs_lr"]),
            weight_clamp=float(conf["nvs_weight_clamp"]),
            refresh=bool(conf["nvs_refresh"]),
            compat_cutoff=bool(conf["nvs_compat_cutoff"]),
            latent_divisor=conf["nvs_latent_divisor"],
        )
