"""Suites: YAML files of scenes x camera paths (x frame counts), validated by JSON Schema.

A suite expands into *combinations* ``(scene, camera, num_frames)``; each runs every method
for every seed. Suites name their camera paths by the stable names of
:mod:`benchmark.camera_paths` and their scenes by generator seed (synthetic) or by URL and
sha256 (real images and clips; editing clips also name their edited first frame).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from benchmark.camera_paths import parse_camera_name

ROOT = Path(__file__).resolve().parent.parent
SUITES_DIR = ROOT / "configs" / "suites"
SCHEMAS_DIR = ROOT / "configs" / "schemas"


class SuiteError(ValueError):
    """A suite file that cannot be used; the message names the file and the field."""


def load_schema(name: str) -> dict[str, Any]:
    """A JSON Schema from configs/schemas/ (``suite``, ``config``)."""
    return yaml.safe_load((SCHEMAS_DIR / f"{name}.schema.yaml").read_text())


def apply_defaults(schema: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Copy of ``data`` with top-level schema defaults filled in (jsonschema only checks)."""
    out = copy.deepcopy(data)
    for key, prop in schema.get("properties", {}).items():
        if key not in out and "default" in prop:
            out[key] = copy.deepcopy(prop["default"])
    return out


def validate(schema_name: str, data: Any, source: str) -> dict[str, Any]:
    """Validate ``data`` against a schema and fill defaults; errors name file and field."""
    schema = load_schema(schema_name)
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path)
    )
    if errors:
        lines = [f"{'/'.join(map(str, e.path)) or '(top)'}: {e.message}" for e in errors[:5]]
        raise SuiteError(f"{source}: invalid {schema_name}:\n  " + "\n  ".join(lines))
    return apply_defaults(schema, data)


@dataclass(frozen=True)
class Combination:
    """One clip to generate: a scene, a camera path and a frame count."""

    scene: str
    camera: str
    num_frames: int

    @property
    def key(self) -> str:
        """Folder name of the combination under a method: ``f{F}/{scene}__{camera}``."""
        return f"f{self.num_frames}/{self.scene}__{self.camera}"


@dataclass(frozen=True)
class Suite:
    """A validated suite (see configs/schemas/suite.schema.yaml for every field)."""

    data: dict[str, Any]
    path: Path

    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def kind(self) -> str:
        return self.data["kind"]

    @property
    def is_synthetic(self) -> bool:
        """Procedural scenes (exact depth, ground-truth renders): ``synthetic``,
        ``synthetic-video`` and ``synthetic-editing``."""
        return self.kind in ("synthetic", "synthetic-video", "synthetic-editing")

    @property
    def is_video(self) -> bool:
        """Each clip starts from an input video: video camera control (paper Table 2, the
        clip re-shoots it) and first-frame-guided editing (the clip keeps its motion)."""
        return self.kind in ("synthetic-video", "video", "synthetic-editing", "editing")

    @property
    def is_editing(self) -> bool:
        """First-frame-guided editing (paper Sec. 4.3, Fig. 8): each scene has an input video
        and an edit of its first frame; methods must show the edit with the video's motion:
        ``synthetic-editing`` (recoloured synthetic scenes) and ``editing`` (real clips with an
        edited first frame made outside the benchmark)."""
        return self.kind in ("synthetic-editing", "editing")

    def video_camera(self, scene: str) -> str:
        """Synthetic video suites: the path the scene's input video is filmed along."""
        return self.scene(scene).get("video_camera", self.data["video_camera"])

    @property
    def frame_counts(self) -> list[int]:
        n = self.data["num_frames"]
        return [n] if isinstance(n, int) else list(n)

    @property
    def scenes(self) -> dict[str, dict[str, Any]]:
        return {s["name"]: s for s in self.data["scenes"]}

    @property
    def cameras(self) -> list[str]:
        return list(self.data["cameras"])

    @property
    def seeds(self) -> list[int]:
        return list(self.data["seeds"])

    @property
    def methods(self) -> dict[str, list[int]]:
        """The suite's methods, each with the frame counts it runs at (its own, when the
        suite gives them, else all of the suite's)."""
        out: dict[str, list[int]] = {}
        for entry in self.data["methods"]:
            if isinstance(entry, str):
                out[entry] = self.frame_counts
            else:
                out[entry["name"]] = list(entry["num_frames"])
        return out

    def combinations(self, frame_counts: list[int] | None = None) -> list[Combination]:
        """All (scene, camera, frames) for ``frame_counts`` (default: the suite's)."""
        return [
            Combination(scene, camera, frames)
            for frames in (frame_counts or self.frame_counts)
            for scene in self.scenes
            for camera in self.cameras
        ]

    def scene(self, name: str) -> dict[str, Any]:
        try:
            return self.scenes[name]
        except KeyError:
            raise SuiteError(f"suite {self.name!r} has no scene {name!r}") from None


