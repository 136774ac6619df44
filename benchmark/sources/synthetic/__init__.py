r"""Procedural, seeded 3-D scenes with exact ground truth, and an exact ray caster for them.

A scene is a closed, textured room (floor, ceiling, four walls) holding axis-aligned boxes and
vertical billboards, all built from axis-aligned rectangles in world coordinates. Every
rectangle carries its own texture, a mix of photographs bundled with scikit-image and seeded
procedural detail (value noise, blobs, strokes), so SIFT finds plenty of distinct features on
every surface and nothing is tiled.

Conventions (the project's, see ``benchmark.cameras``):

- ``K`` is 3x3 float64 in pixels; ``w2c`` is 4x4 float64 world-to-camera with OpenCV axes
  (x right, y down, z forward).
- Pixel (row i, col j) covers ``[j, j+1) x [i, i+1)``; its centre is ``(j + 0.5, i + 0.5)``,
  so its ray goes through ``K^-1 @ (j + 0.5, i + 0.5, 1)`` (COLMAP's convention).
- ``depth`` is z-depth in the camera frame (not distance along the ray), float32, exact at
  the pixel centre (never averaged across edges).

The world frame is z-up (x right, y forward from the base camera, z up; floor at z = 0), so
it is deliberately *not* the camera frame; the base camera also has a seeded yaw and a
downward tilt. :func:`make_scene` scales every scene so that the median depth of the base view
at the canonical intrinsics (:func:`canonical_K`: 60 deg horizontal FOV, 16:9) is 1, so
translations are in units of median depth.

Typical use::

    scene = make_scene(7)                       # or make_scene(SceneSpec(seed=7, num_boxes=3))
    K = canonical_K(448, 256)
    rgb, depth = render(scene, K, scene.base_w2c, 448, 256)
    rgb, depth, points = render(scene, K, w2c, 448, 256, return_points=True)
    frames, depths = render_frames(scene, K, w2c_seq, 448, 256)
    depth = render_depth(scene, K, w2c, 448, 256)   # geometry only: no textures, fast
    t, rect = cast_rays(scene, origins, dirs)       # float64 brute force, for checks

Renders run torch on one thread by default (``threads=1``): on a shared 2-core machine a
2-thread team stalls badly whenever another job holds a core (see :func:`render`).
Measured with ``python -m bench.render`` (2 cores, 1 thread): 25 frames at
1024x576 in 13 s plus ~2 s of one-off texture generation per scene; 14 frames at 448x256
in 2.0 s (1.4 s with ``threads=2`` on an idle machine). A prepared scene folder keeps the
generated textures (``textures.npz``, :mod:`benchmark.sources.synthetic.texture_cache`), so
later processes that render it skip that step.
"""

from __future__ import annotations

# private names re-exported for benchmark.sources.synthetic_hard (the harder scene family)
from benchmark.cameras.convention import CANONICAL_HFOV_DEG, canonical_K
from benchmark.sources.synthetic.camera import _LOWRES as _LOWRES
from benchmark.sources.synthetic.camera import look_w2c
from benchmark.sources.synthetic.geometry import _INPLANE as _INPLANE
from benchmark.sources.synthetic.geometry import Rect, box_rects, room_rects
from benchmark.sources.synthetic.layout import make_scene
from benchmark.sources.synthetic.render import cast_rays, render, render_depth, render_frames
from benchmark.sources.synthetic.scene import SyntheticScene
from benchmark.sources.synthetic.spec import SceneSpec
from benchmark.sources.synthetic.textures import _value_noise as _value_noise
from benchmark.sources.synthetic.textures import make_texture as make_texture

__all__ = [
    "CANONICAL_HFOV_DEG",
    "Rect",
    "SceneSpec",
    "SyntheticScene",
    "box_rects",
    "canonical_K",
    "cast_rays",
    "look_w2c",
    "make_scene",
    "render",
    "render_depth",
    "render_frames",
    "room_rects",
]
