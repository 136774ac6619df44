"""Camera paths as evo trajectories and TUM files (camera-to-world poses, for metrics)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from benchmark.cameras.convention import (
    DEFAULT_FRAME_INTERVAL_US,
    CameraFileError,
    PathLike,
)
from benchmark.cameras.path import CameraPath
from benchmark.cameras.re10k import _check_timestamps
from benchmark.io import atomic_write

if TYPE_CHECKING:  # evo is imported lazily: it is slow to import and only needed for export
    from evo.core.trajectory import PoseTrajectory3D


def _seconds(camera: CameraPath, timestamps: Sequence[float] | np.ndarray | None) -> np.ndarray:
    """Timestamps in seconds; default i * 33333 us, matching the RealEstate10K default."""
    if timestamps is None:
        return np.arange(camera.num_frames) * (DEFAULT_FRAME_INTERVAL_US / 1e6)
    _check_timestamps(timestamps, camera.num_frames)
    stamps = np.asarray(timestamps, dtype=np.float64)
    if not np.all(np.isfinite(stamps)):
        raise CameraFileError("timestamps: contain NaN or inf")
    return stamps


def to_evo_trajectory(
    camera: CameraPath, timestamps: Sequence[float] | np.ndarray | None = None
) -> PoseTrajectory3D:
    """evo trajectory of camera-to-world poses; timestamps in seconds (default i / 30 s)."""
    from evo.core.trajectory import PoseTrajectory3D  # slow import: only TUM export needs it

    return PoseTrajectory3D(poses_se3=list(camera.c2w), timestamps=_seconds(camera, timestamps))


def write_tum(
    file: PathLike, camera: CameraPath, timestamps: Sequence[float] | np.ndarray | None = None
) -> Path:
    """Write camera-to-world poses as a TUM file (``t tx ty tz qx qy qz qw``) with evo.

    Timestamps are seconds (default i * 33333 us). Written atomically.
    """
    from evo.tools import file_interface  # slow import: only TUM export needs it

    traj = to_evo_trajectory(camera, timestamps)
    return atomic_write(file, lambda tmp: file_interface.write_tum_trajectory_file(str(tmp), traj))
