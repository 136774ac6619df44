"""The README as a newcomer reads it: short, quickstart first, the commands CI runs, a table
that lists every suite as its YAML describes it, and links that lead somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SUITES = sorted((ROOT / "configs" / "suites").glob("*.yaml"))

# The schema's kinds as task (source); the README's table names suites this way.
TASK_OF_KIND = {
    "synthetic": "image (synthetic)",
    "image": "image (real)",
    "synthetic-video": "video (synthetic)",
    "video": "video (real)",
    "synthetic-editing": "edit (synthetic)",
    "editing": "edit (real)",
}


# Files a guide tells the reader to create.
WRITTEN_BY_THE_READER = {"configs/suites/orbit-sweep.yaml"}


def _text() -> str:
    return README.read_text()


def _bash_lines() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", _text(), flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines()]


def _suite_rows() -> dict[str, list[str]]:
    rows = {}
    for line in _text().splitlines():
        m = re.match(r"\| `([\w.-]+)` \|(.*)\|$", line)
        if m:
            rows[m[1]] = [cell.strip() for cell in m[2].split("|")]
    return rows


def test_readme_is_short_and_starts_with_what_it_is_then_the_quickstart():
    lines = _text().splitlines()
    assert len(lines) <= 130
    headings = [line for line in lines if line.startswith("## ")]
    assert headings == ["## Quickstart", "## Suites", "## GPU and weights", "## Documentation"]
    assert lines.index("## Quickstart") < 20


def test_the_setup_and_test_commands_are_the_ones_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    bash = _bash_lines()
    for command in ('pip install -e ".[test]"', "python -m pytest -q"):
        assert command in bash, command
        assert command in ci, command
    assert "snakemake --cores 2" in bash
    assert any(line.startswith("snakemake --report ") for line in bash)
    # In quickstart order: install, run, report, test.
    order = [bash.index('pip install -e ".[test]"'), bash.index("snakemake --cores 2"),
             next(i for i, line in enumerate(bash) if line.startswith("snakemake --report")),
             bash.index("python -m pytest -q")]
    assert order == sorted(order)


def test_the_torch_pins_in_the_readme_are_the_projects():
    deps = (ROOT / "pyproject.toml").read_text()
    for pin in re.findall(r"`(torch(?:vision)?==[\d.]+)`", _text()):
        assert f'"{pin}"' in deps, pin
    assert "`torch==" in _text() and "`torchvision==" in _text()


def test_the_suite_table_lists_every_suite_as_its_yaml_says():
    rows = _suite_rows()
    assert sorted(rows) == [p.stem for p in SUITES]
    for path in SUITES:
        suite = yaml.safe_load(path.read_text())
        task, size, purpose = rows[path.stem]
        assert task == TASK_OF_KIND[suite["kind"]], path.stem
        assert purpose
        assert size.startswith(f"{len(suite['scenes'])} "), (path.stem, size)
        if suite["cameras"] != ["static"]:  # editing suites keep the video's cameras
            assert f"{len(suite['cameras'])} paths" in size, (path.stem, size)
        if "calibration" not in suite:  # calibration runs its own resolutions
            assert f"{suite['width']}x{suite['height']}" in size, (path.stem, size)
        counts = suite["num_frames"] if isinstance(suite["num_frames"], list) else [
            suite["num_frames"]]
        for count in counts:
            assert str(count) in size or "calibration" in suite, (path.stem, count)


def test_the_default_run_is_described_as_configured():
    config = yaml.safe_load((ROOT / "configs" / "config.yaml").read_text())
    suite = yaml.safe_load((ROOT / "configs" / "suites" / f"{config['suite']}.yaml").read_text())
    text = " ".join(_text().split())
    runs = len(suite["scenes"]) * len(suite["cameras"]) * len(suite["methods"])
    assert (f"runs the default `{suite['name']}` suite: {len(suite['scenes'])} synthetic scenes "
            f"x {len(suite['cameras'])} camera paths, {suite['num_frames']} frames at "
            f"{suite['width']}x{suite['height']}") in text
    assert f"({runs} runs)" in text
    methods = ", ".join(f"`{m}`" for m in suite["methods"][:-1]) + f" and `{suite['methods'][-1]}`"
    assert methods in text


@pytest.mark.parametrize("doc", ["README.md", "docs/adding-a-suite.md", "docs/architecture.md",
                                 "docs/trajattn.md"])
def test_relative_links_and_named_files_exist(doc):
    path = ROOT / doc
    text = path.read_text()
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
        assert (path.parent / target).exists(), f"{doc}: broken link {target}"
    # Repository files named in backticks (a path with a suffix or a trailing slash).
    for name in re.findall(r"`((?:benchmark|bench|methods|trajattn|configs|rules|docs|tests|"
                           r"scripts|profiles)/[\w./-]*)`", text):
        if "*" in name or "<" in name or "{" in name or name in WRITTEN_BY_THE_READER:
            continue
        assert (ROOT / name).exists(), f"{doc}: names {name}, which does not exist"


def _architecture_rows() -> list[list[str]]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Stage -> file to open")[1].split("\n## ")[0]
    return [[cell.strip() for cell in line.strip("|").split("|")]
            for line in section.splitlines() if line.startswith("| ") and "---" not in line][1:]


def test_the_stage_table_names_every_rule_and_real_files():
    import subprocess
    import sys

    rules_text = "".join(p.read_text() for p in [ROOT / "Snakefile",
                                                  *sorted((ROOT / "rules").glob("*.smk"))])
    workflow_rules = set(re.findall(r"^rule (\w+):", rules_text, flags=re.M)) - {"all"}
    rows = _architecture_rows()
    named = {r for row in rows for r in re.findall(r"`(\w+)`", row[0])}
    assert named == workflow_rules
    help_text = subprocess.run([sys.executable, "-m", "benchmark.cli", "--help"],
                               capture_output=True, text=True, cwd=ROOT).stdout
    for rule_cell, cli, module in rows:
        for sub in re.findall(r"`trajbench ([\w-]+)`", cli):
            assert re.search(rf"^\s+{sub}\s", help_text, flags=re.M), cli
        for dotted in re.findall(r"`python -m ([\w.]+)`", cli):
            assert (ROOT / (dotted.replace(".", "/") + ".py")).exists(), cli
        assert "`trajbench " in cli or "`python -m " in cli, cli
        first = re.match(r"`(?:trajbench|python -m) ([\w.-]+)`", cli)[1]
        for rule in re.findall(r"`(\w+)`", rule_cell):  # the rule really calls the first one
            body = rules_text.split(f"rule {rule}:")[1].split("\nrule ")[0]
            call = f"{{TRAJBENCH}} {first} " if cli.startswith("`trajbench") else f"-m {first} "
            assert call in body, (rule, cli)
        for name in re.findall(r"`([\w/.-]+(?:\.py|/))`", module):
            where = ROOT / name if name.split("/")[0] in ("methods", "trajattn", "configs") \
                else ROOT / "benchmark" / name
            assert where.exists(), f"architecture.md names {name}: no {where}"


def test_the_trajattn_api_in_the_docs_imports():
    text = (ROOT / "docs" / "trajattn.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S)]
    imports = "\n".join(line for line in block.splitlines() if line.startswith("from "))
    assert imports.count("\n") >= 2
    exec(compile(imports, "docs/trajattn.md", "exec"), {})


@pytest.mark.parametrize("section, module, config", [
    ("## Training the SVD branch", "trajattn.train", "TrainConfig"),
    ("### Training", "trajattn.wan.train", "WanTrainConfig"),
])
def test_the_training_flags_in_the_docs_exist(section, module, config):
    import dataclasses
    import importlib

    text = (ROOT / "docs" / "trajattn.md").read_text()
    part = text.split(f"\n{section}\n")[1].split("\n#")[0]
    flags = set(re.findall(r"(?<![\w-])--([a-z][a-z-]+)", part))
    assert flags, section
    cls = getattr(importlib.import_module(module), config)
    known = {f.name.replace("_", "-") for f in dataclasses.fields(cls)} | {"no-resume"}
    known.add("backbone")  # trajbench train's own flag (svd | wan)
    assert flags <= known, flags - known


def test_the_architecture_lists_every_bench_script():
    text = (ROOT / "docs" / "architecture.md").read_text()
    listed = set(re.findall(r"^\| `(bench/\w+\.py)` \|", text, flags=re.M))
    scripts = {f"bench/{p.name}" for p in (ROOT / "bench").glob("*.py") if p.name != "__init__.py"}
    assert listed == scripts
