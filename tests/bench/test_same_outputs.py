"""bench.same_outputs: the byte-identity check of two runs names what differs."""
from __future__ import annotations

import shutil
from pathlib import Path

from bench.same_outputs import compare, main


def _run(root: Path) -> Path:
    (root / "tables").mkdir(parents=True)
    (root / "metrics.csv").write_text("method,ate,psnr\nstatic,0.5,20.1\ngt_render,0.001,inf\n")
    (root / "tables" / "table1.md").write_text("| method | ATE |\n|---|---|\n| static | 0.5 |\n")
    return root


def test_identical_runs_pass(tmp_path):
    before = _run(tmp_path / "a")
    after = tmp_path / "b"
    shutil.copytree(before, after)
    assert compare(before, after, set()) == []
    assert main([str(before), str(after)]) == 0


def test_a_changed_value_names_its_column_and_fails(tmp_path, capsys):
    before, after = _run(tmp_path / "a"), _run(tmp_path / "b")
    (after / "metrics.csv").write_text("method,ate,psnr\nstatic,0.5,20.2\ngt_render,0.001,inf\n")
    assert compare(before, after, set()) == ["metrics.csv: differs in columns ['psnr']"]
    assert main([str(before), str(after)]) == 1
    assert "psnr" in capsys.readouterr().out
    # leaving the changed column out makes the rest equal; any other column still counts
    assert compare(before, after, {"psnr"}) == []
    assert compare(before, after, {"ate"}) == ["metrics.csv: differs in columns ['psnr']"]


def test_missing_tables_and_row_counts_are_reported(tmp_path):
    before, after = _run(tmp_path / "a"), _run(tmp_path / "b")
    (after / "tables" / "table1.md").unlink()
    (after / "metrics.csv").write_text("method,ate,psnr\nstatic,0.5,20.1\n")
    problems = compare(before, after, set())
    assert "tables/table1.md: only in before" in problems
    assert "metrics.csv: differs in columns ['<row count 2 vs 1>']" in problems
