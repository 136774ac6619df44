"""Shared fixtures: the tests' data files, prepared synthetic scenes and the tiny SVD UNet.

Tests that need a scene ask ``prepared_scene`` instead of building their own: the scene is
rendered once per session for each (suite, scene) and reused. Scene folders are shared: read
them, never write into them.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def data_file() -> Callable[[str], Path]:
    """``data_file("tiny-suite.yaml")`` -> the path of a file in ``tests/data`` (must exist)."""

    def find(name: str) -> Path:
        path = DATA / name
        if not path.is_file():
            raise FileNotFoundError(f"no test data file {path}")
        return path

    return find


@pytest.fixture(scope="session")
def prepared_scene(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Path]:
    """``prepared_scene(suite, scene)`` -> the folder of a prepared synthetic scene.

    ``suite`` is a file name in ``tests/data`` or the YAML text of a suite. Each (suite,
    scene) is prepared once per session (``benchmark.sources.scenes.prepare_synthetic_scene``).
    """
    from benchmark.config.suites import load_suite  # imported here: conftest loads for every test
    from benchmark.sources.scenes import prepare_synthetic_scene

    cache: dict[tuple[str, str], Path] = {}
    root = tmp_path_factory.mktemp("prepared-scenes")

    def prepare(suite: str, scene: str) -> Path:
        key = (suite, scene)
        if key not in cache:
            folder = root / hashlib.sha1(suite.encode()).hexdigest()[:12]
            if (DATA / suite).is_file():
                suite_file = DATA / suite
            else:
                folder.mkdir(parents=True, exist_ok=True)
                suite_file = folder / "suite.yaml"
                suite_file.write_text(suite)
            cache[key] = prepare_synthetic_scene(load_suite(suite_file), scene, folder / scene)
        return cache[key]

    return prepare


@pytest.fixture
def tiny_unet():
    """A fresh tiny randomly initialised SVD UNet (``tests.tiny_models``) for each test."""
    from tests.tiny_models import tiny_unet as build  # torch + diffusers: only tests that ask

    return build()
