"""Inputs from the field (issue 14): the workflow's kinds, on inputs these tests build.

Kinds 6 (paths with spaces), 7 (a scene named with '__'), 9 (``--config`` values Snakemake
hands over as strings) and a run's identity read from its metadata. The camera-file, image
and method kinds (1-5, 8) are in tests/test_reliability.py and tests/benchmark/stages/test_fid.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from benchmark.config.suites import (
    SuiteError,
    check_results_folder,
    load_schema,
    load_suite,
    validate,
)

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "data" / "tiny-suite.yaml"


def _snakemake(*args: str) -> subprocess.CompletedProcess:
    """The workflow from a fresh temporary working directory (nothing lands in the checkout,
    and no results folder is created before the workflow checks it); the checkout is on the
    jobs' PYTHONPATH for this module's test adapters."""
    exe = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")
    workdir = tempfile.mkdtemp(prefix="trajbench-snakemake-")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    return subprocess.run(
        [exe, "--snakefile", str(ROOT / "Snakefile"), "--directory", workdir, *args],
        cwd=ROOT, capture_output=True, text=True, env=env,
    )


def _tiny_suite(folder: Path, scene: str = "room05") -> Path:
    """The workflow tests' tiny suite with gt_render only and one camera, at ``folder``."""
    data = yaml.safe_load(TINY.read_text())
    data.update(methods=["gt_render"], cameras=["orbit_left_15deg"])
    data["scenes"] = [{"name": scene, "seed": 5}]
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / "tiny suite's.yaml"
    file.write_text(yaml.safe_dump(data))
    return file


# ------------------------------------------------------------ kind 9: --config from the CLI


def _cli(*entries: str) -> dict:
    """What Snakemake itself makes of ``--config ENTRY ...`` (its own parser)."""
    from snakemake.cli import parse_config

    return parse_config(list(entries))


#: Every documented key of configs/schemas/config.schema.yaml: a command line, and the value
#: the workflow must see after coercion.
CLI_CASES = {
    "suite": [("suite=smoke", "smoke"), ("suite=2024", "2024")],
    "methods": [("methods=[gt_render, depth_warp]", ["gt_render", "depth_warp"]),
                ("methods=gt_render", ["gt_render"])],
    "seeds": [("seeds=[0,1]", [0, 1]), ("seeds=[3]", [3]), ("seeds=7", [7])],
    "results": [("results=out dir/x", "out dir/x"), ("results=2024", "2024")],
    "poses/matcher": [("poses={matcher: sequential}", {"matcher": "sequential"})],
    "poses/mapper": [("poses={mapper: global}", {"mapper": "global"})],
    "poses/threads": [("poses={threads: 2}", {"threads": 2}),
                      ("poses={threads: 4, matcher: exhaustive}",
                       {"threads": 4, "matcher": "exhaustive"})],
}


def _documented_keys() -> set[str]:
    schema = load_schema("config")
    keys = set()
    for key, prop in schema["properties"].items():
        if prop.get("type") == "object":
            keys |= {f"{key}/{sub}" for sub in prop["properties"]}
        else:
            keys.add(key)
    return keys


def test_every_documented_config_key_has_a_command_line_case():
    assert set(CLI_CASES) == _documented_keys()


@pytest.mark.parametrize(
    ("key", "entry", "expected"),
    [(key, entry, expected) for key, cases in CLI_CASES.items() for entry, expected in cases],
)
def test_config_from_the_command_line_is_coerced_by_the_schema(key, entry, expected):
    top = key.split("/")[0]
    config = validate("config", _cli(entry), "workflow config", coerce=True)
    if isinstance(expected, dict):  # the keys not given get the schema's defaults
        props = load_schema("config")["properties"][top]["properties"]
        expected = {k: p["default"] for k, p in props.items() if "default" in p} | expected
    assert config[top] == expected
    assert type(config[top]) is type(expected)


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [("seeds=[zero]", "seeds/0: 'zero' is not of type 'integer'"),
     ("seeds=[-1]", "seeds/0: -1 is less than the minimum of 0"),
     ("poses={threads: many}", "poses/threads: 'many' is not of type 'integer'"),
     ("poses={threads: 0}", "poses/threads: 0 is less than the minimum of 1"),
     ("poses={matcher: fast}", "poses/matcher: 'fast' is not one of"),
     ("poses={thread: 2}", "'thread' was unexpected")],
)
def test_config_values_that_do_not_convert_are_still_refused(entry, fragment):
    with pytest.raises(SuiteError) as info:
        validate("config", _cli(entry), "workflow config", coerce=True)
    assert fragment in str(info.value)


