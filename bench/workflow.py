"""Wall time of a finished workflow run by rule, from Snakemake's ``benchmark:`` files.

Every job rule (rules/*.smk) writes a benchmark file under ``<results>/<suite>/benchmarks/
<rule>/...tsv`` (Snakemake's format: ``s`` wall seconds, ``cpu_time`` seconds, ``max_rss`` MB
among others). Run::

    python -m bench.workflow results/smoke [--log .snakemake/log/<run>.snakemake.log]

It prints, per rule, the job count and the summed, mean and largest wall time, the summed CPU
time and the largest peak RSS, sorted by summed wall time; with ``--log`` also the run's
elapsed time (first to last timestamp of Snakemake's log). Summed job time exceeds the elapsed
time when jobs ran side by side. Torch-free (pandas only).
"""

from __future__ import annotations

import argparse
import re
from datetime import datetime
from pathlib import Path

import pandas as pd

COLUMNS = ["rule", "jobs", "wall_s", "mean_s", "max_s", "cpu_s", "max_rss_mb"]
# Snakemake's log stamps each job start and finish with e.g. "[Thu Dec  3 09:34:41 2026]"
STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]", re.M)


def read_benchmarks(folder: Path) -> pd.DataFrame:
    """One row per benchmark file: rule (its first folder under ``folder``), file, values.

    A file Snakemake writes holds one row per repeat; repeats of one job are averaged. Raises
    FileNotFoundError when there is none (a run without ``benchmark:`` directives)."""
    rows = []
    for path in sorted(folder.rglob("*.tsv")):
        table = pd.read_csv(path, sep="\t")
        missing = {"s", "cpu_time", "max_rss"} - set(table.columns)
        if missing or table.empty:
            raise ValueError(
                f"{path} is not a Snakemake benchmark file (lacks {missing or 'rows'})"
            )
        values = table[["s", "cpu_time", "max_rss"]].apply(pd.to_numeric, errors="coerce").mean()
        parts = path.relative_to(folder).parts
        rule = parts[0] if len(parts) > 1 else path.stem  # <rule>/... or <rule>.tsv
        rows.append({"rule": rule, "file": str(path), **values.to_dict()})
    if not rows:
        raise FileNotFoundError(f"no benchmark files under {folder}")
    return pd.DataFrame(rows)


def by_rule(jobs: pd.DataFrame) -> pd.DataFrame:
    """Per rule: jobs, summed / mean / largest wall seconds, summed CPU seconds, largest RSS."""
    grouped = jobs.groupby("rule")
    table = pd.DataFrame(
        {
            "jobs": grouped.size(),
            "wall_s": grouped["s"].sum(),
            "mean_s": grouped["s"].mean(),
            "max_s": grouped["s"].max(),
            "cpu_s": grouped["cpu_time"].sum(min_count=1),
            "max_rss_mb": grouped["max_rss"].max(),
        }
    )
    table = table.sort_values("wall_s", ascending=False).reset_index()
    total = {
        "rule": "total",
        "jobs": int(table["jobs"].sum()),
        "wall_s": table["wall_s"].sum(),
        "mean_s": jobs["s"].mean(),
        "max_s": jobs["s"].max(),
        "cpu_s": table["cpu_s"].sum(min_count=1),
        "max_rss_mb": jobs["max_rss"].max(),
    }
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)[COLUMNS]


def elapsed_from_log(log: Path) -> float:
    """Seconds from the first to the last timestamp of a Snakemake log."""
    stamps = [datetime.strptime(s, "%a %b %d %H:%M:%S %Y") for s in STAMP.findall(log.read_text())]
    if len(stamps) < 2:
        raise ValueError(f"{log}: fewer than two Snakemake timestamps")
    return (max(stamps) - min(stamps)).total_seconds()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite_dir", type=Path, help="<results>/<suite> of a finished run")
    parser.add_argument("--log", type=Path, help="Snakemake's log of the run (elapsed time)")
    args = parser.parse_args(argv)
    table = by_rule(read_benchmarks(args.suite_dir / "benchmarks"))
    print(table.to_string(index=False, float_format=lambda x: f"{x:.1f}"))
    if args.log:
        print(f"elapsed (Snakemake log): {elapsed_from_log(args.log):.0f} s")


if __name__ == "__main__":
    main()
