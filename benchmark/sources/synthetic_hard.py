r"""The *hard* synthetic scene family: rooms whose look resembles real footage more than
:mod:`benchmark.sources.synthetic`'s feature-rich rooms, for calibrating pose recovery.

What makes them hard for SfM (and is still exact: depth and cameras are the renderer's):

- **large low-texture surfaces**: walls and ceiling are low-contrast smooth noise with a few
  faint marks;
- **repeated patterns**: the floor and some objects are tiled with one small random tile
  (identical copies: ambiguous matches);
- **shading that changes with viewpoint**: a facing-ratio term and a moving glossy highlight
  on some surfaces, so a point's colour changes between frames;
- **a distant background**: the far wall is pushed back (``far_factor``), so part of the view
  has little parallax;
- **fewer, weaker features**: fewer objects, photo textures blended towards a flat colour.

Geometry, the base camera and the camera paths come from
:func:`benchmark.sources.synthetic.make_scene` and its ray caster (this module only changes textures
and shading, and moves the far wall); the scene is rescaled so the base view's median depth is 1, as
for the rooms.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import cv2
import numpy as np
import torch

from benchmark.sources.synthetic import (
    _INPLANE,
    _LOWRES,
    Rect,
    SceneSpec,
    SyntheticScene,
    _value_noise,
    canonical_K,
    make_scene,
    make_texture,
)

#: Fixed light direction (world, unit) of the glossy highlight.
_LIGHT = np.array([0.3, -0.5, 0.81]) / np.linalg.norm([0.3, -0.5, 0.81])


@dataclass
class HardSceneSpec:
    """Recipe of a hard scene; :func:`make_hard_scene` is deterministic in it.

    Args:
        seed: seeds the layout (through :class:`SceneSpec`) and the textures.
        num_boxes, num_billboards: objects (fewer than the rooms' 5 + 4).
        far_factor: the far wall's distance from the base camera is multiplied by this.
        contrast: contrast of the low-texture surfaces' noise (0-1 of the 0-255 range).
        gloss: strength of the moving highlight (0 disables view-dependent shading).
    """

    seed: int = 0
    num_boxes: int = 2
    num_billboards: int = 2
    far_factor: float = 2.5
    contrast: float = 0.08
    gloss: float = 0.35

    def to_dict(self) -> dict[str, Any]:
        return {"family": "hard", **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HardSceneSpec:
        kw = {k: v for k, v in d.items() if k != "family"}
        unknown = set(kw) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown HardSceneSpec keys: {sorted(unknown)}")
        return cls(**kw)


class HardScene(SyntheticScene):
    """A :class:`SyntheticScene` with hard textures and view-dependent shading."""

    def __init__(self, rects: list[Rect], base_w2c: np.ndarray, spec: HardSceneSpec) -> None:
        super().__init__(rects, base_w2c, seed=spec.seed, spec=None)
        self.hard_spec = spec
        rng = np.random.default_rng([spec.seed, 9133])
        # per rectangle: texture style and gloss (walls: floor tiled, rest plain/weak photo)
        styles, gloss = [], []
        for r in self.rects:
            if r.kind == "wall":
                style = "tiles" if r.axis == 2 and r.coord < self.base_center[2] else "plain"
                if r.axis == 1 and r.coord > self.base_center[1]:
                    style = "weak_photo"  # the distant background
            else:
                style = str(rng.choice(["tiles", "plain", "weak_photo"]))
            styles.append(style)
            gloss.append(spec.gloss if rng.random() < 0.6 else 0.0)
        self.styles = styles
        self._gloss = torch.tensor(gloss, dtype=torch.float32)

    def _texture_recipe(self) -> Any:
        return self.hard_spec.to_dict()  # styles and contrast derive from it

    def texture(self, m: int) -> np.ndarray:
        """Hard texture of rectangle m (seeded by the scene seed and m)."""
        w, h = self.texture_sizes()[m]
        rng = np.random.default_rng([self.seed, m, 5521])
        return _hard_texture(rng, self.styles[m], w, h, self.hard_spec.contrast)

    def _shade(
        self,
        ids: torch.Tensor,
        t: torch.Tensor,
        d: torch.Tensor,
        C: torch.Tensor,
        dx: torch.Tensor,
        dy: torch.Tensor,
    ) -> torch.Tensor:
        """Texture colour times a facing-ratio term, plus a glossy highlight of a fixed light
        reflected about the surface: both change with the viewpoint."""
        col = super()._shade(ids, t, d, C, dx, dy)
        m = ids.clamp(min=0)
        n = self._nvec[m]
        dn = d / d.norm(dim=1, keepdim=True).clamp(min=1e-12)
        cos = (n * dn).sum(1)
        facing = 0.55 + 0.45 * cos.abs().sqrt()
        refl = dn - 2 * cos[:, None] * n
        light = torch.from_numpy(_LIGHT).float()
        spec = (refl @ light).clamp(min=0) ** 24 * self._gloss[m] * 255.0
        hit = (ids >= 0).float()
        return (col * facing[:, None] + (spec * hit)[:, None]).clamp(0, 255)


def _hard_texture(
    rng: np.random.Generator, style: str, width: int, height: int, contrast: float
) -> np.ndarray:
    """(height, width, 3) uint8 texture of one style: plain, tiles or weak_photo."""
    base = rng.uniform(90, 200, 3)
    if style == "weak_photo":
        tex = cv2.GaussianBlur(make_texture(rng, width, height), (0, 0), 1.5).astype(np.float32)
        flat = tex.mean(axis=(0, 1), keepdims=True)
        return np.clip(flat + 0.2 * (tex - flat), 0, 255).astype(np.uint8)
    noise = _value_noise(rng, width, height, finest=12.0, channels=1, slope=0.8)
    plain = base[None, None] + 255.0 * contrast * (noise - 0.5)
    if style == "plain":
        img = np.clip(plain, 0, 255).astype(np.uint8)
        n_marks = max(2, int(width * height / 40_000))
        for _ in range(n_marks):  # a few faint smudges
            c = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            r = int(rng.integers(2, 6))
            col = tuple(float(v) for v in np.clip(base + rng.normal(0, 25, 3), 0, 255))
            cv2.circle(img, c, r, col, -1, cv2.LINE_AA)
        return img
    # tiles: one random tile (noise + marks) repeated, with grout lines
    size = int(rng.integers(24, 48))
    tile = make_texture(rng, size, size).astype(np.float32)
    tile = base[None, None] + 0.35 * (tile - tile.mean(axis=(0, 1), keepdims=True))
    tile[:2] = base * 0.6
    tile[:, :2] = base * 0.6
    reps = (height // size + 1, width // size + 1, 1)
    img = np.tile(tile, reps)[:height, :width]
    img = img + 0.3 * (plain - base[None, None])
    return np.clip(img, 0, 255).astype(np.uint8)


def _push_far_wall(scene: SyntheticScene, factor: float) -> list[Rect]:
    """The scene's rectangles with the far wall (+y, ahead of the base camera) moved
    ``factor`` times as far from the camera, the side walls, floor and ceiling extended."""
    cam_y = scene.base_center[1]
    # the wall planes themselves (room_bounds would include the walls' overlap margins)
    old = max(r.coord for r in scene.rects if r.kind == "wall" and r.axis == 1)
    new = cam_y + factor * (old - cam_y)
    out = []
    for r in scene.rects:
        if r.kind != "wall":
            out.append(r)
            continue
        if r.axis == 1 and r.coord >= old - 1e-6:
            out.append(Rect(r.axis, new, r.lo, r.hi, r.brightness, r.kind, r.group))
            continue
        b0, b1 = _INPLANE[r.axis]
        r_lo, r_hi = list(r.lo), list(r.hi)
        if b0 == 1 and r_hi[0] >= old - 1e-2:
            r_hi[0] = new + 1e-3
        if b1 == 1 and r_hi[1] >= old - 1e-2:
            r_hi[1] = new + 1e-3
        out.append(Rect(r.axis, r.coord, tuple(r_lo), tuple(r_hi), r.brightness, r.kind,
                        r.group))
    return out


def make_hard_scene(spec: HardSceneSpec | int | dict[str, Any] = 0) -> HardScene:
    """Build the hard scene of a seed (or a :class:`HardSceneSpec` / its dict)."""
    if isinstance(spec, dict):
        spec = HardSceneSpec.from_dict(spec)
    elif not isinstance(spec, HardSceneSpec):
        spec = HardSceneSpec(seed=int(spec))
    room = make_scene(SceneSpec(seed=spec.seed, num_boxes=spec.num_boxes,
                                num_billboards=spec.num_billboards, min_clearance=0.8))
    rects = _push_far_wall(room, spec.far_factor)
    w, h = _LOWRES
    med = SyntheticScene(rects, room.base_w2c).median_depth(canonical_K(w, h), w, h)
    w2c = room.base_w2c.copy()
    w2c[:3, 3] /= med
    return HardScene([r.scaled(1.0 / med) for r in rects], w2c, spec)


def make_family_scene(spec: dict[str, Any]) -> SyntheticScene:
    """A scene of either family from its stored spec (``family`` absent or "rooms": the
    rooms of :func:`benchmark.sources.synthetic.make_scene`; "hard": :func:`make_hard_scene`)."""
    family = spec.get("family", "rooms")
    if family == "hard":
        return make_hard_scene(spec)
    if family != "rooms":
        raise ValueError(f"unknown scene family {family!r} (expected 'rooms' or 'hard')")
    return make_scene({k: v for k, v in spec.items() if k != "family"})