@pytest.mark.workflow
def test_workflow_accepts_nested_config_values_from_the_command_line(tmp_path):
    """The field report's two command lines plan (dry run) with both seeds and 2 threads."""
    suite = _tiny_suite(tmp_path)
    out = _snakemake("-n", "--config", f"suite={suite}", f"results={tmp_path / 'r'}",
                     "seeds=[0,1]", "poses={threads: 2}")
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    assert "seed0/poses.json" in text and "seed1/poses.json" in text
    assert "threads: 2" in text


# ---------------------------------------------------- kind 6: paths with spaces and quotes


@pytest.mark.parametrize("results", ["a{b}", "x\ny", "", "  "])
def test_results_folder_snakemake_cannot_use_is_refused(results):
    with pytest.raises(SuiteError, match="results folder"):
        check_results_folder(results)


@pytest.mark.workflow
def test_results_folder_with_braces_is_refused_before_any_job(tmp_path):
    out = _snakemake("-n", "--config", f"suite={_tiny_suite(tmp_path)}",
                     f"results={tmp_path / 'out {x}'}")
    assert out.returncode != 0
    assert "braces are read as wildcards" in out.stdout + out.stderr
    assert not (tmp_path / "out {x}").exists()


def _words(command: str) -> list[str]:
    """The words bash makes of ``command`` (``$(dirname ...)`` evaluated, nothing run: the
    program is replaced by a function printing its arguments, redirections become words)."""
    shown = (command.replace(" 2>&1", "").replace(" > ", " '>' ")
             .replace(" && ", " '&&' "))
    script = "words() { printf '%s\\0' \"$@\"; }; words " + shown
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return out.stdout.split("\0")[:-1]


@pytest.mark.parametrize("suite_file", ["tiny-suite.yaml", "tiny-video-suite.yaml",
                                        "tiny-editing-suite.yaml"])
@pytest.mark.workflow
def test_every_path_in_every_shell_command_is_one_word(tmp_path, suite_file):
    """Field report 6, every rule: planned with a results folder and a suite file whose
    paths hold a space and a quote, each shell command keeps each path as one word."""
    suite = tmp_path / "suite dir" / "it's.yaml"
    suite.parent.mkdir()
    shutil.copy(ROOT / "tests" / "data" / suite_file, suite)
    results = tmp_path / "out dir" / "it's x"
    out = _snakemake("-n", "-p", "--config", f"suite={suite}", f"results={results}")
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    commands = [line.split("Shell command: ", 1)[1] for line in out.stdout.splitlines()
                if "Shell command: " in line]
    assert len(commands) >= 6
    for command in commands:
        for word in _words(command):  # a split path leaves a stem here and a tail there
            if word.startswith(str(tmp_path)):
                assert word == str(suite) or word.startswith(f"{results}/"), (word, command)
            assert not word.startswith(("dir/", "x/", "s x/", "s.yaml")), (word, command)
    assert sum(str(results) in w for c in commands for w in _words(c)) >= 2 * len(commands)


