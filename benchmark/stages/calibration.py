r"""Calibrate pose recovery: its error on exact renders (the instrument's noise floor).

``python -m benchmark.stages.calibration`` renders every scene x camera of the ``calibration`` suite
(both scene families) at each of its settings, poses each clip with each SfM seed, scores it
against the exact cameras and writes one row per (clip, SfM seed) to
``results/calibration/calibration.csv``. ``--write-floor`` then stores the floor per setting
(median and 90th percentile of ATE as % of the path extent, RPE rotation, flagged clips, the
max/min ATE ratio over seeds) in ``configs/calibration/floor.yaml``, which table footnotes
read (:func:`floor_footnote`).

A clip is *flagged* when the protocol marks it: a recorded failure (too few plausible frames,
unstable trials) or frames dropped by the plausibility rules. Rotation-only paths (pan, tilt,
roll) have no extent: they contribute RPE rotation only.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from benchmark.cameras.paths import make_camera_path
from benchmark.config.suites import load_suite
from benchmark.io import atomic_write_text, write_frames
from benchmark.metrics import camera_pose_errors, rotation_only_errors
from benchmark.sfm.poses import PoseRecoveryConfig, RecoveredPoses, recover_poses

ROOT = Path(__file__).resolve().parents[2]
FLOOR_FILE = ROOT / "configs" / "calibration" / "floor.yaml"


@dataclass
class Clip:
    """One exact-render clip: where its frames are, its cameras and path extent."""

    scene: str
    family: str
    camera: str
    num_frames: int
    width: int
    height: int
    K: np.ndarray
    w2c: np.ndarray
    paths: list[Path]

    @property
    def setting(self) -> str:
        return f"{self.width}x{self.height}x{self.num_frames}"

    @property
    def extent(self) -> float:
        c = np.array([-p[:3, :3].T @ p[:3, 3] for p in self.w2c])
        return float(np.linalg.norm(c[:, None] - c[None], axis=-1).max())


def build_scene(entry: dict[str, Any]) -> Any:
    """The synthetic scene of a suite entry (either family)."""
    # the renderer needs torch: imported here so that reading the floor (tables) stays light
    from benchmark.sources.synthetic_hard import make_family_scene

    return make_family_scene({"family": entry.get("family", "rooms"), "seed": entry["seed"],
                              **entry.get("spec", {})})


def render_clip(
    entry: dict[str, Any], camera: str, num_frames: int, width: int, height: int,
    cache: Path, scene: Any = None,
) -> Clip:
    """Render (or reuse from ``cache``) the exact clip of ``camera`` in the scene ``entry``."""
    # the renderer needs torch: imported here so that reading the floor (tables) stays light
    from benchmark.sources.synthetic import canonical_K, render, render_frames

    K = canonical_K(width, height)
    folder = cache / f"{entry['name']}__{camera}__{width}x{height}x{num_frames}"
    cams_file = folder / "w2c.npy"
    if cams_file.exists():
        w2c = np.load(cams_file)
        paths = sorted((folder / "frames").glob("*.png"))
    else:
        scene = scene if scene is not None else build_scene(entry)
        _, depth = render(scene, K, scene.base_w2c, width, height)
        cam = make_camera_path(camera, K, width, height, num_frames,
                               depth=float(np.median(depth[np.isfinite(depth)])),
                               base_w2c=scene.base_w2c)
        frames, _ = render_frames(scene, K, cam.w2c, width, height)
        paths = write_frames(folder / "frames", frames)
        w2c = cam.w2c
        np.save(cams_file, w2c)
    return Clip(entry["name"], entry.get("family", "rooms"), camera, num_frames, width,
                height, K, np.asarray(w2c), list(paths))


def evaluate(clip: Clip, conf: PoseRecoveryConfig, work: Path) -> dict[str, Any]:
    """Pose ``clip`` with ``conf`` and score it; CPU seconds per stage included."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = recover_poses(clip.paths, clip.K, work, conf)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return score_clip(clip, result) | {
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        **{f"{k}_s": round(v, 3) for k, v in result.timings.items()},
    }


def score_clip(clip: Clip, result: RecoveredPoses) -> dict[str, Any]:
    """ATE (% of extent), RPE rotation and the protocol's verdict of one posed clip."""
    row: dict[str, Any] = {
        "scene": clip.scene, "family": clip.family, "camera": clip.camera,
        "setting": clip.setting, "status": result.status, "kind": result.kind,
        "init_rules": result.init_rules, "registered": result.num_registered,
        "dropped": len(result.dropped), "unstable": result.unstable,
        "reason": result.reason[:300],
    }
    if result.status != "ok":
        errors = None
    elif result.kind == "rotation_only":
        errors = rotation_only_errors(clip.w2c, result.w2c)
    else:
        errors = camera_pose_errors(clip.w2c, result.w2c)
    extent = clip.extent
    ate = errors.ate if errors is not None else None
    row["ate_pct"] = (100 * ate / extent) if ate is not None and extent > 1e-9 else None
    row["rpe_rot_deg"] = errors.rpe_rot_deg if errors is not None else None
    row["score_status"] = errors.status if errors is not None else "failed"
    row["flagged"] = bool(result.status != "ok" or result.dropped or result.unstable
                          or row["score_status"] != "ok")
    return row


