"""Aggregate a suite's runs into metrics.csv, paper-style tables and plots."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.cameras import CameraFileError, load_camera_path
from benchmark.io import atomic_write_text
from benchmark.reporting.aggregate import collect, summarise
from benchmark.reporting.plots import plot_metric_bars, plot_trajectories
from benchmark.reporting.tables import write_tables
from benchmark.sfm.poses import load_poses
from benchmark.stages.calibration import floor_footnote
from benchmark.stages.fid import fid_footnote


def load_fid_rows(path: Path) -> list[dict]:
    """Rows of ``trajbench fid`` (empty when FID was not run); NaN cells become None."""
    if not path.exists():
        return []
    table = pd.read_csv(path)
    return [{k: (None if pd.isna(v) else v) for k, v in row.items()}
            for row in table.to_dict("records")]


def merge_fid(summary: pd.DataFrame, rows: list[dict]) -> pd.DataFrame:
    """Suite-level FID/KID into the per-(frames, method) summary (one value: no CI)."""
    out = summary.copy()
    by_key = {(int(r["num_frames"]), r["method"]): r for r in rows}
    for metric in ("fid", "kid"):
        values = [by_key.get((int(f), m), {}).get(metric)
                  for f, m in zip(out["num_frames"], out["method"], strict=True)]
        out[metric] = pd.Series(values, index=out.index, dtype="float64")
        out[f"{metric}_lo"] = out[f"{metric}_hi"] = float("nan")
    return out


def _floor_note(root: Path, runs: pd.DataFrame) -> str:
    """The calibration floor at the suite's resolution, for synthetic suites (scenes with a
    generator spec); '' otherwise or when a camera file cannot be read."""
    if not any((root / "scenes").glob("*/scene.json")):
        return ""
    first = next(iter(sorted((root / "cameras").glob("f*/*/*.json"))), None)
    if first is None:
        return ""
    try:
        cam = load_camera_path(first)
    except (CameraFileError, OSError):
        return ""
    return floor_footnote(cam.width, cam.height, [int(f) for f in runs["num_frames"].unique()])


def _trajectory_plots(
    root: Path, runs: pd.DataFrame, folder: Path
) -> Iterator[tuple[np.ndarray, dict[str, Any], Path, str]]:
    """(ground-truth w2c, {method: estimated w2c}, path, title) of each clip's trajectory plot
    (first seed); clips whose camera file cannot be read have no ground truth and no plot."""
    first_seed = runs["seed"].min()
    for (frames, scene, camera), group in runs[runs["seed"] == first_seed].groupby(
        ["num_frames", "scene", "camera"]
    ):
        try:
            cam = load_camera_path(root / "cameras" / f"f{frames}" / scene / f"{camera}.json")
        except CameraFileError:  # no ground truth (its runs are recorded failed): no plot
            continue
        estimates = {}
        for method in sorted(group["method"]):
            run = root / method / f"f{frames}" / f"{scene}__{camera}" / f"seed{first_seed}"
            poses = load_poses(run / "poses.json")
            if poses.num_frames == cam.num_frames:
                estimates[method] = poses.w2c
        yield (cam.w2c, estimates, folder / f"f{frames}" / f"{scene}__{camera}.png",
               f"{scene} / {camera} / {frames} frames")


def _plot_job(job: tuple[np.ndarray, dict[str, Any], Path, str]) -> Path:
    gt_w2c, estimates, path, title = job
    return plot_trajectories(gt_w2c, estimates, path, title=title)


def aggregate_suite(
    results_dir: str | Path,
    out_dir: str | Path,
    title: str,
    metric_files: list[Path] | None = None,
    table_name: str = "table1",
    workers: int = 1,
) -> pd.DataFrame:
    """Write ``metrics.csv``, ``tables/`` and ``plots/`` under ``out_dir``; returns the runs.
    ``table_name``: ``table1`` (image camera control), ``table2`` (video) or ``table_edit``
    (first-frame-guided editing); ``workers``: processes drawing the trajectory plots."""
    root, out = Path(results_dir), Path(out_dir)
    runs = collect(root, metric_files)
    if runs.empty:
        raise ValueError(f"no metrics.json under {root}")
    atomic_write_text(out / "metrics.csv", runs.to_csv(index=False))
    summary = summarise(runs)
    fid_rows = load_fid_rows(root / "fid.csv")
    summary = merge_fid(summary, fid_rows)
    write_tables(summary, out / "tables", title, table_name, fid_footnote(fid_rows),
                 floor_note=_floor_note(root, runs))
    plotted = ["ate", "rpe_trans", "rpe_rot_deg"]
    if table_name == "table_edit":  # editing: the track scores are the point, poses are extra
        plotted = ["track_epe", "edit_persistence", *plotted]
    jobs = list(_trajectory_plots(root, runs, out / "plots" / "trajectories"))
    if workers > 1 and len(jobs) > 1:
        # one figure per clip, 1-2 s of matplotlib each (230 clips: minutes), drawn by a pool
        # while this process draws the bars; each figure is drawn alone, so the files do not
        # depend on the worker count
        with ProcessPoolExecutor(max_workers=workers) as pool:
            drawn = pool.map(_plot_job, jobs)
            plot_metric_bars(summary, plotted, out / "plots" / "errors.png")
            list(drawn)
    else:
        plot_metric_bars(summary, plotted, out / "plots" / "errors.png")
        for job in jobs:
            _plot_job(job)
    return runs
