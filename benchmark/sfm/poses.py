r"""Recover per-frame camera poses from a method's frames with COLMAP (pycolmap).

The protocol of the paper family (ParticleSfM-style): SIFT on the frames with the intrinsics
the method reports (PINHOLE, never refined), matching, incremental mapping, and a clip with
fewer than 80% of its frames registered counts as a *failure*: it is recorded, never raised.

Defaults are chosen by measurement (``bench/poses.py``): exhaustive matching
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
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from benchmark.cameras import CameraFileError, validate_intrinsics
from benchmark.io import atomic_write_text
from benchmark.sfm.trials import (
    MAX_DISAGREEMENT,
    Selection,
    Trial,
    frame_discrepancy,
    select_trial,
)

log = logging.getLogger(__name__)

MIN_REGISTERED = 0.8
POSES_FORMAT = "trajbench.poses/1"


@dataclass
class PoseRecoveryConfig:
    """Options of pose recovery; the defaults are the benchmark's protocol (docs/protocol.md).

    ``legacy()`` is the single-trial protocol used before the calibration study (relaxed
    initial-pair rules, no plausibility check, full-size 8192-feature SIFT); bench_poses runs
    it beside the default so every speed and accuracy claim is a ratio from one run."""

    matcher: Literal["exhaustive", "sequential"] = "sequential"
    mapper: Literal["incremental", "global"] = "incremental"
    sequential_overlap: int = 8
    max_num_features: int = 4096
    #: Long side (px) the frames are downscaled to for SIFT (0: full size); keypoints are
    #: scaled back to full-resolution pixels by COLMAP, and K stays the frames' own.
    max_image_size: int = 0
    num_threads: int = 1
    seed: int = 0
    min_registered: float = MIN_REGISTERED
    #: SIFT's first octave: -1 upsamples the frame 2x first (COLMAP's default), 0 starts at
    #: native size; None (auto): -1 for frames whose long side is below ``upsample_below``
    #: pixels, else 0 (measured: docs/protocol.md, "Decisions").
    sift_first_octave: int | None = None
    upsample_below: int = 800
    #: Initial pairs the incremental mapper tries per attempt (COLMAP's default: 200).
    init_num_trials: int = 200
    #: Mapping trials on the same features and matches (seeds seed, seed+1, ...).
    num_trials: int = 3
    #: "default-then-relaxed": COLMAP's initial-pair rules, relaxed ones only when no trial
    #: with the defaults registers enough plausible frames; "relaxed": relaxed rules only
    #: (the legacy protocol); "default": never relax.
    init_rules: Literal["default-then-relaxed", "relaxed", "default"] = "default-then-relaxed"
    #: Per-frame plausibility checks and trial consensus (benchmark.sfm.trials).
    plausibility: bool = True
    #: No SfM model but rotation-dominant pairs: per-frame rotations from homographies.
    rotation_fallback: bool = True
    #: "auto": pycolmap's CUDA SIFT extraction and matching when pycolmap was built with
    #: CUDA (the optional ``gpu`` extra), else the CPU; "cpu" forces the CPU.
    device: Literal["auto", "cpu"] = "auto"

    @classmethod
    def legacy(cls, **overrides: Any) -> PoseRecoveryConfig:
        """The protocol before issue 13: one trial, relaxed rules, no checks, full-size SIFT."""
        base = dict(num_trials=1, init_rules="relaxed", plausibility=False,
                    rotation_fallback=False, max_image_size=0, max_num_features=8192,
                    matcher="exhaustive", sift_first_octave=-1)
        base.update(overrides)
        return cls(**base)


#: COLMAP's default initial-pair rules and the relaxed fallback (short clips span <= ~20
#: degrees, often along the optical axis: the defaults can reject every pair of a dolly).
DEFAULT_INIT = {"init_min_tri_angle": 16.0, "init_max_forward_motion": 0.95}
RELAXED_INIT = {"init_min_tri_angle": 4.0, "init_max_forward_motion": 1.0}


@dataclass
class RecoveredPoses:
    """Per-frame world-to-camera poses (None where unregistered) and the verdict.

    ``kind`` is "sfm" (a COLMAP model) or "rotation_only" (no model; rotations from
    homographies, translations set to 0 and undefined). ``trials`` records every mapping
    trial's verdict, ``dropped`` the registered frames the plausibility rules removed (frame
    index -> rule), ``init_rules`` the initial-pair rules of the chosen trial.
    ``timings`` (CPU seconds of this process per stage: extraction, matching, mapping,
    rotation) is measured but not saved, so poses.json stays bit-reproducible."""

    w2c: list[np.ndarray | None]
    status: Literal["ok", "failed"]
    reason: str = ""
    num_models: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    kind: Literal["sfm", "rotation_only"] = "sfm"
    trials: list[dict[str, Any]] = field(default_factory=list)
    dropped: dict[int, str] = field(default_factory=dict)
    init_rules: str = ""
    unstable: bool = False
    timings: dict[str, float] = field(default_factory=dict)

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
            "kind": self.kind,
            "num_frames": self.num_frames,
            "num_registered": self.num_registered,
            "registered_ratio": self.registered_ratio,
            "num_models": self.num_models,
            "init_rules": self.init_rules,
            "unstable": self.unstable,
            "dropped": {str(k): v for k, v in sorted(self.dropped.items())},
            "trials": self.trials,
            "w2c": [None if p is None else p.tolist() for p in self.w2c],
            "config": self.config,
        }

    @classmethod
    def from_dict(cls, data: Any) -> RecoveredPoses:
        """Validate the ``trajbench.poses/1`` structure; ValueError names the bad field.

        Non-finite numbers inside a pose are kept: scoring records them as a failed run.
        Files written before ``kind`` existed are SfM poses."""
        if not isinstance(data, dict) or data.get("format") != POSES_FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"not a poses file (format {found!r}, expected {POSES_FORMAT!r})")
        if data.get("status") not in ("ok", "failed"):
            raise ValueError(f"status: expected 'ok' or 'failed', got {data.get('status')!r}")
        kind = data.get("kind", "sfm")
        if kind not in ("sfm", "rotation_only"):
            raise ValueError(f"kind: expected 'sfm' or 'rotation_only', got {kind!r}")
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
        dropped = data.get("dropped", {})
        return cls(
            w2c=w2c,
            status=data["status"],
            reason=data.get("reason", ""),
            num_models=data.get("num_models", 0),
            config=data.get("config", {}),
            kind=kind,
            trials=list(data.get("trials", [])),
            dropped={int(k): str(v) for k, v in dropped.items()} if isinstance(dropped, dict)
            else {},
            init_rules=str(data.get("init_rules", "")),
            unstable=bool(data.get("unstable", False)),
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


def _fixed_intrinsics_options(
    pycolmap: Any, conf: PoseRecoveryConfig, seed: int | None = None, relaxed: bool = False
) -> Any:
    """Mapper options that keep the reported K fixed and run single-threaded, seeded;
    ``relaxed`` swaps COLMAP's initial-pair rules for ``RELAXED_INIT``."""
    seed = conf.seed if seed is None else seed
    if conf.mapper == "incremental":
        opts = pycolmap.IncrementalPipelineOptions()
        opts.ba_refine_focal_length = False
        opts.ba_refine_principal_point = False
        opts.ba_refine_extra_params = False
        opts.mapper.abs_pose_refine_focal_length = False
        opts.mapper.abs_pose_refine_extra_params = False
        opts.mapper.num_threads = conf.num_threads
        opts.mapper.random_seed = seed
        opts.triangulation.random_seed = seed
        # Clips have 14-25 frames: a model may be smaller than COLMAP's default of 10.
        opts.min_model_size = 3
        rules = RELAXED_INIT if relaxed else DEFAULT_INIT
        opts.mapper.init_min_tri_angle = rules["init_min_tri_angle"]
        opts.mapper.init_max_forward_motion = rules["init_max_forward_motion"]
        opts.init_num_trials = conf.init_num_trials
    else:
        opts = pycolmap.GlobalPipelineOptions()
        ba = opts.mapper.bundle_adjustment
        ba.refine_focal_length = False
        ba.refine_principal_point = False
        ba.refine_extra_params = False
        opts.mapper.num_threads = conf.num_threads
        opts.mapper.random_seed = seed
    opts.num_threads = conf.num_threads
    opts.random_seed = seed
    return opts


