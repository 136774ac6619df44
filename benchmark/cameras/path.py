"""CameraPath: one pinhole camera moving over F frames, immutable and validated."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from benchmark.cameras.convention import (
    CameraFileError,
    _check_intrinsics,
    _check_pose,
    invert_rigid,
)


def _check_size(value: Any, label: str) -> int:
    """Return ``value`` as a positive int (numpy ints accepted, bools and floats rejected)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise CameraFileError(f"{label}: expected a positive integer, got {value!r}")
    if value <= 0:
        raise CameraFileError(f"{label}: must be positive, got {value}")
    return int(value)


def _frozen_array(value: Any, label: str) -> np.ndarray:
    """Copy ``value`` into a read-only float64 array (CameraPath is immutable)."""
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CameraFileError(f"{label}: cannot convert to a float array ({exc})") from exc
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class CameraPath:
    """One pinhole camera moving over F frames (see the module docstring for conventions).

    Arrays are stored as read-only float64 copies; build a new path (``with_w2c``,
    ``dataclasses.replace``) instead of editing one. ``==`` compares arrays exactly.
    """

    K: np.ndarray
    w2c: np.ndarray
    width: int
    height: int
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "K", _frozen_array(self.K, "K"))
        object.__setattr__(self, "w2c", _frozen_array(self.w2c, "w2c"))
        object.__setattr__(self, "width", _check_size(self.width, "width"))
        object.__setattr__(self, "height", _check_size(self.height, "height"))
        self.validate()

    def validate(self) -> None:
        """Raise CameraFileError (naming the field) if any invariant of the convention fails."""
        if not isinstance(self.name, str):
            raise CameraFileError(f"name: expected a string, got {type(self.name).__name__}")
        _check_size(self.width, "width")
        _check_size(self.height, "height")
        _check_intrinsics(self.K)
        w2c = self.w2c
        if w2c.ndim != 3 or w2c.shape[1:] != (4, 4):
            raise CameraFileError(f"w2c: expected shape (F, 4, 4), got {w2c.shape}")
        if w2c.shape[0] < 1:
            raise CameraFileError("w2c: needs at least one frame (F >= 1)")
        for i, m in enumerate(w2c):
            _check_pose(m, f"w2c[{i}]")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CameraPath):
            return NotImplemented
        return (
            self.width == other.width
            and self.height == other.height
            and self.name == other.name
            and np.array_equal(self.K, other.K)
            and np.array_equal(self.w2c, other.w2c)
        )

    __hash__ = None  # type: ignore[assignment]  # holds arrays; equality is by value

    @property
    def num_frames(self) -> int:
        """Number of frames F."""
        return int(self.w2c.shape[0])

    @property
    def c2w(self) -> np.ndarray:
        """Camera-to-world poses (F, 4, 4)."""
        return invert_rigid(self.w2c)

    @property
    def centers(self) -> np.ndarray:
        """Camera centres in world coordinates (F, 3)."""
        return self.c2w[:, :3, 3]

    def with_w2c(self, w2c: np.ndarray) -> CameraPath:
        """Same intrinsics, size and name with new extrinsics."""
        return replace(self, w2c=w2c)

    def relative_to_first(self) -> CameraPath:
        """Re-express the path in frame 0's camera coordinates: w2c_i @ inv(w2c_0).

        Frame 0 becomes exactly the identity; relative motion between frames is unchanged.
        """
        rel = self.w2c @ invert_rigid(self.w2c[0])
        rel[0] = np.eye(4)
        return self.with_w2c(rel)

    def resample(self, n: int) -> CameraPath:
        """Return ``n`` frames spanning the same path uniformly in frame index.

        Rotations are interpolated by scipy's Slerp on camera-to-world rotations and camera
        centres linearly. Sample times that fall on an input frame (always the first and
        last) reuse that frame's pose exactly, so ``n == F`` returns identical poses.
        ``n == 1`` returns frame 0; a one-frame path is repeated (a static camera).
        """
        n = _check_size(n, "n")
        num = self.num_frames
        if n == num:
            return self
        if n == 1:
            return self.with_w2c(self.w2c[:1])
        if num == 1:
            return self.with_w2c(np.repeat(self.w2c, n, axis=0))
        from scipy.spatial.transform import Rotation, Slerp  # slow import, resampling only

        c2w = self.c2w
        times = np.linspace(0.0, num - 1.0, n)
        slerp = Slerp(np.arange(num, dtype=np.float64), Rotation.from_matrix(c2w[:, :3, :3]))
        new_c2w = np.zeros((n, 4, 4))
        new_c2w[:, :3, :3] = slerp(times).as_matrix()
        for axis in range(3):
            new_c2w[:, axis, 3] = np.interp(times, np.arange(num), c2w[:, axis, 3])
        new_c2w[:, 3, 3] = 1.0
        out = invert_rigid(new_c2w)
        for k, t in enumerate(times):
            if t == round(t):
                out[k] = self.w2c[int(round(t))]
        return self.with_w2c(out)

    def rescaled(self, width: int, height: int) -> CameraPath:
        """Same cameras for the image resized to (width, height): row 0 of K times width/W,
        row 1 times height/H (corner-origin convention, so cx = W/2 stays centred)."""
        width = _check_size(width, "width")
        height = _check_size(height, "height")
        k = self.K.copy()
        k[0] *= width / self.width
        k[1] *= height / self.height
        return replace(self, K=k, width=width, height=height)
