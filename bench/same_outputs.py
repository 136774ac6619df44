"""Are two finished runs of a suite the same? Byte-compares what a reader sees.

Run ``python -m bench.same_outputs BEFORE AFTER`` with two ``results/<suite>`` folders (for
example the smoke suite run on the commit before a refactor and after it). It compares
``metrics.csv``, ``fid.csv`` and every file under ``tables/`` byte for byte and, where a CSV
differs, names the columns that differ, so a refactor that should change nothing can be
checked in one command. ``--ignore-columns`` leaves out columns a deliberate change touched
(e.g. the pose columns after a pose-protocol change); the remaining columns must then be equal.
Exit status 0 when everything compared is identical, 1 otherwise.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

COMPARED = ("metrics.csv", "fid.csv")


def compared_files(results: Path) -> list[str]:
    """Relative paths of the files this check compares that exist in ``results``."""
    names = [name for name in COMPARED if (results / name).is_file()]
    tables = results / "tables"
    if tables.is_dir():
        names += sorted(str(p.relative_to(results)) for p in tables.rglob("*") if p.is_file())
    return names


def differing_columns(before: Path, after: Path) -> list[str]:
    """Columns of two CSV files whose text differs (all values read as strings)."""
    a = pd.read_csv(before, dtype=str, keep_default_na=False)
    b = pd.read_csv(after, dtype=str, keep_default_na=False)
    if len(a) != len(b):
        return [f"<row count {len(a)} vs {len(b)}>"]
    columns = list(dict.fromkeys([*a.columns, *b.columns]))
    return [c for c in columns if c not in a or c not in b or not a[c].equals(b[c])]


def compare(before: Path, after: Path, ignore_columns: set[str]) -> list[str]:
    """Differences between two result folders, one line each (empty: identical)."""
    problems = []
    names_before, names_after = compared_files(before), compared_files(after)
    for name in sorted(set(names_before) ^ set(names_after)):
        problems.append(f"{name}: only in {'before' if name in names_before else 'after'}")
    for name in sorted(set(names_before) & set(names_after)):
        if (before / name).read_bytes() == (after / name).read_bytes():
            continue
        if name.endswith(".csv"):
            columns = [c for c in differing_columns(before / name, after / name)
                       if c not in ignore_columns]
            if ignore_columns and not columns:
                continue
            problems.append(f"{name}: differs in columns {columns}")
        else:
            if ignore_columns:
                continue  # derived from the CSVs, which are compared column by column
            problems.append(f"{name}: differs")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="results/<suite> of the first run")
    parser.add_argument("after", type=Path, help="results/<suite> of the second run")
    parser.add_argument("--ignore-columns", default="",
                        help="comma-separated CSV columns left out of the comparison")
    args = parser.parse_args(argv)
    ignore = {c for c in args.ignore_columns.split(",") if c}
    problems = compare(args.before, args.after, ignore)
    compared = compared_files(args.before)
    for line in problems:
        print(line)
    print(f"{len(compared)} files compared, {len(problems)} differ"
          + (f" (ignoring columns {sorted(ignore)})" if ignore else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