def poses_of_largest_model(recs: dict[int, Any], names: list[str]) -> list[np.ndarray | None]:
    """World-to-camera 4x4 per image name (None if unregistered) from the reconstruction with
    most registered images; models come back in no particular order (ties: lowest image id)."""
    return _frames_of(_largest(recs), names)[0]


def _largest(recs: dict[int, Any]) -> Any:
    return max(recs.values(), key=lambda r: (r.num_reg_images(), -min(r.reg_image_ids())))


def _frames_of(
    rec: Any, names: list[str]
) -> tuple[list[np.ndarray | None], list[float | None], list[int], float]:
    """Per frame: w2c, mean reprojection error (px) and observation count of its registered
    image in ``rec``; and the median depth of the observed 3-D points over all frames."""
    frame_of = {name: i for i, name in enumerate(names)}
    n = len(names)
    w2c: list[np.ndarray | None] = [None] * n
    reproj: list[float | None] = [None] * n
    obs = [0] * n
    depths: list[np.ndarray] = []
    for image in rec.images.values():
        if not image.has_pose or image.name not in frame_of:
            continue
        i = frame_of[image.name]
        pose = np.eye(4)
        pose[:3] = image.cam_from_world().matrix()
        w2c[i] = pose
        observed = image.get_observation_points2D()
        obs[i] = len(observed)
        if not observed:
            continue
        xy = np.array([p.xy for p in observed])
        xyz = np.array([rec.points3D[p.point3D_id].xyz for p in observed])
        cam = xyz @ pose[:3, :3].T + pose[:3, 3]
        params = rec.cameras[image.camera_id].params  # PINHOLE: fx, fy, cx, cy
        z = np.maximum(cam[:, 2], 1e-12)
        proj = np.stack([params[0] * cam[:, 0] / z + params[2],
                         params[1] * cam[:, 1] / z + params[3]], axis=1)
        reproj[i] = float(np.linalg.norm(proj - xy, axis=1).mean())
        depths.append(cam[:, 2])
    depth = float(np.median(np.concatenate(depths))) if depths else float("nan")
    return w2c, reproj, obs, depth


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


