"""The COLMAP (pycolmap) side of pose recovery: SIFT extraction and matching into a database,
mapper options with fixed intrinsics, reading a model's per-frame poses and statistics, and
rotation-only poses from the verified matches.

Every function takes the ``pycolmap`` module as an argument: it is imported once, by
:func:`benchmark.sfm.mapping.recover_poses`, so that importing this package stays light."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmark.sfm.records import DEFAULT_INIT, RELAXED_INIT, PoseRecoveryConfig
from benchmark.sfm.rotations import rotations_from_matches


@contextlib.contextmanager
def capture_native_output(log_path: Path) -> Iterator[None]:
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


def mapper_options(
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
        # global BA when the model grew by this ratio (COLMAP: 1.1); the final one always runs
        opts.ba_global_frames_ratio = conf.ba_global_ratio
        opts.ba_global_points_ratio = conf.ba_global_ratio
        opts.extract_colors = False  # point colours: image reads that change no pose
    else:
        opts = pycolmap.GlobalPipelineOptions()
        ba = opts.mapper.bundle_adjustment
        ba.refine_focal_length = False
        ba.refine_principal_point = False
        ba.refine_extra_params = False
        opts.mapper.num_threads = conf.num_threads
        opts.mapper.random_seed = seed
        if conf.global_tracks_per_view > 0:
            opts.mapper.track_required_tracks_per_view = conf.global_tracks_per_view
    opts.num_threads = conf.num_threads
    opts.random_seed = seed
    return opts


def poses_of_largest_model(recs: dict[int, Any], names: list[str]) -> list[np.ndarray | None]:
    """World-to-camera 4x4 per image name (None if unregistered) from the reconstruction with
    most registered images; models come back in no particular order (ties: lowest image id)."""
    return frames_of(largest_model(recs), names)[0]


def largest_model(recs: dict[int, Any]) -> Any:
    return max(recs.values(), key=lambda r: (r.num_reg_images(), -min(r.reg_image_ids())))


def frames_of(
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


def database_summary(pycolmap: Any, database: Path, num_frames: int) -> str:
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


def verified_matches(
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


def rotation_only(
    pycolmap: Any, database: Path, names: list[str], K: np.ndarray, conf: PoseRecoveryConfig
) -> tuple[list[np.ndarray | None], str] | None:
    """Rotation-only poses when most verified pairs are rotation-dominant, else None."""
    matches = verified_matches(pycolmap, database, names)
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


def feature_device(pycolmap: Any, conf: PoseRecoveryConfig) -> Any:
    """pycolmap's CUDA device when asked for 'auto' and pycolmap has CUDA, else the CPU."""
    if conf.device == "auto" and getattr(pycolmap, "has_cuda", False):
        return pycolmap.Device.cuda
    return pycolmap.Device.cpu


def extract_and_match(
    pycolmap: Any, database: Path, image_dir: Path, names: list[str], K: np.ndarray,
    conf: PoseRecoveryConfig, timings: dict[str, float],
) -> None:
    """SIFT features and verified matches into ``database`` (shared by all trials)."""
    device = feature_device(pycolmap, conf)
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
    verification = verification_options(pycolmap, conf, conf.seed)
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


def verification_options(pycolmap: Any, conf: PoseRecoveryConfig, seed: int) -> Any:
    """Geometric verification (RANSAC on each matched pair) seeded with ``seed``."""
    verification = pycolmap.TwoViewGeometryOptions()
    verification.ransac.random_seed = seed
    verification.ransac.num_threads = conf.num_threads
    return verification


def reverify(
    pycolmap: Any, database: Path, copy: Path, conf: PoseRecoveryConfig, seed: int
) -> None:
    """A copy of ``database`` whose matches are verified again with RANSAC seed ``seed``.

    The features and raw matches are kept (the costly part of matching); only the verified
    inlier sets and two-view geometries are recomputed. On short clips with few, weak
    features they depend on the seed, and the mapper's model with them (docs/protocol.md,
    "Trials"): this is what a trial of the global mapper varies."""
    shutil.copyfile(database, copy)
    db = pycolmap.Database.open(str(copy))
    try:
        db.clear_two_view_geometries()
    finally:
        db.close()
    verifier = pycolmap.GeometricVerifierOptions()
    verifier.num_threads = conf.num_threads
    pycolmap.geometric_verification(
        copy, verifier, pycolmap.ExistingMatchedPairingOptions(),
        verification_options(pycolmap, conf, seed),
    )


def verified_geometry(pycolmap: Any, database: Path) -> dict[int, tuple[int, bytes]]:
    """Every verified pair of ``database``: its two-view configuration and inlier matches, as
    comparable values. Two databases with the same features and equal results hold the same
    verified matches, so a deterministic mapper builds the same model from either."""
    db = pycolmap.Database.open(str(database))
    try:
        pair_ids, geometries = db.read_two_view_geometries()
    finally:
        db.close()
    out = {}
    for pair_id, tvg in zip(pair_ids, geometries, strict=True):
        inliers = np.ascontiguousarray(tvg.inlier_matches, dtype=np.int64).reshape(-1, 2)
        out[int(pair_id)] = (int(tvg.config), inliers.tobytes())
    return out
