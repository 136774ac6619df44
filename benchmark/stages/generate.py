"""Generation stage: run one method preset on one (scene, camera path, seed).

Writes ``frames/*.png``, ``K.json`` (intrinsics of the frames) and ``meta.json`` last (with
the run's identity under ``run``: method, num_frames, scene, camera, seed). A
method that cannot run or fails is recorded in meta.json (``status: failed`` and the reason)
and the stage still succeeds, so one broken method never stops the others' results.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import re
import shutil
import subprocess
import time
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.cameras import CameraFileError, CameraPath, load_camera_path, validate_intrinsics
from benchmark.config.suites import ROOT
from benchmark.io import atomic_write, atomic_write_text, write_frames
from benchmark.sources.scenes import load_scene_view
from benchmark.sources.videos import load_video
from benchmark.stages.request import build_request
from methods import create_method
from methods.base import MethodUnavailable

# The method namespace lives in methods.presets; re-exported for existing callers.
from methods.presets import (  # noqa: F401
    DEFAULT_GENERATE_RESOURCES,
    check_method_names,
    load_preset,
    preset_resources,
)
from methods.registry import PRESETS_DIR  # noqa: F401

log = logging.getLogger(__name__)

_VERSIONED = ("torch", "numpy", "opencv-python-headless", "pycolmap", "evo", "diffusers")


def preset_hash(preset: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(preset, sort_keys=True).encode()).hexdigest()[:12]


def environment_info() -> dict[str, Any]:
    """Package versions and git revision recorded with every result."""
    versions = {}
    for package in _VERSIONED:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        rev = None
    return {"python": platform.python_version(), "packages": versions, "git_revision": rev}


def _check_result(frames: np.ndarray, K: np.ndarray, camera: CameraPath) -> str | None:
    """Why a method's frames (and the K it says describes them) cannot be scored, or None.

    The K is checked against the size of the frames it came with (a K for another resolution
    makes every recovered pose wrong without a word, so it is a recorded failure)."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        return f"method returned frames of shape {frames.shape}, expected (F, H, W, 3)"
    if frames.shape[0] != camera.num_frames:
        return f"method returned {frames.shape[0]} frames, the camera path has {camera.num_frames}"
    height, width = int(frames.shape[1]), int(frames.shape[2])
    try:
        validate_intrinsics(K, f"the method's K for its {width}x{height} frames", width, height)
    except CameraFileError as exc:
        return str(exc)
    return None


def run_identity(
    preset_name: str, scene_dir: str | Path, camera_file: str | Path, seed: int
) -> dict[str, Any]:
    """What a run is (method, num_frames, scene, camera, seed), recorded in its meta.json so
    that nothing downstream parses it back out of folder names (a scene may contain '__').

    The scene is the name of its folder (``scenes/{scene}``), the camera path the stem of its
    file (``cameras/f{F}/{scene}/{camera}.json``) and the frame count that file's; a camera
    file that records why there is no path (see :data:`benchmark.cameras.UNAVAILABLE`) has no
    frames, so its folder ``f{F}`` gives the count (None outside the workflow's layout).
    """
    camera_file = Path(camera_file)
    try:
        num_frames: int | None = load_camera_path(camera_file).num_frames
    except (CameraFileError, OSError):
        match = re.fullmatch(r"f([0-9]+)", camera_file.parent.parent.name)
        num_frames = int(match.group(1)) if match else None
    return {
        "method": preset_name,
        "num_frames": num_frames,
        "scene": Path(scene_dir).name,
        "camera": camera_file.stem,
        "seed": seed,
    }


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as handle:  # a file object: np.savez would append ".npz" to a path
        np.savez_compressed(handle, **{k: np.asarray(v) for k, v in arrays.items()})


def run_generation(
    preset_name: str,
    scene_dir: str | Path,
    camera_file: str | Path,
    seed: int,
    out_dir: str | Path,
    video_dir: str | Path | None = None,
    edit_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Generate one clip and record it; returns the meta.json content. ``video_dir``: the
    input video of a video camera-control or editing clip (:mod:`benchmark.sources.videos`);
    ``edit_dir``: editing clips, the edit (:mod:`benchmark.sources.editing`): its edited first frame
    is the conditioning image and methods that render the scene get the *edited* scene."""
    out = Path(out_dir)
    frames_dir = out / "frames"
    if frames_dir.exists():
        shutil.rmtree(frames_dir)
    preset = load_preset(preset_name)
    meta: dict[str, Any] = {
        "method": preset_name,
        "preset": preset,
        "preset_hash": preset_hash(preset),
        "seed": seed,
        "scene_dir": str(scene_dir),
        "camera_file": str(camera_file),
        "video_dir": None if video_dir is None else str(video_dir),
        "edit_dir": None if edit_dir is None else str(edit_dir),
        "run": run_identity(preset_name, scene_dir, camera_file, seed),
        "environment": environment_info(),
    }
    start = time.perf_counter()
    try:
        scene = load_scene_view(scene_dir)
        camera = load_camera_path(camera_file)
        method = create_method(preset["adapter"], preset["args"])
        video = None if video_dir is None else load_video(video_dir)
        request = build_request(
            scene, camera, seed, needs_scene=method.needs_scene, video=video,
            scene_dir=scene_dir, edit_dir=edit_dir,
        )
        result = method.generate(request)
        problem = _check_result(result.frames, result.K, camera)
        if problem:
            raise ValueError(problem)
        write_frames(frames_dir, result.frames)
        if result.extras:
            atomic_write(out / "extras.npz", lambda tmp: _save_npz(tmp, result.extras))
        atomic_write_text(out / "K.json", json.dumps(np.asarray(result.K).tolist()))
        meta.update(status="ok", reason="", info=result.info, num_frames=len(result.frames))
    except MethodUnavailable as exc:
        meta.update(status="failed", reason=f"unavailable: {exc}")
    except Exception as exc:  # recorded, never lost: the workflow goes on with other runs
        log.error("generation failed:\n%s", traceback.format_exc())
        meta.update(status="failed", reason=f"{type(exc).__name__}: {exc}")
    meta["seconds"] = round(time.perf_counter() - start, 3)
    atomic_write_text(out / "meta.json", json.dumps(meta, indent=1, default=str))
    return meta
