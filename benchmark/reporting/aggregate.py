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

from benchmark.metrics.specs import METRIC_SPECS

#: Metric columns, each with whether higher is better (from the one registry,
#: :data:`benchmark.metrics.specs.METRIC_SPECS`, in its order).
METRICS: dict[str, bool] = {key: spec.higher_is_better for key, spec in METRIC_SPECS.items()}

#: Metrics of the generated frames themselves: averaged over every run that has them (they
#: need no recovered poses), unlike the pose errors (over runs whose poses registered).
FRAME_METRICS = frozenset(key for key, spec in METRIC_SPECS.items() if spec.per_frame)


#: Columns that say which run a row is; read from the run's own metadata, never from its
#: folder names (a scene name may contain the '__' that joins scene and camera there).
IDENTITY = ("method", "num_frames", "scene", "camera", "seed")


def _read_json(file: Path) -> dict:
    try:
        data = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {file}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{file}: expected a JSON object, got {type(data).__name__}")
    return data


def run_identity(metrics_file: str | Path) -> dict:
    """(method, num_frames, scene, camera, seed) of the run whose ``metrics.json`` this is:
    ``run`` of the ``meta.json`` beside it (written by generation), else the metrics' own keys.
    A ValueError names the file when a field is recorded nowhere."""
    file = Path(metrics_file)
    data = _read_json(file)
    meta_file = file.parent / "meta.json"
    recorded = (_read_json(meta_file).get("run") or {}) if meta_file.is_file() else {}
    identity = {key: recorded.get(key, data.get(key)) for key in IDENTITY}
    missing = [key for key, value in identity.items() if value is None]
    if missing:
        raise ValueError(
            f"{file}: the run's {', '.join(missing)} is recorded neither in it nor in "
            f"{meta_file} ('run'); generate the run again to record it"
        )
    return identity


def collect(results_dir: str | Path, metric_files: list[str | Path] | None = None) -> pd.DataFrame:
    """One row per run's ``metrics.json`` (by default every one under ``results_dir``, laid
    out as ``{method}/f{F}/{scene}__{camera}/seed{k}/``); the run's identity comes from its
    metadata (:func:`run_identity`), not from those folder names."""
    root = Path(results_dir)
    files = [Path(f) for f in metric_files] if metric_files else sorted(
        root.glob("*/f*/*__*/seed*/metrics.json")
    )
    rows = []
    for file in files:
        identity = run_identity(file)
        data = _read_json(file)
        rows.append({**identity, **{k: v for k, v in data.items() if k not in IDENTITY}})
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
