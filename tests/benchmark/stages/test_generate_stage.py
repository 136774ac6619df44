"""The generation -> poses -> score chain records failures instead of crashing."""

from __future__ import annotations

import json

import numpy as np
import pytest

import methods
from benchmark.cameras import save_camera_path
from benchmark.sfm.poses import run_poses
from benchmark.sources.scenes import load_scene_view, make_scene_camera
from benchmark.stages.generate import run_generation
from benchmark.stages.score import score_run
from methods.base import GenerationResult, Method, MethodUnavailable

SUITE = """
name: unit
kind: synthetic
num_frames: 4
width: 96
height: 64
cameras: [orbit_left_10deg]
scenes: [{name: s0, seed: 4}]
"""


class NeedsWeights(Method):
    name = "needs_weights"

    def generate(self, request):
        raise MethodUnavailable("download example/weights.ckpt (see docs)")


class WrongFrameCount(Method):
    name = "wrong_frames"

    def generate(self, request):
        frames = np.repeat(request.image[None], request.num_frames - 1, axis=0)
        return GenerationResult(frames=frames, K=request.camera.K)


@pytest.fixture(scope="module")
def scene(tmp_path_factory, prepared_scene):
    root = tmp_path_factory.mktemp("unit")
    scene_dir = prepared_scene(SUITE, "s0")
    camera = make_scene_camera(load_scene_view(scene_dir), "orbit_left_10deg", 4)
    save_camera_path(camera, root / "camera.json")
    return scene_dir, root / "camera.json"


@pytest.fixture
def fake_methods(monkeypatch):
    monkeypatch.setitem(methods.REGISTRY, "needs_weights", f"{__name__}:NeedsWeights")
    monkeypatch.setitem(methods.REGISTRY, "wrong_frames", f"{__name__}:WrongFrameCount")


@pytest.mark.parametrize(
    ("method", "reason"),
    [
        ("needs_weights", "unavailable: download example/weights.ckpt"),
        ("wrong_frames", "returned 3 frames, the camera path has 4"),
        ("no_such_method", "unknown method 'no_such_method'"),
    ],
)
def test_failed_generation_is_recorded_through_every_stage(
    scene, fake_methods, tmp_path, method, reason
):
    scene_dir, camera_file = scene
    meta = run_generation(method, scene_dir, camera_file, 0, tmp_path)
    assert meta["status"] == "failed" and reason in meta["reason"]
    assert json.loads((tmp_path / "meta.json").read_text())["status"] == "failed"
    assert not (tmp_path / "frames").exists()
    poses = run_poses(tmp_path)
    assert poses.status == "failed" and "generation failed" in poses.reason
    metrics = score_run(tmp_path, camera_file)
    assert metrics["status"] == "failed" and metrics["ate"] is None
    assert metrics["generation_status"] == "failed"


def test_successful_generation_writes_frames_k_and_meta(scene, tmp_path):
    scene_dir, camera_file = scene
    meta = run_generation("static", scene_dir, camera_file, 3, tmp_path)
    assert meta["status"] == "ok" and meta["seed"] == 3
    assert len(list((tmp_path / "frames").glob("*.png"))) == 4
    np.testing.assert_array_equal(
        json.loads((tmp_path / "K.json").read_text()), load_scene_view(scene_dir).view.K
    )
    assert meta["environment"]["packages"]["torch"]


def test_malformed_camera_file_is_a_recorded_failure_naming_the_field(scene, tmp_path):
    scene_dir, camera_file = scene
    data = json.loads(camera_file.read_text())
    data["w2c"][2][0][3] = float("nan")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))  # json writes NaN as a bare token
    meta = run_generation("static", scene_dir, bad, 0, tmp_path / "run")
    assert meta["status"] == "failed"
    assert "w2c" in meta["reason"]


def test_stages_build_requests_in_one_place(scene):
    """Generation, conformance and attention maps all build their request with
    benchmark.stages.request.build_request; nothing else in the stages calls GenerationRequest."""
    import ast
    from pathlib import Path

    from benchmark.cameras import load_camera_path
    from benchmark.stages import request as request_module
    from benchmark.stages.request import build_request

    stages = Path(request_module.__file__).parent
    for path in sorted(stages.rglob("*.py")):
        if path.name == "request.py":
            continue
        calls = [
            node for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "GenerationRequest"
        ]
        assert not calls, f"{path.relative_to(stages)} builds a GenerationRequest itself"
    scene_dir, camera_file = scene
    view, camera = load_scene_view(scene_dir), load_camera_path(camera_file)
    plain = build_request(view, camera, 3)
    assert plain.task == "image" and plain.seed == 3 and plain.scene is None
    assert np.array_equal(plain.image, view.image) and np.array_equal(plain.depth, view.depth)
    rendered = build_request(view, camera, 3, needs_scene=True)
    assert rendered.scene is not None  # rebuilt only for methods that ask for it
