r"""``motionctrl``: MotionCtrl on Stable Video Diffusion (Wang et al., SIGGRAPH 2024), camera
motion control, run through its own code (TencentARC/MotionCtrl, branch ``svd``, ``sgm``).

The conditioning image is fitted to 1024x576 (centre crop to 16:9, then resize; K follows) and
the camera path becomes MotionCtrl's input: per frame the world-to-camera pose relative to
frame 0, ``[R | t]`` flattened row-major to 12 numbers
(:func:`methods.camera_formats.motionctrl_rt`), written as upstream's pose files are
(``examples/camera_poses/*.json``: a JSON list of F lists of 12 numbers). MotionCtrl takes no
intrinsics. The driver ``upstream_drivers/motionctrl_svd.py`` runs upstream's sampling
(``main/inference/motionctrl_cmcm.py::sample``: EulerEDM, 25 steps, linear CFG 1 -> 2.5) in the
upstream environment (see :mod:`methods.upstream`).

Scale policy: translations (in units of the scene's median depth) are multiplied by one
isotropic ``translation_scale`` so the requested path keeps its shape. Default
:data:`DEFAULT_TRANSLATION_SCALE` = 4, chosen from upstream's own inputs (svd @ 0c5cc12,
measured as ``|t|`` of the last of the 14 frames ``get_RT`` takes, relative to the first):

- the basic example pose files ``examples/camera_poses/test_camera_{L,R,U,D,I,O}.json`` reach
  1.14 (``Round-RI_90`` 0.95, RealEstate10K-derived ``018f7907401f2fef`` 1.27, ``1424acd0...``
  8.1);
- the run script (``configs/inference/motionctrl_run.sh``: ``--speed 2.0``) then multiplies by
  ``[3, 1, 4] * speed``: 2.3 - 9.1 for the basic files, up to 63 for RealEstate10K-derived ones;
- our paper paths reach 0.15 - 0.30 (truck 20 %: 0.20, dolly 30 %: 0.30, orbit 15 deg: 0.26).

A factor 4 puts our paths at 0.6 - 1.2, the magnitude of upstream's unscaled example files;
``translation_scale: 1`` drives MotionCtrl 4-45x below what it was demonstrated with. The
``motionctrl-scale`` suite (configs/suites/motionctrl-scale.yaml) sweeps 0.25, 1, 4 and 16 so
the choice can be checked by measurement on a GPU.

Frame count: upstream's ``sgm/motionctrl/modified_svd.py`` hard-codes 14 frames, so any other
count is refused here (ValueError, recorded as a failed run) before upstream is launched.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.io import write_png
from methods.base import GenerationRequest, GenerationResult
from methods.camera_formats import motionctrl_rt
from methods.framing import fit_to_resolution
from methods.upstream import IMAGE_FILE, UpstreamMethod, UpstreamSpec, runner_options

#: The svd branch head read for this adapter (2024-07-19, "Update README.md").
MOTIONCTRL_COMMIT = "0c5cc12e15a138df6be86bc6350faa759e742492"
MOTIONCTRL_SPEC = UpstreamSpec(
    name="motionctrl",
    repository="TencentARC/MotionCtrl (branch svd)",
    commit=MOTIONCTRL_COMMIT,
    setup_script="scripts/setup_motionctrl.sh",
    required=(
        ("main/inference/motionctrl_cmcm.py", "MotionCtrl-SVD's inference code"),
        ("sgm/motionctrl/camera_motion_control.py", "MotionCtrl-SVD's model code"),
    ),
)
#: Native clip length and resolution (upstream config and run script); the only one it runs.
NATIVE_NUM_FRAMES = 14
#: Isotropic factor on our translations (module docstring: upstream's example magnitudes).
DEFAULT_TRANSLATION_SCALE = 4.0
POSE_FILE = "camera_pose.json"


def write_pose_file(rt: np.ndarray, path: Path) -> None:
    r"""Write (F, 12) relative RT rows as upstream's pose files are: a JSON list of F lists of
    12 numbers (``examples/camera_poses/test_camera_*.json``, read by ``get_RT`` with
    ``np.array(json.load(f))``)."""
    rt = np.asarray(rt, dtype=np.float64)
    if rt.ndim != 2 or rt.shape[1] != 12:
        raise ValueError(f"expected (F, 12) RT rows, got {rt.shape}")
    path.write_text(json.dumps(rt.tolist(), indent=1))


class MotionCtrl(UpstreamMethod):
    name = "motionctrl"
    spec = MOTIONCTRL_SPEC
    default_conf: dict[str, Any] = {
        **runner_options("motionctrl_svd.py"),
        "ckpt": "checkpoints/motionctrl_svd.ckpt",  # relative to repo_dir, or absolute
        "config": "configs/inference/config_motionctrl_cmcm.yaml",  # relative to repo_dir
        "width": 1024,  # native 1024x576 (upstream needs multiples of 64)
        "height": 576,
        # isotropic factor on translations: 4 matches upstream's example pose files (docstring)
        "translation_scale": DEFAULT_TRANSLATION_SCALE,
        "num_inference_steps": 25,  # EulerEDM steps (run script: --ddim_steps 25)
        "fps_id": 10,  # run script and demo: fps 10
        "motion_bucket_id": 127,
        "cond_aug": 0.02,
        "decoding_t": 1,  # frames decoded at a time
    }

    def generate(self, request: GenerationRequest) -> GenerationResult:
        c = self.conf
        width, height = int(c["width"]), int(c["height"])
        if request.num_frames != NATIVE_NUM_FRAMES:
            raise ValueError(
                f"motionctrl: MotionCtrl-SVD runs {NATIVE_NUM_FRAMES} frames only (upstream's "
                f"sgm/motionctrl/modified_svd.py hard-codes it), got {request.num_frames}"
            )
        if width % 64 or height % 64:
            raise ValueError(f"motionctrl: width/height must be multiples of 64, got "
                             f"{width}x{height} (upstream would resize)")
        runner = self.runner()
        runner.check_installed([
            (c["ckpt"], "the MotionCtrl-SVD weights motionctrl_svd.ckpt (huggingface-cli "
                        "download TencentARC/MotionCtrl motionctrl_svd.ckpt)"),
            (c["config"], "the MotionCtrl-SVD inference config"),
        ])
        image, _, K, crop = fit_to_resolution(request.image, None, request.camera.K, width,
                                              height)
        rt = motionctrl_rt(request.camera, float(c["translation_scale"]))

        def write_inputs(workdir: Path) -> None:
            write_png(workdir / IMAGE_FILE, image)
            write_pose_file(rt, workdir / POSE_FILE)

        settings = {
            "image": IMAGE_FILE,
            "pose_file": POSE_FILE,
            "seed": int(request.seed),
            "ckpt": str(c["ckpt"]),
            "config": str(c["config"]),
            "num_steps": int(c["num_inference_steps"]),
            "fps_id": int(c["fps_id"]),
            "motion_bucket_id": int(c["motion_bucket_id"]),
            "cond_aug": float(c["cond_aug"]),
            "decoding_t": int(c["decoding_t"]),
        }
        run = runner.run(write_inputs, settings, request.num_frames, width, height)
        return GenerationResult(
            frames=run.frames,
            K=K,
            info={
                "upstream": MOTIONCTRL_SPEC.repository,
                "upstream_commit_pinned": MOTIONCTRL_COMMIT,
                "upstream_commit_checkout": runner.checkout_commit(),
                "camera_input": "relative w2c [R|t] per frame, 12 numbers (motionctrl_rt)",
                "scale_policy": "isotropic translation_scale; 4 matches upstream's example "
                                "pose files (|t| ~1.1 at frame 14); upstream CLI: [3,1,4]*speed",
                "translation_scale": float(c["translation_scale"]),
                "native_num_frames": NATIVE_NUM_FRAMES,
                "resolution": [width, height],
                "crop_box_xywh": list(crop),
                "workdir": None if run.workdir is None else str(run.workdir),
            },
        )
