"""Depth-warp guidance targets shared by the adapters that pull sampling toward warped frames
(``nvs_solver``, and ``trajattn`` with ``nvs_guidance: true``): built here once so both build
them exactly alike, and neither adapter imports the other.

Image requests: the conditioning image and its depth warped along the camera path. Video
requests (upstream NVS-Solver's dynamic setting): video frame f warped with its own depth by
that frame's camera offset ``M_f``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from methods.base import GenerationRequest, MethodUnavailable
from methods.framing import fit_to_resolution, fit_video


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
    from trajattn.warp import warp_image  # torch (trajattn.warp): loaded when a warp runs

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
    from trajattn.warp import warp_video_frames  # torch, as above

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
    (:func:`video_warp_targets`). Used by ``nvs_solver`` and by ``trajattn`` with
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