def _verified_matches(
    pycolmap: Any, database: Path, names: list[str]
) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
    """Pixel coordinates of the geometrically verified matches of every frame pair."""
    frame_of = {name: i for i, name in enumerate(names)}
    db = pycolmap.Database.open(str(database))
    try:
        image_frame = {im.image_id: frame_of.get(im.name) for im in db.read_all_images()}
        keypoints = {iid: db.read_keypoints(iid)[:, :2] for iid in image_frame}
        pair_ids, geometries = db.read_two_view_geometries()
    finally:
        db.close()
    out: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    for pair_id, tvg in zip(pair_ids, geometries, strict=True):
        id1, id2 = pycolmap.pair_id_to_image_pair(pair_id)
        fi, fj = image_frame.get(id1), image_frame.get(id2)
        m = np.asarray(tvg.inlier_matches)
        if fi is None or fj is None or len(m) == 0:
            continue
        pi, pj = keypoints[id1][m[:, 0]], keypoints[id2][m[:, 1]]
        out[(fi, fj) if fi < fj else (fj, fi)] = (pi, pj) if fi < fj else (pj, pi)
    return out


def _rotation_only(
    pycolmap: Any, database: Path, names: list[str], K: np.ndarray, conf: PoseRecoveryConfig
) -> tuple[list[np.ndarray | None], str] | None:
    """Rotation-only poses when most verified pairs are rotation-dominant, else None."""
    from benchmark.sfm.rotations import rotations_from_matches

    matches = _verified_matches(pycolmap, database, names)
    result = rotations_from_matches(len(names), matches, K, seed=conf.seed)
    if not result.pairs or result.num_dominant < 0.5 * len(result.pairs):
        return None
    w2c: list[np.ndarray | None] = []
    for R in result.rotations:
        if R is None:
            w2c.append(None)
            continue
        pose = np.eye(4)
        pose[:3, :3] = R
        w2c.append(pose)
    note = (f"{result.num_dominant}/{len(result.pairs)} matched pairs rotation-dominant "
            f"(homography explains the matches)")
    return w2c, note