@pytest.mark.slow  # ~2 min; every command's quoting is checked by the dry run above
@pytest.mark.workflow
def test_workflow_with_spaces_and_quotes_in_every_path_runs_and_writes_only_there(tmp_path):
    """Field report 6: results folder and suite file with a space (and a quote): the tiny
    suite (gt_render only) runs to its tables, and nothing is written outside the results
    folder (unquoted, 'out dir/x' splits into 'out' here and 'dir/x' in the project)."""
    suite = _tiny_suite(tmp_path / "suite dir")
    results = tmp_path / "out dir" / "it's x"
    out = _snakemake("--cores", "2", "--config", f"suite={suite}", f"results={results}")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    tables = results / "tiny" / "tables"
    assert "gt_render" in (tables / "table1.md").read_text()
    runs = json.loads((results / "tiny" / "gt_render" / "f8" / "room05__orbit_left_15deg" /
                       "seed0" / "metrics.json").read_text())
    assert runs["status"] == "ok", runs.get("reason")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out dir", "suite dir"]
    assert sorted(p.name for p in (tmp_path / "out dir").iterdir()) == ["it's x"]
    assert not (ROOT / "dir").exists() and not (ROOT / "x").exists()


# ------------------------------------------------------------ kind 7: a scene named a__b


@pytest.mark.parametrize("scene", ["living__room", "room_", "_room", "..", "living room"])
def test_scene_name_that_run_folders_cannot_hold_is_refused_by_the_schema(tmp_path, scene):
    with pytest.raises(SuiteError) as info:
        load_suite(_tiny_suite(tmp_path, scene))
    message = str(info.value)
    assert "scenes/0/name" in message and "no '__'" in message


@pytest.mark.workflow
def test_workflow_refuses_a_scene_named_with_double_underscore_at_parse_time(tmp_path):
    out = _snakemake("-n", "--config", f"suite={_tiny_suite(tmp_path, 'living__room')}",
                     f"results={tmp_path / 'r'}")
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "'living__room' does not match" in text
    assert "no '__'" in text
    assert not (tmp_path / "r").exists()


# ----------------------------------------------- a run's identity comes from its metadata


def _run(folder: Path, identity: dict | None, metrics: dict) -> Path:
    folder.mkdir(parents=True)
    meta = {"status": "ok", "reason": ""} | ({"run": identity} if identity else {})
    (folder / "meta.json").write_text(json.dumps(meta))
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder / "metrics.json"


def test_aggregate_reads_a_runs_identity_from_its_metadata_not_its_folder(tmp_path):
    """Folder names that would split wrongly ('a__b__c', 'seedX') do not matter."""
    from benchmark.reporting.aggregate import collect

    identity = {"method": "m1", "num_frames": 14, "scene": "a.b", "camera": "orbit_left_15deg",
                "seed": 3}
    file = _run(tmp_path / "m1" / "f99" / "a__b__c" / "seed0", identity,
                {"method": "m1", "seed": 3, "num_frames": 14, "status": "ok", "ate": 0.25})
    runs = collect(tmp_path)
    assert runs.loc[0, ["method", "num_frames", "scene", "camera", "seed"]].tolist() == [
        "m1", 14, "a.b", "orbit_left_15deg", 3]
    assert runs.loc[0, "ate"] == 0.25
    assert collect(tmp_path, [file]).loc[0, "scene"] == "a.b"


def test_aggregate_refuses_a_run_whose_identity_is_not_recorded(tmp_path):
    from benchmark.reporting.aggregate import collect

    file = _run(tmp_path / "m" / "f8" / "s__c" / "seed0", None,
                {"method": "m", "seed": 0, "num_frames": 8, "status": "ok"})
    with pytest.raises(ValueError, match="scene, camera is recorded neither") as info:
        collect(tmp_path)
    assert str(file) in str(info.value)


def test_generation_records_the_runs_identity(tmp_path):
    """meta.json says what the run is, also when its camera file records no path."""
    from benchmark.cameras import save_unavailable_camera
    from benchmark.stages.generate import run_generation

    camera = tmp_path / "cameras" / "f12" / "my.scene" / "orbit_left_15deg.json"
    save_unavailable_camera("no cameras for this clip", camera)
    meta = run_generation("static", tmp_path / "scenes" / "my.scene", camera, 4, tmp_path / "run")
    assert meta["status"] == "failed"
    assert meta["run"] == {"method": "static", "num_frames": 12, "scene": "my.scene",
                           "camera": "orbit_left_15deg", "seed": 4}
    assert json.loads((tmp_path / "run" / "meta.json").read_text())["run"] == meta["run"]
