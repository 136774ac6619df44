"""The calibration floor: summary statistics, stored as data, read back into table footnotes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.reporting.tables import write_tables
from benchmark.stages.calibration import (
    _append_csv,
    floor_footnote,
    load_floor,
    read_rows,
    summarise,
    write_floor,
)


def _row(setting, scene, camera, ate, rot=0.01, flagged=False, seed=0):
    return {"setting": setting, "scene": scene, "camera": camera, "ate_pct": ate,
            "rpe_rot_deg": rot, "flagged": flagged, "cpu_s": 2.0, "sfm_seed": seed}


def test_summary_excludes_flagged_runs_and_reports_the_seed_ratio():
    rows = [_row("448x256x14", "a", "orbit", v, seed=s) for s, v in enumerate([0.1, 0.2])]
    rows += [_row("448x256x14", "b", "dolly", v, seed=s) for s, v in enumerate([0.3, 0.6])]
    rows.append(_row("448x256x14", "b", "dolly", 12.0, flagged=True, seed=2))
    rows.append(_row("448x256x14", "c", "pan", None, rot=0.02))
    s = summarise(rows)["448x256x14"]
    ates = [0.1, 0.2, 0.3, 0.6]
    assert s["runs"] == 6 and s["flagged"] == 1 and s["clips"] == 3
    assert np.isclose(s["ate_pct_median"], np.median(ates))
    assert np.isclose(s["ate_pct_p90"], np.percentile(ates, 90))
    assert s["ate_pct_max"] == 0.6  # the flagged 12% is counted as flagged, not in the floor
    assert s["seed_ratio_max"] == 2.0
    assert np.isclose(s["rpe_rot_deg_p90"], np.percentile([0.01] * 5 + [0.02], 90))


def test_floor_file_round_trip_and_footnote_at_the_nearest_setting(tmp_path):
    rows = [_row("448x256x14", "a", "orbit", 0.5), _row("1024x576x25", "a", "orbit", 0.05)]
    path = tmp_path / "floor.yaml"
    write_floor(summarise(rows), "python -m benchmark.stages.calibration --write-floor", path)
    assert load_floor(path)["command"].endswith("--write-floor")
    note = floor_footnote(1024, 576, [25, 14], path)
    assert "25 frames: ATE median 0.05%" in note and "1024x576x25" in note
    assert "14 frames: ATE median 0.50%" in note and "448x256x14" in note
    assert floor_footnote(1024, 576, [25], tmp_path / "missing.yaml") == ""
    summary = pd.DataFrame([{"num_frames": 25, "method": "gt_render", "runs": 1, "failed": 0,
                             "failure_rate": 0.0, "ate": 0.001, "ate_lo": 0.001,
                             "ate_hi": 0.001}])
    md = write_tables(summary, tmp_path / "tables", "t", floor_note=note)[0].read_text()
    assert "Instrument floor" in md and "0.05%" in md


def test_calibration_csv_keeps_every_stage_time_and_refuses_an_older_header(tmp_path):
    path = tmp_path / "calibration.csv"
    row = _row("448x256x14", "room00", "orbit_left_15deg", 0.2) | {
        "extraction_s": 1.0, "matching_s": 0.5, "verification_s": 0.25, "mapping_s": 0.75}
    _append_csv(path, row)
    _append_csv(path, row)
    rows = read_rows(path)
    assert len(rows) == 2 and rows[1]["verification_s"] == "0.25"
    old = tmp_path / "old.csv"
    old.write_text("setting,scene,cpu_s,reason\n448x256x14,room00,2.0,\n")
    with pytest.raises(ValueError, match="not this version's"):
        _append_csv(old, row)
    assert old.read_text().count("\n") == 2  # untouched
