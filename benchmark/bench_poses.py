"""Pose-recovery benchmark: seconds per clip, registration rate and ATE on exact renders.

Run: ``python -m benchmark.bench_poses`` (add ``--quick`` for one scene). Settings measured:
14 frames at 576x320 (CameraCtrl's resolution) and 25 frames at 1024x576 (the paper's), on
``gt_render`` clips of synthetic scenes, for

- ``ours``: the benchmark protocol (fixed PINHOLE K, exhaustive matching, incremental mapper,
  1 thread, fixed seed) and its variants (sequential matching, global mapper), and
- ``colmap-default``: COLMAP's default pipeline (exhaustive matching, default mapper options:
  intrinsics refined, all threads), given the same K as a prior.

The defaults in ``benchmark/poses.py`` were chosen from this output (docs/protocol.md).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmark.camera_paths import make_camera_path
from benchmark.io import write_frames
from benchmark.metrics import camera_pose_errors
from benchmark.poses import (
    PoseRecoveryConfig,
    RecoveredPoses,
    poses_of_largest_model,
    recover_poses,
)
from benchmark.synthetic import canonical_K, make_scene, render, render_frames

CAMERAS = ["orbit_left_15deg", "dolly_in_30pct", "truck_right_20pct", "orbit_up_10deg"]
SETTINGS = [(14, 576, 320), (25, 1024, 576)]


def recover_colmap_default(paths: list[Path], K: np.ndarray, work: Path) -> RecoveredPoses:
    """COLMAP's default pipeline through pycolmap (only the K prior is ours)."""
    import pycolmap

    work.mkdir(parents=True, exist_ok=True)
    database = work / "database.db"
    database.unlink(missing_ok=True)
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = "PINHOLE"
    reader.camera_params = ",".join(repr(float(v)) for v in (K[0, 0], K[1, 1], K[0, 2], K[1, 2]))
    image_dir = paths[0].parent
    pycolmap.extract_features(database, image_dir, camera_mode=pycolmap.CameraMode.SINGLE,
                              reader_options=reader)
    pycolmap.match_exhaustive(database)
    (work / "models").mkdir(exist_ok=True)
    recs = pycolmap.incremental_mapping(database, image_dir, work / "models")
    names = [p.name for p in paths]
    w2c = poses_of_largest_model(recs, names) if recs else [None] * len(paths)
    result = RecoveredPoses(w2c, "ok")
    if result.registered_ratio < 0.8:
        result.status = "failed"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one scene, two cameras")
    args = parser.parse_args()
    seeds = [0] if args.quick else [0, 1]
    cameras = CAMERAS[:2] if args.quick else CAMERAS
    variants = {
        "ours (exhaustive, incremental)": PoseRecoveryConfig(),
        "ours, sequential matching": PoseRecoveryConfig(matcher="sequential"),
        "ours, global mapper": PoseRecoveryConfig(mapper="global"),
        "colmap-default": None,
    }
    print(f"{'setting':16s} {'variant':32s} {'s/clip':>7s} {'registered':>10s} "
          f"{'failed':>6s} {'ATE median':>10s} {'ATE max':>9s}")
    with tempfile.TemporaryDirectory() as tmp:
        for frames_n, width, height in SETTINGS:
            K = canonical_K(width, height)
            clips = []
            for seed in seeds:
                scene = make_scene(seed)
                _, depth = render(scene, K, scene.base_w2c, width, height)
                for name in cameras:
                    cam = make_camera_path(name, K, width, height, frames_n,
                                           depth=float(np.median(depth)),
                                           base_w2c=scene.base_w2c)
                    frames, _ = render_frames(scene, K, cam.w2c, width, height)
                    folder = Path(tmp) / f"{frames_n}_{seed}_{name}"
                    clips.append((cam, write_frames(folder / "frames", frames), folder))
            for label, conf in variants.items():
                seconds, registered, ates, failed = 0.0, [], [], 0
                for k, (cam, paths, folder) in enumerate(clips):
                    work = folder / f"sfm{k}_{label.split()[0]}_{id(conf)}"
                    start = time.perf_counter()
                    if conf is None:
                        result = recover_colmap_default(paths, cam.K, work)
                    else:
                        result = recover_poses(paths, cam.K, work, conf)
                    seconds += time.perf_counter() - start
                    registered.append(result.registered_ratio)
                    errors = camera_pose_errors(cam.w2c, result.w2c)
                    if result.status != "ok" or errors.status != "ok":
                        failed += 1
                    elif errors.ate is not None:
                        ates.append(errors.ate)
                median = np.median(ates) if ates else float("nan")
                worst = max(ates) if ates else float("nan")
                print(f"{frames_n}f {width}x{height:<6d} {label:32s} {seconds / len(clips):7.2f} "
                      f"{np.mean(registered):10.1%} {failed:>3d}/{len(clips):<2d} "
                      f"{median:10.2e} {worst:9.2e}", flush=True)


if __name__ == "__main__":
    main()
