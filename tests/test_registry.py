"""The method registry and the ``trajbench methods`` command."""

from __future__ import annotations

import subprocess
import sys

import pytest

from methods import REGISTRY, UnknownMethodError, available_methods, get_method_class
from methods.base import Method


def test_every_registered_method_imports_and_is_named_as_registered():
    for name in available_methods():
        cls = get_method_class(name)
        assert issubclass(cls, Method)
        assert cls.name == name


def test_misspelt_name_suggests_the_right_one():
    with pytest.raises(UnknownMethodError, match="Did you mean 'depth_warp'"):
        get_method_class("depth_wrap")


def test_unknown_option_is_rejected_with_known_ones_listed():
    with pytest.raises(ValueError, match="inpaint_radius"):
        get_method_class("depth_warp")({"inpaint_radus": 2})


def test_cli_lists_methods_and_suggests_on_typo():
    out = subprocess.run(
        [sys.executable, "-m", "benchmark.cli", "methods"], capture_output=True, text=True
    )
    assert out.returncode == 0
    listed = [line.split()[0] for line in out.stdout.splitlines()]
    assert listed == sorted(REGISTRY)
    bad = subprocess.run(
        [sys.executable, "-m", "benchmark.cli", "methods", "gt_rendr"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert "gt_render" in bad.stderr


def test_generate_resources_are_declared_by_each_preset(tmp_path):
    """A rule never lists method names: weight-free and tiny presets ask no GPU, diffusion
    presets one GPU and 32 GB (Wan 14B more), and a malformed declaration is refused."""
    from benchmark.stages.generate import DEFAULT_GENERATE_RESOURCES, PRESETS_DIR, preset_resources

    for name in ("gt_render", "depth_warp", "static"):
        assert preset_resources(name) == {"gpu": 0, "mem_mb": 4000}, name
    tiny = sorted(p.stem for p in PRESETS_DIR.glob("*_tiny.yaml"))
    assert "trajattn_tiny" in tiny and "trajattn_wan_tiny" in tiny
    for name in tiny:  # tiny random components run on CPU nodes
        assert preset_resources(name)["gpu"] == 0, name
    for name in ("trajattn", "cameractrl", "nvs_solver", "motionctrl", "motion_i2v"):
        assert preset_resources(name) == DEFAULT_GENERATE_RESOURCES == {"gpu": 1, "mem_mb": 32000}
    assert preset_resources("trajattn_wan")["mem_mb"] > 32000
    bad = tmp_path / "bad.yaml"
    bad.write_text("adapter: static\nresources: {gpus: 1}\n")
    with pytest.raises(ValueError, match="resources"):
        preset_resources(str(bad))
    bad.write_text("adapter: static\nresources: {gpu: -1}\n")
    with pytest.raises(ValueError, match="non-negative"):
        preset_resources(str(bad))
