"""Suite files: schema validation with named errors, and per-method frame counts."""

from __future__ import annotations

import pytest

from benchmark.config.suites import SuiteError, load_suite

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


@pytest.mark.workflow
def test_motionctrl_scale_suite_dry_run_counts_its_jobs(tmp_path):
    """motionctrl-scale: 5 paper images x 3 paths x 4 translation scales at 14 frames = 60
    clips; each preset differs from `motionctrl` (scale 4) only in translation_scale."""
    import subprocess

    from benchmark.stages.generate import load_preset

    suite = load_suite("motionctrl-scale")
    scales = {"motionctrl_scale0p25": 0.25, "motionctrl_scale1": 1.0, "motionctrl": 4.0,
              "motionctrl_scale16": 16.0}
    assert suite.methods == {name: [14] for name in scales}
    base = load_preset("motionctrl")
    for name, scale in scales.items():
        preset = load_preset(name)
        assert preset["adapter"] == "motionctrl"
        assert preset["args"] == {**base["args"], "translation_scale": scale}
    from tests.workflow.test_workflow import snakemake_command  # a test module, for one test

    out = subprocess.run(
        snakemake_command("-n", "--config", "suite=motionctrl-scale", f"results={tmp_path}"),
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    stats = out.stdout[out.stdout.index("Job stats"):].split("\n\n")[0]
    counts = dict(line.split() for line in stats.splitlines()[3:])
    assert counts["generate"] == "60" and counts["score"] == "60"
    for name in scales:
        assert out.stdout.count(f"motionctrl-scale/{name}/") >= 15