def _device(pycolmap: Any, conf: PoseRecoveryConfig) -> Any:
    """pycolmap's CUDA device when asked for 'auto' and pycolmap has CUDA, else the CPU."""
    if conf.device == "auto" and getattr(pycolmap, "has_cuda", False):
        return pycolmap.Device.cuda
    return pycolmap.Device.cpu


def _extract_and_match(
    pycolmap: Any, database: Path, image_dir: Path, names: list[str], K: np.ndarray,
    conf: PoseRecoveryConfig, timings: dict[str, float],
) -> None:
    """SIFT features and verified matches into ``database`` (shared by all trials)."""
    device = _device(pycolmap, conf)
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = "PINHOLE"
    reader.camera_params = ",".join(repr(float(v)) for v in (K[0, 0], K[1, 1], K[0, 2], K[1, 2]))
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = conf.num_threads
    extraction.sift.max_num_features = conf.max_num_features
    octave = conf.sift_first_octave
    if octave is None:
        octave = -1
        try:
            with Image.open(image_dir / names[0]) as first:
                octave = -1 if max(first.size) < conf.upsample_below else 0
        except OSError:  # an unreadable frame is COLMAP's to skip (unregistered), not ours
            pass
    extraction.sift.first_octave = octave
    if conf.max_image_size > 0:
        extraction.max_image_size = conf.max_image_size
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = conf.num_threads
    verification = pycolmap.TwoViewGeometryOptions()
    verification.ransac.random_seed = conf.seed
    verification.ransac.num_threads = conf.num_threads
    start = time.process_time()
    pycolmap.extract_features(
        database, image_dir, image_names=names, camera_mode=pycolmap.CameraMode.SINGLE,
        reader_options=reader, extraction_options=extraction, device=device,
    )
    timings["extraction"] = time.process_time() - start
    start = time.process_time()
    if conf.matcher == "sequential":
        pairing = pycolmap.SequentialPairingOptions()
        pairing.overlap = conf.sequential_overlap
        pairing.num_threads = conf.num_threads
        pycolmap.match_sequential(database, matching, pairing, verification, device=device)
    else:
        pycolmap.match_exhaustive(
            database, matching, pycolmap.ExhaustivePairingOptions(), verification, device=device
        )
    timings["matching"] = time.process_time() - start


def _run_trials(
    pycolmap: Any, database: Path, image_dir: Path, models: Path, names: list[str],
    conf: PoseRecoveryConfig, relaxed: bool,
) -> list[tuple[Trial, int, Path]]:
    """One mapping per seed on the shared database; (trial, number of models, its folder)."""
    out: list[tuple[Trial, int, Path]] = []
    rules = "relaxed" if relaxed else "default"
    for k in range(max(1, conf.num_trials)):
        if k >= 1 and out[0][1] == 0:
            break  # no model at all is not a matter of the seed: do not pay for more trials
        if k == 2 and _consistent(out[0][0], out[1][0], conf):
            break  # two trials agree: a third cannot change the median or the selection
        seed = conf.seed + k
        folder = models / f"{rules}{k}"
        folder.mkdir(parents=True, exist_ok=True)
        pycolmap.set_random_seed(seed)
        options = _fixed_intrinsics_options(pycolmap, conf, seed, relaxed)
        if conf.mapper == "incremental":
            recs = pycolmap.incremental_mapping(database, image_dir, folder, options)
        else:
            recs = pycolmap.global_mapping(database, image_dir, folder, options)
        if not recs:
            trial = Trial(seed, [None] * len(names), [None] * len(names), [0] * len(names),
                          init_rules=rules)
            out.append((trial, 0, folder))
            continue
        best = _largest(recs)
        w2c, reproj, obs, depth = _frames_of(best, names)
        trial = Trial(seed, w2c, reproj, obs, float(best.compute_mean_reprojection_error()),
                      int(best.num_points3D()), depth, rules)
        # keep only the chosen model of this trial on disk (real_videos reads it back)
        for key, rec in recs.items():
            if rec is not best:
                shutil.rmtree(folder / str(key), ignore_errors=True)
        out.append((trial, len(recs), folder))
    return out


