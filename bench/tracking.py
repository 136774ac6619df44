"""Weight-free point trackers against exact trajectories of synthetic renders.

``python -m bench.tracking [--width 256 --height 144 --frames 8 --stride 4]`` renders
seeded synthetic scenes along several camera paths, tracks the frame-0 grid with each
backend of :mod:`trajattn.tracking` and prints, per backend and path, the median end-point error
on points both the tracker and the truth call visible, the visibility agreement, how many points
survive to the last frame and the time taken. The default backend is chosen from these figures.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmark.cameras.paths import make_camera_path
from benchmark.sources.synthetic import canonical_K, make_scene, render, render_frames
from trajattn.tracking import make_tracker, track_grid
from trajattn.trajectories import trajectories_from_depth

CAMERAS = ["orbit_left_10deg", "truck_right_15pct", "dolly_in_20pct", "pan_right_10deg"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--height", type=int, default=144)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--stride", type=int, default=4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[6, 7])
    parser.add_argument("--trackers", nargs="+", default=["dis", "lk"])
    args = parser.parse_args(argv)
    w, h = args.width, args.height
    K = canonical_K(w, h)
    print(f"{'tracker':10s} {'seed':>4s} {'camera':20s} {'median px':>9s} {'agree':>6s} "
          f"{'survive':>7s} {'seconds':>7s}")
    for seed in args.seeds:
        scene = make_scene(seed)
        _, depth = render(scene, K, scene.base_w2c, w, h)
        for camera in CAMERAS:
            cam = make_camera_path(camera, K, w, h, args.frames, depth=float(np.median(depth)),
                                   base_w2c=scene.base_w2c)
            video, _ = render_frames(scene, K, cam.w2c, w, h)
            exact = trajectories_from_depth(depth, K, cam.w2c, stride=args.stride)
            for name in args.trackers:
                start = time.perf_counter()
                got = track_grid(make_tracker(name), video, args.stride)
                seconds = time.perf_counter() - start
                both = got.visible & exact.visible
                err = np.linalg.norm(got.tracks - exact.tracks, axis=-1)[both]
                agree = (got.visible == exact.visible).mean()
                survive = got.visible[-1].mean()
                print(f"{name:10s} {seed:4d} {camera:20s} {np.median(err):9.3f} {agree:6.3f} "
                      f"{survive:7.3f} {seconds:7.2f}")


if __name__ == "__main__":
    main()
