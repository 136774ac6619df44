"""What the two trajectory-attention adapters (``trajattn`` on SVD, ``trajattn_wan`` on Wan)
share: the depth they need, the trajectories they keep for ``traj_epe`` and the block of
``GenerationResult.info`` that describes the model."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmark.metrics.tracks import grid_subsample
from methods.base import GenerationRequest, MethodUnavailable


def require_image_depth(request: GenerationRequest, method: str) -> None:
    """Raise MethodUnavailable when an image request has no depth (paper Alg. 3 needs it)."""
    if request.video is None and request.depth is None:
        raise MethodUnavailable(
            f"{method} needs the conditioning view's depth for its trajectories (paper "
            "Alg. 3): give the scene's depth.npy (synthetic suites) or run the suite's "
            "depth stage (Depth-Anything-V2)"
        )


def trajectory_extras(
    tracks: np.ndarray,
    visible: np.ndarray,
    width: int,
    height: int,
    stride: int,
    wanted: int | None,
) -> tuple[dict[str, np.ndarray], int | None]:
    r"""The conditioning trajectories on a coarser grid, kept for ``traj_epe``.

    Args:
        tracks: (F, L, 2) and visible: (F, L) on the row-major stride-``stride`` pixel grid of
            a ``width`` x ``height`` frame.
        wanted: the pixel stride asked for (rounded up to a multiple of ``stride``), or None
            for none kept.

    Returns:
        ``{"tracks": float32, "visible": bool}`` of every ``step``-th row and column, and the
        kept grid's stride (``({}, None)`` when ``wanted`` is None).
    """
    if wanted is None:
        return {}, None
    step = max(1, -(-int(wanted) // stride))  # ceil: at least as coarse as asked
    rows, cols = -(-height // stride), -(-width // stride)
    if tracks.shape[1] != rows * cols:
        raise ValueError(f"{tracks.shape[1]} trajectories for a {cols}x{rows} grid")
    index = grid_subsample(rows, cols, step)
    return (
        {"tracks": np.asarray(tracks[:, index], np.float32),
         "visible": np.asarray(visible[:, index], bool)},
        stride * step,
    )


def model_info(
    conf: dict[str, Any], width: int, height: int, crop: tuple[int, int, int, int]
) -> dict[str, Any]:
    """The first keys of a trajectory-attention run's ``info`` (meta.json): variant, models,
    resolution, crop box and step count."""
    return {
        "variant": conf["variant"],
        "tiny": bool(conf["tiny"]),
        "base_model": None if conf["tiny"] else str(conf["base_model"]),
        "weights": None if conf["tiny"] else conf["weights"],
        "resolution": [width, height],
        "crop_box_xywh": list(crop),
        "num_inference_steps": int(conf["num_inference_steps"]),
    }
