"""The Snakemake profiles in configs/profiles: the SLURM one plans every job of the smoke and
paper-image-230 suites with the resources its rule needs (a GPU only where the Snakefile asks
for one) and turns them into the sbatch options we expect; the one-GPU-box one runs GPU jobs
one at a time while CPU jobs run beside them."""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.workflow.test_workflow import workdir_for

ROOT = Path(__file__).resolve().parents[2]
SLURM = ROOT / "configs" / "profiles" / "slurm"
LOCAL = ROOT / "configs" / "profiles" / "local"
# Methods whose presets declare no GPU (`resources: {gpu: 0, mem_mb: 4000}`) among the paper
# suite's; every other generate job asks one GPU and 32 GB (trajattn_wan: 96 GB).
CPU_METHODS = {"gt_render", "depth_warp", "static"}

# Every test here plans or runs a Snakemake workflow: `-m "not workflow"` skips them.
pytestmark = pytest.mark.workflow

needs_slurm_plugin = pytest.mark.skipif(
    importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
    reason="snakemake-executor-plugin-slurm is not installed "
    "(pip install 'snakemake-executor-plugin-slurm>=2.8,<3'); the SLURM profile needs it",
)


def _snakemake(*args: str, env: dict[str, str] | None = None, snakefile: Path = ROOT / "Snakefile",
               directory: Path | None = None) -> subprocess.CompletedProcess:
    """Run Snakemake on ``snakefile`` in ``directory`` (default: the run's temporary
    ``results=`` folder, never the checkout) with a clean profile environment."""
    exe = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")
    directory = directory or workdir_for(args)
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("TRAJBENCH_SLURM_", "SNAKEMAKE_"))}
    return subprocess.run(
        [exe, "--snakefile", str(snakefile), "--directory", str(directory), *args],
        cwd=directory, capture_output=True, text=True, env={**clean, **(env or {})},
    )


def planned_jobs(stdout: str) -> list[dict]:
    """Jobs of a dry run's printout: rule, wildcards, resources (ints where numeric), threads."""
    jobs = []
    for block in re.split(r"^(?=(?:local)?rule \w+:$)", stdout, flags=re.M):
        head = re.match(r"(?:local)?rule (\w+):$", block, flags=re.M)
        if not head:
            continue
        fields = dict(re.findall(r"^    (\w+): (.*)$", block, flags=re.M))
        resources = {}
        for item in fields.get("resources", "").split(", "):
            if "=" in item:
                key, value = item.split("=", 1)
                numeric = value.isdigit() and (value == "0" or not value.startswith("0"))
                resources[key] = int(value) if numeric else value
        wildcards = dict(kv.split("=", 1) for kv in fields.get("wildcards", "").split(", ") if kv)
        jobs.append({"rule": head.group(1), "wildcards": wildcards, "resources": resources,
                     "threads": int(fields.get("threads", 1))})
    return jobs


