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
    def from_dict(cls, data: dict[str, Any]) -> RecoveredPoses:
        if data.get("format") != POSES_FORMAT:
            raise ValueError(f"not a poses file (format {data.get('format')!r})")
        w2c = [None if p is None else np.asarray(p, dtype=np.float64) for p in data["w2c"]]
        return cls(
            w2c=w2c,
            status=data["status"],
            reason=data.get("reason", ""),
            num_models=data.get("num_models", 0),
            config=data.get("config", {}),
        )


def save_poses(poses: RecoveredPoses, path: str | Path) -> None:
    atomic_write_text(path, json.dumps(poses.to_dict(), indent=1))


def load_poses(path: str | Path) -> RecoveredPoses:
    return RecoveredPoses.from_dict(json.loads(Path(path).read_text()))


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
        RecoveredPoses; ``status == "failed"`` with a reason when fewer than
        ``conf.min_registered`` of the frames register or COLMAP errors.
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
        return RecoveredPoses(none, "failed", "COLMAP reconstructed no model", 0, config)
    result = RecoveredPoses(poses_of_largest_model(recs, names), "ok", "", len(recs), config)
    if result.registered_ratio < conf.min_registered:
        result.status = "failed"
        result.reason = (
            f"registered {result.num_registered}/{result.num_frames} frames "
            f"< {conf.min_registered:.0%}"
        )
    return result


def run_poses(run_dir: str | Path, conf: PoseRecoveryConfig | None = None) -> RecoveredPoses:
    """Pose stage of one run folder: frames/ + K.json + meta.json -> poses.json (+ sfm/)."""
    run = Path(run_dir)
    conf = conf or PoseRecoveryConfig()
    meta = json.loads((run / "meta.json").read_text())
    if meta.get("status") != "ok":
        num = int(meta.get("num_frames") or 0)
        result = RecoveredPoses(
            [None] * num, "failed", f"generation failed: {meta.get('reason', '')}", 0,
            asdict(conf),
        )
    else:
        K = np.asarray(json.loads((run / "K.json").read_text()), dtype=np.float64)
        frames = sorted((run / "frames").glob("*.png"))
        result = recover_poses(frames, K, run / "sfm", conf)
        # Keep the log, drop the database and models (large, and rebuilt on demand).
        (run / "sfm" / "database.db").unlink(missing_ok=True)
        shutil.rmtree(run / "sfm" / "models", ignore_errors=True)
    save_poses(result, run / "poses.json")
    return result
