"""Wall time by rule from Snakemake's benchmark files (bench.workflow), and the
workflow's benchmark directives and per-clip grouping in dry runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench.workflow import by_rule, elapsed_from_log, main, read_benchmarks

ROOT = Path(__file__).resolve().parents[2]


def snakemake(*args: str, cwd: Path, env: dict[str, str] | None = None):
    exe = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TRAJBENCH_", "SNAKEMAKE_"))}
    return subprocess.run(
        [exe, *args], cwd=cwd, capture_output=True, text=True, env={**clean, **(env or {})}
    )


@pytest.mark.workflow
def test_sums_real_snakemake_benchmark_files(tmp_path, capsys):
    # a real (tiny) Snakemake run writes the files in its own format: 2 slow jobs, 1 fast
    (tmp_path / "Snakefile").write_text(
        textwrap.dedent(
            """
            rule all:
                input: expand("out/slow{i}.txt", i=[1, 2]), "out/fast.txt"
            rule slow:
                output: "out/slow{i}.txt"
                benchmark: "res/benchmarks/slow/{i}.tsv"
                shell: "sleep 1.2 && touch {output}"
            rule fast:
                output: "out/fast.txt"
                benchmark: "res/benchmarks/fast/only.tsv"
                shell: "touch {output}"
            """
        )
    )
    done = snakemake("--cores", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    jobs = read_benchmarks(tmp_path / "res" / "benchmarks")
    assert sorted(jobs["rule"]) == ["fast", "slow", "slow"]
    table = by_rule(jobs).set_index("rule")
    assert table.loc["slow", "jobs"] == 2 and table.loc["fast", "jobs"] == 1
    assert 2.4 <= table.loc["slow", "wall_s"] < 6 and table.loc["fast", "wall_s"] < 1.2
    assert table.loc["total", "wall_s"] == pytest.approx(jobs["s"].sum())
    assert list(table.index[:2]) == ["slow", "fast"]  # by summed wall time
    log = next((tmp_path / ".snakemake" / "log").glob("*.snakemake.log"))
    assert 1 <= elapsed_from_log(log) < 30  # the two slow jobs ran side by side
    main([str(tmp_path / "res"), "--log", str(log)])
    printed = capsys.readouterr().out
    assert re.search(r"^\s*slow\s+2\s", printed, re.M) and "elapsed (Snakemake log)" in printed


def test_missing_or_foreign_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no benchmark files"):
        read_benchmarks(tmp_path)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(ValueError, match="not a Snakemake benchmark file"):
        read_benchmarks(tmp_path)


def dry_run(results: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Dry run of the repository's workflow with ``results`` as its working directory (nothing
    written into the checkout)."""
    done = snakemake("-n", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(results),
                     *args, "--config", f"results={results}", cwd=results, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout + done.stderr


@pytest.mark.workflow
def test_smoke_jobs_write_benchmark_files_under_the_results(tmp_path):
    out = dry_run(tmp_path, "--cores", "2")
    paths = re.findall(r"^\s+benchmark: (\S+)$", out, re.M)
    assert paths and all(p.startswith(f"{tmp_path}/smoke/benchmarks/") for p in paths)
    rules = {Path(p).relative_to(tmp_path / "smoke" / "benchmarks").parts[0] for p in paths}
    assert {"scene", "camera", "generate", "poses", "reference", "score", "aggregate"} <= rules


@pytest.mark.workflow
@pytest.mark.skipif(
    __import__("importlib").util.find_spec("snakemake_executor_plugin_slurm") is None,
    reason="the SLURM profile needs snakemake-executor-plugin-slurm",
)
def test_slurm_profile_groups_each_clip_chain_only_when_asked(tmp_path):
    profile = ["--profile", str(ROOT / "configs" / "profiles" / "slurm")]
    assert "Group job" not in dry_run(tmp_path, *profile)
    grouped = dry_run(tmp_path, *profile, env={"TRAJBENCH_SLURM_GROUP_CLIPS": "1"})
    # smoke: 36 clips, each generate -> poses -> score submitted as one group job
    assert len(re.findall(r"Group job clip", grouped)) == 36
    assert not re.search(r"^rule (generate|poses|score):$", grouped, re.M)