def _slurm_dry_run(results: Path, *config: str, targets: list[str] = (), **env: str) -> list[dict]:
    out = _snakemake("-n", "--profile", str(SLURM), *targets, "--config", f"results={results}",
                     *config, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return planned_jobs(out.stdout)


PAPER_ENV = {"TRAJBENCH_SLURM_PARTITION": "all", "TRAJBENCH_SLURM_ACCOUNT": "0042"}


def paper_sample_targets(results: Path) -> list[str]:
    """metrics.json of one image and one path for every method at each of its frame counts
    in paper-image-230: every rule up to score, GPU and CPU methods, in a small DAG."""
    from benchmark.config.suites import load_suite

    suite = load_suite("paper-image-230")
    scene, camera, seed = next(iter(suite.scenes)), next(iter(suite.cameras)), suite.seeds[0]
    return [
        f"{results}/{suite.name}/{method}/f{frames}/{scene}__{camera}/seed{seed}/metrics.json"
        for method, frame_counts in suite.methods.items()
        for frames in frame_counts
    ]


@pytest.fixture(scope="module")
def paper_jobs(tmp_path_factory) -> list[dict]:
    """A sample of the paper-image-230 plan through the SLURM profile, with a partition named
    like a Python builtin and an account with a leading zero (both must stay strings)."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    results = tmp_path_factory.mktemp("results")
    return _slurm_dry_run(results, "suite=paper-image-230", targets=paper_sample_targets(results),
                          **PAPER_ENV)


class Job(SimpleNamespace):
    """Just enough of a Snakemake job for the plugin's sbatch-string and partition code."""


class JobResources(dict):
    """Resources readable as ``r.get("x")`` and ``r.x``, like Snakemake's."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


def as_plugin_job(job: dict) -> Job:
    return Job(name=job["rule"], rule=job["rule"], threads=job["threads"],
               resources=JobResources(job["resources"]))


def sbatch_options(job: dict) -> str:
    """The sbatch command the plugin would submit for ``job`` (partition/account left out:
    the plugin validates those against the live cluster)."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    plugin_job = as_plugin_job(job)
    params = {"run_uuid": "uuid", "slurm_logfile": "log", "comment_str": job["rule"],
              "account": "", "partition": "", "workdir": str(ROOT)}
    return get_submit_command(plugin_job, params) + set_gres_string(plugin_job)


@needs_slurm_plugin
def test_slurm_dry_run_of_the_smoke_suite_needs_no_gpu_and_no_cluster_names(tmp_path):
    """Unset partition/account variables leave them out (cluster default, plugin's guess)."""
    jobs = _slurm_dry_run(tmp_path)
    by_rule = {job["rule"] for job in jobs}
    assert {"scene", "camera", "generate", "reference", "poses", "score", "aggregate"} <= by_rule
    submitted = [job for job in jobs if job["rule"] != "all"]
    for job in submitted:
        res = job["resources"]
        assert "slurm_partition" not in res and "slurm_account" not in res, job
        assert res.get("gpu", 0) == 0, job  # smoke: weight-free methods, synthetic depth
        assert res["runtime"] > 0 and res["mem_mb"] > 0, job
        # aggregate draws with up to 4 processes, capped by the node size (sinfo) if known
        assert res["cpus_per_task"] == 1 or job["rule"] == "aggregate", job
        assert 1 <= res["cpus_per_task"] <= 4, job
    generate = [job["resources"] for job in jobs if job["rule"] == "generate"]
    # weight-free methods declare 4 GB: they fit small CPU nodes (32 GB was refused on one)
    assert len(generate) == 36 and {r["mem_mb"] for r in generate} == {4000}


def _fake_cluster(tmp_path: Path, nodes: str) -> dict[str, str]:
    """Environment whose ``sinfo`` prints ``nodes`` (``-N -o "%P %c"``: partition, CPUs of
    one node per line) and whose ``scontrol`` answers (a one-line config)."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir(parents=True)
    for name, text in (("sinfo", nodes), ("scontrol", "ClusterName = test")):
        tool = bin_dir / name
        tool.write_text(f"#!/bin/sh\nprintf '%s' '{text}'\n")
        tool.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def _threads_by_rule(jobs: list[dict]) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for job in jobs:
        out.setdefault(job["rule"], set()).add(job["resources"].get("cpus_per_task"))
    return out


@needs_slurm_plugin
def test_no_job_asks_more_cpus_than_the_partitions_largest_node(tmp_path):
    """A job asking more CPUs than any node has stays pending for ever (seen with aggregate's
    4 threads, and with a group of 4 clips, on a 2-CPU node): the profile's `cores` is the
    partition's largest node."""
    nodes = "debug* 2\ndebug* 3\nbig 16\n"
    small = _slurm_dry_run(tmp_path / "a", "poses={threads: 8}",
                           **_fake_cluster(tmp_path / "a", nodes))
    threads = _threads_by_rule(small)
    assert threads["aggregate"] == {3} and threads["poses"] == {3}
    assert threads["generate"] == {1}
    big = _slurm_dry_run(tmp_path / "b", "poses={threads: 8}",
                         TRAJBENCH_SLURM_PARTITION="big", **_fake_cluster(tmp_path / "b", nodes))
    threads = _threads_by_rule(big)
    assert threads["aggregate"] == {4} and threads["poses"] == {8}


def planned_groups(stdout: str) -> list[list[tuple[str, tuple]]]:
    """Group jobs of a dry run's printout: (rule, wildcards) of each member."""
    groups: list[list[tuple[str, tuple]]] = []
    current: list[tuple[str, tuple]] | None = None
    rule = None
    for line in stdout.splitlines():
        if "Group job clip" in line:
            current = []
            groups.append(current)
        elif re.match(r"(?:local)?rule \w+:$|Job stats:", line):
            current = None  # a job outside any group, or the end of the plan
        elif current is not None and (head := re.match(r"    rule (\w+):$", line)):
            rule = head.group(1)
        elif current is not None and (found := re.match(r"        wildcards: (.*)$", line)):
            current.append((rule, tuple(sorted(found.group(1).split(", ")))))
    return groups


@needs_slurm_plugin
@pytest.mark.parametrize("per_job", [1, 4])
def test_grouping_submits_each_clips_chain_as_one_job(tmp_path, per_job):
    """TRAJBENCH_SLURM_GROUP_CLIPS=N: generate, poses and score of one clip (method, scene,
    camera, frames, seed) go to SLURM together, N clips per job; nothing else is grouped."""
    out = _snakemake("-n", "--profile", str(SLURM), "--config", f"results={tmp_path}",
                     env={"TRAJBENCH_SLURM_GROUP_CLIPS": str(per_job)})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    groups = planned_groups(out.stdout)
    assert len(groups) == 36 // per_job
    chains: dict[tuple, list[str]] = {}
    for group in groups:
        assert len(group) == 3 * per_job
        for rule, wildcards in group:
            chains.setdefault(wildcards, []).append(rule)
    assert len(chains) == 36
    assert all(sorted(rules) == ["generate", "poses", "score"] for rules in chains.values())
    ungrouped = {job["rule"] for job in planned_jobs(out.stdout)}
    assert {"generate", "poses", "score"}.isdisjoint(ungrouped)
    assert {"scene", "camera", "reference", "aggregate"} <= ungrouped


def check_paper_plan(jobs: list[dict]) -> None:
    """Partition/account from the environment; a GPU for diffusion methods and real-image
    depth only; poses ask for CPUs and memory."""
    submitted = [job for job in jobs if job["rule"] != "all"]
    assert {job["resources"]["slurm_partition"] for job in submitted} == {"all"}
    assert {job["resources"]["slurm_account"] for job in submitted} == {"0042"}
    gpu = {}
    for job in submitted:
        gpu.setdefault(job["rule"], set()).add(job["resources"].get("gpu", 0))
        if job["rule"] == "generate":
            method = job["wildcards"]["method"]
            expected = 0 if method in CPU_METHODS else 1
            assert job["resources"]["gpu"] == expected, job
            memory = 4000 if method in CPU_METHODS else 96000 if method == "trajattn_wan" else 32000
            assert job["resources"]["mem_mb"] == memory and job["resources"]["runtime"] == 120
        if job["rule"] == "poses":
            assert "gpu" not in job["resources"], job
            assert job["resources"]["mem_mb"] == 8000 and job["resources"]["runtime"] == 60
            assert job["resources"]["cpus_per_task"] == job["threads"] == 1
    assert gpu["generate"] == {0, 1}
    assert gpu["scene"] == {1}  # Depth-Anything-V2 on the real images
    for rule in ("fetch_image", "camera", "poses", "score"):
        assert gpu[rule] == {0}, rule


@needs_slurm_plugin
def test_slurm_dry_run_of_paper_image_230_sample(paper_jobs):
    check_paper_plan(paper_jobs)
    generate = [job["wildcards"] for job in paper_jobs if job["rule"] == "generate"]
    # trajattn and trajattn_exact x3, four baselines, trajattn_wan x1, depth_warp x4, static x4
    assert len(generate) == 19


@pytest.mark.slow
@needs_slurm_plugin
def test_slurm_dry_run_of_the_whole_paper_image_230_suite(tmp_path):
    """All ~9,700 jobs (about 40 s of DAG building): every one gets valid resources."""
    jobs = _slurm_dry_run(tmp_path, "suite=paper-image-230", **PAPER_ENV)
    check_paper_plan(jobs)
    assert sum(job["rule"] == "poses" for job in jobs) == 230 * 19
    assert [job["resources"].get("gpu", 0) for job in jobs if job["rule"] == "aggregate"] == [0]


@needs_slurm_plugin
def test_slurm_sbatch_options_for_generate_and_poses(paper_jobs):
    """What the plugin (2.8) would pass to sbatch for the planned jobs."""
    first = {}
    for job in paper_jobs:
        # trajattn_wan declares more host memory than the other diffusion methods: the
        # plan's order varies from run to run, so it is checked on its own below.
        if (job.get("wildcards") or {}).get("method") == "trajattn_wan":
            if job["rule"] == "generate":
                first.setdefault("wan", job)
            continue
        kind = (job["rule"], job["resources"].get("gpu", 0))
        first.setdefault(kind, job)
    gpu_generate = sbatch_options(first[("generate", 1)])
    assert re.search(r"--gpus=1\b", gpu_generate)
    assert "--mem 32000" in gpu_generate and "-t 120" in gpu_generate
    wan = sbatch_options(first["wan"])
    assert re.search(r"--gpus=1\b", wan) and "--mem 96000" in wan
    assert "--cpus-per-task=1" in gpu_generate
    cpu_generate = sbatch_options(first[("generate", 0)])
    assert "--gpus" not in cpu_generate and "--gres" not in cpu_generate
    poses = sbatch_options(first[("poses", 0)])
    assert "--gpus" not in poses and "--gres" not in poses
    assert "--mem 8000" in poses and "-t 60" in poses and "--cpus-per-task=1" in poses
    assert "--ntasks=1" in poses


@needs_slurm_plugin
def test_example_partition_file_sends_exactly_the_gpu_jobs_to_the_gpu_partition(paper_jobs):
    from snakemake_executor_plugin_slurm.partitions import get_best_partition, read_partition_file

    partitions = read_partition_file(SLURM / "partitions.example.yaml")
    logger = logging.getLogger("test_profiles")
    seen = set()
    for job in paper_jobs:
        if job["rule"] == "all":
            continue
        res = {k: v for k, v in job["resources"].items() if k != "slurm_partition"}
        needs_gpu = res.get("gpu", 0) > 0
        if (job["rule"], needs_gpu) in seen:
            continue
        seen.add((job["rule"], needs_gpu))
        chosen = get_best_partition(partitions, as_plugin_job({**job, "resources": res}), logger)
        assert chosen == ("gpu" if needs_gpu else "cpu"), job
    assert ("generate", True) in seen and ("generate", False) in seen and ("poses", False) in seen


def test_local_profile_plans_the_default_run(tmp_path):
    out = _snakemake("-n", "--profile", str(LOCAL), "--config", f"results={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    jobs = planned_jobs(out.stdout)
    assert sum(job["rule"] == "generate" for job in jobs) == 36


GPU_CPU_SNAKEFILE = textwrap.dedent(r'''
    STAMP = ("date +%s.%N > {output}.tmp; sleep 1; date +%s.%N >> {output}.tmp; "
             "mv {output}.tmp {output}")

    rule all:
        input: expand("gpu{i}.t", i=range(3)), expand("cpu{i}.t", i=range(3))

    rule gpu_job:
        output: "gpu{i}.t"
        resources: gpu=1
        shell: STAMP

    rule cpu_job:
        output: "cpu{i}.t"
        shell: STAMP
''')


GPU_TARGETS = [f"gpu{i}.t" for i in range(3)]


def _intervals(folder: Path, prefix: str) -> list[tuple[float, float]]:
    spans = []
    for path in sorted(folder.glob(f"{prefix}*.t")):
        start, end = (float(line) for line in path.read_text().split())
        spans.append((start, end))
    return spans


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _run_gpu_cpu_workflow(folder: Path, *args: str) -> tuple[list, list]:
    folder.mkdir()
    (folder / "Snakefile").write_text(GPU_CPU_SNAKEFILE)
    out = _snakemake(*args, snakefile=folder / "Snakefile", directory=folder)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return _intervals(folder, "gpu"), _intervals(folder, "cpu")


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 cores to run jobs side by side")
def test_local_profile_runs_gpu_jobs_one_at_a_time_beside_cpu_jobs(tmp_path):
    """Real scheduling with the profile: GPU jobs never overlap, a CPU job runs beside one.
    Without the profile, on the same cores, GPU jobs do overlap (so the profile is what
    serialises them)."""
    gpu, cpu = _run_gpu_cpu_workflow(tmp_path / "profile", "--profile", str(LOCAL))
    assert len(gpu) == len(cpu) == 3
    assert not any(_overlap(a, b) for i, a in enumerate(gpu) for b in gpu[i + 1:])
    assert any(_overlap(g, c) for g in gpu for c in cpu)

    gpu, _ = _run_gpu_cpu_workflow(tmp_path / "plain", "--cores", "2", *GPU_TARGETS)
    assert any(_overlap(a, b) for i, a in enumerate(gpu) for b in gpu[i + 1:])
