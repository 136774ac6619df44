r"""Recover per-frame camera poses from a method's frames with COLMAP (pycolmap).

The protocol of the paper family (ParticleSfM-style): SIFT on the frames with the intrinsics
the method reports (PINHOLE, never refined), matching, incremental mapping, and a clip with
fewer than 80% of its frames registered counts as a *failure*: it is recorded, never raised.

Defaults are chosen by measurement (``benchmark/bench_poses.py``): exhaustive matching
(clips have at most 25 frames, so all pairs are cheap and sturdier than a sequential window),
incremental mapping (``global_mapping`` is an option), one thread and a fixed seed so that
poses are bit-identical from run to run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from benchmark.cameras import CameraFileError, validate_intrinsics
from benchmark.io import atomic_write_text

log = logging.getLogger(__name__)

MIN_REGISTERED = 0.8
POSES_FORMAT = "trajbench.poses/1"


@dataclass
class PoseRecoveryConfig:
    """Options of pose recovery; the defaults are the benchmark's protocol."""

    matcher: Literal["exhaustive", "sequential"] = "exhaustive"
    mapper: Literal["incremental", "global"] = "incremental"
    sequential_overlap: int = 10
    max_num_features: int = 8192
    num_threads: int = 1
    seed: int = 0
    min_registered: float = MIN_REGISTERED


@dataclass
class RecoveredPoses:
    """Per-frame world-to-camera poses (None where unregistered) and the verdict."""

    w2c: list[np.ndarray | None]
    status: Literal["ok", "failed"]
    reason: str = ""
    num_models: int = 0
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(self.w2c)

    @property
    def num_registered(self) -> int:
        return sum(p is not None for p in self.w2c)

    @property
    def registered_ratio(self) -> float:
        return self.num_registered / max(self.num_frames, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": POSES_FORMAT,
            "status": self.status,
            "reason": self.reason,
            "num_frames": self.num_frames,
            "num_registered": self.num_registered,
            "registered_ratio": self.registered_ratio,
            "num_models": self.num_models,
            "w2c": [None if p is None else p.tolist() for p in self.w2c],
            "config": self.config,
        }

    @classmethod
    def from_dict(cls, data: Any) -> RecoveredPoses:
        """Validate the ``trajbench.poses/1`` structure; ValueError names the bad field.

        Non-finite numbers inside a pose are kept: scoring records them as a failed run."""
        if not isinstance(data, dict) or data.get("format") != POSES_FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"not a poses file (format {found!r}, expected {POSES_FORMAT!r})")
        if data.get("status") not in ("ok", "failed"):
            raise ValueError(f"status: expected 'ok' or 'failed', got {data.get('status')!r}")
        poses = data.get("w2c")
        if not isinstance(poses, list):
            raise ValueError(f"w2c: expected a list (one pose or null per frame), got {poses!r}")
        w2c: list[np.ndarray | None] = []
        for i, pose in enumerate(poses):
            if pose is None:
                w2c.append(None)
                continue
            try:
                arr = np.asarray(pose, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"w2c[{i}]: not a numeric 4x4 matrix ({exc})") from exc
            if arr.shape != (4, 4):
                raise ValueError(f"w2c[{i}]: expected shape (4, 4) or null, got {arr.shape}")
            w2c.append(arr)
        if "num_frames" in data and data["num_frames"] != len(w2c):
            raise ValueError(
                f"num_frames: {data['num_frames']} but w2c has {len(w2c)} entries"
            )
        return cls(
            w2c=w2c,
            status=data["status"],
            reason=data.get("reason", ""),
            num_models=data.get("num_models", 0),
            config=data.get("config", {}),
        )


def save_poses(poses: RecoveredPoses, path: str | Path) -> None:
    atomic_write_text(path, json.dumps(poses.to_dict(), indent=1))


def _read_json(path: Path) -> Any:
    """JSON content of ``path``; a malformed file is a ValueError naming it."""
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: malformed JSON ({exc})") from exc


def load_poses(path: str | Path) -> RecoveredPoses:
    """Read a poses.json; errors (malformed JSON, wrong structure) name the file."""
    file = Path(path)
    try:
        return RecoveredPoses.from_dict(_read_json(file))
    except ValueError as exc:
        if str(file) in str(exc):
            raise
        raise ValueError(f"{file}: {exc}") from exc


