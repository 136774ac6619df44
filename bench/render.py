"""Time the synthetic-scene renderer and measure its anti-aliasing (prints a report).

Run ``python -m bench.render`` (add ``--quality`` for the texture-filter study
that chose ``_LOD_BIAS``/``_ANISO``). Timings depend on what else runs on the machine: with
other jobs on the cores, torch's 2-thread team stalls, so both 1 and 2 threads are timed.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from benchmark.sources import synthetic as syn
from benchmark.sources.synthetic import scene as shading  # _shade reads _LOD_BIAS, _ANISO there


def orbit_path(scene: syn.SyntheticScene, frames: int, degrees: float) -> np.ndarray:
    """Orbit of the base camera about the vertical through the point at depth 1 ahead."""
    w2c0 = scene.base_w2c
    R, C = w2c0[:3, :3], scene.base_center
    target = C + R[2]
    out = np.tile(np.eye(4), (frames, 1, 1))
    for f, a in enumerate(np.radians(np.linspace(0.0, degrees, frames))):
        Rz = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0, 0, 1.0]])
        Rf, Cf = R @ Rz.T, target + Rz @ (C - target)
        out[f, :3, :3] = Rf
        out[f, :3, 3] = -Rf @ Cf
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(float) - b.astype(float)) ** 2)))


def bench_timing(seed: int, threads: list[int]) -> None:
    t = time.perf_counter()
    scene = syn.make_scene(seed)
    print(f"seed {seed}: make_scene {time.perf_counter() - t:.2f} s, {len(scene.rects)} rects")
    t = time.perf_counter()
    atlas = scene.atlas()
    print(
        f"  textures (once per scene): {time.perf_counter() - t:.2f} s, "
        f"{atlas.texels.shape[0] / 1e6:.1f} M texels incl. mips"
    )
    for n in threads:
        for frames, (w, h) in ((25, (1024, 576)), (14, (448, 256))):
            K = syn.canonical_K(w, h)
            path = orbit_path(scene, frames, 20.0)
            t = time.perf_counter()
            syn.render_frames(scene, K, path, w, h, threads=n)
            dt = time.perf_counter() - t
            t = time.perf_counter()
            for w2c in path:
                syn.render_depth(scene, K, w2c, w, h)
            dd = time.perf_counter() - t
            print(
                f"  threads={n} {frames} frames {w}x{h}: render_frames {dt:.2f} s "
                f"({dt / frames * 1e3:.0f} ms/frame); depth only {dd / frames * 1e3:.0f} ms/frame"
            )


def bench_quality(seed: int) -> None:
    """PSNR of the default renderer (and variants) against 36 spp supersampling."""
    scene = syn.make_scene(seed)
    w, h = 448, 256
    K = syn.canonical_K(w, h)
    w2c = orbit_path(scene, 2, 7.0)[1]
    bias0, aniso0 = shading._LOD_BIAS, shading._ANISO
    try:
        shading._LOD_BIAS, shading._ANISO = 0.0, 4
        ref, _ = syn.render(scene, K, w2c, w, h, supersample=6, adaptive=False)
        for aniso in (1, 4):
            for bias in (0.0, -0.5, -1.0, -1.5):
                shading._LOD_BIAS, shading._ANISO = bias, aniso
                t = time.perf_counter()
                img, _ = syn.render(scene, K, w2c, w, h)
                dt = time.perf_counter() - t
                raw, _ = syn.render(scene, K, w2c, w, h, supersample=1)
                print(
                    f"  aniso={aniso} lod_bias={bias:+.1f}: PSNR vs 36spp {psnr(img, ref):.2f} dB "
                    f"(no edge AA {psnr(raw, ref):.2f} dB), {dt * 1e3:.0f} ms"
                )
    finally:
        shading._LOD_BIAS, shading._ANISO = bias0, aniso0
    rgb, _ = syn.render(scene, K, scene.base_w2c, w, h)
    kps = cv2.SIFT_create().detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), None)
    print(f"  SIFT keypoints on the base view at {w}x{h}: {len(kps)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--quality", action="store_true", help="also run the AA/filter study")
    args = parser.parse_args()
    for seed in args.seeds:
        bench_timing(seed, args.threads)
        if args.quality:
            bench_quality(seed)


if __name__ == "__main__":
    main()
