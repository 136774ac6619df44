"""docs/adding-a-method.md, followed to the letter: its worked example (one file plus one preset)
passes ``trajbench check-method`` and its camera conversion matches a hand-computed case."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from benchmark.cameras import CameraPath

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "adding-a-method.md"


def _code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(), flags=re.S)


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The guide's adapter written as a module on a scratch PYTHONPATH, and its preset."""
    folder = tmp_path_factory.mktemp("newcomer")
    (python_code,) = _code_blocks("python")
    (preset_text,) = _code_blocks("yaml")
    preset = yaml.safe_load(preset_text)
    module, cls = preset["adapter"].split(":")
    assert module == "methods.planar_warp"  # what the guide tells a user to write
    # Outside the repository the same file lives as a top-level module on PYTHONPATH.
    (folder / "planar_warp.py").write_text(python_code)
    preset["adapter"] = f"planar_warp:{cls}"
    preset_path = folder / "planar_warp.yaml"
    preset_path.write_text(yaml.safe_dump(preset))
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module("planar_warp"), preset_path
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("planar_warp", None)


def test_the_guides_example_passes_check_method(example):
    _, preset_path = example
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(preset_path.parent), str(ROOT)])}
    out = subprocess.run(
        [sys.executable, "-m", "benchmark.cli", "check-method", str(preset_path)],
        capture_output=True, text=True, env=env, cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("[ok]") == 4 and "FAIL" not in out.stdout


def test_the_guides_homography_moves_pixels_as_computed_by_hand(example):
    module, _ = example
    fx, depth, truck = 50.0, 2.0, 0.4
    K = np.array([[fx, 0, 32.0], [0, fx, 24.0], [0, 0, 1]])
    w2c = np.stack([np.eye(4)] * 3)
    w2c[1, 0, 3], w2c[2, 0, 3] = -truck / 2, -truck  # camera trucks right
    camera = CameraPath(K=K, w2c=w2c, width=64, height=48)
    hom = module.plane_homographies(camera, depth)
    point = np.array([10.0, 7.0, 1.0])
    for i, moved in enumerate([0.0, truck / 2, truck]):
        p = hom[i] @ point
        np.testing.assert_allclose(p[:2] / p[2], [10.0 - fx * moved / depth, 7.0], atol=1e-9)
    # The adapter applies it: frame 2 is frame 0 shifted left by fx * t / d = 10 pixels.
    from methods.base import GenerationRequest

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    out = module.PlanarWarp({"plane_depth": depth}).generate(
        GenerationRequest(image=image, camera=camera)
    )
    np.testing.assert_array_equal(out.frames[2][:, : 64 - 10], image[:, 10:])


def test_a_preset_naming_a_missing_adapter_says_so():
    from methods import UnknownMethodError, get_method_class

    with pytest.raises(UnknownMethodError, match="cannot import module 'nowhere.at_all'"):
        get_method_class("nowhere.at_all:Thing")
    with pytest.raises(UnknownMethodError, match="no Method subclass named 'Path'"):
        get_method_class("pathlib:Path")
