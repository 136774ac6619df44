"""Measure pose-recovery options on exact renders: time, registration and ATE.

Run: ``python -m benchmark.bench_poses [--frames 14] [--size 448x256]``. Prints one line per
(matcher, mapper, max features) on gt renders of a few synthetic scenes and camera paths;
the defaults in ``benchmark/poses.py`` were chosen from this output (see docs/decisions.md).
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
from benchmark.poses import PoseRecoveryConfig, recover_poses
from benchmark.synthetic import canonical_K, make_scene, render, render_frames

CAMERAS = ["orbit_left_15deg", "dolly_in_30pct", "truck_right_20pct", "orbit_up_10deg"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=14)
    parser.add_argument("--size", default="448x256")
    parser.add_argument("--scenes", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    K = canonical_K(width, height)
    clips = []
    for seed in args.scenes:
        scene = make_scene(seed)
        _, depth = render(scene, K, scene.base_w2c, width, height)
        for name in CAMERAS:
            cam = make_camera_path(name, K, width, height, args.frames,
                                   depth=float(np.median(depth)), base_w2c=scene.base_w2c)
            frames, _ = render_frames(scene, K, cam.w2c, width, height)
            clips.append((f"{seed}/{name}", cam, frames))
    variants = [
        PoseRecoveryConfig(matcher=m, mapper=p, max_num_features=n)
        for m in ("exhaustive", "sequential")
        for p in ("incremental", "global")
        for n in (2048, 8192)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for conf in variants:
            seconds, ates, failed = 0.0, [], 0
            for key, cam, frames in clips:
                folder = Path(tmp) / key.replace("/", "_")
                paths = write_frames(folder / "frames", frames)
                start = time.perf_counter()
                result = recover_poses(paths, K, folder / "sfm", conf)
                seconds += time.perf_counter() - start
                errors = camera_pose_errors(cam.w2c, result.w2c)
                if result.status != "ok" or errors.status != "ok":
                    failed += 1
                else:
                    ates.append(errors.ate)
            print(
                f"{conf.matcher:10s} {conf.mapper:11s} feats={conf.max_num_features:5d} "
                f"time/clip={seconds / len(clips):6.2f}s failed={failed}/{len(clips)} "
                f"ATE median={np.median(ates) if ates else float('nan'):.2e} "
                f"max={max(ates) if ates else float('nan'):.2e}",
                flush=True,
            )


if __name__ == "__main__":
    main()
