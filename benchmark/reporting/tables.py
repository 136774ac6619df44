"""Paper-style tables (Markdown, LaTeX, CSV) from the per-method summary.

Layout of the paper's Table 1 (image camera control): one block per frame count, one row per
method, columns ATE, RPE trans, RPE rot (deg), FID, plus what the paper does not show and a
reader needs: how many runs failed pose recovery, and fidelity to the ground-truth render where
there is one. Table 2 (video camera control) has the same columns without the frame-count
block when a suite has one frame count. Both gain a ``traj EPE`` column (not a paper column)
when some method saved its conditioning trajectories. ``table_edit`` (first-frame-guided
editing, paper Sec. 5.4, which reports no numbers): track EPE against the original video, edit
persistence, PSNR/SSIM against the exact edited video, and generation failures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from benchmark.io import atomic_write_text
from benchmark.metrics.specs import METRIC_SPECS


def _columns(*keys: str) -> dict[str, tuple[str, int]]:
    """Metric key -> (column header, decimals) from the registry, in the given order."""
    return {key: (METRIC_SPECS[key].column, METRIC_SPECS[key].digits) for key in keys}


#: Table 1's columns (ATE, RPE trans, RPE rot, FID) then what a reader also needs; headers and
#: decimals come from the metric registry (:data:`benchmark.metrics.specs.METRIC_SPECS`).
COLUMNS = _columns("ate", "rpe_trans", "rpe_rot_deg", "fid", "psnr", "ssim")


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _cell(mean: float | None, lo: float | None, hi: float | None, digits: int) -> str:
    """``mean [lo, hi]``; ``-`` where the metric has no value (e.g. FID not computed)."""
    if _missing(mean):
        return "-"
    if _missing(lo) or _missing(hi):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


#: Extra columns (issue 8 item 6), shown only where some run has them.
TRAJ_COLUMNS = _columns("traj_epe", "traj_epe_fraction")

#: ``table_edit``: first-frame-guided editing.
EDIT_COLUMNS = _columns("track_epe", "track_epe_fraction", "edit_persistence", "psnr", "ssim")


#: Fractions shown as percentages.
PERCENT = frozenset(key for key, spec in METRIC_SPECS.items() if spec.percent)


def _value_cell(row: pd.Series, key: str, digits: int) -> str:
    """The table cell of metric ``key`` in a summary row (percent for :data:`PERCENT`)."""
    values = [row.get(key), row.get(f"{key}_lo"), row.get(f"{key}_hi")]
    if key in PERCENT:
        values = [None if _missing(v) else 100 * v for v in values]
    return _cell(*values, digits)


def _present(summary: pd.DataFrame, key: str) -> bool:
    return key in summary and pd.to_numeric(summary[key], errors="coerce").notna().any()


def paper_table(summary: pd.DataFrame, table: str = "table1") -> pd.DataFrame:
    """Table 1 layout: setting | method | ATE | RPE trans | RPE rot | FID, then the failure
    count and fidelity columns (and traj EPE where present); ``table2`` drops the setting when
    there is one frame count; ``table_edit``: :func:`edit_table`."""
    if table == "table_edit":
        return edit_table(summary)
    with_setting = table == "table1" or summary["num_frames"].nunique() > 1
    return _table_rows(summary, COLUMNS, with_setting, failed_after="fid",
                       failed=lambda row: row["failed"])


def edit_table(summary: pd.DataFrame) -> pd.DataFrame:
    """setting (several frame counts only) | method | track EPE | edit persistence | PSNR |
    SSIM (| traj EPE where present) | failed (generation failures / runs)."""

    def generation_failures(row: pd.Series) -> object:
        failed = row.get("gen_failed")
        return row["failed"] if _missing(failed) else failed

    with_setting = summary["num_frames"].nunique() > 1
    return _table_rows(summary, EDIT_COLUMNS, with_setting, failed_after=None,
                       failed=generation_failures)


def _table_rows(
    summary: pd.DataFrame,
    base_columns: dict[str, tuple[str, int]],
    with_setting: bool,
    failed_after: str | None,
    failed: Callable[[pd.Series], object],
) -> pd.DataFrame:
    """One row per summary row: the setting (optional), the method, each column's cell (plus
    traj EPE where any run has it) and ``failed/runs`` after ``failed_after`` (None: last)."""
    columns = dict(base_columns)
    if _present(summary, "traj_epe_fraction"):
        columns.update(TRAJ_COLUMNS)
    rows = []
    for _, row in summary.iterrows():
        out = {"setting": f"{int(row['num_frames'])} frames"} if with_setting else {}
        out["method"] = row["method"]
        count = f"{int(failed(row))}/{int(row['runs'])}"
        for key, (label, digits) in columns.items():
            out[label] = _value_cell(row, key, digits)
            if key == failed_after:
                out["failed"] = count
        out.setdefault("failed", count)
        rows.append(out)
    return pd.DataFrame(rows)


FOOTNOTE = (
    "Pose errors: COLMAP on the generated frames with the method's intrinsics (fixed), evo "
    "Sim(3) Umeyama alignment with scale; ATE = RMSE of camera-centre error, RPE over "
    "consecutive frames (RMSE; rotation in degrees); translations in units of the scene's "
    "median depth. Mean [95% bootstrap CI] over runs whose poses registered for >= 80% of "
    "frames; 'failed' counts the other runs (generation, COLMAP or alignment failures), which "
    "are excluded from the means. Pure-rotation paths have no ATE (their rotations come from "
    "homographies when SfM finds no model). FID: one value per method "
    "and frame count over all its generated frames (no CI); '-' where it was not computed. "
    "PSNR/SSIM: frames 1.. against the exact render of the path (synthetic suites only)."
)


TRAJ_EPE_FOOTNOTE = (
    " traj EPE (not a paper metric): the generated frames tracked (weight-free DIS tracker) "
    "from the frame-0 points of the trajectories the method was conditioned on (a subsampled "
    "grid, stride 8 px by default); median px distance to them over points valid in both, "
    "frames 1 onwards, mean over runs; 'traj tracked': the percentage of conditioning-valid "
    "points the tracker kept (frames it cannot track, e.g. noise, leave none: EPE '-')."
)

EDIT_FOOTNOTE = (
    "First-frame-guided editing: each method gets the edited first frame and the original "
    "video (with its depth and cameras) and must keep the video's motion. track EPE: the "
    "output and the original video tracked (weight-free DIS tracker) from the same stride-8 "
    "frame-0 grid of the output; median px distance over points visible in both, frames 1 "
    "onwards; 'tracked': the percentage of the original video's visible points also tracked in "
    "the output. edit persistence: mean absolute RGB difference (0-255) between the output "
    "sampled along the original video's tracks and the edited first frame at the tracks' "
    "start, both blurred (sigma 2 px), frames 1 onwards. PSNR/SSIM: frames 1 onwards "
    "against the exact edited video (the edited synthetic scene "
    "rendered along the original path). Mean [95% bootstrap CI] over generated runs; "
    "'failed' counts runs whose generation failed. Lower is better for EPE and persistence."
)

VIDEO_FOOTNOTE = (
    " Video camera control: each clip re-shoots an input video; the ground-truth cameras are "
    "the requested offsets applied to the input video's own cameras frame by frame."
)


def write_tables(
    summary: pd.DataFrame,
    out_dir: str | Path,
    title: str,
    table_name: str = "table1",
    fid_note: str = "",
    floor_note: str = "",
) -> list[Path]:
    """Write {table_name}.md/.tex/.csv (``table1``: image task, ``table2``: video task,
    ``table_edit``: editing) and summary.csv; ``fid_note``
    (:func:`benchmark.stages.fid.fid_footnote`) and ``floor_note`` (the pose-recovery floor,
    :func:`benchmark.stages.calibration.floor_footnote`) join the footnote. Returns their paths."""
    out = Path(out_dir)
    table = paper_table(summary, table_name)
    if table_name == "table_edit":
        note = EDIT_FOOTNOTE
    else:
        note = FOOTNOTE + (VIDEO_FOOTNOTE if table_name == "table2" else "")
        note += f" {fid_note}" if fid_note else " FID was not run for this table."
        note += floor_note  # benchmark.stages.calibration.floor_footnote (synthetic suites)
    if _present(summary, "traj_epe_fraction"):
        note += TRAJ_EPE_FOOTNOTE
    md = f"# {title}\n\n{table.to_markdown(index=False)}\n\n{note}\n"
    tex = table.to_latex(index=False, caption=f"{title}. {note}", label=f"tab:{table_name}")
    paths = [out / f"{table_name}.{ext}" for ext in ("md", "tex", "csv")]
    paths.append(out / "summary.csv")
    atomic_write_text(paths[0], md)
    atomic_write_text(paths[1], tex)
    atomic_write_text(paths[2], table.to_csv(index=False))
    atomic_write_text(paths[3], summary.to_csv(index=False))
    return paths
