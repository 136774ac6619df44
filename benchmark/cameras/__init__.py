"""Camera paths: the project's single camera convention, validation and file formats.

Conventions (every module in trajbench uses these; convert at the boundary, never inside):

- Intrinsics ``K``: 3x3 float64 in pixels of the frames they describe. Upper-triangular with
  ``K[2] == (0, 0, 1)`` and positive ``fx = K[0, 0]``, ``fy = K[1, 1]`` (skew ``K[0, 1]`` is
  allowed but the RealEstate10K format cannot store it).
- Extrinsics: one world-to-camera 4x4 float64 matrix per frame (``w2c``, shape (F, 4, 4)),
  OpenCV axes (x right, y down, z forward). Frame 0 is the conditioning view.
- Pixel coordinates are continuous with the origin at the top-left image corner: pixel
  (row i, col j) covers [j, j+1) x [i, i+1) and its centre is (j + 0.5, i + 0.5) (COLMAP's
  convention). A centred principal point is therefore ``cx = W / 2``, ``cy = H / 2``, and
  resizing an image by (sx, sy) scales ``fx, skew, cx`` by sx and ``fy, cy`` by sy.
- Translations are in units of the frame-0 median scene depth unless a file says otherwise.

File formats: trajbench JSON (``trajbench.camera_path/1``, bit-exact round trip), RealEstate10K
camera text files, and TUM trajectories via evo (camera-to-world poses, for trajectory metrics).
"""

from __future__ import annotations

from benchmark.cameras.convention import (
    CANONICAL_HFOV_DEG,
    DEFAULT_FRAME_INTERVAL_US,
    FORMAT,
    FOV_RANGE_DEG,
    ORTHONORMAL_TOL,
    PIXEL_ASPECT_RANGE,
    PRINCIPAL_POINT_MAX_OFFSET,
    CameraFileError,
    canonical_K,
    invert_rigid,
    validate_intrinsics,
)
from benchmark.cameras.files import (
    UNAVAILABLE,
    camera_path_from_dict,
    camera_path_to_dict,
    load_camera_path,
    save_camera_path,
    save_unavailable_camera,
)
from benchmark.cameras.path import CameraPath
from benchmark.cameras.re10k import (
    MAX_ROUNDING_TOL,
    RealEstate10KClip,
    read_realestate10k,
    write_realestate10k,
)
from benchmark.cameras.re10k import _rounding_tolerance as _rounding_tolerance
from benchmark.cameras.tum import to_evo_trajectory, write_tum

__all__ = [
    "FORMAT",
    "ORTHONORMAL_TOL",
    "DEFAULT_FRAME_INTERVAL_US",
    "CameraFileError",
    "CameraPath",
    "RealEstate10KClip",
    "MAX_ROUNDING_TOL",
    "invert_rigid",
    "validate_intrinsics",
    "FOV_RANGE_DEG",
    "PRINCIPAL_POINT_MAX_OFFSET",
    "PIXEL_ASPECT_RANGE",
    "camera_path_to_dict",
    "camera_path_from_dict",
    "save_camera_path",
    "load_camera_path",
    "read_realestate10k",
    "write_realestate10k",
    "to_evo_trajectory",
    "write_tum",
    "UNAVAILABLE",
    "save_unavailable_camera",
    "CANONICAL_HFOV_DEG",
    "canonical_K",
]
