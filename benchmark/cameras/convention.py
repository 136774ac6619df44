"""The camera convention (see :mod:`benchmark.cameras`): rigid poses, pinhole intrinsics,
their checks and the plausibility test of K against the frames it describes."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

FORMAT = "trajbench.camera_path/1"
ORTHONORMAL_TOL = 1e-6
"""Largest accepted max-abs entry of R^T R - I, and of the deviation of a pose's last row."""
DEFAULT_FRAME_INTERVAL_US = 33333
"""Default frame spacing (30 fps) for RealEstate10K and TUM timestamps."""

PathLike = str | os.PathLike[str]


#: Horizontal field of view (degrees) of the canonical camera (:func:`canonical_K`); the
#: synthetic scenes' unit scale refers to it.
CANONICAL_HFOV_DEG = 60.0


def canonical_K(width: int, height: int, hfov_deg: float = CANONICAL_HFOV_DEG) -> np.ndarray:
    """Pinhole K with the given horizontal FOV, square pixels and the principal point at the
    image centre (``(width/2, height/2)`` in the pixel-centre-at-+0.5 convention)."""
    f = 0.5 * width / math.tan(math.radians(hfov_deg) / 2)
    return np.array([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])


class CameraFileError(ValueError):
    """A camera path or camera file is invalid; the message names the offending field."""


def invert_rigid(m: np.ndarray) -> np.ndarray:
    """Invert rigid 4x4 transforms (..., 4, 4) as [R^T, -R^T t], with an exact (0, 0, 0, 1) row.

    Preferred over np.linalg.inv so the result passes CameraPath validation bit-for-bit.
    """
    m = np.asarray(m, dtype=np.float64)
    rot_t = np.swapaxes(m[..., :3, :3], -1, -2)
    out = np.zeros(m.shape, dtype=np.float64)
    out[..., :3, :3] = rot_t
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", rot_t, m[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def _check_pose(m: np.ndarray, label: str) -> None:
    """Raise CameraFileError unless ``m`` is a finite rigid 4x4 transform (R in SO(3))."""
    if not np.all(np.isfinite(m)):
        raise CameraFileError(f"{label}: contains NaN or inf")
    last = np.abs(m[3] - np.array([0.0, 0.0, 0.0, 1.0])).max()
    if last > ORTHONORMAL_TOL:
        raise CameraFileError(f"{label}: last row is {m[3].tolist()}, expected [0, 0, 0, 1]")
    rot = m[:3, :3]
    err = float(np.abs(rot.T @ rot - np.eye(3)).max())
    if err > ORTHONORMAL_TOL:
        raise CameraFileError(f"{label}: rotation is not orthonormal (|R^T R - I| = {err:.3g})")
    det = float(np.linalg.det(rot))
    if det <= 0.0:
        raise CameraFileError(f"{label}: rotation has det(R) = {det:.3g}, expected +1")


def _check_intrinsics(k: np.ndarray, label: str = "K") -> None:
    """Raise CameraFileError unless ``k`` is a finite pinhole matrix with positive focals."""
    if k.shape != (3, 3):
        raise CameraFileError(f"{label}: expected shape (3, 3), got {k.shape}")
    if not np.all(np.isfinite(k)):
        raise CameraFileError(f"{label}: contains NaN or inf")
    if k[1, 0] != 0.0 or k[2, 0] != 0.0 or k[2, 1] != 0.0:
        raise CameraFileError(f"{label}: not upper-triangular ({k.tolist()})")
    if k[2, 2] != 1.0:
        raise CameraFileError(f"{label}: K[2] is {k[2].tolist()}, expected [0, 0, 1]")
    if not (k[0, 0] > 0.0 and k[1, 1] > 0.0):
        raise CameraFileError(
            f"{label}: focal lengths must be positive (fx={k[0, 0]}, fy={k[1, 1]})"
        )


#: Plausible horizontal and vertical field of view of a pinhole K, in degrees. Outside it a K
#: almost always describes other units or other frames (RealEstate10K intrinsics written in
#: pixels give ~0.1 deg; pixel intrinsics stored as normalised ones give ~179 deg).
FOV_RANGE_DEG = (1.0, 170.0)
#: Largest offset of the principal point from the frame centre, as a fraction of the frame's
#: width (for cx) and height (for cy): (cx, cy) must lie in the middle 40% of each axis. Whole
#: frames have it near the centre; a K of frames twice (or half) the size puts it at a corner
#: (or a quarter of the way in), which is how a K for another resolution shows.
PRINCIPAL_POINT_MAX_OFFSET = 0.2
#: Plausible pixel aspect fy / fx (square pixels give 1; a K normalised by the wrong side or
#: denormalised by the wrong size gives W / H or H / W).
PIXEL_ASPECT_RANGE = (0.5, 2.0)


