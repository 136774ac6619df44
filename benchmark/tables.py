"""Paper-style tables (Markdown, LaTeX, CSV) from the per-method summary.

Layout of the paper's Table 1 (image camera control): one block per frame count, one row per
method, columns ATE, RPE trans, RPE rot (deg), FID, plus what the paper does not show and a
reader needs: how many runs failed pose recovery, and fidelity to the ground-truth render where
there is one. Table 2 (video camera control) has the same columns without the frame-count
block when a suite has one frame count.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from benchmark.io import atomic_write_text

#: Table 1's columns (ATE, RPE trans, RPE rot, FID) then what a reader also needs.
COLUMNS = {
    "ate": ("ATE", 4),
    "rpe_trans": ("RPE trans", 4),
    "rpe_rot_deg": ("RPE rot", 4),
    "fid": ("FID", 1),
    "psnr": ("PSNR (dB)", 2),
    "ssim": ("SSIM", 3),
}


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _cell(mean: float | None, lo: float | None, hi: float | None, digits: int) -> str:
    """``mean [lo, hi]``; ``-`` where the metric has no value (e.g. FID not computed)."""
    if _missing(mean):
        return "-"
    if _missing(lo) or _missing(hi):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def paper_table(summary: pd.DataFrame, table: str = "table1") -> pd.DataFrame:
    """Table 1 layout: setting | method | ATE | RPE trans | RPE rot | FID, then the failure
    count and fidelity columns; ``table2`` drops the setting when there is one frame count."""
    rows = []
    with_setting = table == "table1" or summary["num_frames"].nunique() > 1
    for _, row in summary.iterrows():
        out = {"setting": f"{int(row['num_frames'])} frames"} if with_setting else {}
        out["method"] = row["method"]
        for key, (label, digits) in COLUMNS.items():
            out[label] = _cell(row.get(key), row.get(f"{key}_lo"), row.get(f"{key}_hi"), digits)
            if key == "fid":
                out["failed"] = f"{int(row['failed'])}/{int(row['runs'])}"
        rows.append(out)
    return pd.DataFrame(rows)


FOOTNOTE = (
    "Pose errors: COLMAP on the generated frames with the method's intrinsics (fixed), evo "
    "Sim(3) Umeyama alignment with scale; ATE = RMSE of camera-centre error, RPE over "
    "consecutive frames (RMSE; rotation in degrees); translations in units of the scene's "
    "median depth. Mean [95% bootstrap CI] over runs whose poses registered for >= 80% of "
    "frames; 'failed' counts the other runs (generation, COLMAP or alignment failures), which "
    "are excluded from the means. Pure-rotation paths have no ATE. FID: one value per method "
    "and frame count over all its generated frames (no CI); '-' where it was not computed. "
    "PSNR/SSIM: frames 1.. against the exact render of the path (synthetic suites only)."
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
) -> list[Path]:
    """Write {table_name}.md/.tex/.csv (``table1``: image task, ``table2``: video task) and
    summary.csv; ``fid_note`` (:func:`benchmark.fid.fid_footnote`) joins the footnote.
    Returns their paths."""
    out = Path(out_dir)
    table = paper_table(summary, table_name)
    note = FOOTNOTE + (VIDEO_FOOTNOTE if table_name == "table2" else "")
    note += f" {fid_note}" if fid_note else " FID was not run for this table."
    md = f"# {title}\n\n{table.to_markdown(index=False)}\n\n{note}\n"
    tex = table.to_latex(index=False, caption=f"{title}. {note}", label=f"tab:{table_name}")
    paths = [out / f"{table_name}.{ext}" for ext in ("md", "tex", "csv")]
    paths.append(out / "summary.csv")
    atomic_write_text(paths[0], md)
    atomic_write_text(paths[1], tex)
    atomic_write_text(paths[2], table.to_csv(index=False))
    atomic_write_text(paths[3], summary.to_csv(index=False))
    return paths
