"""Pose-recovery benchmark: CPU seconds per stage, ratio to the previous protocol, accuracy.

Run: ``python -m bench.poses`` (``--quick``: one room and one hard scene, two
paths, 448x256x14). Every clip is an exact render of a calibration-suite scene
(:mod:`benchmark.stages.calibration`), posed in the same process by each variant, one thread:

- ``legacy``: the protocol before issue 13 (one trial, relaxed initial-pair rules, no
  plausibility checks, full-size SIFT with up to 8192 features, exhaustive matching);
- ``incremental``: the protocol of 2026-12-03 (incremental mapper, mixed initial-pair rules);
- ``global of 2026-12-04``: the global mapper with two trials that differ by the mapper's
  seed only;
- ``protocol``: today's default (:class:`benchmark.sfm.poses.PoseRecoveryConfig`: the global
  mapper, trials that differ by the verification's seed);
- candidate settings the defaults were chosen from (feature count, extraction size,
  sequential matching), with ``--variants all``.

Per variant and setting it prints CPU seconds per clip split into extraction, matching and
mapping (``time.process_time``: the machine is shared, so wall time is noise), the ratio of
total CPU time to the run's first variant (``--variants main``: ``legacy``) measured in the
same run, failures/flags, and the median and
maximum ATE as % of the path extent (rotation-only paths: RPE rotation).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.config.suites import load_suite
from benchmark.sfm.poses import PoseRecoveryConfig
from benchmark.stages.calibration import evaluate, render_clip

QUICK = {"scenes": ["room00", "hard00"], "cameras": ["orbit_left_15deg", "dolly_in_30pct"],
         "settings": [(14, 448, 256)]}
FULL = {"scenes": ["room00", "room01", "hard00", "hard01"],
        "cameras": ["orbit_left_15deg", "dolly_in_30pct", "truck_right_20pct",
                    "orbit_up_10deg", "pan_left_15deg"],
        "settings": [(14, 448, 256), (25, 1024, 576)]}


def variants(which: str) -> dict[str, PoseRecoveryConfig]:
    """``main``: legacy, the incremental protocol of 2026-12-03, the global one of 2026-12-04
    and today's protocol;
    ``all``: every candidate too; else labels separated by ";" (the first is the one ratios
    are taken to). ``incremental, ...`` are the candidates the incremental
    protocol was chosen from (docs/protocol.md's tables of 2026-12-03 call them
    ``protocol, ...``)."""
    inc = PoseRecoveryConfig.incremental
    out = {"legacy": PoseRecoveryConfig.legacy(), "incremental": inc(),
           "global of 2026-12-04": PoseRecoveryConfig(num_trials=2, verification_trials=False),
           "protocol": PoseRecoveryConfig()}
    if which != "main":
        out.update({
            "protocol, every track": PoseRecoveryConfig(global_tracks_per_view=0),
            "protocol, native-size SIFT": PoseRecoveryConfig(max_image_size=0),
            "protocol, 2048 features": PoseRecoveryConfig(max_num_features=2048),
            "protocol, 1 trial": PoseRecoveryConfig(num_trials=1),
            "incremental, 2x upsampled SIFT": inc(upsample_below=10_000),
            "incremental, 8192 features": inc(max_num_features=8192),
            "incremental, 2048 features": inc(max_num_features=2048),
            "incremental, exhaustive": inc(matcher="exhaustive"),
            "incremental, global BA x1.4": inc(ba_global_ratio=1.4),
            "default-then-relaxed x3": inc(init_rules="default-then-relaxed", num_trials=3),
            "relaxed rules x2": inc(init_rules="relaxed", num_trials=2),
            "incremental, 1 trial": inc(num_trials=1),
            "incremental, SIFT at 768 px": inc(max_image_size=768),
            "incremental, SIFT at 640 px": inc(max_image_size=640),
            "incremental, 2048 features, BA x1.4": inc(max_num_features=2048,
                                                       ba_global_ratio=1.4),
            "incremental, SIFT at 640 px, BA x1.4": inc(max_image_size=640,
                                                        ba_global_ratio=1.4),
        })
    if which in ("main", "all"):
        return out
    labels = [label.strip() for label in which.split(";")]
    unknown = [label for label in labels if label not in out]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {sorted(out)}")
    return {label: out[label] for label in labels}


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    ates = [r["ate_pct"] for r in rows if r["ate_pct"] is not None]
    rots = [r["rpe_rot_deg"] for r in rows if r["ate_pct"] is None and r["rpe_rot_deg"]
            is not None]
    stage = {k: sum(r.get(f"{k}_s", 0.0) or 0.0 for r in rows) / n
             for k in ("extraction", "matching", "verification", "mapping", "rotation")}
    stage["matching"] += stage.pop("verification")  # trials' re-verification: matching work
    return {
        "cpu": sum(r["cpu_s"] for r in rows) / n, **stage,
        "failed": sum(r["score_status"] != "ok" for r in rows),
        "flagged": sum(r["flagged"] for r in rows), "n": n,
        "ate_med": float(np.median(ates)) if ates else float("nan"),
        "ate_max": max(ates) if ates else float("nan"),
        "rot_max": max(rots) if rots else float("nan"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 scenes, 2 paths, 448x256x14")
    parser.add_argument("--variants", default="main",
                        help='main, all, or variant labels separated by ";"')
    parser.add_argument("--scenes", help="comma-separated calibration-suite scene names")
    parser.add_argument("--cameras", help="comma-separated camera paths")
    parser.add_argument("--settings", help="e.g. 448x256x14,1024x576x25")
    parser.add_argument("--cache", type=Path, help="folder for the rendered clips (reused)")
    parser.add_argument("--per-clip", action="store_true",
                        help="also print each clip's ATE, verdict and CPU seconds")
    args = parser.parse_args(argv)
    plan = dict(QUICK if args.quick else FULL)
    if args.scenes:
        plan["scenes"] = args.scenes.split(",")
    if args.cameras:
        plan["cameras"] = args.cameras.split(",")
    if args.settings:
        plan["settings"] = [(int(f), int(w), int(h)) for w, h, f in
                            (s.split("x") for s in args.settings.split(","))]
    entries = {e["name"]: e for e in load_suite("calibration").data["scenes"]}
    configs = variants(args.variants)
    print(f"{'setting':12s} {'variant':26s} {'CPU s':>6s} {'extract':>7s} {'match':>6s} "
          f"{'map':>6s} {'x first':>8s} {'failed':>6s} {'flagged':>7s} {'ATE% med':>8s} "
          f"{'ATE% max':>8s} {'rot max':>7s}")
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or Path(tmp) / "clips"
        for frames, width, height in plan["settings"]:
            clips = [render_clip(entries[s], c, frames, width, height, cache)
                     for s in plan["scenes"] for c in plan["cameras"]]
            results: dict[str, dict[str, Any]] = {}
            for label, conf in configs.items():
                rows = [evaluate(clip, conf, Path(tmp) / "work") for clip in clips]
                if args.per_clip:
                    for r in rows:
                        ate = "n/a" if r["ate_pct"] is None else f"{r['ate_pct']:.3f}%"
                        print(f"    {label:26s} {r['scene']:8s} {r['camera']:34s} ATE {ate:>8s}"
                              f" flagged {int(r['flagged'])} {r['score_status']:6s}"
                              f" cpu {r['cpu_s']:6.2f} s", flush=True)
                results[label] = s = _summary(rows)
                ratio = s["cpu"] / next(iter(results.values()))["cpu"]
                print(f"{width}x{height}x{frames:<4d} {label:26s} {s['cpu']:6.2f} "
                      f"{s['extraction']:7.2f} {s['matching']:6.2f} {s['mapping']:6.2f} "
                      f"{ratio:8.2f} {s['failed']:>3d}/{s['n']:<2d} {s['flagged']:>4d}    "
                      f"{s['ate_med']:8.3f} {s['ate_max']:8.3f} {s['rot_max']:7.4f}",
                      flush=True)


if __name__ == "__main__":
    main()
