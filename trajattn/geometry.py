"""Torch-free camera geometry shared by trajattn and its callers.

Kept apart from :mod:`trajattn.trajectories` (which needs torch for the z-buffer) so that
light callers, such as the benchmark's video source and ``snakemake -n``, can use it without
importing torch. Conventions: ``w2c`` is (F, 4, 4) world-to-camera with OpenCV axes.
"""

from __future__ import annotations

import numpy as np


def relative_w2c(w2c: np.ndarray) -> np.ndarray:
    """Per-frame transforms from the frame-0 camera to frame i's camera: w2c_i @ inv(w2c_0)."""
    w2c = np.array(w2c, dtype=np.float64)
    if w2c.ndim != 3 or w2c.shape[1:] != (4, 4):
        raise ValueError(f"w2c must have shape (F, 4, 4), got {w2c.shape}")
    rel = w2c @ np.linalg.inv(w2c[0])
    rel[0] = np.eye(4)
    return rel
