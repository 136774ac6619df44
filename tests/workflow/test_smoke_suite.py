"""Acceptance on the full default suite (slow: ~minutes; the tiny-suite workflow test covers
the same behaviour in the default run)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.cameras import load_camera_path
from tests.workflow.test_workflow import ROOT, _snakemake


@pytest.mark.slow
@pytest.mark.workflow
@pytest.mark.workflow
def test_smoke_suite_meets_the_known_answers(tmp_path):
    out = _snakemake("--cores", "2", "--config", f"results={tmp_path}", cwd=ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    root = tmp_path / "smoke"
    assert (root / "tables" / "table1.md").exists()
    runs = pd.read_csv(root / "metrics.csv")
    assert len(runs) == 36
    for _, run in runs.iterrows():
        cam = load_camera_path(root / "cameras" / "f14" / run["scene"] / f"{run['camera']}.json")
        c = cam.centers
        extent = float(np.max(np.linalg.norm(c[:, None] - c[None], axis=-1)))
        if run["method"] == "gt_render":
            assert run["status"] == "ok", run["reason"]
            assert run["registered_ratio"] >= 0.95
            assert run["ate"] <= 0.01 * extent
        if run["method"] == "static":
            assert run["status"] == "failed" or run["ate"] >= 0.3 * extent
