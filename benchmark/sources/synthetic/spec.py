"""The JSON-able recipe of a procedural room scene (stored as a prepared scene's
``scene.json``); :func:`benchmark.sources.synthetic.make_scene` is deterministic in it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass
class SceneSpec:
    """JSON-able recipe of a procedural scene; :func:`make_scene` is deterministic in it.

    Args:
        seed: seeds every random choice (layout, base camera, textures).
        num_boxes: axis-aligned boxes standing on the floor in front of the base camera.
        num_billboards: vertical textured quads floating at different depths.
        max_yaw_deg: base camera yaw is uniform in +-this.
        tilt_deg: base camera downward tilt is uniform in this [min, max].
        min_clearance: no object comes closer than this (scene units = base median depth)
            to the base camera centre, leaving room for camera paths around it.
        objects_in_view: every object lies wholly inside the base view (canonical FOV), so
            depth-based trajectories from the base view know every object that can occlude.
        texels_per_pixel: texture density relative to a canonical 1024-px-wide base view.
        max_texture_size: cap on a texture's long side (pixels).
    """

    seed: int = 0
    num_boxes: int = 5
    num_billboards: int = 4
    max_yaw_deg: float = 10.0
    tilt_deg: tuple[float, float] = (8.0, 16.0)
    min_clearance: float = 0.65
    objects_in_view: bool = True
    texels_per_pixel: float = 1.0
    max_texture_size: int = 2048

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tilt_deg"] = list(self.tilt_deg)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SceneSpec:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown SceneSpec keys: {sorted(unknown)}")
        kw = dict(d)
        if "tilt_deg" in kw:
            kw["tilt_deg"] = tuple(float(v) for v in kw["tilt_deg"])
        return cls(**kw)
