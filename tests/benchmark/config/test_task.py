"""The workflow's task object (benchmark.config.task): which inputs and arguments each kind
of suite gives a job, checked against the six kinds the suite schema lists."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from benchmark.config.suites import load_suite
from benchmark.config.task import KINDS, Task

ROOT = Path(__file__).resolve().parents[3]
WC = SimpleNamespace(scene="room 1", camera="orbit_left_15deg", frames="14", method="m", seed="0")


@pytest.mark.parametrize("name, kind, source, table", [
    ("smoke", "image", "synthetic", "table1"),
    ("paper-image-230", "image", "real", "table1"),
    ("synthetic-video", "video", "synthetic", "table2"),
    ("paper-video", "video", "real", "table2"),
    ("synthetic-editing", "edit", "synthetic", "table_edit"),
    ("paper-editing", "edit", "real", "table_edit"),
])
def test_each_suite_kind_is_a_task_and_a_source(name, kind, source, table):
    task = Task(load_suite(name), "res/s")
    assert (task.kind, task.source, task.table) == (kind, source, table)
    # The task object agrees with the suite's own predicates it replaces in the rules.
    suite = task.suite
    assert task.synthetic == suite.is_synthetic
    assert task.has_video == suite.is_video
    assert task.edits == suite.is_editing


def test_kinds_are_exactly_the_schema_enum():
    schema = yaml.safe_load((ROOT / "configs" / "schemas" / "suite.schema.yaml").read_text())
    assert sorted(KINDS) == sorted(schema["properties"]["kind"]["enum"])


def test_synthetic_image_task_needs_only_the_reference():
    task = Task(load_suite("smoke"), "res/smoke")
    assert task.scene_source(WC) == [] and task.video_input(WC) == []
    assert task.edit_input(WC) == [] and task.video_arg(WC) == "" and task.edit_arg(WC) == ""
    assert task.reference_input(WC) == "res/smoke/reference/f14/room 1__orbit_left_15deg/done"
    # quoted for the shell: the results folder may hold spaces
    assert task.reference_arg(WC) == (
        "--reference-dir 'res/smoke/reference/f14/room 1__orbit_left_15deg'"
    )
    assert task.depth_gpus == 0 and task.preview_image_dir == "scenes"
    assert task.score_video_input(WC) == [] and task.score_args(WC) == ""


def test_real_video_task_fetches_and_uses_the_video_but_has_no_reference():
    task = Task(load_suite("paper-video"), "r")
    assert task.scene_source(WC) == "r/scenes/room 1/source"
    assert task.video_input(WC) == "r/videos/f14/room 1/camera.json"
    assert task.video_arg(WC) == "--video-dir 'r/videos/f14/room 1'"
    assert task.reference_input(WC) == [] and task.reference_arg(WC) == ""
    assert task.depth_gpus == 1
    # scoring a re-shot video needs no input video (that is for editing track scores)
    assert task.score_video_input(WC) == [] and task.score_args(WC) == ""


def test_edit_tasks_give_the_edit_and_the_video_to_scoring():
    task = Task(load_suite("synthetic-editing"), "r")
    assert task.edit_input(WC) == "r/edits/room 1/edit.json"
    assert task.edited_source(WC) == []  # synthetic edits are made, not fetched
    assert task.score_video_input(WC) == "r/videos/f14/room 1/camera.json"
    assert task.score_args(WC) == "--video-dir 'r/videos/f14/room 1' --edit-dir 'r/edits/room 1'"
    assert task.preview_image_dir == "edits"
    real = Task(load_suite("paper-editing"), "r")
    assert real.edited_source(WC) == "r/edits/room 1/source"
    assert real.reference_input(WC) == []
