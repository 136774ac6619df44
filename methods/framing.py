"""Shared set-up for adapters of diffusion models: fitting the conditioning image to a model's
resolution (K follows) and choosing the torch device and dtype."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np


def fit_to_resolution(
    image: np.ndarray,
    depth: np.ndarray | None,
    K: np.ndarray,
    width: int,
    height: int,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, tuple[int, int, int, int]]:
    r"""Centre-crop to the aspect ratio ``width / height``, then resize to ``(height, width)``.

    Args:
        image: (H, W, 3) uint8; depth: (H, W) or None; K: (3, 3) in the image's pixels.

    Returns:
        The image, the depth (nearest-neighbour, so depth edges are not blended), K of the new
        pixels (corner-origin convention: crop shifts the principal point, resize scales its
        rows) and the crop box ``(x0, y0, crop_width, crop_height)`` in the input pixels.
    """
    h, w = image.shape[:2]
    if w * height > h * width:  # too wide: crop columns
        cw, ch = int(round(h * width / height)), h
    else:
        cw, ch = w, int(round(w * height / width))
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    K = np.array(K, dtype=np.float64)
    K[0, 2] -= x0
    K[1, 2] -= y0
    K[0] *= width / cw
    K[1] *= height / ch
    image = image[y0 : y0 + ch, x0 : x0 + cw]
    if (cw, ch) != (width, height):
        shrink = cw > width and ch > height
        interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        image = cv2.resize(image, (width, height), interpolation=interp)
    if depth is not None:
        depth = depth[y0 : y0 + ch, x0 : x0 + cw]
        if (cw, ch) != (width, height):
            depth = cv2.resize(
                depth.astype(np.float32), (width, height), interpolation=cv2.INTER_NEAREST
            )
    return np.ascontiguousarray(image), depth, K, (x0, y0, cw, ch)


def resolve_device_dtype(device: str, dtype: str) -> tuple[str, Any]:
    """``device``/``dtype`` options to torch values: ``"auto"`` picks cuda when available
    (else cpu) and float16 on cuda (else float32)."""
    import torch  # heavy optional dependency: only adapters that build a model call this

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        dtype = "float16" if str(device).startswith("cuda") else "float32"
    if not isinstance(getattr(torch, str(dtype), None), torch.dtype):
        raise ValueError(f"dtype {dtype!r} is not a torch dtype")
    return device, getattr(torch, dtype)


def fit_video(
    video: np.ndarray, depths: np.ndarray | None, K: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, tuple[int, int, int, int]]:
    r""":func:`fit_to_resolution` applied to every frame (and depth map).

    Args:
        video: (F, H, W, 3) uint8; depths: (F, H, W) or None; K: (3, 3) shared by all frames.

    Returns:
        frames (F, height, width, 3), depths (F, height, width) or None, the new K and the crop
        box (the same for every frame).
    """
    frames, fitted_depths = [], []
    new_K, crop = np.asarray(K, np.float64), (0, 0, video.shape[2], video.shape[1])
    for f in range(video.shape[0]):
        frame, depth, new_K, crop = fit_to_resolution(
            video[f], None if depths is None else depths[f], K, width, height
        )
        frames.append(frame)
        fitted_depths.append(depth)
    stacked = None if depths is None else np.stack(fitted_depths).astype(np.float32)
    return np.stack(frames), stacked, new_K, crop


#: Options every SVD-based adapter passes to the pipeline call unchanged.
SVD_SAMPLING_KEYS = (
    "num_inference_steps", "fps", "motion_bucket_id", "noise_aug_strength",
    "min_guidance_scale", "max_guidance_scale", "decode_chunk_size",
)


def svd_sampling_options(conf: dict[str, Any]) -> dict[str, Any]:
    """The SVD sampling keyword arguments of an adapter's options."""
    return {key: conf[key] for key in SVD_SAMPLING_KEYS}
