"""Paper-style tables (Markdown, LaTeX, CSV) from the per-method summary.

Layout of the paper's Table 1: one block per frame count, one row per method, columns ATE,
RPE trans, RPE rot (deg), plus what the paper does not show and a reader needs: how many runs
failed pose recovery, and fidelity to the ground-truth render where there is one.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from benchmark.io import atomic_write_text

COLUMNS = {
    "ate": "ATE",
    "rpe_trans": "RPE trans",
    "rpe_rot_deg": "RPE rot (deg)",
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
}


def _cell(mean: float | None, ci: float | None, digits: int) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    if ci is None or math.isnan(ci):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {ci:.{digits}f}"


def paper_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Display table: frames | method | failed | ATE | RPE trans | RPE rot | PSNR | SSIM."""
    rows = []
    for _, row in summary.iterrows():
        out = {
            "frames": int(row["num_frames"]),
            "method": row["method"],
            "failed": f"{int(row['failed'])}/{int(row['runs'])}",
        }
        for key, label in COLUMNS.items():
            digits = 2 if key == "psnr" else 4
            out[label] = _cell(row.get(key), row.get(f"{key}_ci95"), digits)
        rows.append(out)
    return pd.DataFrame(rows)


FOOTNOTE = (
    "Pose errors: COLMAP on the generated frames with the method's intrinsics, evo Sim(3) "
    "Umeyama alignment with scale; ATE = RMSE of camera-centre error, RPE over consecutive "
    "frames (RMSE), in units of the scene's median depth. Means ± 95% CI over runs whose poses "
    "registered for >= 80% of frames; 'failed' counts the other runs (generation, COLMAP or "
    "alignment failures) and they are excluded from the means. PSNR/SSIM: frames 1.. against "
    "the exact render of the path (synthetic suites only)."
)


def write_tables(summary: pd.DataFrame, out_dir: str | Path, title: str) -> list[Path]:
    """Write table.md, table.tex and summary.csv; returns their paths."""
    out = Path(out_dir)
    table = paper_table(summary)
    md = f"# {title}\n\n{table.to_markdown(index=False)}\n\n{FOOTNOTE}\n"
    tex = table.to_latex(index=False, caption=f"{title}. {FOOTNOTE}", label="tab:trajbench")
    paths = [out / "table.md", out / "table.tex", out / "summary.csv"]
    atomic_write_text(paths[0], md)
    atomic_write_text(paths[1], tex)
    atomic_write_text(paths[2], summary.to_csv(index=False))
    return paths
