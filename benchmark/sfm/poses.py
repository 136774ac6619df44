r"""Recover per-frame camera poses from a method's frames with COLMAP (pycolmap): the pose
stage of one run folder, and the names callers import.

The protocol of the paper family (ParticleSfM-style): SIFT on the frames with the intrinsics
the method reports (PINHOLE, never refined), matching, mapping trials (COLMAP's global
mapper; the incremental one as an option), and a clip
with fewer than 80% of its frames registered counts as a *failure*: it is recorded, never
raised. Defaults are chosen by measurement (docs/protocol.md, ``python -m bench.poses``).

The code lives by section: options and ``poses.json`` in :mod:`benchmark.sfm.records`, the
COLMAP calls in :mod:`benchmark.sfm.colmap`, trials and the clip's verdict in
:mod:`benchmark.sfm.mapping`, trial selection and plausibility in
:mod:`benchmark.sfm.trials`, rotation-only poses in :mod:`benchmark.sfm.rotations`.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.cameras import validate_intrinsics
from benchmark.sfm.colmap import poses_of_largest_model
from benchmark.sfm.mapping import recover_poses
from benchmark.sfm.records import (
    DEFAULT_INIT,
    MIN_REGISTERED,
    POSES_FORMAT,
    RELAXED_INIT,
    PoseRecoveryConfig,
    RecoveredPoses,
    load_poses,
    read_json,
    save_poses,
)

__all__ = [
    "DEFAULT_INIT", "MIN_REGISTERED", "POSES_FORMAT", "RELAXED_INIT", "PoseRecoveryConfig",
    "RecoveredPoses", "load_poses", "poses_of_largest_model", "recover_poses", "run_poses",
    "save_poses",
]


def _check_run(run: Path, meta: dict[str, Any]) -> tuple[np.ndarray | None, list[Path], str]:
    """K and frames of a run whose generation succeeded, or the reason they cannot be posed.

    The method wrote them, so problems are recorded failures of that run (never a crash that
    would stop the other runs): missing or invalid K.json, missing frames, or a frame count
    that differs from meta.json's."""
    k_file = run / "K.json"
    frames = sorted((run / "frames").glob("*.png"))
    try:
        K = validate_intrinsics(read_json(k_file), str(k_file))
    except FileNotFoundError:
        return None, frames, f"{k_file} is missing"
    except ValueError as exc:  # CameraFileError is a ValueError
        return None, frames, f"invalid intrinsics: {exc}"
    expected = meta.get("num_frames")
    if not frames:
        return K, frames, f"no PNG frames in {run / 'frames'}"
    if isinstance(expected, int) and len(frames) != expected:
        return K, frames, (
            f"{run / 'frames'} holds {len(frames)} PNG frames, meta.json says {expected}"
        )
    return K, frames, ""


def run_poses(run_dir: str | Path, conf: PoseRecoveryConfig | None = None) -> RecoveredPoses:
    """Pose stage of one run folder: frames/ + K.json + meta.json -> poses.json (+ sfm/).

    A missing or malformed meta.json is an error (the generation stage has not run); every
    problem of a generated run is recorded in poses.json with ``status: failed``."""
    run = Path(run_dir)
    conf = conf or PoseRecoveryConfig()
    meta_file = run / "meta.json"
    if not meta_file.is_file():
        raise FileNotFoundError(f"{meta_file} is missing: run the generate stage first")
    meta = read_json(meta_file)
    if not isinstance(meta, dict) or "status" not in meta:
        raise ValueError(f"{meta_file}: expected a JSON object with a 'status'")
    num = meta.get("num_frames")
    num = num if isinstance(num, int) and num > 0 else 0
    if meta.get("status") != "ok":
        result = RecoveredPoses(
            [None] * num, "failed", f"generation failed: {meta.get('reason', '')}", 0,
            asdict(conf),
        )
    else:
        K, frames, problem = _check_run(run, meta)
        if problem:
            result = RecoveredPoses([None] * (num or len(frames)), "failed", problem, 0,
                                    asdict(conf))
        else:
            result = recover_poses(frames, K, run / "sfm", conf)
            # Keep the log, drop the database and models (large, and rebuilt on demand).
            (run / "sfm" / "database.db").unlink(missing_ok=True)
            shutil.rmtree(run / "sfm" / "models", ignore_errors=True)
            shutil.rmtree(run / "sfm" / "trials", ignore_errors=True)
    save_poses(result, run / "poses.json")
    return result
