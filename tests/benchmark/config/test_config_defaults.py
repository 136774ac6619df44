"""The workflow config's pose defaults: one protocol, whichever way a run is configured."""

from __future__ import annotations

from pathlib import Path

import yaml

from benchmark.config.suites import apply_defaults, load_schema, validate
from benchmark.sfm.records import PoseRecoveryConfig

ROOT = Path(__file__).resolve().parents[3]

#: workflow config key -> PoseRecoveryConfig field it sets (rules/runs.smk passes them on)
POSE_KEYS = {"matcher": "matcher", "mapper": "mapper", "threads": "num_threads"}


def _schema_pose_defaults() -> dict:
    props = load_schema("config")["properties"]["poses"]["properties"]
    return {key: props[key]["default"] for key in POSE_KEYS}


def test_schema_pose_defaults_are_the_protocols():
    protocol = PoseRecoveryConfig()
    assert set(load_schema("config")["properties"]["poses"]["properties"]) == set(POSE_KEYS)
    assert _schema_pose_defaults() == {k: getattr(protocol, f) for k, f in POSE_KEYS.items()}


def test_shipped_config_states_the_protocol():
    shipped = yaml.safe_load((ROOT / "configs" / "config.yaml").read_text())
    assert shipped["poses"] == _schema_pose_defaults()


def test_partial_poses_mapping_gets_the_other_defaults():
    """`--config 'poses={threads: 2}'` keeps the protocol's matcher and mapper."""
    config = validate("config", {"poses": {"threads": "2"}}, "test", coerce=True)
    assert config["poses"] == {**_schema_pose_defaults(), "threads": 2}
    assert validate("config", {}, "test")["poses"] == _schema_pose_defaults()


def test_nested_defaults_never_overwrite_given_values():
    schema = {
        "properties": {
            "a": {"default": 1},
            "b": {"type": "object", "default": {}, "properties": {"c": {"default": 2}}},
        }
    }
    assert apply_defaults(schema, {}) == {"a": 1, "b": {"c": 2}}
    given = {"a": 5, "b": {"c": 7, "d": 0}}
    assert apply_defaults(schema, given) == given
