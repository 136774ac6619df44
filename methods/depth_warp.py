"""``depth_warp``: forward-warps the conditioning image with its depth along the path.

A reference method that needs no network: occlusion-aware warping
(:func:`trajattn.warp.warp_image`) then OpenCV inpainting of the disoccluded holes. On a
synthetic scene with exact depth it is geometrically exact wherever the view was seen in
frame 0, so its pose errors measure the harness itself plus the cost of the holes.

Video requests (re-shooting an input video): frame f is input frame f warped with its own
depth by the camera offset asked for at that frame (``camera.w2c[f] @ inv(video_camera.w2c[f])``)
— the "video frames after view warping" reference of the paper's Fig. 7. Editing requests
warp the edited first frame along the original video's cameras (its own motion, no other).
"""

from __future__ import annotations

import cv2
import numpy as np

from methods.base import GenerationRequest, GenerationResult, Method, MethodUnavailable
from trajattn.trajectories import OCCLUSION_RTOL
from trajattn.warp import warp_image, warp_video_frames

_INPAINT = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}


class DepthWarp(Method):
    name = "depth_warp"
    default_conf = {
        "inpaint": "telea",  # OpenCV inpainting: "telea" or "ns"
        "inpaint_radius": 3,  # pixels
        "occlusion_rtol": OCCLUSION_RTOL,  # z-buffer tolerance: Alg. 3's, one set everywhere
    }

    def generate(self, request: GenerationRequest) -> GenerationResult:
        if request.depth is None:
            raise MethodUnavailable(
                "depth_warp needs the conditioning view's depth: give the scene's depth.npy "
                "(synthetic suites) or run the suite's depth stage (Depth-Anything-V2)"
            )
        if self.conf["inpaint"] not in _INPAINT:
            raise ValueError(f"inpaint must be one of {sorted(_INPAINT)}")
        cam = request.camera
        if request.task == "video":
            warped, valid = self._warp_video(request)
        else:
            warped, valid = warp_image(
                request.image, request.depth, cam.K, cam.w2c, self.conf["occlusion_rtol"]
            )
        frames = np.empty((cam.num_frames, cam.height, cam.width, 3), np.uint8)
        for i in range(cam.num_frames):
            rgb = np.clip(np.rint(warped[i]), 0, 255).astype(np.uint8)
            holes = (~valid[i]).astype(np.uint8)
            frames[i] = cv2.inpaint(
                rgb, holes, self.conf["inpaint_radius"], _INPAINT[self.conf["inpaint"]]
            )
        frames[0] = request.image
        return GenerationResult(
            frames=frames,
            K=cam.K.copy(),
            extras={"valid": valid},
            info={"hole_fraction": float(1 - valid.mean())},
        )

    def _warp_video(self, request: GenerationRequest) -> tuple[np.ndarray, np.ndarray]:
        """Each input frame warped by its own depth to the re-shot camera of that frame."""
        if request.video_depth is None:
            raise MethodUnavailable(
                "depth_warp on a video needs every input frame's depth (video_depth): run the "
                "suite's video stage (exact for synthetic videos, Depth-Anything-V2 for clips)"
            )
        return warp_video_frames(request.video, request.video_depth, request.video_camera.K,
                                 request.camera_offsets(), self.conf["occlusion_rtol"])
