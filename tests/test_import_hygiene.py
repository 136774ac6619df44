"""Stages that need no torch do not import it (each workflow job is a fresh process, and
``import torch`` alone costs seconds and ~650 MB there)."""

from __future__ import annotations

import subprocess
import sys

# The modules behind the torch-free stages: CLI entry, pose recovery, pose / track scoring,
# aggregation, tables and report.
TORCH_FREE = (
    "benchmark.cli",
    "benchmark.sfm.poses",
    "benchmark.stages.score",
    "benchmark.metrics",
    "benchmark.reporting.aggregate",
    "benchmark.reporting.tables",
    "benchmark.reporting.paper_tables",
    "benchmark.reporting.report",
)


def loaded_after_import(modules: tuple[str, ...], heavy: tuple[str, ...]) -> list[str]:
    """Which of ``heavy`` a fresh interpreter has loaded after importing ``modules``."""
    code = (
        "import sys\n"
        f"for name in {list(modules)!r}:\n"
        "    __import__(name)\n"
        f"print(','.join(h for h in {list(heavy)!r} if h in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    return [name for name in done.stdout.strip().split(",") if name]


def test_torch_free_stages_do_not_import_torch():
    assert loaded_after_import(TORCH_FREE, ("torch", "torchmetrics", "diffusers")) == []


def test_the_check_sees_torch_when_it_is_imported():
    # the subprocess check itself can fail: a module that imports torch is reported
    assert loaded_after_import(("trajattn.sampling",), ("torch",)) == ["torch"]
