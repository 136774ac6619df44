r"""``motion_i2v``: Motion-I2V (Shi et al., SIGGRAPH 2024) driven by the camera-induced flow,
run through its own code (G-U-N/Motion-I2V: AnimateDiff on SD 1.5, diffusers 0.11).

Motion-I2V has two stages: stage 1 predicts the flow from frame 0 to every frame, stage 2
(``animation.pipelines.pipeline_animation.AnimationPipeline``) renders frames from the image,
a text prompt and that flow (``flow_pre``). Its only entry point is a Gradio app
(``scripts/app.py``, ``Drag.forward_sample``). For camera control we bypass stage 1 and give
stage 2 the flow the requested camera induces (:func:`methods.camera_formats.camera_flow` from
depth, K and the relative poses), in stage 2's layout: (F, 2, H, W) float32 pixels at the
model resolution, channel 0 = x displacement, channel 1 = y, frame 0 all zero (the app builds
``flow_pre`` so, from the stage-1 output scaled by width/height).

Pixels without a usable displacement (``invalid_flow`` option):

* ``"geometric"`` (default): every frame-0 pixel with valid depth that stays in front of the
  camera keeps its geometric displacement, occluded or outside the view included, as in the
  flows stage 1 learnt to predict: DOT tracks from frame 0 to every frame, positions only,
  DOT's visibility channel dropped (``train_ctrl_flow_gen_dot.py``). Pixels with no valid
  depth or behind the camera are sent off the image.
* ``"drop"``: every pixel not visible in the target frame (occluded, outside, behind) is sent
  off the image.

"Sent off the image" means a displacement of ``OFF_IMAGE`` pixels in x and y: stage 2 forward-
splats frame-0 features along the flow (``softsplat``, mode "avg"), which ignores splats that
land outside the frame, so such pixels add nothing (the target stays a hole the model fills).
The motion module resizes the flow bilinearly to each feature resolution, so a feature cell
halfway between a kept and a sent-off pixel is sent off too: holes grow by at most one cell.

The image is fitted to 512x320 (centre crop, resize; the app resizes then centre-crops: same
geometry, different resampling filter). A text prompt is required; ``prompt`` defaults to a
content-free description since benchmark scenes carry no captions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchmark.cameras import CameraPath
from benchmark.io import write_png
from methods.base import GenerationRequest, GenerationResult, MethodUnavailable
from methods.camera_formats import camera_flow
from methods.framing import fit_to_resolution
from methods.upstream import IMAGE_FILE, UpstreamMethod, UpstreamSpec, runner_options

#: master head read for this adapter (2024-09-27, "Update app.py").
MOTION_I2V_COMMIT = "bc787e167610a2c6f4d569eca71fb6a26e5b8c56"
MOTION_I2V_SPEC = UpstreamSpec(
    name="motion_i2v",
    repository="G-U-N/Motion-I2V",
    commit=MOTION_I2V_COMMIT,
    setup_script="scripts/setup_motion_i2v.sh",
    required=(
        ("animation/pipelines/pipeline_animation.py", "Motion-I2V's stage-2 pipeline code"),
        ("configs/configs_flowgen/inference/inference.yaml", "Motion-I2V's inference config"),
        ("models/stage2/StableDiffusion/unet/config.json",
         "the stage-2 SD 1.5 weights (huggingface-cli download wangfuyun/Motion-I2V "
         "--include 'models/stage2/*' --local-dir REPO_DIR)"),
        ("models/stage2/Motion_Module/motion_block.bin", "the stage-2 motion module weights"),
        ("models/stage2/DreamBooth_LoRA/realisticVisionV51_v20Novae.safetensors",
         "the stage-2 Realistic Vision weights"),
        ("models/stage2/DreamBooth_LoRA/realistic_unet.ckpt", "the stage-2 personalised UNet"),
    ),
)
NATIVE_NUM_FRAMES = 16
#: Longest clip the stage-2 motion module can take. Its temporal position encoding has
#: ``temporal_position_encoding_max_len: 32`` (configs_flowgen/inference/inference.yaml), but
#: stage 2 applies it to the interleaved sequence of ``2 F - 1`` frames (frames and flow-warped
#: frames; ``forward_motion_module.py`` rearranges with ``f=2 * video_length - 1``), so
#: ``2 F - 1 <= 32``: at most 16 frames (G-U-N/Motion-I2V @ bc787e1). Longer clips crash inside
#: upstream; the adapter refuses them before launching it.
MAX_NUM_FRAMES = 16
FLOW_FILE = "flow.npy"
#: Displacement (pixels, x and y) that sends a frame-0 pixel off the image (see docstring).
OFF_IMAGE = -1.0e4
DEFAULT_PROMPT = "a realistic photo of a static scene, the camera moves, high quality"
INVALID_FLOW_MODES = ("geometric", "drop")


def stage2_flow(
    depth: np.ndarray, camera: CameraPath, invalid_flow: str = "geometric"
) -> tuple[np.ndarray, np.ndarray]:
    r"""Motion-I2V stage 2's ``flow_pre`` for a camera path: the camera-induced flow from
    frame 0, with pixels lacking a usable displacement sent off the image (module docstring).

    Args:
        depth: (H, W) z-depth of frame 0; camera: the path, K in pixels of (H, W).
        invalid_flow: ``"geometric"`` or ``"drop"``.

    Returns:
        flow (F, 2, H, W) float32 (channel 0 = x, 1 = y; frame 0 zero) and off (F, H, W) bool,
        the pixels sent off the image.
    """
    if invalid_flow not in INVALID_FLOW_MODES:
        raise ValueError(f"invalid_flow must be one of {INVALID_FLOW_MODES}, got {invalid_flow!r}")
    flow, visible = camera_flow(depth, camera)  # (F, H, W, 2), (F, H, W)
    if invalid_flow == "drop":
        off = ~visible
    else:
        h, w = depth.shape
        valid_depth = np.isfinite(depth) & (depth > 0)
        u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
        rays = np.stack([u, v, np.ones_like(u)], axis=-1) @ np.linalg.inv(camera.K).T
        points = rays * np.where(valid_depth, depth, 0.0)[..., None]  # frame-0 camera coords
        rel = camera.relative_to_first().w2c
        z = np.einsum("fj,hwj->fhw", rel[:, 2, :3], points) + rel[:, 2, 3][:, None, None]
        off = ~(valid_depth[None] & (z > 0) & np.isfinite(flow).all(axis=-1))
    off[0] = False
    flow = np.where(off[..., None], np.float32(OFF_IMAGE), flow)
    flow[0] = 0.0
    return np.ascontiguousarray(flow.transpose(0, 3, 1, 2), dtype=np.float32), off


class MotionI2V(UpstreamMethod):
    name = "motion_i2v"
    spec = MOTION_I2V_SPEC
    default_conf: dict[str, Any] = {
        **runner_options("motion_i2v.py"),
        "width": 512,  # native 512x320 (the app's Drag(..., 320, 512, 16))
        "height": 320,
        "prompt": DEFAULT_PROMPT,  # required by the model; scenes carry no captions
        "negative_prompt": None,  # null: the app's own negative prompt (read by the driver)
        "num_inference_steps": 25,  # app: forward_sample(..., 25, 7)
        "guidance_scale": 7.0,
        "invalid_flow": "geometric",  # "geometric" or "drop" (module docstring)
    }

    def generate(self, request: GenerationRequest) -> GenerationResult:
        c = self.conf
        if request.depth is None:
            raise MethodUnavailable(
                "motion_i2v needs the conditioning view's depth for the camera-induced flow "
                "it feeds Motion-I2V's stage 2: provide the scene's depth.npy (synthetic "
                "suites) or run the suite's depth stage"
            )
        width, height = int(c["width"]), int(c["height"])
        if width % 8 or height % 8:
            raise ValueError(f"motion_i2v: width/height must be multiples of 8, got "
                             f"{width}x{height}")
        if request.num_frames > MAX_NUM_FRAMES:
            raise ValueError(f"motion_i2v: at most {MAX_NUM_FRAMES} frames, got "
                             f"{request.num_frames}: stage 2's temporal position encoding "
                             "(max_len 32) covers the interleaved 2F-1 sequence")
        prompt = str(c["prompt"] or "").strip()
        if not prompt:
            raise ValueError("motion_i2v: `prompt` must be a non-empty text (the model needs one)")
        if c["invalid_flow"] not in INVALID_FLOW_MODES:
            raise ValueError(f"motion_i2v: invalid_flow must be one of {INVALID_FLOW_MODES}")
        runner = self.runner()
        runner.check_installed()
        cam = request.camera
        image, depth, K, crop = fit_to_resolution(request.image, request.depth, cam.K, width,
                                                  height)
        fitted = CameraPath(K=K, w2c=cam.w2c, width=width, height=height, name=cam.name)
        flow, off = stage2_flow(depth, fitted, c["invalid_flow"])

        def write_inputs(workdir: Path) -> None:
            write_png(workdir / IMAGE_FILE, image)
            np.save(workdir / FLOW_FILE, flow)

        settings = {
            "image": IMAGE_FILE,
            "flow_file": FLOW_FILE,
            "seed": int(request.seed),
            "prompt": prompt,
            "negative_prompt": c["negative_prompt"],
            "num_steps": int(c["num_inference_steps"]),
            "guidance_scale": float(c["guidance_scale"]),
        }
        run = runner.run(write_inputs, settings, request.num_frames, width, height)
        return GenerationResult(
            frames=run.frames,
            K=K,
            extras={"flow_off_image": off},
            info={
                "upstream": MOTION_I2V_SPEC.repository,
                "upstream_commit_pinned": MOTION_I2V_COMMIT,
                "upstream_commit_checkout": runner.checkout_commit(),
                "flow_choice": "camera-induced flow from depth, K and relative poses "
                               "(camera_flow) fed to stage 2; stage 1 bypassed",
                "invalid_flow": c["invalid_flow"],
                "off_image_fraction": float(off[1:].mean()) if len(off) > 1 else 0.0,
                "prompt": prompt,
                "native_num_frames": NATIVE_NUM_FRAMES,
                "resolution": [width, height],
                "crop_box_xywh": list(crop),
                "workdir": None if run.workdir is None else str(run.workdir),
            },
        )
