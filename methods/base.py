r"""The method adapter API: what a camera-control method receives and must return.

A method is a class with a ``name``, a ``default_conf`` and ``generate(request)``. The request
carries the conditioning image, the camera path in the project's convention
(``benchmark.cameras``: K in pixels, world-to-camera per frame, OpenCV axes, frame 0 = the
conditioning view), depth when available and the seed; the result carries uint8 frames and
the K that describes them after any crop or resize the method applied.

A method that cannot run here (weights, upstream code or an input it needs are missing)
raises :class:`MethodUnavailable` with a message naming what to install or provide; the
workflow records that as a failed run and carries on with the others.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from benchmark.cameras import CameraPath, invert_rigid


class MethodUnavailable(RuntimeError):
    """The method cannot run: names what is missing (weights, package, input)."""


@dataclass
class GenerationRequest:
    r"""Inputs for one generated clip.

    Args:
        image: (H, W, 3) uint8 conditioning image, the view of ``camera`` frame 0.
        camera: the camera path to follow; its width/height are the image's.
        seed: random seed; methods must be deterministic given it.
        depth: (H, W) z-depth of the conditioning view when known (synthetic scenes, or a
            depth model's output), else None.
        scene: the synthetic scene object when the clip comes from one (lets ``gt_render``
            render ground truth), else None.
        video: (F, H, W, 3) uint8 input video for video camera control (paper Table 2): the
            clip to re-shoot, frame 0 = ``image``; ``camera`` is then the re-shot cameras
            (the requested offsets applied to the video's own cameras), else None.
        video_depth: (F, H, W) z-depth of every input video frame when known, else None.
        video_camera: the input video's own cameras (same K and size), when ``video`` is given;
            ``camera.w2c[f] @ inv(video_camera.w2c[f])`` is the offset asked for at frame f.
        task: default ``image`` without a video, ``video`` with one; ``image`` (image camera
            control, Table 1), ``video`` (re-shoot ``video`` along
            ``camera``, Table 2) or ``edit`` (first-frame-guided editing: ``image`` is the
            edited first frame, ``video`` the original whose motion to keep, ``camera`` its own
            cameras).
    """

    image: np.ndarray
    camera: CameraPath
    seed: int = 0
    depth: np.ndarray | None = None
    scene: Any = None
    video: np.ndarray | None = None
    video_depth: np.ndarray | None = None
    video_camera: CameraPath | None = None
    task: str | None = None

    def __post_init__(self) -> None:
        if self.task is None:  # the default: a video means re-shooting it
            self.task = "image" if self.video is None else "video"
        if self.task not in ("image", "video", "edit"):
            raise ValueError(f"task must be image, video or edit, got {self.task!r}")
        if (self.task != "image") != (self.video is not None):
            raise ValueError(f"an {self.task} request needs a video" if self.task != "image"
                             else "an image request takes no video")
        cam = self.camera
        shape = (cam.height, cam.width, 3)
        if self.image.shape != shape or self.image.dtype != np.uint8:
            raise ValueError(
                f"image must be uint8 {shape} to match the camera, got "
                f"{self.image.dtype} {self.image.shape}"
            )
        if self.depth is not None and self.depth.shape != shape[:2]:
            raise ValueError(f"depth must have shape {shape[:2]}, got {self.depth.shape}")
        if self.video is not None:
            if self.video.shape != (cam.num_frames, *shape) or self.video.dtype != np.uint8:
                raise ValueError(
                    f"video must be uint8 {(cam.num_frames, *shape)} (one frame per camera), got "
                    f"{self.video.dtype} {self.video.shape}"
                )
            if self.video_camera is None or self.video_camera.num_frames != cam.num_frames:
                raise ValueError("a video needs video_camera with one camera per frame")
        if self.video_depth is not None and (
            self.video is None or self.video_depth.shape != self.video.shape[:3]
        ):
            raise ValueError("video_depth must be (F, H, W) and come with a video")

    @property
    def num_frames(self) -> int:
        return self.camera.num_frames

    def camera_offsets(self) -> np.ndarray:
        r"""Video requests: per-frame offsets ``M_f = camera.w2c[f] @ inv(video_camera.w2c[f])``
        from the input video's camera of frame f to the re-shot camera of frame f (the harness
        composes the re-shot path as ``M_f @ w2c_video_f``, :mod:`benchmark.sources.videos`).

        Returns:
            (F, 4, 4) float64.
        """
        if self.video_camera is None:
            raise ValueError("camera offsets need a video request (video_camera)")
        return np.asarray(self.camera.w2c, np.float64) @ invert_rigid(self.video_camera.w2c)


@dataclass
class GenerationResult:
    r"""A generated clip.

    Args:
        frames: (F, H', W', 3) uint8 RGB frames, frame 0 the conditioning view.
        K: (3, 3) intrinsics of the returned frames (after any crop/resize).
        extras: method-specific arrays worth keeping (e.g. hole masks), saved beside frames.
        info: JSON-able notes recorded in meta.json (choices made, upstream versions).
    """

    frames: np.ndarray
    K: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        f = self.frames
        if f.ndim != 4 or f.shape[-1] != 3 or f.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 (F, H, W, 3), got {f.dtype} {f.shape}")
        self.K = np.asarray(self.K, dtype=np.float64)
        if self.K.shape != (3, 3):
            raise ValueError(f"K must be (3, 3), got {self.K.shape}")


class Method(ABC):
    """Base class of method adapters: subclasses set ``name``/``default_conf``, implement
    ``generate``."""

    name: ClassVar[str]
    default_conf: ClassVar[dict[str, Any]] = {}
    #: True when the method needs ``request.scene`` (the synthetic scene object); the harness
    #: only rebuilds the scene for methods that ask for it.
    needs_scene: ClassVar[bool] = False

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        unknown = set(conf or {}) - set(self.default_conf)
        if unknown:
            raise ValueError(
                f"{self.name}: unknown option(s) {sorted(unknown)}; "
                f"known: {sorted(self.default_conf)}"
            )
        self.conf = {**copy.deepcopy(self.default_conf), **(conf or {})}

    @abstractmethod
    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Generate ``request.num_frames`` frames following ``request.camera``."""