def run(
    suite_name: str, settings: list[tuple[int, int, int]], sfm_seeds: list[int],
    scenes: list[str] | None, cameras: list[str] | None, out: Path,
    conf: PoseRecoveryConfig,
) -> list[dict[str, Any]]:
    """Every clip x SfM seed of the suite (optionally a subset); rows also go to the CSV."""
    suite = load_suite(suite_name)
    entries = [e for e in suite.data["scenes"] if scenes is None or e["name"] in scenes]
    cams = [c for c in suite.data["cameras"] if cameras is None or c in cameras]
    rows: list[dict[str, Any]] = []
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "calibration.csv"
    for entry in entries:
        scene = None
        for num_frames, width, height in settings:
            for camera in cams:
                cache = out / "clips"
                folder = cache / f"{entry['name']}__{camera}__{width}x{height}x{num_frames}"
                if scene is None and not (folder / "w2c.npy").exists():
                    scene = build_scene(entry)
                clip = render_clip(entry, camera, num_frames, width, height, cache, scene)
                for seed in sfm_seeds:
                    conf_s = PoseRecoveryConfig(**{**conf.__dict__, "seed": seed})
                    row = evaluate(clip, conf_s, out / "work") | {"sfm_seed": seed}
                    rows.append(row)
                    print(_fmt(row), flush=True)
                    _append_csv(csv_path, row)
    return rows


def _fmt(row: dict[str, Any]) -> str:
    ate = "-" if row["ate_pct"] is None else f"{row['ate_pct']:.3f}%"
    rot = "-" if row["rpe_rot_deg"] is None else f"{row['rpe_rot_deg']:.4f}"
    return (f"{row['setting']:>12s} {row['scene']:8s} {row['camera']:32s} seed {row['sfm_seed']} "
            f"{row['status']:6s} {row['kind']:13s} ATE {ate:>8s} RPErot {rot:>7s} "
            f"flag {int(row['flagged'])} cpu {row['cpu_s']:.1f}s")


_FIELDS = ["setting", "scene", "family", "camera", "sfm_seed", "status", "kind", "init_rules",
           "registered", "dropped", "unstable", "flagged", "score_status", "ate_pct",
           "rpe_rot_deg", "cpu_s", "wall_s", "extraction_s", "matching_s", "verification_s",
           "mapping_s", "rotation_s", "reason"]


def _append_csv(path: Path, row: dict[str, Any]) -> None:
    """Append ``row``; a CSV with other columns (an older version's) is refused, never
    appended to under the wrong header."""
    new = not path.exists() or path.stat().st_size == 0
    if not new:
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
        if header != _FIELDS:
            raise ValueError(
                f"{path}: its columns are not this version's ({len(header)} vs "
                f"{len(_FIELDS)}; missing {sorted(set(_FIELDS) - set(header))}); write to "
                "another --out folder or move the file away")
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=_FIELDS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a calibration CSV with numbers parsed."""
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            out: dict[str, Any] = dict(r)
            for k in ("ate_pct", "rpe_rot_deg", "cpu_s"):
                out[k] = float(r[k]) if r.get(k) not in (None, "") else None
            out["flagged"] = r.get("flagged") == "True"
            rows.append(out)
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per setting: clips, runs, flagged runs, ATE % of extent (median, p90, max over
    unflagged runs), RPE rot (median, p90 over scored runs), worst per-clip max/min ATE over
    SfM seeds, median CPU seconds per clip."""
    out: dict[str, dict[str, Any]] = {}
    for setting in sorted({r["setting"] for r in rows}):
        sel = [r for r in rows if r["setting"] == setting]
        ates = [r["ate_pct"] for r in sel if r["ate_pct"] is not None and not r["flagged"]]
        rots = [r["rpe_rot_deg"] for r in sel if r["rpe_rot_deg"] is not None]
        by_clip: dict[tuple[str, str], list[float]] = {}
        for r in sel:
            if r["ate_pct"] is not None and not r["flagged"]:
                by_clip.setdefault((r["scene"], r["camera"]), []).append(r["ate_pct"])
        ratios = [max(v) / max(min(v), 1e-12) for v in by_clip.values() if len(v) > 1]
        out[setting] = {
            "clips": len({(r["scene"], r["camera"]) for r in sel}),
            "runs": len(sel),
            "flagged": sum(r["flagged"] for r in sel),
            "ate_pct_median": _q(ates, 50),
            "ate_pct_p90": _q(ates, 90),
            "ate_pct_max": max(ates) if ates else None,
            "rpe_rot_deg_median": _q(rots, 50),
            "rpe_rot_deg_p90": _q(rots, 90),
            "seed_ratio_max": round(max(ratios), 3) if ratios else None,
            "cpu_s_median": _q([r["cpu_s"] for r in sel if r["cpu_s"] is not None], 50),
        }
    return out


