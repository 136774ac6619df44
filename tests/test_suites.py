"""Suite files: schema validation with named errors, and per-method frame counts."""

from __future__ import annotations

import pytest

from benchmark.suites import SuiteError, load_suite

BASE = """
name: t
kind: synthetic
num_frames: [14, 25]
width: 64
height: 48
cameras: [orbit_left_15deg]
scenes: [{name: a, seed: 0}]
"""


def _load(tmp_path, text):
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return load_suite(path)


def test_methods_run_at_their_own_frame_counts(tmp_path):
    suite = _load(tmp_path, BASE + "methods: [depth_warp, {name: static, num_frames: [14]}]\n")
    assert suite.methods == {"depth_warp": [14, 25], "static": [14]}
    assert {c.num_frames for c in suite.combinations(suite.methods["static"])} == {14}
    assert len(suite.combinations()) == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("methods: [{name: static, num_frames: [16]}]\n", "methods/static: num_frames"),
        ("methods: [{name: static}]\n", "methods/0"),
        ("bogus: 1\n", "Additional properties"),
    ],
)
def test_bad_suites_are_rejected_naming_the_field(tmp_path, extra, message):
    with pytest.raises(SuiteError, match=message):
        _load(tmp_path, BASE + extra)


def test_bad_camera_name_and_missing_seed_are_named(tmp_path):
    with pytest.raises(SuiteError, match="cameras: .*orbit_lfet"):
        _load(tmp_path, BASE.replace("orbit_left_15deg", "orbit_lfet_15deg"))
    with pytest.raises(SuiteError, match="scenes/a: a synthetic scene needs"):
        _load(tmp_path, BASE.replace("{name: a, seed: 0}", "{name: a}"))
    with pytest.raises(SuiteError, match="no suite 'nope'"):
        load_suite("nope")


def test_shipped_suites_load():
    assert len(load_suite("smoke").combinations()) == 12
    assert len(load_suite("synthetic-230").combinations()) == 460
    paper = load_suite("paper-image-230")
    assert len(paper.scenes) == 23 and len(paper.cameras) == 10