def _consistent(a: Trial, b: Trial, conf: PoseRecoveryConfig) -> bool:
    """Two trials register the same frames and agree on every one within the consensus
    tolerance (so no frame is dropped for disagreement and the clip is stable)."""
    if not conf.plausibility or a.registered != b.registered or len(a.registered) < 3:
        return False
    disc = frame_discrepancy(a, b)
    return bool(disc) and max(disc.values()) <= MAX_DISAGREEMENT


def _enough(selection: Selection, num_frames: int, conf: PoseRecoveryConfig) -> bool:
    if selection.trial is None:
        return False
    kept = [i for i in selection.trial.plausible if i not in selection.dropped]
    return len(kept) >= conf.min_registered * num_frames


def recover_poses(
    image_paths: list[Path],
    K: np.ndarray,
    work_dir: str | Path,
    conf: PoseRecoveryConfig | None = None,
) -> RecoveredPoses:
    r"""Run COLMAP on ``image_paths`` (frame order) with fixed intrinsics ``K``.

    Protocol (defaults; docs/protocol.md): SIFT and verified matches once; ``num_trials``
    seeded incremental mappings with COLMAP's initial-pair rules, and only if none of them
    registers enough plausible frames, the same trials with relaxed rules; the trial chosen
    by :func:`benchmark.sfm.trials.select_trial` (no ground truth), its implausible frames
    set to None (``dropped`` says why). Without any model, rotation-dominant clips (pan, tilt,
    roll) get rotation-only poses from pairwise homographies (``kind="rotation_only"``).

    Args:
        image_paths: one image per frame, all in one folder, in frame order.
        K: (3, 3) intrinsics in pixels of these images (COLMAP's pixel-centre convention).
        work_dir: scratch folder for the database and models; ``sfm.log`` stays there, and
            ``models/0`` holds the chosen trial's model.
        conf: options (defaults: the benchmark protocol).

    Returns:
        RecoveredPoses; ``status == "failed"`` with a reason when ``K`` is not a valid
        pinhole matrix, fewer than ``conf.min_registered`` of the frames register (after the
        plausibility rules), the trials disagree (``unstable``), COLMAP builds no model and
        the clip is not rotation-dominant (the reason then says how many frames had SIFT
        keypoints and how many inlier matches there were) or COLMAP errors.
    """
    import pycolmap

    conf = conf or PoseRecoveryConfig()
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    log_path = work / "sfm.log"
    log_path.write_text("")
    database = work / "database.db"
    models = work / "models"
    trials_dir = work / "trials"
    for stale in (database, models, trials_dir):
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
    n = len(paths)
    none: list[np.ndarray | None] = [None] * n
    config = asdict(conf)
    try:
        K = validate_intrinsics(K, "intrinsics K")
    except CameraFileError as exc:  # a method's K: recorded, COLMAP would fail obscurely
        return RecoveredPoses(none, "failed", f"invalid {exc}", 0, config)
    if n < 2:
        return RecoveredPoses(none, "failed", f"{n} frame(s): nothing to match", 0, config)

    timings: dict[str, float] = {}
    rule_sets = {"relaxed": [True], "default": [False]}.get(conf.init_rules, [False, True])
    try:
        pycolmap.set_random_seed(conf.seed)
        with _capture_native_output(log_path):
            _extract_and_match(pycolmap, database, image_dir, names, K, conf, timings)
            start = time.process_time()
            runs: list[tuple[Trial, int, Path]] = []
            selection = Selection(None, {}, None, False)
            rotation = None
            for relaxed in rule_sets:
                runs += _run_trials(pycolmap, database, image_dir, trials_dir, names, conf,
                                    relaxed)
                selection = select_trial([t for t, _, _ in runs], plausibility=conf.plausibility)
                if _enough(selection, n, conf):
                    break
                if selection.trial is None and conf.rotation_fallback and "rotation" not in timings:
                    # No model and the matches are explained by homographies: no parallax,
                    # so relaxed initial-pair rules cannot triangulate either; skip them.
                    timings["mapping"] = time.process_time() - start
                    rot_start = time.process_time()
                    rotation = _rotation_only(pycolmap, database, names, K, conf)
                    timings["rotation"] = time.process_time() - rot_start
                    start = time.process_time() - timings["mapping"]
                    if rotation is not None:
                        break
            timings["mapping"] = time.process_time() - start
    except Exception as exc:  # COLMAP errors become a recorded failure, never a crash
        log.warning("pose recovery failed: %s", exc)
        return RecoveredPoses(none, "failed", f"COLMAP error: {exc}", 0, config,
                              timings=timings)

    verdicts = [t.verdict() for t, _, _ in runs]
    chosen = selection.trial
    if chosen is None:
        why = _database_summary(pycolmap, database, n)
        if rotation is not None:
            w2c, note = rotation
            result = RecoveredPoses(
                w2c, "ok", f"rotation only: SfM reconstructed no model{why}; {note}; "
                "translation undefined", 0, config, kind="rotation_only", trials=verdicts,
                timings=timings,
            )
            return _gate(result, conf)
        return RecoveredPoses(none, "failed", f"COLMAP reconstructed no model{why}", 0, config,
                              trials=verdicts, timings=timings)
    _keep_chosen_model(trials_dir, models, next(f for t, _, f in runs if t is chosen))
    w2c = [None if i in selection.dropped else p for i, p in enumerate(chosen.w2c)]
    result = RecoveredPoses(
        w2c, "ok", "", next(m for t, m, _ in runs if t is chosen), config, kind="sfm",
        trials=verdicts, dropped=dict(sorted(selection.dropped.items())),
        init_rules=chosen.init_rules, unstable=selection.unstable, timings=timings,
    )
    if selection.unstable:
        result.status = "failed"
        result.reason = (
            f"unstable: the chosen mapping trial (seed {chosen.seed}) and the others disagree "
            f"by {selection.disagreement:.1%} of the path's scale (median over frames; "
            f"limit {MAX_DISAGREEMENT:.0%})"
        )
        return result
    result = _gate(result, conf)
    if result.status == "failed" and conf.rotation_fallback and "rotation" not in timings:
        # A partial model of a clip the homographies explain (e.g. a pan with a little
        # parallax): its rotations are still measurable.
        rot_start = time.process_time()
        rotation = _rotation_only(pycolmap, database, names, K, conf)
        timings["rotation"] = time.process_time() - rot_start
        if rotation is not None:
            w2c_rot, note = rotation
            rot_result = _gate(RecoveredPoses(
                w2c_rot, "ok", f"rotation only: SfM {result.reason}; {note}; translation "
                "undefined", result.num_models, config, kind="rotation_only", trials=verdicts,
                init_rules=result.init_rules, timings=timings,
            ), conf)
            if rot_result.status == "ok":
                return rot_result
    return result


def _gate(result: RecoveredPoses, conf: PoseRecoveryConfig) -> RecoveredPoses:
    """The registration threshold; the reason names the frames the plausibility rules
    dropped."""
    if result.registered_ratio < conf.min_registered:
        result.status = "failed"
        result.reason = (
            f"registered {result.num_registered}/{result.num_frames} frames "
            f"< {conf.min_registered:.0%}"
        )
    if result.dropped:
        named = "; ".join(f"frame {i}: {why}" for i, why in sorted(result.dropped.items()))
        result.reason = (result.reason + "; " if result.reason else "") + (
            f"treated as unregistered: {named}")
    return result


def _keep_chosen_model(trials_dir: Path, models: Path, folder: Path) -> None:
    """Move the chosen trial's model to ``models/0`` and delete the other trials' models."""
    kept = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if kept:
        shutil.move(str(kept[0]), str(models / "0"))
    shutil.rmtree(trials_dir, ignore_errors=True)


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
            shutil.rmtree(run / "sfm" / "trials", ignore_errors=True)
    save_poses(result, run / "poses.json")
    return result
