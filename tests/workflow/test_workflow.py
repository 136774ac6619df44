"""The Snakemake workflow end to end on a tiny offline suite, in a scratch results folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.cameras import load_camera_path

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny-suite.yaml"

# Every test here runs Snakemake (or uses a run of it): `-m "not workflow"` skips them.
pytestmark = pytest.mark.workflow


def workdir_for(args: tuple[str, ...] | list[str]) -> Path:
    """Snakemake's working directory for a test run: the run's `results=` folder (a temporary
    one in every test), so `.snakemake/` and relative outputs never land in the checkout, and
    a second run on the same results sees the first one's metadata. Without `results=`, a
    fresh temporary folder."""
    for arg in args:
        if arg.startswith("results="):
            folder = Path(arg.removeprefix("results="))
            folder.mkdir(parents=True, exist_ok=True)
            return folder
    return Path(tempfile.mkdtemp(prefix="trajbench-snakemake-"))


def snakemake_command(*args: str) -> list[str]:
    """The repository's Snakefile run from a temporary working directory (see workdir_for)."""
    exe = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")
    return [exe, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir_for(args)),
            *args]


def _snakemake(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run Snakemake on the repository's workflow; `cwd` is only the process's folder, the
    working directory is temporary (nothing is written into the checkout)."""
    return subprocess.run(snakemake_command(*args), cwd=cwd or ROOT, capture_output=True,
                          text=True)


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    out = _snakemake(
        "--cores", "2", "--config", f"suite={TINY}", f"results={results}", cwd=ROOT
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return results / "tiny"


def test_workflow_writes_tables_plots_and_one_row_per_run(tiny_results):
    outputs = ["tables/table1.md", "tables/table1.tex", "tables/table1.csv",
               "tables/summary.csv", "plots/errors.png", "plots/errors.pdf", "metrics.csv"]
    for name in outputs:
        assert (tiny_results / name).stat().st_size > 0, name
    runs = pd.read_csv(tiny_results / "metrics.csv")
    assert len(runs) == 5 * 2  # methods x cameras x 1 scene x 1 seed
    assert sorted(runs["method"].unique()) == [
        "depth_warp", "gt_render", "static", "trajattn", "trajattn_tiny"
    ]
    trajectories = list((tiny_results / "plots" / "trajectories" / "f8").glob("*.png"))
    assert len(trajectories) == 2


def test_aggregate_writes_the_same_files_with_one_or_several_plot_workers(tiny_results,
                                                                           tmp_path):
    """The aggregate job draws its per-clip plots in a process pool (as many workers as the
    job's threads): tables, metrics.csv and every PNG are byte-identical to a serial run's."""
    from benchmark.reporting.report import aggregate_suite

    for workers in (1, 2):
        aggregate_suite(tiny_results, tmp_path / f"w{workers}", "trajbench: tiny",
                        workers=workers)
    files = ["metrics.csv", "tables/table1.md", "tables/summary.csv", "plots/errors.png"]
    files += [str(p.relative_to(tiny_results))
              for p in (tiny_results / "plots" / "trajectories").rglob("*.png")]
    assert len(files) == 6
    for name in files:
        serial = (tmp_path / "w1" / name).read_bytes()
        assert (tmp_path / "w2" / name).read_bytes() == serial, name
        assert (tiny_results / name).read_bytes() == serial, name  # the workflow's own run


def path_extent(camera_file: Path) -> float:
    """Largest distance between two ground-truth camera centres."""
    centres = load_camera_path(camera_file).centers
    return float(np.max(np.linalg.norm(centres[:, None] - centres[None], axis=-1)))


def test_reference_methods_rank_as_the_truth_says(tiny_results):
    runs = pd.read_csv(tiny_results / "metrics.csv").set_index(["method", "camera"])
    for camera in ["orbit_left_15deg", "truck_right_20pct"]:
        extent = path_extent(tiny_results / "cameras" / "f8" / "room05" / f"{camera}.json")
        gt = runs.loc[("gt_render", camera)]
        assert gt["status"] == "ok", gt["reason"]
        assert gt["registered_ratio"] >= 0.95
        assert gt["ate"] <= 0.01 * extent  # exact renders: the harness's noise floor
        # static has no parallax: COLMAP cannot reconstruct it, a recorded failure.
        static = runs.loc[("static", camera)]
        assert static["status"] == "failed" and isinstance(static["reason"], str)
        # Fidelity to the exact render orders the methods: gt > depth_warp > static.
        warp = runs.loc[("depth_warp", camera)]
        assert gt["psnr"] != gt["psnr"] or gt["psnr"] > 60  # NaN (inf: identical) or huge
        assert warp["psnr"] > static["psnr"] + 3
        # A method without its weights is a recorded failure naming what to download.
        missing = runs.loc[("trajattn", camera)]
        assert missing["generation_status"] == "failed"
        assert "huggingface-cli download" in missing["generation_reason"]
        # The tiny random SVD generates (poorly); the table shows it as it is.
        assert runs.loc[("trajattn_tiny", camera)]["generation_status"] == "ok"
    table = (tiny_results / "tables" / "table1.md").read_text()
    assert "static" in table and "2/2" in table  # static failed on both clips


# Reports, when the interpreter exits, which heavy modules parsing the workflow loaded.
_REPORT_IMPORTS = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('LOADED', sorted(m for m in ('torch', 'torchvision', "
    "'diffusers', 'torchmetrics') if m in sys.modules)))\n"
    "from snakemake.cli import main\n"
    "sys.argv = ['snakemake', *sys.argv[1:]]\n"
    "main()\n"
)


def dry_run_reporting_imports(suite: str, results: Path) -> subprocess.CompletedProcess:
    """`snakemake -n` of ``suite`` in one process that prints, at exit, which heavy modules
    parsing the workflow loaded (``LOADED [...]``)."""
    cmd = snakemake_command("-n", "--config", f"suite={suite}", f"results={results}")
    return subprocess.run([sys.executable, "-c", _REPORT_IMPORTS, *cmd[1:]], cwd=results,
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def paper_image_dry_run(tmp_path_factory) -> subprocess.CompletedProcess:
    """One dry run of the 9,726-job paper-image-230 suite (about a minute of parsing and DAG
    building), shared by the plan test and the no-torch test."""
    return dry_run_reporting_imports("paper-image-230", tmp_path_factory.mktemp("paper"))


def test_dry_run_of_the_paper_image_suite_plans_every_method_at_its_settings(
    paper_image_dry_run,
):
    """Table 1's layout: each baseline at its native frame count, trajattn at all three."""
    import collections
    import re

    out = paper_image_dry_run
    assert out.returncode == 0, out.stderr[-3000:]
    assert "fetch_image" in out.stdout
    jobs = collections.Counter(
        (m.group(1), int(m.group(2)))
        for block in out.stdout.split("\nrule ")
        if block.startswith("generate:")
        for m in re.finditer(r"wildcards: method=(\w+), frames=(\d+), scene=", block)
    )
    expected = {
        ("trajattn", 14), ("trajattn", 16), ("trajattn", 25),
        ("trajattn_exact", 14), ("trajattn_exact", 16), ("trajattn_exact", 25),
        ("motionctrl", 14), ("motion_i2v", 16), ("cameractrl", 25), ("nvs_solver", 25),
        ("trajattn_wan", 81),  # paper Sec. 5.6 on Wan 2.1 I2V, at Wan's frame count
        *((m, f) for m in ("depth_warp", "static") for f in (14, 16, 25, 81)),
    }
    assert set(jobs) == expected
    assert set(jobs.values()) == {230}  # 23 images x 10 camera paths for every setting
    stats = out.stdout[out.stdout.index("Job stats"):]
    assert "\npaper_table " in stats  # Tables 1 and 3 of the paper beside ours
    assert "paper_table1.md" in out.stdout and "paper_table3.md" in out.stdout


@pytest.mark.parametrize("suite", [str(TINY), "paper-image-230", "synthetic-editing"])
def test_dry_run_imports_no_torch(tmp_path, suite, request):
    """`snakemake -n` parses the Snakefile, its rules and the modules they import in one
    process: none of them may load torch (seconds and hundreds of MB per parse)."""
    if suite == "paper-image-230":
        out = request.getfixturevalue("paper_image_dry_run")
    else:
        out = dry_run_reporting_imports(suite, tmp_path)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "This was a dry-run" in out.stdout + out.stderr  # the workflow was really parsed
    assert "LOADED []" in out.stdout, out.stdout[-500:]


def test_second_run_has_nothing_to_do(tiny_results):
    out = _snakemake(
        "-n", "--config", f"suite={TINY}", f"results={tiny_results.parent}", cwd=ROOT
    )
    assert out.returncode == 0
    assert "Nothing to be done" in out.stdout + out.stderr


def test_killed_run_resumes_and_gives_the_same_results(tiny_results, tmp_path):
    """SIGKILL the whole workflow midway, run again: it completes, and every run's metrics are
    byte-identical to the uninterrupted run's. A subset of the tiny suite (same name, scene and
    size; one camera, the weight-free methods) keeps this to one short run: its runs are the
    tiny suite's runs, so the module's full run is the reference."""
    import os
    import signal
    import time

    import yaml

    spec = yaml.safe_load(TINY.read_text())
    spec["cameras"] = spec["cameras"][:1]
    spec["methods"] = ["gt_render", "depth_warp", "static"]
    suite = tmp_path / "tiny-subset.yaml"
    suite.write_text(yaml.safe_dump(spec))
    results = tmp_path / "results"
    cmd = snakemake_command("--cores", "2", "--config", f"suite={suite}", f"results={results}")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    # Kill once some runs have finished generating but before the tables exist.
    while time.time() < deadline and not list(results.glob("tiny/*/f8/*/seed0/poses.json")):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (results / "tiny" / "tables" / "table1.md").exists()
    assert len(list(results.glob("tiny/*/f8/*/seed0/metrics.json"))) < len(spec["methods"])
    out = _snakemake("--cores", "2", "--config", f"suite={suite}", f"results={results}",
                     cwd=ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert (results / "tiny" / "tables" / "table1.md").exists()
    resumed = sorted(results.glob("tiny/*/f8/*/seed0/metrics.json"))
    assert len(resumed) == len(spec["methods"])
    for path in resumed:
        reference = tiny_results / path.relative_to(results / "tiny")
        assert path.read_bytes() == reference.read_bytes(), path


def test_dry_run_honours_per_method_frame_counts(tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: pm\nkind: synthetic\nnum_frames: [14, 25]\nwidth: 64\nheight: 48\n"
        "cameras: [orbit_left_15deg]\nscenes: [{name: a, seed: 0}]\n"
        "methods: [depth_warp, {name: static, num_frames: [14]}]\n"
    )
    out = _snakemake("-n", "--config", f"suite={suite}", f"results={tmp_path}", cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "static/f14/" in out.stdout and "static/f25/" not in out.stdout
    assert "depth_warp/f14/" in out.stdout and "depth_warp/f25/" in out.stdout


def test_fid_runs_and_the_table_says_why_it_is_missing(tiny_results):
    from benchmark.reporting.report import load_fid_rows
    from benchmark.stages.fid import inception_available

    rows = load_fid_rows(tiny_results / "fid.csv")
    assert {r["method"] for r in rows} >= {"gt_render", "depth_warp", "static"}
    reason = inception_available()
    if reason is None:  # pragma: no cover - only where clean-fid's Inception is cached
        assert all(r["fid"] is not None for r in rows if r["num_runs"])
        return
    table = (tiny_results / "tables" / "table1.md").read_text()
    assert "Missing FID" in table and "fetch-weights" in table
    assert all(r["fid"] is None and r["reason"] for r in rows)


def test_html_report_has_tables_plots_and_a_video_per_method(tiny_results):
    report = tiny_results.parent / "report.html"
    out = _snakemake("--config", f"suite={TINY}", f"results={tiny_results.parent}",
                     "--report", str(report), cwd=ROOT)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    html = report.read_text()
    for item in ["table1.csv", "errors.png", "room05__orbit_left_15deg.png", "attention.png"]:
        assert item in html, item
    for method in ["gt_render", "depth_warp", "static", "trajattn", "trajattn_tiny"]:
        preview = tiny_results / "previews" / method / "f8" / "room05__orbit_left_15deg.mp4"
        assert preview.stat().st_size > 1000, method
        assert f"{method}" in html
    assert html.count(".mp4") >= 10  # two previews per method


def test_attention_figure_of_the_tiny_model_and_a_card_for_the_unavailable_one(tiny_results):
    tiny = tiny_results / "plots" / "attention" / "trajattn_tiny"
    maps = np.load(tiny / "maps.npz")
    assert any(k.endswith("trajectory") for k in maps.files)
    real = tiny_results / "plots" / "attention" / "trajattn"
    assert (real / "attention.png").exists() and not (real / "maps.npz").exists()
