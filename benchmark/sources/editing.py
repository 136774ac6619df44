r"""First-frame-guided video editing (paper Sec. 4.3 / 5.4, Fig. 8): edits and edited scenes.

An editing clip has an *original* video and an *edited first frame*; a method must generate
a video that starts from the edited frame and keeps the original motion. On synthetic scenes
the edit is a recolouring of some surfaces (``edit: {recolour: {...}}`` in a suite's scene
entry): the edited scene has the same geometry with changed textures, so its exact render
along the original video's path is the ground-truth edited video.

Files: ``results/{suite}/edits/{scene}/`` holds ``image.png`` (the edited first frame, the
conditioning image of every method) and ``edit.json`` (the recipe, so the edited scene can be
rebuilt). The input video is the original scene's (:mod:`benchmark.sources.videos`); the requested
cameras are the video's own (camera path ``static``: no re-shoot).

On real clips (suite kind ``editing``) the edited first frame is an image made outside the
benchmark (``edited_image: {url, sha256}``), fetched into ``edits/{scene}/source`` and centre
cropped / resized exactly like the clip's frames, so it lines up with the conditioning view;
``edit.json`` then has no recipe (``edit: null``) and no exact edited video exists.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.config.edits import KINDS as KINDS  # the edit spec lives in config (suites check it)
from benchmark.config.edits import Recolour, parse_edit
from benchmark.io import atomic_write_text, read_image, write_png
from benchmark.sources.clips import center_crop_resize, first_frame
from benchmark.sources.real_images import fetch_image
from benchmark.sources.scenes import load_scene_view

#: Largest relative difference between the aspect ratios (width / height) of a real clip's
#: frame and its edited first frame: beyond it the same centre crop would frame them apart.
MAX_ASPECT_MISMATCH = 0.01

#: Mean absolute RGB difference (0-255) above which a pixel counts as changed by a real edit
#: (recorded in edit.json as ``changed_fraction``, a check that the edit is where it belongs).
CHANGED_PIXEL_THRESHOLD = 30.0


def edited_scene(scene: Any, recolour: Recolour) -> Any:
    r"""The synthetic scene with the same geometry, camera and textures except the selected
    surfaces, recoloured. Raises ValueError when the edit selects no surface.

    Args:
        scene: a :class:`benchmark.sources.synthetic.SyntheticScene`.
        recolour: the edit.

    Returns:
        A :class:`benchmark.sources.synthetic.SyntheticScene` (subclass) rendering the edit.
    """
    # torch (synthetic rendering): imported here, so loading an edit (score) stays torch-free
    from benchmark.sources.synthetic import SyntheticScene

    if type(scene)._shade is not SyntheticScene._shade:
        raise ValueError(
            f"recolouring edits support scenes with the rooms' shading only; a "
            f"{type(scene).__name__} shades by view, which the edited scene would not carry over"
        )

    class EditedScene(SyntheticScene):
        """A synthetic scene whose selected surfaces have recoloured textures."""

        def __init__(self) -> None:
            super().__init__(scene.rects, scene.base_w2c, seed=scene.seed, spec=scene.spec,
                             texels_per_pixel=scene.texels_per_pixel,
                             max_texture_size=scene.max_texture_size)
            self.recolour = recolour
            self.edited = frozenset(m for m, r in enumerate(self.rects) if recolour.selects(r))

        def __reduce__(self) -> tuple[Any, ...]:  # a local class: pickle by rebuilding
            return edited_scene, (scene, recolour)

        def texture(self, m: int) -> np.ndarray:
            texture = scene.texture(m)  # the original scene's own (its family's) texture
            return self.recolour.apply(texture) if m in self.edited else texture

        def base_textures(self) -> list[np.ndarray]:
            # the original's textures (from its texture cache when it has one), recoloured
            return [self.recolour.apply(t) if m in self.edited else t
                    for m, t in enumerate(scene.base_textures())]

    out = EditedScene()
    if not out.edited:
        raise ValueError(f"the edit {recolour.to_dict()} selects no surface of the scene")
    return out


def edited_surfaces(scene: Any, K: np.ndarray, w2c: np.ndarray, width: int, height: int,
                    recolour: Recolour) -> np.ndarray:
    r"""(H, W) bool: pixels whose centre ray first hits an edited surface (exact ray cast)."""
    # torch (synthetic rendering): imported here, so loading an edit (score) stays torch-free
    from benchmark.sources.synthetic import cast_rays

    w2c = np.asarray(w2c, np.float64)
    R, t = w2c[:3, :3], w2c[:3, 3]
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    pix = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], axis=1)
    dirs = pix @ np.linalg.inv(np.asarray(K, np.float64)).T @ R  # camera rays -> world
    origins = np.broadcast_to(-R.T @ t, dirs.shape)
    _, ids = cast_rays(scene, origins, dirs)
    chosen = np.array([recolour.selects(r) for r in scene.rects] + [False])
    return chosen[ids].reshape(height, width)  # id -1 (miss) -> the trailing False


def prepare_edit(suite: Any, name: str, scene_dir: str | Path, out_dir: str | Path) -> Path:
    r"""Write ``image.png`` (the edited first frame: the edited scene's base view, or a real
    clip's fetched edited frame) and ``edit.json`` for scene ``name`` of an editing suite."""
    # torch (synthetic rendering): imported here, so loading an edit (score) stays torch-free
    from benchmark.sources.synthetic import render

    if suite.kind == "editing":
        return prepare_real_edit(suite, name, scene_dir, out_dir)
    entry = suite.scene(name)
    if "edit" not in entry:
        raise ValueError(f"scene {name!r} of suite {suite.name!r} has no edit")
    recolour = parse_edit(entry["edit"])
    view = load_scene_view(scene_dir)
    original = view.synthetic_scene()
    if original is None:
        raise ValueError(f"{scene_dir} is not a synthetic scene: recolouring needs its geometry")
    scene = edited_scene(original, recolour)
    cam = view.view
    rgb, _ = render(scene, cam.K, cam.w2c[0], cam.width, cam.height)
    out = Path(out_dir)
    write_png(out / "image.png", rgb)
    atomic_write_text(out / "edit.json", json.dumps(
        {"scene": name, "edit": {"recolour": recolour.to_dict()}}, indent=1))
    return out


def fit_edited_frame(edited: np.ndarray, clip_frame_size: tuple[int, int], width: int,
                     height: int) -> np.ndarray:
    r"""Centre crop and resize an edited first frame like its clip's frames.

    Args:
        edited: uint8 (H, W, 3) RGB edited frame, any size with the clip frame's aspect ratio.
        clip_frame_size: (width, height) of the clip's decoded frames.
        width: the suite's frame width.
        height: the suite's frame height.

    Returns:
        uint8 (height, width, 3), framed like
        :func:`benchmark.sources.clips.center_crop_resize` of the clip's frames (the same crop
        of the same field of view).

    Raises:
        ValueError: the aspect ratios differ by more than :data:`MAX_ASPECT_MISMATCH`.
    """
    clip_w, clip_h = clip_frame_size
    h, w = edited.shape[:2]
    if abs((w / h) / (clip_w / clip_h) - 1.0) > MAX_ASPECT_MISMATCH:
        raise ValueError(
            f"the edited first frame is {w}x{h} but the clip's frames are {clip_w}x{clip_h}: "
            "their aspect ratios differ, so the edit would not line up with the clip"
        )
    return center_crop_resize(edited, width, height)


def prepare_real_edit(suite: Any, name: str, scene_dir: str | Path, out_dir: str | Path) -> Path:
    r"""Write ``image.png`` and ``edit.json`` of a real clip's edited first frame.

    Args:
        suite: an ``editing`` suite (:class:`benchmark.config.suites.Suite`).
        name: the scene; its entry's ``edited_image`` names the frame (url, sha256).
        scene_dir: the scene folder; ``source`` is the clip (the fetch rule's download).
        out_dir: the edit folder; ``source`` is the edited frame's download (fetched here when
            the workflow's fetch rule has not written it); its sha256 is checked either way.

    Returns:
        ``out_dir``.
    """
    entry = suite.scene(name)
    spec = entry.get("edited_image")
    if spec is None:
        raise ValueError(f"scene {name!r} of suite {suite.name!r} has no edited_image")
    out = Path(out_dir)
    source = out / "source"
    if not source.exists():
        fetch_image(spec["url"], spec["sha256"], source)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if digest != spec["sha256"]:
        raise ValueError(f"{source}: sha256 {digest} does not match the suite's {spec['sha256']}")
    clip_frame = first_frame(Path(scene_dir) / "source", entry)
    raw = read_image(source)
    width, height = suite.data["width"], suite.data["height"]
    image = fit_edited_frame(raw, (clip_frame.shape[1], clip_frame.shape[0]), width, height)
    original = center_crop_resize(clip_frame, width, height)  # the scene's conditioning view
    diff = np.abs(image.astype(np.float64) - original).mean(axis=-1)
    write_png(out / "image.png", image)
    recipe = {
        "scene": name,
        "edit": None,  # made outside the benchmark: no recipe, no exact edited video
        "edited_image": {"url": spec["url"], "sha256": spec["sha256"],
                         "size": [int(raw.shape[1]), int(raw.shape[0])]},
        "clip_frame_size": [int(clip_frame.shape[1]), int(clip_frame.shape[0])],
        "mean_abs_diff": round(float(diff.mean()), 3),
        "changed_fraction": round(float((diff > CHANGED_PIXEL_THRESHOLD).mean()), 4),
    }
    atomic_write_text(out / "edit.json", json.dumps(recipe, indent=1))
    return out


@dataclass(frozen=True)
class Edit:
    """A prepared edit: the edited first frame and its recipe."""

    image: np.ndarray
    recolour: Recolour | None  # None for edits made outside the harness (real clips)


def load_edit(edit_dir: str | Path) -> Edit:
    """Read ``image.png`` and ``edit.json`` of a prepared edit."""
    folder = Path(edit_dir)
    recipe_file = folder / "edit.json"
    if not recipe_file.exists():
        raise FileNotFoundError(f"{recipe_file} is missing: prepare the edit first")
    recipe = json.loads(recipe_file.read_text()).get("edit")
    return Edit(read_image(folder / "image.png"), None if recipe is None else parse_edit(recipe))


def load_edited_scene(scene_dir: str | Path, edit_dir: str | Path) -> Any:
    """The edited synthetic scene of a prepared scene folder and edit (None when the scene is
    not synthetic or the edit has no recipe)."""
    original = load_scene_view(scene_dir).synthetic_scene()
    recolour = load_edit(edit_dir).recolour
    if original is None or recolour is None:
        return None
    return edited_scene(original, recolour)
