"""Adapter conformance: ``trajbench check-method NAME`` runs a method preset on one small
synthetic clip of a suite and checks the adapter contract of ``methods/base.py``.

Checks: the request is answered (or refused with ``MethodUnavailable`` naming what is
missing), frames are uint8 ``(F, H, W, 3)`` with F as requested, the returned K is a valid
pinhole matrix for the frames' size, and the same seed gives the same frames.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.config.suites import load_suite
from benchmark.sources.scenes import load_scene_view, make_scene_camera, prepare_synthetic_scene
from benchmark.stages.request import build_request
from methods.base import MethodUnavailable
from methods.presets import method_from_preset

#: an unavailable method's message must hold one of these words: it says what to get
NAMES_WHAT_IS_MISSING = ("download", "install", "needs", "provide")


@dataclass
class Check:
    name: str
    passed: bool
    detail: str = ""


def check_method(
    preset: str, suite: str = "smoke", num_frames: int = 6, scale: float = 0.5
) -> list[Check]:
    """Run ``preset`` on the first scene and camera of ``suite`` (frames and resolution
    reduced to ``num_frames`` and ``scale`` to stay quick); returns the checks in order."""
    loaded = load_suite(suite)
    if loaded.kind != "synthetic":
        raise ValueError(f"check-method needs a synthetic suite, {suite!r} is {loaded.kind}")
    data = dict(loaded.data)
    data["width"] = max(16, round(data["width"] * scale / 16) * 16)
    data["height"] = max(16, round(data["height"] * scale / 16) * 16)
    small = type(loaded)(data=data, path=loaded.path)
    scene_name, camera_name = next(iter(small.scenes)), small.cameras[0]
    method = method_from_preset(preset)  # an unknown name fails before any scene is built
    checks: list[Check] = []
    with tempfile.TemporaryDirectory() as tmp:
        scene = load_scene_view(prepare_synthetic_scene(small, scene_name, Path(tmp) / "s"))
        camera = make_scene_camera(scene, camera_name, num_frames)
        request = build_request(scene, camera, 0, needs_scene=method.needs_scene)
        try:
            first = method.generate(request)
        except MethodUnavailable as exc:
            message = str(exc)
            names_what = any(w in message for w in NAMES_WHAT_IS_MISSING)
            return [Check("unavailable, says what is missing", names_what, message)]
        frames = first.frames
        checks.append(Check(
            "frames are uint8 (F, H, W, 3)",
            frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[-1] == 3,
            f"{frames.dtype} {frames.shape}",
        ))
        checks.append(Check(
            "frame count as requested", frames.shape[0] == num_frames,
            f"{frames.shape[0]} for {num_frames}",
        ))
        k = first.K
        h, w = frames.shape[1:3]
        k_ok = (
            k.shape == (3, 3) and np.all(np.isfinite(k)) and k[0, 0] > 0 and k[1, 1] > 0
            and k[1, 0] == k[2, 0] == k[2, 1] == 0 and k[2, 2] == 1
            and 0 < k[0, 2] < w and 0 < k[1, 2] < h
        )
        checks.append(Check("K is a pinhole matrix for the frames", bool(k_ok), str(k.tolist())))
        again = method.generate(request).frames
        checks.append(Check(
            "same seed, same frames", np.array_equal(frames, again),
            "" if np.array_equal(frames, again) else "frames differ between runs",
        ))
    return checks
