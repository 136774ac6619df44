"""Cameras of the synthetic scenes: a z-up look-at pose and the pinhole camera the tracer uses
(ray grid, conservative screen windows). The canonical intrinsics are the project's
(:func:`benchmark.cameras.canonical_K`)."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

#: Canonical 16:9 image size (width, height); texture density is chosen for it.
CANONICAL_SIZE = (1024, 576)
#: Resolution of the depth render used for median depths and texture density (16:9).
_LOWRES = (256, 144)
#: Hits closer than this z-depth are ignored (a near plane, in scene units).
NEAR = 1e-4
#: Pixels rendered per chunk when tracing supersamples (bounds peak memory).
_CHUNK = 1 << 15


def look_w2c(
    center: Sequence[float], yaw_deg: float, tilt_deg: float, roll_deg: float = 0.0
) -> np.ndarray:
    """World-to-camera (OpenCV axes) for a camera at ``center`` in the z-up world.

    Yaw 0 looks along +y; positive yaw turns right (towards +x); positive tilt looks down;
    roll turns the image clockwise about the optical axis.
    """
    yaw, tilt, roll = (math.radians(v) for v in (yaw_deg, tilt_deg, roll_deg))
    ct = math.cos(tilt)
    fwd = np.array([math.sin(yaw) * ct, math.cos(yaw) * ct, -math.sin(tilt)])
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    cr, sr = math.cos(roll), math.sin(roll)
    right, down = cr * right + sr * down, -sr * right + cr * down
    R = np.stack([right, down, fwd])
    w2c = np.eye(4)
    w2c[:3, :3] = R
    w2c[:3, 3] = -R @ np.asarray(center, dtype=np.float64)
    return w2c


@dataclass(frozen=True)
class _Camera:
    """A pinhole camera as the tracer needs it (float64)."""

    K: np.ndarray
    w2c: np.ndarray
    width: int
    height: int

    @functools.cached_property
    def R(self) -> np.ndarray:
        return self.w2c[:3, :3]

    @functools.cached_property
    def center(self) -> np.ndarray:
        return -self.R.T @ self.w2c[:3, 3]

    @functools.cached_property
    def ray_matrix(self) -> np.ndarray:
        """M with world ray direction ``M @ (u, v, 1)``, scaled so its camera z is exactly 1
        (then the ray parameter of a hit *is* its z-depth)."""
        return self.R.T @ np.linalg.inv(self.K)

    def ray_grid(self) -> torch.Tensor:
        """(3, H, W) float64 world directions through all pixel centres."""
        u = torch.arange(self.width, dtype=torch.float64) + 0.5
        v = torch.arange(self.height, dtype=torch.float64) + 0.5
        M = torch.from_numpy(self.ray_matrix)
        return (
            M[:, 0, None, None] * u[None, None, :]
            + M[:, 1, None, None] * v[None, :, None]
            + M[:, 2, None, None]
        )

    def pixel_window(self, corners: np.ndarray) -> tuple[int, int, int, int] | None:
        """Conservative pixel window (x0, x1, y0, y1), end-exclusive, holding every pixel whose
        area may see the planar polygon ``corners`` (world, (n, 3)); None if it cannot."""
        pc = corners @ self.R.T + self.w2c[:3, 3]
        poly = _clip_near(pc)
        if len(poly) == 0:
            return None
        proj = poly @ self.K.T
        xy = proj[:, :2] / proj[:, 2:3]
        xmin, ymin = np.floor(xy.min(axis=0)) - 1
        xmax, ymax = np.ceil(xy.max(axis=0)) + 1
        x0, x1 = int(max(xmin, 0)), int(min(xmax, self.width))
        y0, y1 = int(max(ymin, 0)), int(min(ymax, self.height))
        if x0 >= x1 or y0 >= y1:
            return None
        return x0, x1, y0, y1


def _clip_near(poly: np.ndarray) -> np.ndarray:
    """Clip a convex polygon (camera coords) to z >= NEAR (Sutherland-Hodgman, one plane)."""
    out = []
    n = len(poly)
    for k in range(n):
        a, b = poly[k], poly[(k + 1) % n]
        ina, inb = a[2] >= NEAR, b[2] >= NEAR
        if ina:
            out.append(a)
        if ina != inb:
            s = (NEAR - a[2]) / (b[2] - a[2])
            out.append(a + s * (b - a))
    return np.array(out).reshape(-1, 3)


def _as_camera(K: np.ndarray, w2c: np.ndarray, width: int, height: int) -> _Camera:
    K = np.asarray(K, dtype=np.float64)
    w2c = np.asarray(w2c, dtype=np.float64)
    if K.shape != (3, 3) or w2c.shape != (4, 4):
        raise ValueError(f"K must be (3, 3) and w2c (4, 4), got {K.shape} and {w2c.shape}")
    return _Camera(K / K[2, 2], w2c, int(width), int(height))
