"""Suites: YAML files of scenes x camera paths (x frame counts), validated by JSON Schema.

A suite expands into *combinations* ``(scene, camera, num_frames)``; each runs every method
for every seed. Suites name their camera paths by the stable names of
:mod:`benchmark.cameras.paths` and their scenes by generator seed (synthetic) or by URL and
sha256 (real images and clips; editing clips also name their edited first frame).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from benchmark.cameras.paths import parse_camera_name
from benchmark.config.edits import parse_edit

ROOT = Path(__file__).resolve().parents[2]
SUITES_DIR = ROOT / "configs" / "suites"
SCHEMAS_DIR = ROOT / "configs" / "schemas"


class SuiteError(ValueError):
    """A suite file that cannot be used; the message names the file and the field."""


def load_schema(name: str) -> dict[str, Any]:
    """A JSON Schema from configs/schemas/ (``suite``, ``config``)."""
    return yaml.safe_load((SCHEMAS_DIR / f"{name}.schema.yaml").read_text())


def apply_defaults(schema: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Copy of ``data`` with the schema's defaults filled in (jsonschema only checks).

    Nested mappings too: ``poses: {threads: 2}`` gets the schema's ``matcher`` and ``mapper``,
    so a consumer never repeats a default the schema states.
    """
    out = copy.deepcopy(data)
    for key, prop in schema.get("properties", {}).items():
        if key not in out and "default" in prop:
            out[key] = copy.deepcopy(prop["default"])
        if isinstance(out.get(key), dict) and "properties" in prop:
            out[key] = apply_defaults(prop, out[key])
    return out


_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_BOOLEANS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def coerce_to_schema(schema: dict[str, Any], value: Any) -> Any:
    """Copy of ``value`` with strings converted to the types ``schema`` declares.

    ``snakemake --config`` parses a value with YAML's base loader, so everything nested in a
    list or mapping arrives as a string (``seeds=[0,1]`` gives ``["0", "1"]``, ``poses={threads:
    2}`` gives ``{"threads": "2"}``), and a top-level number meant as a string arrives as an
    int (``results=2024``). Following the schema's ``type`` (and ``items``, ``properties``):
    integer and number strings become numbers, ``true/false/yes/no/on/off`` booleans, numbers
    strings, and a lone value where an array is expected a one-item list (``seeds=3``).
    Anything that does not convert is left as it is for validation to report.
    """
    types = schema.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    if "array" in types and value is not None and not isinstance(value, list):
        if not isinstance(value, dict):
            value = [value]
    if isinstance(value, list):
        items = schema.get("items", {})
        return [coerce_to_schema(items, v) for v in value] if isinstance(items, dict) else value
    if isinstance(value, dict):
        props = schema.get("properties", {})
        return {k: coerce_to_schema(props.get(k, {}), v) for k, v in value.items()}
    if isinstance(value, str):
        text = value.strip()
        if "integer" in types and _INTEGER.match(text):
            return int(text)
        if "number" in types:
            try:
                return int(text) if _INTEGER.match(text) else float(text)
            except ValueError:
                return value
        if "boolean" in types and text.lower() in _BOOLEANS:
            return _BOOLEANS[text.lower()]
        return value
    if "string" in types and "integer" not in types and "number" not in types:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
    return value


def _explain(error: jsonschema.ValidationError) -> str:
    """A schema error's message; a pattern mismatch also says what the pattern means."""
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    if error.validator == "pattern" and description:
        return f"{error.message}: {' '.join(description.split())}"
    return error.message


def validate(
    schema_name: str, data: Any, source: str, coerce: bool = False
) -> dict[str, Any]:
    """Validate ``data`` against a schema and fill defaults; errors name file and field.

    ``coerce``: first convert strings to the schema's types (:func:`coerce_to_schema`), for
    values from the command line (the workflow config); files are validated as written.
    """
    schema = load_schema(schema_name)
    if coerce:
        data = coerce_to_schema(schema, data)
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path)
    )
    if errors:
        lines = [f"{'/'.join(map(str, e.path)) or '(top)'}: {_explain(e)}" for e in errors[:5]]
        raise SuiteError(f"{source}: invalid {schema_name}:\n  " + "\n  ".join(lines))
    return apply_defaults(schema, data)


def check_results_folder(results: str) -> str:
    """``results`` if the workflow can use it as its results folder, else a SuiteError.

    Spaces, quotes and other shell characters are fine (every path in the workflow's shell
    commands is quoted); braces are not (Snakemake reads them as wildcards in file patterns),
    nor are line breaks or an empty name.
    """
    bad = sorted({c for c in results if c in "{}\n\r\0"})
    if not results.strip() or bad:
        what = "is empty" if not results.strip() else f"contains {bad}"
        raise SuiteError(
            f"workflow config: results: the results folder {results!r} {what}; braces are "
            "read as wildcards by Snakemake and line breaks cannot be passed to a job, so "
            "choose a folder name without them (spaces are fine)"
        )
    return results


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
