"""``trajbench check-method``: the adapter contract on one small smoke clip."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import methods
from benchmark.stages.conformance import check_method
from methods.base import GenerationResult, Method


class Shrinks(Method):
    """Breaks the contract: one frame short and a K with negative focal."""

    name = "shrinks"

    def generate(self, request):
        frames = np.repeat(request.image[None], request.num_frames - 1, axis=0)
        k = request.camera.K.copy()
        k[0, 0] = -1
        return GenerationResult(frames=frames, K=k)


class Noisy(Method):
    """Breaks determinism: ignores the seed."""

    name = "noisy"

    def generate(self, request):
        rng = np.random.default_rng()
        frames = rng.integers(0, 256, (request.num_frames, *request.image.shape), np.uint8)
        return GenerationResult(frames=frames, K=request.camera.K)


@pytest.mark.parametrize("name", ["static", "depth_warp", "gt_render", "trajattn_tiny"])
def test_reference_methods_conform(name):
    checks = check_method(name)
    assert checks and all(c.passed for c in checks), [(c.name, c.detail) for c in checks]


def test_unavailable_method_passes_when_it_names_what_to_fetch():
    checks = check_method("trajattn")  # no SVD weights here
    assert len(checks) == 1 and checks[0].passed
    assert "huggingface-cli download" in checks[0].detail


def test_broken_adapters_fail_the_right_checks(monkeypatch):
    monkeypatch.setitem(methods.REGISTRY, "shrinks", f"{__name__}:Shrinks")
    monkeypatch.setitem(methods.REGISTRY, "noisy", f"{__name__}:Noisy")
    failed = {c.name for c in check_method("shrinks") if not c.passed}
    assert failed == {"frame count as requested", "K is a pinhole matrix for the frames"}
    failed = {c.name for c in check_method("noisy") if not c.passed}
    assert failed == {"same seed, same frames"}


def test_cli_exit_code():
    out = subprocess.run([sys.executable, "-m", "benchmark.cli", "check-method", "static"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "[ok] same seed, same frames" in out.stdout
