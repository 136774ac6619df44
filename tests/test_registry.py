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
