r"""The paper's published tables beside our measurements (Markdown, LaTeX, CSV).

The published numbers live as data in ``configs/paper/{table1,table2,table3}.yaml``: one row
per (frame count, paper method) with the trajbench preset that reproduces it. Against a suite's
``tables/summary.csv`` (:func:`benchmark.reporting.aggregate.summarise`) each metric gets three
cells: the paper's value, ours (mean with its 95% bootstrap CI) and ours minus the paper's; plus
our failure count, which the paper does not report. Rows whose preset did not run in the suite
show '-' for ours, so a partial run still renders. A row with ``published: false`` carries no
paper numbers: it is one of our presets measured in the same setting (e.g. ``trajattn_exact``,
per-trajectory attention, beside the official-behaviour ``trajattn`` row), shown with '-' in the
paper and diff cells; the published rows stay exactly as printed.

``python -m benchmark.reporting.paper_tables --summary results/S/tables/summary.csv --table table1
--out results/S/tables`` writes ``paper_table1.{md,tex,csv}``.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from benchmark.config.suites import ROOT
from benchmark.io import atomic_write_text
from benchmark.metrics.specs import METRIC_SPECS

PAPER_DIR = ROOT / "configs" / "paper"
#: Metric -> (column label, decimals), as the paper prints them (from the metric registry).
LABELS = {
    key: (METRIC_SPECS[key].title, METRIC_SPECS[key].digits)
    for key in ("ate", "rpe_trans", "rpe_rot_deg", "fid")
}
NOTE = (
    "paper: published value; ours: mean [95% bootstrap CI] over runs that registered; "
    "diff: ours - paper; failed: our runs without usable poses (the paper does not report "
    "failures). The paper states translations in metres, ours are in units of the frame-0 "
    "median scene depth; its evaluation images and COLMAP settings were not released, so "
    "differences in scale and protocol remain. FID needs the same reference set to compare."
)


@dataclass(frozen=True)
class PaperTable:
    """A published table: name, title, source, the metrics it reports and its rows."""

    name: str
    title: str
    source: str
    metrics: list[str]
    rows: list[dict[str, Any]]
    suites: list[str]


def load_paper_table(name: str | Path) -> PaperTable:
    """``configs/paper/{name}.yaml`` (or a YAML path); errors name the file and the field."""
    path = Path(name) if str(name).endswith((".yaml", ".yml")) else PAPER_DIR / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in PAPER_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"no paper table {str(name)!r}; known: {', '.join(known)}")
    data = yaml.safe_load(path.read_text()) or {}
    missing = [k for k in ("name", "title", "source", "metrics", "rows") if k not in data]
    if missing:
        raise ValueError(f"{path}: missing {missing}")
    unknown = [m for m in data["metrics"] if m not in LABELS]
    if unknown:
        raise ValueError(f"{path}: metrics: unknown {unknown}; known: {sorted(LABELS)}")
    for i, row in enumerate(data["rows"]):
        published = row.get("published", True)
        if not isinstance(published, bool):
            raise ValueError(f"{path}: rows/{i}: published must be true or false")
        if not published:
            stray = [m for m in data["metrics"] if m in row]
            if stray:
                raise ValueError(f"{path}: rows/{i}: an unpublished row has no paper numbers, "
                                 f"got {stray}")
        needed = ["num_frames", "paper_method", "method", *(data["metrics"] if published else [])]
        absent = [k for k in needed if k not in row]
        if absent:
            raise ValueError(f"{path}: rows/{i}: missing {absent}")
        bad = [m for m in (data["metrics"] if published else [])
               if not isinstance(row[m], int | float) or not math.isfinite(row[m])]
        if bad:
            raise ValueError(f"{path}: rows/{i}: {bad} must be finite numbers")
    return PaperTable(data["name"], data["title"], data["source"], list(data["metrics"]),
                      list(data["rows"]), list(data.get("suites", [])))


def _value(row: pd.Series | None, key: str) -> float | None:
    if row is None or key not in row or pd.isna(row[key]):
        return None
    return float(row[key])


def _fmt(value: float | None, digits: int, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def compare(paper: PaperTable, summary: pd.DataFrame) -> pd.DataFrame:
    """One row per published row: setting, method, and per metric paper | ours | diff, then
    our failure count."""
    index = {(int(r["num_frames"]), str(r["method"])): r for _, r in summary.iterrows()}
    out = []
    for row in paper.rows:
        ours = index.get((int(row["num_frames"]), str(row["method"])))
        record: dict[str, Any] = {
            "setting": f"{int(row['num_frames'])} frames",
            "method": f"{row['paper_method']} ({row['method']})",
        }
        for metric in paper.metrics:
            label, digits = LABELS[metric]
            mean = _value(ours, metric)
            lo, hi = _value(ours, f"{metric}_lo"), _value(ours, f"{metric}_hi")
            ours_cell = _fmt(mean, digits)
            if mean is not None and lo is not None and hi is not None:
                ours_cell += f" [{lo:.{digits}f}, {hi:.{digits}f}]"
            paper_value = float(row[metric]) if metric in row else None
            record[f"{label} paper"] = _fmt(paper_value, digits)
            record[f"{label} ours"] = ours_cell
            diff = None if mean is None or paper_value is None else mean - paper_value
            record[f"{label} diff"] = _fmt(diff, digits, signed=True)
        record["failed (ours)"] = (
            "-" if ours is None else f"{int(ours['failed'])}/{int(ours['runs'])}"
        )
        out.append(record)
    return pd.DataFrame(out)


def write_comparison(paper: PaperTable, summary: pd.DataFrame, out_dir: str | Path,
                     suite: str = "") -> list[Path]:
    """Write ``paper_{name}.md``, ``.tex`` and ``.csv`` under ``out_dir``; returns the paths."""
    table = compare(paper, summary)
    out = Path(out_dir)
    heading = f"{paper.title}: paper vs trajbench" + (f" ({suite})" if suite else "")
    note = f"Source: {paper.source}. {NOTE}"
    paths = [out / f"paper_{paper.name}.{ext}" for ext in ("md", "tex", "csv")]
    atomic_write_text(paths[0], f"# {heading}\n\n{table.to_markdown(index=False)}\n\n{note}\n")
    atomic_write_text(paths[1], table.to_latex(index=False, caption=f"{heading}. {note}",
                                               label=f"tab:paper_{paper.name}"))
    atomic_write_text(paths[2], table.to_csv(index=False))
    return paths


def tables_for_suite(suite: str) -> list[str]:
    """Names of the published tables that list ``suite`` among theirs."""
    return [p.stem for p in sorted(PAPER_DIR.glob("*.yaml"))
            if suite in (yaml.safe_load(p.read_text()) or {}).get("suites", [])]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="paper tables beside ours")
    parser.add_argument("--summary", required=True, type=Path, help="tables/summary.csv")
    parser.add_argument("--table", required=True, help="table1, table2, table3 or a YAML path")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--suite", default="")
    args = parser.parse_args(argv)
    paper = load_paper_table(args.table)
    for path in write_comparison(paper, pd.read_csv(args.summary), args.out, args.suite):
        print(path)


if __name__ == "__main__":
    main()
