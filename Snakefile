"""trajbench workflow: suite -> scenes, camera paths -> generation -> poses -> metrics ->
tables and plots. Wires files only: every rule (rules/*.smk) calls a tested `trajbench`
subcommand; rules/common.smk holds the suite, its task object and the input functions."""

import os

from benchmark.config.suites import validate


# Beside this file, not the working directory, so `--directory` may point anywhere.
configfile: os.path.join(workflow.basedir, "configs", "config.yaml")


report: "report/workflow.rst"


# Every job is single-threaded (parallelism comes from running jobs side by side): without
# this, each job's torch/OpenMP spins one thread per core and concurrent jobs thrash.
shell.prefix("export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1; ")


# --config values nested in lists and mappings arrive as strings: coerced by the schema's types
config = validate("config", config, "workflow config", coerce=True)


include: "rules/common.smk"
include: "rules/inputs.smk"
include: "rules/runs.smk"
include: "rules/report.smk"


# Run on the submitting host under a cluster executor: `all` does nothing, and downloads need
# the network that compute nodes often lack.
localrules:
    all,
    fetch_image,
    fetch_edited_image,


rule all:
    input:
        f"{R}/tables/{TASK.table}.md",
        f"{R}/plots/errors.png",
        preview_targets(),
        [f"{R}/plots/attention/{m}/attention.png" for m in ATTENTION_METHODS],
        [f"{R}/tables/paper_{name}.md" for name in PAPER_TABLES],
