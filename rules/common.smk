"""The suite, its task object (benchmark.config.task) and the lists and input functions the
rules share. Imports nothing heavy: `snakemake -n` must not load torch (tests check it)."""

import re
import shlex
import sys

from benchmark.config.suites import check_results_folder, load_suite
from benchmark.config.task import Task
from benchmark.reporting.paper_tables import tables_for_suite
# Each method declares what a generation needs (preset `resources:`), and names are checked
# against the presets and the registry: both live with the methods.
from methods.presets import check_method_names, preset_resources


SUITE = load_suite(config["suite"])
# Method -> frame counts it runs at (config.yaml's list runs each at all the suite's counts).
METHOD_FRAMES = (
    {name: SUITE.frame_counts for name in config["methods"]}
    if config["methods"]
    else SUITE.methods
)
METHODS = list(METHOD_FRAMES)
check_method_names(METHODS)  # a typo stops here, with the closest names
SEEDS = config["seeds"] or SUITE.seeds
# Filled by the schema's defaults (validate); tests/benchmark/config/test_config_defaults.py
# holds them equal to PoseRecoveryConfig's and configs/config.yaml's: one protocol.
POSES = config["poses"]
# Every path in a shell command is quoted ({R:q}, {output:q}, shlex.quote in params), so a
# results folder may hold spaces or quotes; braces and line breaks are refused here.
R = f"{check_results_folder(config['results'])}/{SUITE.name}"
# Image / video / edit task x synthetic / real source: which inputs and arguments jobs need.
TASK = Task(SUITE, R)
# The `trajbench` CLI of the interpreter running Snakemake (works without an activated venv).
PYTHON = shlex.quote(sys.executable)
TRAJBENCH = f"{PYTHON} -m benchmark.cli"
RUN = R + "/{method}/f{frames}/{scene}__{camera}/seed{seed}"
# Snakemake `benchmark:` files (wall s, cpu_time, max_rss per job), one folder per rule:
# `python -m bench.workflow <results>/<suite>` sums them by rule.
BENCH = R + "/benchmarks"
# Video tasks re-shoot an input video per scene and frame count (paper Table 2); edit tasks
# keep its motion from an edited first frame (paper Sec. 4.3).
VIDEO = R + "/videos/f{frames}/{scene}"
EDIT = R + "/edits/{scene}"
METHODS_ARG = " ".join(shlex.quote(m) for m in METHODS)
ATTENTION_METHODS = [m for m in METHODS if m.startswith("trajattn")]
PAPER_TABLES = tables_for_suite(SUITE.name)


def one_of(names):
    """Wildcard regex matching exactly the configured names."""
    return "|".join(re.escape(str(name)) for name in names)


wildcard_constraints:
    method=one_of(METHODS),
    scene=one_of(SUITE.scenes),
    camera=one_of(SUITE.cameras),
    frames=one_of(SUITE.frame_counts),
    seed=one_of(SEEDS),


def all_metrics():
    return [
        f"{R}/{method}/{combo.key}/seed{seed}/metrics.json"
        for method, frame_counts in METHOD_FRAMES.items()
        for combo in SUITE.combinations(frame_counts)
        for seed in SEEDS
    ]


def all_generated():
    return [m.replace("/metrics.json", "/meta.json") for m in all_metrics()]


def all_references():
    """Every exact render the fidelity metrics compare against (synthetic sources)."""
    if not TASK.synthetic:
        return []
    return sorted({
        f"{R}/reference/{combo.key}/done"
        for frame_counts in METHOD_FRAMES.values()
        for combo in SUITE.combinations(frame_counts)
    })


def preview_targets():
    """MP4 previews for the report: each method's first two clips (first seed)."""
    return [
        f"{R}/previews/{method}/{combo.key}.mp4"
        for method, frame_counts in METHOD_FRAMES.items()
        for combo in SUITE.combinations(frame_counts)[:2]
    ]


def attention_clip():
    """The clip the attention figure is made on: the suite's first combination."""
    return SUITE.combinations([max(SUITE.frame_counts)])[0]
