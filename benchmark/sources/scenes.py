"""Scene and camera preparation: suite entries -> files the methods and metrics read.

For each scene ``results/{suite}/scenes/{scene}/`` holds ``image.png`` (the conditioning view),
``depth.npy`` (its z-depth, float32), ``view.json`` (the view's K, size and world-to-camera)
and, for synthetic scenes, ``scene.json`` (the generator spec: the scene can be rebuilt and
rendered exactly) and ``textures.npz`` (its generated textures: a cache keyed by a fingerprint
of the scene and the texture code, which later renders read instead of generating them again).
Camera paths go to ``results/{suite}/cameras/f{F}/{scene}/{camera}.json``: they depend on the
scene (its base pose, and its median depth that scales the motion).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.cameras import (
    CameraPath,
    camera_path_from_dict,
    camera_path_to_dict,
    canonical_K,
)
from benchmark.cameras.paths import make_camera_path
from benchmark.config.suites import Suite
from benchmark.io import atomic_write_text, read_image, write_npy, write_png

#: Fewest pixels with finite positive depth for a usable depth map; invalid pixels are
#: untrackable (Alg. 3), but a map that is mostly invalid means a broken depth stage.
MIN_VALID_DEPTH = 0.5


@dataclass
class SceneView:
    """The conditioning view of a scene as stored on disk."""

    image: np.ndarray
    depth: np.ndarray | None
    view: CameraPath  # one frame: K, size, world-to-camera of the conditioning view
    spec: dict[str, Any] | None  # synthetic generator spec, else None
    folder: Path | None = None  # where it was read from (its texture cache lives there)

    def synthetic_scene(self) -> Any:
        """The rebuilt synthetic scene (None for real images), reading its textures from the
        folder's texture cache when that is valid."""
        if self.spec is None:
            return None
        # torch (the synthetic renderer): imported on use, so reading a view stays light
        from benchmark.sources.synthetic.texture_cache import TEXTURE_CACHE  # torch
        from benchmark.sources.synthetic_hard import make_family_scene  # torch

        scene = make_family_scene(self.spec)
        if self.folder is not None:
            scene.use_texture_cache(self.folder / TEXTURE_CACHE)
        return scene


def prepare_synthetic_scene(suite: Suite, name: str, out_dir: str | Path) -> Path:
    """Build the synthetic scene ``name`` of ``suite`` and write its conditioning view."""
    # torch (the synthetic renderer): imported on use, so real-image suites never load it
    from benchmark.sources.synthetic import SceneSpec, make_scene, render
    from benchmark.sources.synthetic.texture_cache import TEXTURE_CACHE, save_textures  # torch

    entry = suite.scene(name)
    if entry.get("family", "rooms") == "hard":  # benchmark.sources.synthetic_hard
        from benchmark.sources.synthetic_hard import HardSceneSpec, make_hard_scene  # torch

        spec = HardSceneSpec.from_dict({"seed": entry["seed"], **entry.get("spec", {})})
        scene = make_hard_scene(spec)
    else:
        spec = SceneSpec.from_dict({"seed": entry["seed"], **entry.get("spec", {})})
        scene = make_scene(spec)
    width, height = suite.data["width"], suite.data["height"]
    K = canonical_K(width, height, suite.data["hfov_deg"])
    rgb, depth = render(scene, K, scene.base_w2c, width, height)
    out = Path(out_dir)
    write_png(out / "image.png", rgb)
    write_npy(out / "depth.npy", depth.astype(np.float32))
    view = CameraPath(K=K, w2c=scene.base_w2c[None], width=width, height=height, name=name)
    atomic_write_text(out / "scene.json", json.dumps(spec.to_dict(), indent=1))
    save_textures(scene, out / TEXTURE_CACHE)  # every later render of the scene reads them
    atomic_write_text(out / "view.json", json.dumps(camera_path_to_dict(view), indent=1))
    return out


def load_scene_view(scene_dir: str | Path) -> SceneView:
    """Read a prepared scene folder; errors name the missing or unreadable file."""
    folder = Path(scene_dir)
    image = read_image(folder / "image.png")
    view_file = folder / "view.json"
    if not view_file.exists():
        raise FileNotFoundError(f"{view_file} is missing: prepare the scene first")
    view = camera_path_from_dict(json.loads(view_file.read_text()))
    depth = None
    if (folder / "depth.npy").exists():
        depth = np.load(folder / "depth.npy")
        if depth.shape != image.shape[:2]:
            raise ValueError(f"{folder}/depth.npy is {depth.shape}, image is {image.shape[:2]}")
        usable = float(np.mean(np.isfinite(depth) & (depth > 0)))
        if usable < MIN_VALID_DEPTH:
            raise ValueError(
                f"{folder}/depth.npy: only {usable:.0%} of its pixels have a finite positive "
                f"depth (< {MIN_VALID_DEPTH:.0%}): regenerate it (prepare-scene)"
            )
    spec = None
    if (folder / "scene.json").exists():
        spec = json.loads((folder / "scene.json").read_text())
    return SceneView(image=image, depth=depth, view=view, spec=spec, folder=folder)


def median_depth(depth: np.ndarray) -> float:
    """Median of the finite, positive depths (the unit of camera-path magnitudes)."""
    valid = depth[np.isfinite(depth) & (depth > 0)]
    if valid.size == 0:
        raise ValueError("depth map has no finite positive value")
    return float(np.median(valid))


def make_scene_camera(scene: SceneView, camera: str, num_frames: int) -> CameraPath:
    """The parametric path ``camera`` from the scene's conditioning view, scaled by its
    median depth (so ``truck_left_20pct`` moves 20% of the median depth)."""
    depth = median_depth(scene.depth) if scene.depth is not None else 1.0
    if not math.isfinite(depth):
        raise ValueError("median depth is not finite")
    view = scene.view
    return make_camera_path(
        camera, view.K, view.width, view.height, num_frames, depth=depth, base_w2c=view.w2c[0]
    )
