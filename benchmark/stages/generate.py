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
import shutil
import subprocess
import time
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from benchmark.cameras import CameraPath, load_camera_path
from benchmark.config.suites import ROOT
from benchmark.io import atomic_write, atomic_write_text, write_frames
from benchmark.sources.scenes import load_scene_view
from benchmark.sources.videos import load_video

log = logging.getLogger(__name__)

PRESETS_DIR = ROOT / "configs" / "methods"
_VERSIONED = ("torch", "numpy", "opencv-python-headless", "pycolmap", "evo", "diffusers")


#: What one generation asks a scheduler for unless its preset says otherwise: one GPU, and host
#: memory for a diffusion pipeline (read into RAM before it moves to the GPU).
DEFAULT_GENERATE_RESOURCES: dict[str, int] = {"gpu": 1, "mem_mb": 32000}


def _preset_file(name: str) -> dict[str, Any] | None:
    """The raw preset file of ``name`` (configs/methods/{name}.yaml, or ``name`` itself when it
    is a path to a .yaml file), or None for a bare adapter name with no preset file."""
    path = PRESETS_DIR / f"{name}.yaml"
    if name.endswith((".yaml", ".yml")):
        path = Path(name)
        if not path.is_file():
            raise FileNotFoundError(f"no method preset file {path}")
    if not path.exists():
        return None
    preset = yaml.safe_load(path.read_text()) or {}
    if "adapter" not in preset:
        raise ValueError(f"{path}: a preset needs 'adapter'")
    return preset


def load_preset(name: str) -> dict[str, Any]:
    """A method preset ``{adapter, args}`` from configs/methods/{name}.yaml (or from ``name``
    itself when it is a path to a .yaml file); a bare adapter name with no preset file means
    that adapter with its defaults."""
    preset = _preset_file(name)
    if preset is None:
        return {"adapter": name, "args": {}}
    return {"adapter": preset["adapter"], "args": preset.get("args") or {}}


def preset_resources(name: str) -> dict[str, int]:
    """What one generation with this method asks the scheduler for: the preset's optional
    ``resources`` (``gpu``: GPUs, ``mem_mb``: host memory) over
    :data:`DEFAULT_GENERATE_RESOURCES`. The method declares it, so a rule never lists method
    names (a CPU-only preset must not ask a GPU: SLURM refuses gpu jobs on GPU-less nodes)."""
    preset = _preset_file(name) or {}
    declared = preset.get("resources") or {}
    unknown = set(declared) - set(DEFAULT_GENERATE_RESOURCES)
    if unknown or not all(isinstance(v, int) and v >= 0 for v in declared.values()):
        raise ValueError(
            f"method {name!r}: preset 'resources' takes non-negative integers for "
            f"{sorted(DEFAULT_GENERATE_RESOURCES)}, got {declared!r}"
        )
    return {**DEFAULT_GENERATE_RESOURCES, **declared}


def check_method_names(names: list[str]) -> None:
    """Refuse names that are neither a preset, a registered adapter nor a ``module:Class``
    adapter path, before any job runs (a typo would otherwise fail every generation)."""
    import difflib

    from methods import REGISTRY, UnknownMethodError

    known = sorted({p.stem for p in PRESETS_DIR.glob("*.yaml")} | set(REGISTRY))
    for name in names:
        adapter = load_preset(name)["adapter"]
        if adapter in REGISTRY or ":" in adapter:
            continue
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownMethodError(
            f"unknown method {name!r}: no preset configs/methods/{name}.yaml and no registered "
            f"adapter {adapter!r}.{hint} Known: {', '.join(known)}"
        )


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
    from benchmark.cameras import CameraFileError, validate_intrinsics

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
    import re

    from benchmark.cameras import CameraFileError

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
    from methods import create_method
    from methods.base import GenerationRequest, MethodUnavailable

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
        image, synthetic = scene.image, None
        if edit_dir is not None:
            from benchmark.sources.editing import load_edit, load_edited_scene

            image = load_edit(edit_dir).image
            if method.needs_scene:
                synthetic = load_edited_scene(scene_dir, edit_dir)
        elif method.needs_scene:
            synthetic = scene.synthetic_scene()
        request = GenerationRequest(
            image=image,
            camera=camera,
            seed=seed,
            depth=scene.depth,
            scene=synthetic,
            video=None if video is None else video.frames,
            video_depth=None if video is None else video.depths,
            video_camera=None if video is None else video.camera,
            task="edit" if edit_dir is not None else ("video" if video is not None else "image"),
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
