"""The workflow through configs/profiles/slurm on a real SLURM scheduler (opt-in: `-m slurm`).

Brings up a single-node cluster on this Debian machine when none answers
(scripts/slurm_single_node.sh, needs root and the package registry), runs a tiny CPU-only suite
locally and through the SLURM profile (scripts/slurm_check.sh), and checks that both runs wrote
byte-identical metrics.csv and tables. Minutes: SLURM polls job status about every 40 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "tests" / "data" / "tiny-cpu-suite.yaml"

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]


def test_slurm_run_equals_local_run(tmp_path):
    if shutil.which("sinfo") is None and os.geteuid() != 0:
        pytest.skip("no SLURM here and not root: cannot bring up the single-node cluster")
    out = subprocess.run(
        [str(ROOT / "scripts" / "slurm_check.sh"), str(SUITE), str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=3600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "same: tinycpu/metrics.csv" in out.stdout
    assert "same: tinycpu/tables/table1.csv" in out.stdout
    # Every clip was really scored through the scheduler, not skipped.
    rows = (tmp_path / "slurm" / "tinycpu" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 * 2  # header + methods x cameras
