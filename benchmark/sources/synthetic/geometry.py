"""Geometry of the synthetic scenes: axis-aligned rectangles, boxes and rooms built from them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Slack on rectangle bounds in the float32 hit test, so that rays through a shared edge of
#: two rectangles cannot slip between them (about 0.01 px at depth 1 and 1024 px width).
_BOUND_TOL = 1e-5
#: In-plane axes (u, v) of a rectangle whose normal is the world axis 0, 1, 2. The texture's
#: u runs along the first, v against the second (so "up" in a wall texture is +z).
_INPLANE = ((1, 2), (0, 2), (0, 1))


@dataclass(frozen=True)
class Rect:
    """An axis-aligned rectangle: the plane ``x[axis] == coord`` bounded by ``lo``/``hi`` on
    the two other world axes (in increasing axis order, see ``_INPLANE``).

    ``brightness`` scales its texture (a fixed, view-independent shading); ``kind`` and
    ``group`` only label it ("wall", "box", "billboard"; the object index).
    """

    axis: int
    coord: float
    lo: tuple[float, float]
    hi: tuple[float, float]
    brightness: float = 1.0
    kind: str = "wall"
    group: int = -1

    def corners(self) -> np.ndarray:
        """(4, 3) world corners in winding order."""
        a, (b0, b1) = self.axis, _INPLANE[self.axis]
        out = np.zeros((4, 3))
        out[:, a] = self.coord
        out[:, b0] = [self.lo[0], self.hi[0], self.hi[0], self.lo[0]]
        out[:, b1] = [self.lo[1], self.lo[1], self.hi[1], self.hi[1]]
        return out

    @property
    def size(self) -> tuple[float, float]:
        return self.hi[0] - self.lo[0], self.hi[1] - self.lo[1]

    def scaled(self, s: float) -> Rect:
        return Rect(
            self.axis,
            self.coord * s,
            (self.lo[0] * s, self.lo[1] * s),
            (self.hi[0] * s, self.hi[1] * s),
            self.brightness,
            self.kind,
            self.group,
        )


def _rect(axis: int, coord: float, lo3: Sequence[float], hi3: Sequence[float], **kw: Any) -> Rect:
    b0, b1 = _INPLANE[axis]
    return Rect(axis, float(coord), (float(lo3[b0]), float(lo3[b1])),
                (float(hi3[b0]), float(hi3[b1])), **kw)  # fmt: skip


def box_rects(
    lo: Sequence[float],
    hi: Sequence[float],
    group: int = -1,
    bottom: bool = False,
    brightness: Sequence[float] = (0.8, 0.9, 1.0),
) -> list[Rect]:
    """The faces of the axis-aligned box ``[lo, hi]`` (bottom face only if asked: a box on
    the floor never shows it). ``brightness`` per normal axis (x, y, z faces)."""
    out = []
    for a in range(3):
        for side, c in ((0, lo[a]), (1, hi[a])):
            if a == 2 and side == 0 and not bottom:
                continue
            out.append(_rect(a, c, lo, hi, brightness=brightness[a], kind="box", group=group))
    return out


def room_rects(lo: Sequence[float], hi: Sequence[float], overlap: float = 1e-3) -> list[Rect]:
    """The six inward-facing walls of the room ``[lo, hi]``, each extended by ``overlap``
    beyond its neighbours so the room is closed even under float32 rounding."""
    lo_e = np.asarray(lo, dtype=np.float64) - overlap
    hi_e = np.asarray(hi, dtype=np.float64) + overlap
    bright = (0.88, 0.94, 1.0)
    return [
        _rect(a, c, lo_e, hi_e, brightness=bright[a], kind="wall")
        for a in range(3)
        for c in (lo[a], hi[a])
    ]
