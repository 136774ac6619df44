"""Published tables stored as data, rendered beside our measurements."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmark.reporting.paper_tables import (
    compare,
    load_paper_table,
    tables_for_suite,
    write_comparison,
)


def test_stored_tables_hold_the_papers_numbers():
    """Spot checks against the paper text (shared/paper, Tables 1-3)."""
    t1, t2, t3 = (
        [r for r in load_paper_table(n).rows if r.get("published", True)]
        for n in ("table1", "table2", "table3")
    )
    assert len(t1) == 7 and len(t2) == 3 and len(t3) == 4  # the published rows, unchanged
    motionctrl = t1[0]
    assert (motionctrl["num_frames"], motionctrl["ate"], motionctrl["fid"]) == (14, 1.2151, 101.3)
    assert t2[2]["rpe_rot_deg"] == 0.6241 and t2[2]["method"] == "trajattn_nvs"
    # Table 3's last row is Table 1's 25-frame "Ours".
    ours25 = next(r for r in t1 if r["num_frames"] == 25 and r["method"] == "trajattn")
    metrics = load_paper_table("table1").metrics
    assert all(t3[-1][m] == ours25[m] for m in metrics)
    assert tables_for_suite("paper-image-230") == ["table1", "table3"]
    assert tables_for_suite("paper-video") == ["table2"]


def test_comparison_puts_ours_and_the_difference_beside_the_paper(tmp_path):
    paper = load_paper_table("table1")
    summary = pd.DataFrame([{
        "num_frames": 14, "method": "trajattn", "runs": 230, "failed": 12,
        "ate": 0.0312, "ate_lo": 0.0300, "ate_hi": 0.0330,
        "rpe_trans": 0.0221, "rpe_trans_lo": None, "rpe_trans_hi": None,
        "rpe_rot_deg": 0.2, "rpe_rot_deg_lo": 0.1, "rpe_rot_deg_hi": 0.3,
        "fid": None, "fid_lo": None, "fid_hi": None,
    }])
    table = compare(paper, summary)
    ours = table[table["method"] == "Ours (trajattn)"].iloc[0]  # the 14-frame row comes first
    assert ours["setting"] == "14 frames"
    assert ours["ATE paper"] == "0.0212" and ours["ATE ours"] == "0.0312 [0.0300, 0.0330]"
    assert ours["ATE diff"] == "+0.0100" and ours["RPE trans diff"] == "+0.0000"
    assert ours["FID paper"] == "104.2" and ours["FID ours"] == "-" and ours["FID diff"] == "-"
    assert ours["failed (ours)"] == "12/230"
    missing = table[table["method"] == "MotionCtrl (motionctrl)"].iloc[0]
    assert missing["ATE ours"] == "-" and missing["failed (ours)"] == "-"
    paths = write_comparison(paper, summary, tmp_path, suite="demo")
    md = paths[0].read_text()
    assert "paper vs trajbench (demo)" in md and "0.0312 [0.0300, 0.0330]" in md
    assert "\\begin{tabular}" in paths[1].read_text()
    assert len(pd.read_csv(paths[2])) == 10  # 7 published rows + 3 trajattn_exact rows


def test_a_broken_paper_table_names_the_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntitle: t\nsource: s\nmetrics: [ate]\nrows:\n"
                   "  - {num_frames: 14, paper_method: A, method: a}\n")
    with pytest.raises(ValueError, match=r"rows/0: missing \['ate'\]"):
        load_paper_table(bad)
    bad.write_text("name: x\ntitle: t\nsource: s\nmetrics: [psnr]\nrows: []\n")
    with pytest.raises(ValueError, match="unknown"):
        load_paper_table(bad)
    with pytest.raises(FileNotFoundError, match="table1"):
        load_paper_table("table9")


def test_unpublished_rows_show_ours_beside_dashes(tmp_path):
    """trajattn (official behaviour) keeps the published 'Ours' row; trajattn_exact
    (per-trajectory attention) gets its own row with no paper numbers and no diff."""
    paper = load_paper_table("table1")
    exact = [r for r in paper.rows if r["method"] == "trajattn_exact"]
    assert [r["num_frames"] for r in exact] == [14, 16, 25]
    assert all(r["published"] is False and "ate" not in r for r in exact)
    ours = [r for r in paper.rows if r["paper_method"] == "Ours"]
    assert [(r["method"], r["ate"]) for r in ours] == [
        ("trajattn", 0.0212), ("trajattn", 0.0413), ("trajattn", 0.0396)]
    assert {"trajattn", "trajattn_exact"} <= {r["method"] for r in load_paper_table("table3").rows}
    summary = pd.DataFrame([
        {"method": "trajattn_exact", "num_frames": 25, "ate": 0.05, "ate_lo": 0.04,
         "ate_hi": 0.06, "failed": 1, "runs": 230},
    ])
    table = compare(paper, summary)
    row = table[table["method"] == "Ours, per-trajectory attention (trajattn_exact)"].iloc[-1]
    assert row["setting"] == "25 frames"
    assert row["ATE paper"] == "-" and row["ATE diff"] == "-"
    assert row["ATE ours"] == "0.0500 [0.0400, 0.0600]" and row["failed (ours)"] == "1/230"
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: b\ntitle: B\nsource: s\nmetrics: [ate]\nrows:\n"
                   "  - {num_frames: 14, paper_method: A, method: a, published: false, ate: 1}\n")
    with pytest.raises(ValueError, match="unpublished row has no paper numbers"):
        load_paper_table(bad)


def test_trajattn_presets_official_and_exact_are_both_in_the_paper_suites():
    from benchmark.config.suites import load_suite
    from benchmark.stages.generate import load_preset

    assert load_preset("trajattn")["args"]["compat_mixed_pairs"] is True
    assert load_preset("trajattn_exact")["args"]["compat_mixed_pairs"] is False
    for suite in ("paper-image-230", "paper-video", "paper-editing"):
        methods = load_suite(suite).methods
        assert methods["trajattn"] == methods["trajattn_exact"], suite