def _fov_deg(focal: float, size: int) -> float:
    return math.degrees(2.0 * math.atan(size / (2.0 * focal)))


def _implausibility(k: np.ndarray, width: int, height: int) -> str | None:
    """Why pixel intrinsics ``k`` cannot describe ``width`` x ``height`` frames, or None."""
    fx, fy, cx, cy = float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2])
    size = f"{width}x{height}"
    hfov, vfov = _fov_deg(fx, width), _fov_deg(fy, height)
    lo, hi = FOV_RANGE_DEG
    if not (lo <= hfov <= hi and lo <= vfov <= hi):
        if hfov < lo or vfov < lo:
            cause = (
                f"focal lengths of {fx:.6g}, {fy:.6g} px are far longer than the frame; "
                "intrinsics look like pixels where normalised values were expected, or "
                "like pixels of much larger frames"
            )
        else:
            cause = (
                f"focal lengths of {fx:.6g}, {fy:.6g} px are far shorter than the frame; "
                "intrinsics look normalised by width and height where pixels were "
                "expected, or like pixels of much smaller frames"
            )
        return (
            f"implausible field of view {hfov:.3g} x {vfov:.3g} deg for {size} frames "
            f"(sane: {lo:g}-{hi:g} deg): {cause}"
        )
    aspect = fy / fx
    if not PIXEL_ASPECT_RANGE[0] <= aspect <= PIXEL_ASPECT_RANGE[1]:
        return (
            f"implausible pixel aspect fy/fx = {aspect:.3g} for {size} frames (sane: "
            f"{PIXEL_ASPECT_RANGE[0]:g}-{PIXEL_ASPECT_RANGE[1]:g}): fx and fy look "
            "normalised or scaled by different sizes"
        )
    off_x, off_y = abs(cx / width - 0.5), abs(cy / height - 0.5)
    if max(off_x, off_y) > PRINCIPAL_POINT_MAX_OFFSET:
        inside = 0 <= cx <= width and 0 <= cy <= height
        where = "far from the centre of" if inside else "outside"
        return (
            f"principal point ({cx:.6g}, {cy:.6g}) is {where} the {size} frame (sane: "
            f"within {PRINCIPAL_POINT_MAX_OFFSET:.0%} of the size from the centre "
            f"({width / 2:g}, {height / 2:g})): this K looks like it describes "
            f"{2 * cx:.6g}x{2 * cy:.6g} frames, or its values are not in pixels"
        )
    return None


def validate_intrinsics(
    k: Any, label: str = "K", width: int | None = None, height: int | None = None
) -> np.ndarray:
    r"""Check intrinsics wherever a K enters trajbench (camera files, a method's K, a real
    image's K): the one function for it, so every entry point refuses the same things.

    Args:
        k: array-like, expected a (3, 3) pinhole matrix in pixels.
        label: what to call it in the error (e.g. the file, and line, it came from).
        width, height: size of the frames ``k`` describes; when given, ``k`` must also be
            plausible for them (see below).

    Returns:
        ``k`` as a float64 (3, 3) array.

    Raises:
        CameraFileError: not numeric, wrong shape, NaN/inf, not upper-triangular with
            ``K[2] == (0, 0, 1)``, or a non-positive focal length; with a frame size also a
            field of view outside :data:`FOV_RANGE_DEG` (1-170 deg, horizontal and vertical),
            a pixel aspect fy/fx outside :data:`PIXEL_ASPECT_RANGE` (0.5-2) or a principal
            point more than :data:`PRINCIPAL_POINT_MAX_OFFSET` (20%) of the frame size from
            its centre. The message names the problem and its likely cause (values in other
            units, or a K for frames of another size).
    """
    try:
        arr = np.array(k, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CameraFileError(f"{label}: cannot convert to a float array ({exc})") from exc
    _check_intrinsics(arr, label)
    if (width is None) != (height is None):
        raise ValueError("validate_intrinsics: give both width and height, or neither")
    if width is not None and height is not None:
        problem = _implausibility(arr, int(width), int(height))
        if problem:
            raise CameraFileError(f"{label}: {problem}")
    return arr
