"""Procedural layout of synthetic scenes: a room, a base camera and objects in its view, drawn
from a seed and scaled to unit median depth (:func:`make_scene`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.cameras.convention import CANONICAL_HFOV_DEG, canonical_K
from benchmark.sources.synthetic.camera import (
    _LOWRES,
    CANONICAL_SIZE,
    NEAR,
    look_w2c,
)
from benchmark.sources.synthetic.geometry import Rect, _rect, box_rects, room_rects
from benchmark.sources.synthetic.scene import SyntheticScene
from benchmark.sources.synthetic.spec import SceneSpec


def _aabb_point_distance(lo: np.ndarray, hi: np.ndarray, p: np.ndarray) -> float:
    return float(np.linalg.norm(np.maximum(np.maximum(lo - p, p - hi), 0.0)))


#: Least distance (scaled units) from the base camera to the walls -x, +x, -y (behind),
#: +y (ahead), floor, ceiling: room for ~0.3 of translation plus a 20 deg orbit.
_WALL_CLEARANCE = np.array([0.7, 0.7, 0.65, 0.9, 0.42, 0.38])
#: Accepted median depth of a drawn layout before it is scaled to 1.
_MEDIAN_RANGE = (0.85, 1.2)
#: Ranges of the room's proportions (camera height, half width, depth behind the camera,
#: depth ahead, ceiling above the camera), in roughly final units.
_ROOM = {
    "cam_h": (0.48, 0.58),
    "side": (0.95, 1.2),
    "behind": (0.75, 0.9),
    "far": (1.5, 1.9),
    "up": (0.45, 0.55),
}
#: Least gap between object footprints (along x or y), so objects standing behind one
#: another differ in depth by >= ~5% (the continuity tolerance of depth-based z-buffers).
_GAP = 0.05
#: Object sizes as fractions of their distance: box footprint, box height, billboard w, h.
_OBJ = {"box_xy": (0.15, 0.35), "box_z": (0.2, 0.55), "bb_w": (0.25, 0.45), "bb_h": (0.2, 0.4)}


@dataclass
class _Room:
    rects: list[Rect]
    lo: np.ndarray
    hi: np.ndarray
    cam: np.ndarray
    yaw: float
    w2c: np.ndarray

    def scaled(self, s: float) -> _Room:
        w2c = self.w2c.copy()
        w2c[:3, 3] *= s
        rects = [r.scaled(s) for r in self.rects]
        return _Room(rects, self.lo * s, self.hi * s, self.cam * s, self.yaw, w2c)

    def clearance(self) -> np.ndarray:
        """Distances from the camera to the walls -x, +x, -y, +y, floor, ceiling."""
        return np.concatenate([self.cam - self.lo, self.hi - self.cam])[[0, 3, 1, 4, 2, 5]]


def _sample_room(rng: np.random.Generator, spec: SceneSpec, depth_factor: float = 1.0) -> _Room:
    """Room and base camera, in roughly final units (the final scaling is within
    ``_MEDIAN_RANGE``), the room's depth ahead scaled by ``depth_factor``; the camera is
    placed off the world origin."""
    yaw = float(rng.uniform(-spec.max_yaw_deg, spec.max_yaw_deg))
    tilt = float(rng.uniform(*spec.tilt_deg))
    cam_h = rng.uniform(*_ROOM["cam_h"])
    cam = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), cam_h])
    lo = cam + [-rng.uniform(*_ROOM["side"]), -rng.uniform(*_ROOM["behind"]), -cam_h]
    far = rng.uniform(*_ROOM["far"]) * depth_factor
    hi = cam + [rng.uniform(*_ROOM["side"]), far, rng.uniform(*_ROOM["up"])]
    return _Room(room_rects(lo, hi), lo, hi, cam, yaw, look_w2c(cam, yaw, tilt))


def _in_base_view(w2c: np.ndarray, lo3: np.ndarray, hi3: np.ndarray, margin: float = 0.03) -> bool:
    """Whether the box [lo3, hi3] projects inside the canonical 16:9 view of ``w2c``, with a
    margin (fraction of the half-size). Keeping objects whole in the conditioning view means
    no object part outside it can occlude tracked points once the camera moves."""
    corners = np.array([[x, y, z] for x in (lo3[0], hi3[0]) for y in (lo3[1], hi3[1])
                        for z in (lo3[2], hi3[2])])  # fmt: skip
    pc = corners @ w2c[:3, :3].T + w2c[:3, 3]
    if np.any(pc[:, 2] <= NEAR):
        return False
    tx = math.tan(math.radians(CANONICAL_HFOV_DEG) / 2) * (1 - margin)
    ty = tx * CANONICAL_SIZE[1] / CANONICAL_SIZE[0]
    return bool(
        np.all(np.abs(pc[:, 0]) <= tx * pc[:, 2]) and np.all(np.abs(pc[:, 1]) <= ty * pc[:, 2])
    )


def _sample_objects(
    rng: np.random.Generator, spec: SceneSpec, room: _Room, clearance: float
) -> list[Rect]:
    """Boxes on the floor and billboards in the base camera's view, at least ``clearance``
    from its centre, inside the room and not overlapping (footprints with a margin)."""
    cam, lo_r, hi_r = room.cam, room.lo, room.hi
    ys, yc = math.sin(math.radians(room.yaw)), math.cos(math.radians(room.yaw))
    fwd2, right2 = np.array([ys, yc]), np.array([yc, -ys])
    far = float(hi_r[1] - cam[1])
    placed: list[tuple[np.ndarray, np.ndarray]] = []

    def free(lo2: np.ndarray, hi2: np.ndarray) -> bool:
        inside = np.all(lo2 > lo_r[:2] + 0.15) and np.all(hi2 < hi_r[:2] - 0.15)
        return bool(inside) and all(
            np.any(hi2 + _GAP < plo) or np.any(phi + _GAP < lo2) for plo, phi in placed
        )

    rects: list[Rect] = []
    kinds = ["box"] * spec.num_boxes + ["billboard"] * spec.num_billboards
    for kind in [kinds[i] for i in rng.permutation(len(kinds))]:
        for _ in range(200):
            dist = rng.uniform(clearance + 0.05, max(0.85 * far, clearance + 0.3))
            lat = rng.uniform(-0.9, 0.9) * dist * math.tan(math.radians(30))
            c2 = cam[:2] + dist * fwd2 + lat * right2
            if kind == "box":
                sx, sy = rng.uniform(*_OBJ["box_xy"], 2) * dist
                sz = rng.uniform(*_OBJ["box_z"]) * dist
                lo3 = np.array([c2[0] - sx / 2, c2[1] - sy / 2, lo_r[2]])
                hi3 = np.array([c2[0] + sx / 2, c2[1] + sy / 2, lo_r[2] + sz])
            else:
                wdt = rng.uniform(*_OBJ["bb_w"]) * dist
                hgt = rng.uniform(*_OBJ["bb_h"]) * dist
                z0 = cam[2] + rng.uniform(-0.45, 0.05) * dist
                z0 = max(z0, lo_r[2] + 0.08)
                if rng.random() < 0.7:  # facing the camera (normal along y)
                    lo3 = np.array([c2[0] - wdt / 2, c2[1], z0])
                    hi3 = np.array([c2[0] + wdt / 2, c2[1], z0 + hgt])
                else:  # side-on (normal along x), seen obliquely
                    lo3 = np.array([c2[0], c2[1] - wdt / 2, z0])
                    hi3 = np.array([c2[0], c2[1] + wdt / 2, z0 + hgt])
            if _aabb_point_distance(lo3, hi3, cam) < clearance:
                continue
            if spec.objects_in_view and not _in_base_view(room.w2c, lo3, hi3):
                continue
            if hi3[2] > hi_r[2] - 0.1 or not free(lo3[:2], hi3[:2]):
                continue
            placed.append((lo3[:2], hi3[:2]))
            group = len(placed) - 1
            if kind == "box":
                br = tuple(rng.uniform(0.85, 1.0) * np.array([0.78, 0.9, 1.0]))
                rects += box_rects(lo3, hi3, group=group, brightness=br)
            else:
                ax = 1 if lo3[1] == hi3[1] else 0
                b = float(rng.uniform(0.85, 1.0))
                rects.append(
                    _rect(ax, lo3[ax], lo3, hi3, brightness=b, kind="billboard", group=group)
                )
            break
    return rects


def make_scene(spec: SceneSpec | int | dict[str, Any] = 0) -> SyntheticScene:
    """Build the procedural scene of a seed (or a :class:`SceneSpec` / its dict).

    Deterministic: the same spec gives the same geometry, camera and textures. The result is
    scaled so the base view's median depth at ``canonical_K`` is 1. The layout is drawn in
    roughly final units with objects at least ``spec.min_clearance * _MEDIAN_RANGE[1]`` from
    the camera, and re-drawn from the same generator until its median depth lies in
    ``_MEDIAN_RANGE`` (so scaling keeps objects ``spec.min_clearance`` away) and no wall is
    nearer than ``_WALL_CLEARANCE`` after scaling; a layout too deep (shallow) for the range
    makes the next draws' rooms a little shallower (deeper), so unusual specs (e.g. a small
    tilt) still converge.
    """
    if isinstance(spec, dict):
        spec = SceneSpec.from_dict(spec)
    elif not isinstance(spec, SceneSpec):
        spec = SceneSpec(seed=int(spec))
    rng = np.random.default_rng([spec.seed, 2025])
    w, h = _LOWRES
    K = canonical_K(w, h)
    lo_med, hi_med = _MEDIAN_RANGE
    depth_factor = 1.0  # adapts the room depth when a spec's views come out too deep/shallow
    for _ in range(200):
        room = _sample_room(rng, spec, depth_factor)
        objects = _sample_objects(rng, spec, room, spec.min_clearance * hi_med)
        med = SyntheticScene(room.rects + objects, room.w2c).median_depth(K, w, h)
        if not lo_med <= med <= hi_med:
            depth_factor *= 0.97 if med > hi_med else 1.03
            continue
        room = room.scaled(1.0 / med)
        if np.any(room.clearance() < _WALL_CLEARANCE):
            continue
        return SyntheticScene(
            room.rects + [r.scaled(1.0 / med) for r in objects],
            room.w2c,
            seed=spec.seed,
            spec=spec,
            texels_per_pixel=spec.texels_per_pixel,
            max_texture_size=spec.max_texture_size,
        )
    raise RuntimeError(f"could not lay out a scene for {spec}")
