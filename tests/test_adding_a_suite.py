"""docs/adding-a-suite.md, followed as written: its suite YAML is valid, its Python prints what
the guide says, and every `snakemake` command it shows plans the jobs it promises.

Everything runs in a temporary folder: the guide's YAML is saved there under the path the guide
names, and each `snakemake` command runs as a dry run (`-n` added where the guide has none) with
the repository's Snakefile, a temporary working directory and a temporary `results=`, so nothing
is written into the checkout. The only rewrite: `suite=<name>` becomes the saved file's path,
because a suite given by name is looked up in the checkout's configs/suites/.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "adding-a-suite.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(), flags=re.S)


def _guide_suite() -> tuple[str, str]:
    """(relative path the guide saves its suite at, the YAML text)."""
    (text,) = _blocks("yaml")
    first = text.splitlines()[0]
    assert first.startswith("# configs/suites/"), "the guide's YAML names where to save it"
    return first.removeprefix("# ").strip(), text


def _guide_commands() -> list[list[str]]:
    return [shlex.split(line) for block in _blocks("bash") for line in block.splitlines()
            if line.startswith("snakemake ")]


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, dict]:
    """A scratch folder holding the guide's suite at the path the guide gives."""
    folder = tmp_path_factory.mktemp("newsuite")
    relpath, text = _guide_suite()
    (folder / relpath).parent.mkdir(parents=True)
    (folder / relpath).write_text(text)
    return folder, yaml.safe_load(text)


def _dry_run(args: list[str], folder: Path, suite_file: Path) -> subprocess.CompletedProcess:
    """One of the guide's snakemake command lines as a dry run in ``folder``."""
    assert args[0] == "snakemake"
    name = suite_file.stem
    rest = [f"suite={suite_file}" if a == f"suite={name}" else a for a in args[1:]]
    assert f"suite={suite_file}" in rest, f"the guide's command runs its own suite: {args}"
    if "-n" not in rest:
        rest.insert(0, "-n")
    config_at = rest.index("--config")
    rest.insert(config_at + 1, f"results={folder / 'results'}")
    exe = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")
    cmd = [exe, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(folder),
           "--configfile", str(ROOT / "configs" / "config.yaml"), *rest]
    return subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=600)


def _job_counts(stdout: str) -> dict[str, int]:
    table = stdout.split("Job stats:")[1].split("\n\n")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


def test_the_guides_suite_is_named_after_its_file_and_uses_valid_paths(saved):
    folder, data = saved
    relpath, _ = _guide_suite()
    assert data["name"] == Path(relpath).stem
    from benchmark.cameras.paths import parse_camera_name

    for camera in data["cameras"]:
        parse_camera_name(camera)  # raises on a bad name


def test_the_guides_python_prints_what_the_guide_says(saved):
    folder, _ = saved
    (code,) = _blocks("python")
    expected = _blocks("text")[0]
    out = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == expected
    # ... and what it says is the hand count: 2 scenes x 3 cameras x 2 frame counts.
    assert expected.splitlines()[0].split()[-1] == str(2 * 3 * 2)


@pytest.mark.workflow
def test_every_snakemake_command_of_the_guide_plans_the_promised_jobs(saved):
    folder, data = saved
    suite_file = folder / _guide_suite()[0]
    commands = _guide_commands()
    assert len(commands) == 3
    scenes, cameras = len(data["scenes"]), len(data["cameras"])
    # By hand: gt_render at both counts (2 x 3 x 2), depth_warp at 14 only (2 x 3 x 1).
    full, only_gt_render = scenes * cameras * 2 + scenes * cameras * 1, scenes * cameras * 2
    assert (full, only_gt_render) == (18, 12)
    text = GUIDE.read_text()
    assert "18 `generate` jobs" in text and "(12 `generate` jobs)" in text
    plans = []
    for args, n_generate in zip(commands, [full, full, only_gt_render], strict=True):
        out = _dry_run(args, folder, suite_file)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        jobs = _job_counts(out.stdout)
        assert jobs["generate"] == n_generate, (args, jobs)
        assert jobs["poses"] == jobs["score"] == n_generate
        assert jobs["scene"] == scenes
        assert jobs["camera"] == scenes * cameras * 2
        plans.append(out.stdout)
    # The suite's results go under results/<name>/, the table of an image task is table1.
    assert f"{folder / 'results' / data['name'] / 'tables' / 'table1.md'}" in plans[0]
    assert not (folder / "results").exists()  # a dry run writes no outputs
    assert not (ROOT / "results" / data["name"]).exists()


def test_a_camera_name_typo_fails_as_the_guide_shows(tmp_path):
    """The workflow loads the suite with load_suite before planning (rules/common.smk), so its
    error is the one the guide shows; checked here without starting Snakemake."""
    from benchmark.config.suites import SuiteError, load_suite

    shown = _blocks("text")[1].strip()
    typo = re.search(r"bad camera name '([^']+)'", shown)[1]
    good = re.search(r"Did you mean '([^']+)'", shown)[1]
    relpath, text = _guide_suite()
    assert f"  - {good}\n" in text
    bad = tmp_path / relpath
    bad.parent.mkdir(parents=True)
    bad.write_text(text.replace(f"  - {good}\n", f"  - {typo}\n"))
    with pytest.raises(SuiteError) as caught:
        load_suite(bad)
    assert shown in str(caught.value)
    assert str(bad) in str(caught.value)  # names the file
    workflow = (ROOT / "rules" / "common.smk").read_text()
    assert "load_suite(" in workflow


def test_the_guides_camera_grammar_is_the_codes():
    from benchmark.cameras.paths import MOTIONS, parse_camera_name

    section = GUIDE.read_text().split("**Camera names**")[1].split("\n\n")[0]
    listed = {"static"} | {f"{motion}_{direction}"
                           for motion, directions in re.findall(r"`([a-z]+)_([a-z|]+)`", section)
                           for direction in directions.split("|")}
    assert listed == set(MOTIONS)
    assert "`static` takes no magnitude" in section
    # The units as the guide gives them: rotations in deg, translations in pct, never swapped.
    for motion, unit in [("pan_left", "deg"), ("tilt_up", "deg"), ("roll_cw", "deg"),
                         ("orbit_up", "deg"), ("dolly_in", "pct"), ("truck_left", "pct"),
                         ("pedestal_up", "pct")]:
        parse_camera_name(f"{motion}_15{unit}")
        with pytest.raises(ValueError):
            parse_camera_name(f"{motion}_15{'pct' if unit == 'deg' else 'deg'}")
    for name in ("orbit_left_10deg+dolly_in_15pct", "dolly_in_12p5pct"):
        parse_camera_name(name)  # the guide's examples of composition and magnitudes
    for name in ("pan_left_15.0deg", "pan_left_015deg", "dolly_in_12p50pct"):
        with pytest.raises(ValueError):
            parse_camera_name(name)  # canonical magnitudes only