@contextlib.contextmanager
def _capture_native_output(log_path: Path) -> Iterator[None]:
    """Send the C++ library's stdout/stderr (glog) into ``log_path`` while in the block."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(log_path, "ab") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _fixed_intrinsics_options(pycolmap: Any, conf: PoseRecoveryConfig) -> Any:
    """Mapper options that keep the reported K fixed and run single-threaded, seeded."""
    if conf.mapper == "incremental":
        opts = pycolmap.IncrementalPipelineOptions()
        opts.ba_refine_focal_length = False
        opts.ba_refine_principal_point = False
        opts.ba_refine_extra_params = False
        opts.mapper.abs_pose_refine_focal_length = False
        opts.mapper.abs_pose_refine_extra_params = False
        opts.mapper.num_threads = conf.num_threads
        opts.mapper.random_seed = conf.seed
        opts.triangulation.random_seed = conf.seed
        # Clips have 14-25 frames: a model may be smaller than COLMAP's default of 10.
        opts.min_model_size = 3
        # Generated clips span <= ~20 deg of viewpoint change, often along the optical axis
        # (dolly): COLMAP's initial-pair rules (>= 16 deg triangulation angle, < 95% forward
        # motion) reject every pair of such clips; measured on exact renders (docs/protocol.md)
        # these values register dolly clips that the defaults lose, at no cost in accuracy.
        opts.mapper.init_min_tri_angle = 4.0
        opts.mapper.init_max_forward_motion = 1.0
    else:
        opts = pycolmap.GlobalPipelineOptions()
        ba = opts.mapper.bundle_adjustment
        ba.refine_focal_length = False
        ba.refine_principal_point = False
        ba.refine_extra_params = False
        opts.mapper.num_threads = conf.num_threads
        opts.mapper.random_seed = conf.seed
    opts.num_threads = conf.num_threads
    opts.random_seed = conf.seed
    return opts


def poses_of_largest_model(recs: dict[int, Any], names: list[str]) -> list[np.ndarray | None]:
    """World-to-camera 4x4 per image name (None if unregistered) from the reconstruction with
    most registered images; models come back in no particular order (ties: lowest image id)."""
    best = max(recs.values(), key=lambda r: (r.num_reg_images(), -min(r.reg_image_ids())))
    frame_of = {name: i for i, name in enumerate(names)}
    w2c: list[np.ndarray | None] = [None] * len(names)
    for image in best.images.values():
        if image.has_pose and image.name in frame_of:
            pose = np.eye(4)
            pose[:3] = image.cam_from_world().matrix()
            w2c[frame_of[image.name]] = pose
    return w2c


def _database_summary(pycolmap: Any, database: Path, num_frames: int) -> str:
    """' (SIFT keypoints in k/F frames, n inlier matches)' from COLMAP's database, so a
    failure says whether features or matches were missing; '' if it cannot be read."""
    try:
        db = pycolmap.Database.open(str(database))
        try:
            with_keypoints = sum(
                db.num_keypoints_for_image(image.image_id) > 0 for image in db.read_all_images()
            )
            inliers = db.num_inlier_matches()
        finally:
            db.close()
    except Exception:  # noqa: BLE001 - only decorates a failure reason
        return ""
    hint = ": blank or textureless frames?" if with_keypoints == 0 else ""
    return (
        f" (SIFT keypoints in {with_keypoints}/{num_frames} frames, {inliers} inlier "
        f"matches{hint})"
    )


def recover_poses(
    image_paths: list[Path],
    K: np.ndarray,
    work_dir: str | Path,
    conf: PoseRecoveryConfig | None = None,
) -> RecoveredPoses:
    r"""Run COLMAP on ``image_paths`` (frame order) with fixed intrinsics ``K``.

    Args:
        image_paths: one image per frame, all in one folder, in frame order.
        K: (3, 3) intrinsics in pixels of these images (COLMAP's pixel-centre convention).
        work_dir: scratch folder for the database and models; ``sfm.log`` stays there.
        conf: options (defaults: the benchmark protocol).

    Returns:
        RecoveredPoses; ``status == "failed"`` with a reason when ``K`` is not a valid
        pinhole matrix, fewer than ``conf.min_registered`` of the frames register, COLMAP
        builds no model (the reason then says how many frames had SIFT keypoints and how
        many inlier matches there were) or COLMAP errors.
    """
    import pycolmap

    conf = conf or PoseRecoveryConfig()
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    log_path = work / "sfm.log"
    log_path.write_text("")
    database = work / "database.db"
    models = work / "models"
    for stale in (database, models):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    models.mkdir()
    paths = [Path(p) for p in image_paths]
    image_dir = paths[0].parent if paths else work
    if any(p.parent != image_dir for p in paths):
        raise ValueError("all frames must lie in one folder")
    names = [p.name for p in paths]
    none: list[np.ndarray | None] = [None] * len(paths)
    config = asdict(conf)
    try:
        K = validate_intrinsics(K, "intrinsics K")
    except CameraFileError as exc:  # a method's K: recorded, COLMAP would fail obscurely
        return RecoveredPoses(none, "failed", f"invalid {exc}", 0, config)
    if len(paths) < 2:
        return RecoveredPoses(none, "failed", f"{len(paths)} frame(s): nothing to match", 0, config)

    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = "PINHOLE"
    reader.camera_params = ",".join(repr(float(v)) for v in (K[0, 0], K[1, 1], K[0, 2], K[1, 2]))
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = conf.num_threads
    extraction.sift.max_num_features = conf.max_num_features
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = conf.num_threads
    verification = pycolmap.TwoViewGeometryOptions()
    verification.ransac.random_seed = conf.seed
    verification.ransac.num_threads = conf.num_threads
    try:
        pycolmap.set_random_seed(conf.seed)
        with _capture_native_output(log_path):
            pycolmap.extract_features(
                database,
                image_dir,
                image_names=names,
                camera_mode=pycolmap.CameraMode.SINGLE,
                reader_options=reader,
                extraction_options=extraction,
                device=pycolmap.Device.cpu,
            )
            if conf.matcher == "sequential":
                pairing = pycolmap.SequentialPairingOptions()
                pairing.overlap = conf.sequential_overlap
                pairing.num_threads = conf.num_threads
                pycolmap.match_sequential(
                    database, matching, pairing, verification, device=pycolmap.Device.cpu
                )
            else:
                pycolmap.match_exhaustive(
                    database,
                    matching,
                    pycolmap.ExhaustivePairingOptions(),
                    verification,
                    device=pycolmap.Device.cpu,
                )
            options = _fixed_intrinsics_options(pycolmap, conf)
            if conf.mapper == "incremental":
                recs = pycolmap.incremental_mapping(database, image_dir, models, options)
            else:
                recs = pycolmap.global_mapping(database, image_dir, models, options)
    except Exception as exc:  # COLMAP errors become a recorded failure, never a crash
        log.warning("pose recovery failed: %s", exc)
        return RecoveredPoses(none, "failed", f"COLMAP error: {exc}", 0, config)

    if not recs:
        why = _database_summary(pycolmap, database, len(paths))
        return RecoveredPoses(none, "failed", f"COLMAP reconstructed no model{why}", 0, config)
    result = RecoveredPoses(poses_of_largest_model(recs, names), "ok", "", len(recs), config)
    if result.registered_ratio < conf.min_registered:
        result.status = "failed"
        result.reason = (
            f"registered {result.num_registered}/{result.num_frames} frames "
            f"< {conf.min_registered:.0%}"
        )
    return result


def _check_run(run: Path, meta: dict[str, Any]) -> tuple[np.ndarray | None, list[Path], str]:
    """K and frames of a run whose generation succeeded, or the reason they cannot be posed.

    The method wrote them, so problems are recorded failures of that run (never a crash that
    would stop the other runs): missing or invalid K.json, missing frames, or a frame count
    that differs from meta.json's."""
    k_file = run / "K.json"
    frames = sorted((run / "frames").glob("*.png"))
    try:
        K = validate_intrinsics(_read_json(k_file), str(k_file))
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
    meta = _read_json(meta_file)
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
    save_poses(result, run / "poses.json")
    return result
