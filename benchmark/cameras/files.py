"""trajbench camera JSON files (``trajbench.camera_path/1``): bit-exact save and load, and
the file that records why a camera path could not be made."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.cameras.convention import (
    FORMAT,
    CameraFileError,
    PathLike,
    validate_intrinsics,
)
from benchmark.cameras.path import CameraPath
from benchmark.io import atomic_write_text


def camera_path_to_dict(path: CameraPath) -> dict[str, Any]:
    """Plain-data form of ``path`` in the ``trajbench.camera_path/1`` format."""
    return {
        "format": FORMAT,
        "name": path.name,
        "width": path.width,
        "height": path.height,
        "num_frames": path.num_frames,
        "K": path.K.tolist(),
        "w2c": path.w2c.tolist(),
    }


def _nested_floats(value: Any, label: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """Check nested lists of finite numbers against ``shape`` (None = any length >= 1)."""

    def walk(v: Any, where: str, depth: int) -> Any:
        if depth == len(shape):
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise CameraFileError(
                    f"{where}: wrong type: expected a number, got {type(v).__name__}"
                )
            try:
                x = float(v)
            except OverflowError:
                x = math.inf
            if not math.isfinite(x):
                raise CameraFileError(f"{where}: not finite ({v})")
            return x
        if not isinstance(v, list):
            raise CameraFileError(f"{where}: wrong type: expected a list, got {type(v).__name__}")
        want = shape[depth]
        if want is not None and len(v) != want:
            raise CameraFileError(f"{where}: wrong shape: expected {want} entries, got {len(v)}")
        if want is None and not v:
            raise CameraFileError(f"{where}: wrong shape: empty list")
        return [walk(x, f"{where}[{i}]", depth + 1) for i, x in enumerate(v)]

    return np.array(walk(value, label, 0), dtype=np.float64)


def camera_path_from_dict(d: Any, check_plausible: bool = True) -> CameraPath:
    """Validate plain data in the ``trajbench.camera_path/1`` format and build a CameraPath.

    Unknown extra keys are ignored (room for annotations); every error names its field. K
    must be plausible for the frame size (:func:`validate_intrinsics`); ``check_plausible=
    False`` skips only that, to inspect or convert a file whose K is known to be unusual
    (every stage of the benchmark checks).
    """
    if not isinstance(d, dict):
        raise CameraFileError(f"top level: expected a JSON object, got {type(d).__name__}")
    if UNAVAILABLE in d:  # written by a stage that could not make the path: say why
        raise CameraFileError(f"no camera path: {d[UNAVAILABLE]}")
    for key in ("format", "name", "width", "height", "num_frames", "K", "w2c"):
        if key not in d:
            raise CameraFileError(f"{key}: missing key")
    if d["format"] != FORMAT:
        raise CameraFileError(f"format: unknown format {d['format']!r}, expected {FORMAT!r}")
    if not isinstance(d["name"], str):
        kind = type(d["name"]).__name__
        raise CameraFileError(f"name: wrong type: expected a string, got {kind}")
    for key in ("width", "height", "num_frames"):
        value = d[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise CameraFileError(
                f"{key}: wrong type: expected an integer, got {type(value).__name__}"
            )
    k = _nested_floats(d["K"], "K", (3, 3))
    w2c = _nested_floats(d["w2c"], "w2c", (None, 4, 4))
    if check_plausible and d["width"] > 0 and d["height"] > 0:  # sizes: CameraPath checks
        validate_intrinsics(k, "K", d["width"], d["height"])
    if d["num_frames"] != len(w2c):
        raise CameraFileError(
            f"num_frames: frame-count mismatch (num_frames={d['num_frames']}, "
            f"w2c has {len(w2c)} frames)"
        )
    return CameraPath(K=k, w2c=w2c, width=d["width"], height=d["height"], name=d["name"])


def save_camera_path(path: CameraPath, file: PathLike) -> Path:
    """Write ``path`` as JSON atomically; floats use repr, so loading is bit-exact."""
    d = camera_path_to_dict(path)
    header = {k: v for k, v in d.items() if k not in ("K", "w2c")}
    lines = ["{"]
    lines += [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in header.items()]
    lines.append(f'  "K": {json.dumps(d["K"], allow_nan=False)},')
    frames = [f"    {json.dumps(m, allow_nan=False)}" for m in d["w2c"]]
    lines.append('  "w2c": [\n' + ",\n".join(frames) + "\n  ]")
    lines.append("}")
    text = "\n".join(lines) + "\n"

    return atomic_write_text(file, text)


#: Key of a camera file that stands for a path that could not be made (e.g. the cameras of a
#: real clip COLMAP could not recover): loading it raises CameraFileError with the reason, so
#: every run that needs it is recorded as failed and the rest of the suite goes on.
UNAVAILABLE = "unavailable"


def save_unavailable_camera(reason: str, file: PathLike) -> None:
    """Write a camera file that records why there is no camera path (see UNAVAILABLE)."""
    atomic_write_text(file, json.dumps({"format": FORMAT, UNAVAILABLE: reason}, indent=1))


def load_camera_path(file: PathLike, check_plausible: bool = True) -> CameraPath:
    """Read and validate a ``trajbench.camera_path/1`` JSON file.

    Raises CameraFileError naming the file and the offending field (FileNotFoundError when
    there is no such file); NaN/Infinity tokens, which Python's json accepts, are rejected as
    non-finite values. ``check_plausible``: see :func:`camera_path_from_dict`.
    """
    source = Path(file)
    if not source.is_file():
        what = "is a folder" if source.is_dir() else "does not exist"
        raise FileNotFoundError(f"camera file {source} {what}")
    try:
        text = source.read_text(encoding="utf-8")
        if not text.strip():
            raise CameraFileError(f"{file}: malformed JSON (the file is empty)")
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CameraFileError(f"{file}: malformed JSON ({exc})") from exc
    try:
        return camera_path_from_dict(data, check_plausible)
    except CameraFileError as exc:
        raise CameraFileError(f"{file}: {exc}") from exc