def resolve_suite_path(name_or_path: str | Path) -> Path:
    """A suite given by file path or by name (configs/suites/{name}.yaml)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    return SUITES_DIR / f"{name_or_path}.yaml"


def load_suite(name_or_path: str | Path) -> Suite:
    """Load, validate and cross-check a suite; raises SuiteError naming the problem."""
    path = resolve_suite_path(name_or_path)
    if not path.exists():
        known = sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))
        raise SuiteError(f"no suite {str(name_or_path)!r}; known suites: {', '.join(known)}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}: not valid YAML: {exc}") from exc
    data = validate("suite", raw, str(path))
    names = [s["name"] for s in data["scenes"]]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SuiteError(f"{path}: scenes: duplicate names {dupes}")
    for scene in data["scenes"]:
        needed = ("seed",) if data["kind"].startswith("synthetic") else ("url", "sha256")
        if data["kind"] == "editing":
            needed += ("edited_image",)
        missing = [k for k in needed if k not in scene]
        if missing:
            raise SuiteError(
                f"{path}: scenes/{scene['name']}: a {data['kind']} scene needs {missing}"
                + (" (edited_image: {url, sha256} of the clip's edited first frame)"
                   if "edited_image" in missing else "")
            )
    for entry in data["methods"]:
        if isinstance(entry, dict) and set(entry["num_frames"]) - set(
            [data["num_frames"]] if isinstance(data["num_frames"], int) else data["num_frames"]
        ):
            raise SuiteError(
                f"{path}: methods/{entry['name']}: num_frames {entry['num_frames']} must be "
                f"among the suite's num_frames {data['num_frames']}"
            )
    if data["kind"] in ("synthetic-editing", "editing"):
        _check_editing(data, path)
    paths = [("cameras", c) for c in data["cameras"]]
    if data["kind"] in ("synthetic-video", "synthetic-editing"):
        paths.append(("video_camera", data["video_camera"]))
        paths += [(f"scenes/{s['name']}/video_camera", s["video_camera"])
                  for s in data["scenes"] if "video_camera" in s]
    for field_name, camera in paths:
        try:
            parse_camera_name(camera)
        except ValueError as exc:
            raise SuiteError(f"{path}: {field_name}: {exc}") from exc
    return Suite(data=data, path=path)


def _check_editing(data: dict[str, Any], path: Path) -> None:
    """Editing suites keep the input video's cameras (no re-shoot) and edit every scene:
    synthetic scenes by a recolouring (``edit``), real clips by a fetched edited first frame
    (``edited_image``)."""
    from benchmark.editing import parse_edit

    if data["cameras"] != ["static"]:
        raise SuiteError(
            f"{path}: cameras: an editing suite keeps the input video's own cameras, so its "
            f"only camera path is 'static' (identity offsets), got {data['cameras']}"
        )
    real = data["kind"] == "editing"
    for scene in data["scenes"]:
        where = f"{path}: scenes/{scene['name']}"
        if real:  # the edited first frame is a fetched image; a recolour needs geometry
            if "edit" in scene:
                raise SuiteError(f"{where}/edit: a recolouring needs a synthetic scene's "
                                 "geometry; a real clip's edit is its 'edited_image'")
            continue  # 'edited_image' is required above, its fields by the schema
        if "edited_image" in scene:
            raise SuiteError(f"{where}/edited_image: synthetic-editing scenes are edited by "
                             "'edit' (a recolouring), not by a fetched image")
        if "edit" not in scene:
            raise SuiteError(f"{where}: an editing scene needs 'edit'")
        try:
            parse_edit(scene["edit"])
        except ValueError as exc:
            raise SuiteError(f"{where}/edit: {exc}") from exc
