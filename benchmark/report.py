"""Aggregate a suite's runs into metrics.csv, paper-style tables and plots."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.aggregate import collect, summarise
from benchmark.io import atomic_write_text
from benchmark.plots import plot_metric_bars, plot_trajectories
from benchmark.poses import load_poses
from benchmark.tables import write_tables


def aggregate_suite(
    results_dir: str | Path,
    out_dir: str | Path,
    title: str,
    metric_files: list[Path] | None = None,
    table_name: str = "table1",
) -> pd.DataFrame:
    """Write ``metrics.csv``, ``tables/`` and ``plots/`` under ``out_dir``; returns the runs.
    ``table_name``: ``table1`` (image camera control) or ``table2`` (video)."""
    from benchmark.cameras import load_camera_path

    root, out = Path(results_dir), Path(out_dir)
    runs = collect(root, metric_files)
    if runs.empty:
        raise ValueError(f"no metrics.json under {root}")
    atomic_write_text(out / "metrics.csv", runs.to_csv(index=False))
    summary = summarise(runs)
    write_tables(summary, out / "tables", title, table_name)
    plot_metric_bars(summary, ["ate", "rpe_trans", "rpe_rot_deg"], out / "plots" / "errors.png")
    first_seed = runs["seed"].min()
    for (frames, scene, camera), group in runs[runs["seed"] == first_seed].groupby(
        ["num_frames", "scene", "camera"]
    ):
        cam = load_camera_path(root / "cameras" / f"f{frames}" / scene / f"{camera}.json")
        estimates = {}
        for method in sorted(group["method"]):
            run = root / method / f"f{frames}" / f"{scene}__{camera}" / f"seed{first_seed}"
            poses = load_poses(run / "poses.json")
            if poses.num_frames == cam.num_frames:
                estimates[method] = poses.w2c
        plot_trajectories(
            cam.w2c,
            estimates,
            out / "plots" / "trajectories" / f"f{frames}" / f"{scene}__{camera}.png",
            title=f"{scene} / {camera} / {frames} frames",
        )
    return runs
