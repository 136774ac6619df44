"""Aggregation: every run's metrics.json -> one tidy table (pandas) -> per-method summaries.

Failures are part of the result: each summary row counts runs, failures and the failure
rate, and the error means are over the runs that succeeded (with a seeded 95% percentile
bootstrap confidence interval), so a method cannot look good by failing on hard clips.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

#: Metric columns, each with whether higher is better (for tables and plots).
METRICS: dict[str, bool] = {
    "ate": False,
    "rpe_trans": False,
    "rpe_rot_deg": False,
    "rot_err": False,
    "trans_err": False,
    "cam_mc": False,
    "fid": False,
    "psnr": True,
    "ssim": True,
    # point-track scores (benchmark.track_metrics), px or 0-255 colour difference
    "traj_epe": False,
    "traj_epe_fraction": True,  # of the conditioning-valid points, those the tracker kept
    "track_epe": False,
    "track_epe_fraction": True,
    "edit_persistence": False,
    "edit_persistence_region": False,
}

#: Metrics of the generated frames themselves: averaged over every run that has them (they
#: need no recovered poses), unlike the pose errors (over runs whose poses registered).
FRAME_METRICS = frozenset(
    {"psnr", "ssim", "fid", "traj_epe", "traj_epe_fraction", "track_epe", "track_epe_fraction",
     "edit_persistence", "edit_persistence_region"}
)


def collect(results_dir: str | Path, metric_files: list[str | Path] | None = None) -> pd.DataFrame:
    """One row per run from ``{method}/f{F}/{scene}__{camera}/seed{k}/metrics.json``."""
    root = Path(results_dir)
    files = [Path(f) for f in metric_files] if metric_files else sorted(
        root.glob("*/f*/*__*/seed*/metrics.json")
    )
    rows = []
    for file in files:
        seed_dir = file.parent
        combo_dir = seed_dir.parent
        scene, camera = combo_dir.name.split("__", 1)
        data = json.loads(file.read_text())
        rows.append(
            {
                "method": combo_dir.parent.parent.name,
                "num_frames": int(combo_dir.parent.name[1:]),
                "scene": scene,
                "camera": camera,
                "seed": int(seed_dir.name.removeprefix("seed")),
                **{k: v for k, v in data.items() if k not in ("method", "seed", "num_frames")},
            }
        )
    frame = pd.DataFrame(rows)
    for column in METRICS:
        if column not in frame:
            frame[column] = np.nan
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


#: Bootstrap resamples for confidence intervals; seeded so tables are reproducible.
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def _ci95(values: pd.Series) -> tuple[float, float]:
    """95% percentile-bootstrap confidence interval of the mean (NaNs below 2 values)."""
    data = values.dropna().to_numpy(dtype=float)
    if len(data) < 2:
        return float("nan"), float("nan")
    if np.all(data == data[0]):
        return float(data[0]), float(data[0])
    result = stats.bootstrap(
        (data,),
        np.mean,
        confidence_level=0.95,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(BOOTSTRAP_SEED),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def summarise(runs: pd.DataFrame, by: tuple[str, ...] = ("num_frames", "method")) -> pd.DataFrame:
    """Per-group counts, failure rate, and mean with 95% bootstrap CI (``{metric}_lo`` /
    ``{metric}_hi``) of each metric over successful runs (:data:`FRAME_METRICS`: over generated
    runs); ``gen_failed`` counts runs whose generation failed."""
    records = []
    for keys, group in runs.groupby(list(by), sort=True):
        ok = group[group["status"] == "ok"]
        record = dict(zip(by, keys if isinstance(keys, tuple) else (keys,), strict=True))
        record.update(
            runs=len(group),
            failed=int((group["status"] != "ok").sum()),
            failure_rate=float((group["status"] != "ok").mean()),
        )
        if "generation_status" in group:
            record["gen_failed"] = int((group["generation_status"] != "ok").sum())
        for metric in METRICS:
            source = group if metric in FRAME_METRICS else ok
            record[metric] = float(source[metric].mean()) if source[metric].notna().any() else None
            record[f"{metric}_lo"], record[f"{metric}_hi"] = _ci95(source[metric])
        records.append(record)
    return pd.DataFrame(records)