def _q(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 5) if values else None


def write_floor(summary: dict[str, dict[str, Any]], command: str, path: Path = FLOOR_FILE,
                conf: PoseRecoveryConfig | None = None) -> None:
    """Store the measured floor as data (tables read it)."""
    conf = conf or PoseRecoveryConfig()
    data = {
        "command": command,
        "measured": datetime.date.today().isoformat(),
        "protocol": {k: v for k, v in conf.__dict__.items() if k != "seed"},
        "settings": summary,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "# Written by benchmark.stages.calibration --write-floor; do not "
                      "edit.\n" + yaml.safe_dump(data, sort_keys=False))


def load_floor(path: Path = FLOOR_FILE) -> dict[str, Any] | None:
    """The stored floor, or None when it has not been measured."""
    if not path.exists():
        return None
    data = yaml.safe_load(path.read_text())
    return data if isinstance(data, dict) and isinstance(data.get("settings"), dict) else None


def floor_footnote(width: int, height: int, frame_counts: list[int],
                   path: Path = FLOOR_FILE) -> str:
    """' Pose-recovery floor ...' for a table at this resolution: per frame count, the
    calibration setting with the nearest pixel count and the same frame count (else the
    nearest), its median / p90 ATE (% of path extent) and RPE rot. '' when not measured."""
    floor = load_floor(path)
    if floor is None:
        return ""
    parts = []
    for frames in sorted(set(frame_counts)):
        best = None
        for name, stats in floor["settings"].items():
            w, h, f = (int(v) for v in name.split("x"))
            key = (f != frames, abs(math.log((w * h) / (width * height))))
            if best is None or key < best[0]:
                best = (key, name, stats)
        if best is None:
            continue
        _, name, s = best
        parts.append(
            f"{frames} frames: ATE median {_pct(s['ate_pct_median'])} / p90 "
            f"{_pct(s['ate_pct_p90'])} of the path extent, RPE rot median "
            f"{_deg(s['rpe_rot_deg_median'])} / p90 {_deg(s['rpe_rot_deg_p90'])} "
            f"(calibration at {name}, {s['flagged']}/{s['runs']} runs flagged)"
        )
    if not parts:
        return ""
    return (" Instrument floor (pose recovery on exact renders, docs/protocol.md): "
            + "; ".join(parts) + ". Differences below it are not resolved.")


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}%"


def _deg(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f} deg"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default="calibration")
    parser.add_argument("--settings", help="e.g. 448x256x14,1024x576x25 (default: the suite's)")
    parser.add_argument("--sfm-seeds", help="e.g. 0,1,2 (default: the suite's)")
    parser.add_argument("--scenes", help="comma-separated subset of scene names")
    parser.add_argument("--cameras", help="comma-separated subset of camera names")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "calibration")
    parser.add_argument("--legacy", action="store_true", help="the pre-issue-13 protocol")
    parser.add_argument("--write-floor", action="store_true",
                        help=f"summarise out/calibration.csv into {FLOOR_FILE.relative_to(ROOT)}")
    parser.add_argument("--summary-only", action="store_true", help="no new runs")
    args = parser.parse_args(argv)
    cal = load_suite(args.suite).data.get("calibration", {})
    settings = [tuple(int(v) for v in s) for s in cal.get("settings", [])]
    if args.settings:
        settings = []
        for s in args.settings.split(","):
            w, h, f = (int(v) for v in s.split("x"))
            settings.append((f, w, h))
    seeds = cal.get("sfm_seeds", [0])
    if args.sfm_seeds:
        seeds = [int(v) for v in args.sfm_seeds.split(",")]
    conf = PoseRecoveryConfig.legacy() if args.legacy else PoseRecoveryConfig()
    if not args.summary_only:
        run(args.suite, settings, seeds, args.scenes.split(",") if args.scenes else None,
            args.cameras.split(",") if args.cameras else None, args.out, conf)
    rows = read_rows(args.out / "calibration.csv")
    summary = summarise(rows)
    print(yaml.safe_dump(summary, sort_keys=False))
    if args.write_floor:
        write_floor(summary, "python -m benchmark.stages.calibration " + " ".join(sys.argv[1:]),
                    conf=conf)


if __name__ == "__main__":
    main()
