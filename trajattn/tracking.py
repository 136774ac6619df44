r"""Point tracking through a video behind one small interface (paper Alg. 4 step 2).

``tracker.track(video, points) -> PointTracks`` with ``video (F, H, W, 3)`` uint8 RGB and
``points (L, 2)`` frame-0 pixel xy (our convention: pixel centres at +0.5); the result holds
``tracks (F, L, 2)`` in each frame's pixels and ``visible (F, L)``.

Backends:

* ``cotracker3``: CoTracker3 offline (facebookresearch/co-tracker), the model the official code's
  successor uses; installed from its repository on the user's machine
  (``pip install git+https://github.com/facebookresearch/co-tracker``), checkpoint
  ``scaled_offline.pth`` from a local path or its hub URL. Absent: :class:`TrackerUnavailable`
  saying what to install.
* ``dis``: chained OpenCV DIS dense flow with a forward-backward check
  (:func:`trajattn.flow_tracks.flow_trajectories`); weight-free, always available here.
* ``lk``: OpenCV pyramidal Lucas-Kanade chained frame to frame with a forward-backward check;
  weight-free.

``python -m bench.tracking`` measures the weight-free backends against exact
trajectories of synthetic renders; ``dis`` is the default because it measured better (see
docs/protocol.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from trajattn.flow_tracks import DisFlow, flow_trajectories, grid_points

COTRACKER3_URL = "https://huggingface.co/facebook/cotracker3/resolve/main/scaled_offline.pth"
COTRACKER_INSTALL = "pip install git+https://github.com/facebookresearch/co-tracker"


class TrackerUnavailable(RuntimeError):
    """A tracker backend cannot run here; the message names what to install or download."""


@dataclass(frozen=True)
class PointTracks:
    """Tracks of frame-0 points: ``tracks (F, L, 2)`` float32 pixel xy (centres at +0.5) and
    ``visible (F, L)`` bool."""

    tracks: np.ndarray
    visible: np.ndarray

    def __post_init__(self) -> None:
        if self.tracks.ndim != 3 or self.tracks.shape[-1] != 2:
            raise ValueError(f"tracks must be (F, L, 2), got {self.tracks.shape}")
        if self.visible.shape != self.tracks.shape[:2]:
            raise ValueError(f"visible must be {self.tracks.shape[:2]}, got {self.visible.shape}")


class PointTracker(Protocol):
    name: str

    def track(self, video: np.ndarray, points: np.ndarray) -> PointTracks:
        """Track ``points`` (L, 2) of frame 0 through ``video`` (F, H, W, 3) uint8."""
        ...


def check_video_and_points(video: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Validate the tracker inputs; returns the points as (L, 2) float64."""
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
        raise ValueError(f"video must be uint8 (F, H, W, 3), got {video.dtype} {video.shape}")
    if video.shape[0] < 2:
        raise ValueError(f"tracking needs at least 2 frames, got {video.shape[0]}")
    points = np.asarray(points, np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
        raise ValueError(f"points must be a non-empty (L, 2) array, got {points.shape}")
    h, w = video.shape[1:3]
    inside = (points[:, 0] >= 0) & (points[:, 0] < w) & (points[:, 1] >= 0) & (points[:, 1] < h)
    if not (np.all(np.isfinite(points)) and inside.all()):
        raise ValueError(f"points must be finite and inside the {w}x{h} frame 0")
    return points


class DisTracker:
    """Chained OpenCV DIS dense flow with a forward-backward check."""

    name = "dis"

    def __init__(self, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) -> None:
        self.flow = DisFlow(preset)

    def track(self, video: np.ndarray, points: np.ndarray) -> PointTracks:
        points = check_video_and_points(video, points)
        tracks, visible = flow_trajectories(video, flow=self.flow, points=points)
        return PointTracks(tracks.astype(np.float32), visible)


class LucasKanadeTracker:
    r"""OpenCV pyramidal Lucas-Kanade, chained frame to frame.

    A point stays valid while each step converges, passes the forward-backward check (the
    backward track returns within ``fb_tolerance`` pixels) and stays inside the image; once
    lost it stays invalid (its track is frozen), as in :func:`flow_trajectories`.
    """

    name = "lk"

    def __init__(
        self, window: int = 21, levels: int = 3, fb_tolerance: float = 0.5
    ) -> None:
        self.params: dict[str, Any] = {
            "winSize": (window, window),
            "maxLevel": levels,
            "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01),
        }
        self.fb_tolerance = fb_tolerance

    def track(self, video: np.ndarray, points: np.ndarray) -> PointTracks:
        points = check_video_and_points(video, points)
        num_frames, height, width = video.shape[:3]
        gray = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in video]
        tracks = np.empty((num_frames, len(points), 2), np.float32)
        visible = np.zeros((num_frames, len(points)), bool)
        # OpenCV's pixel centres are integers; ours are at +0.5.
        current = (points - 0.5).astype(np.float32).reshape(-1, 1, 2)
        tracks[0], visible[0] = points, True
        alive = np.ones(len(points), bool)
        for f in range(1, num_frames):  # chained: each step starts where the last ended
            moved, ok, _ = cv2.calcOpticalFlowPyrLK(gray[f - 1], gray[f], current, None,
                                                    **self.params)
            back, ok_back, _ = cv2.calcOpticalFlowPyrLK(gray[f], gray[f - 1], moved, None,
                                                        **self.params)
            error = np.linalg.norm((back - current).reshape(-1, 2), axis=1)
            xy = moved.reshape(-1, 2) + 0.5
            inside = (xy[:, 0] >= 0) & (xy[:, 0] < width) & (xy[:, 1] >= 0)
            inside &= xy[:, 1] < height
            alive &= ok.ravel().astype(bool) & ok_back.ravel().astype(bool)
            alive &= inside & np.isfinite(error) & (error < self.fb_tolerance)
            current = np.where(alive[:, None, None], moved, current)
            tracks[f], visible[f] = current.reshape(-1, 2) + 0.5, alive
        return PointTracks(tracks, visible)


class CoTracker3:
    r"""CoTracker3 offline (Karaev et al. 2024) through its own package.

    Args:
        checkpoint: local ``scaled_offline.pth``; None: the hub URL through torch's cache
            (downloaded only on a networked machine).
        device: "auto" (cuda when available), "cuda" or "cpu".
    """

    name = "cotracker3"

    def __init__(self, checkpoint: str | None = None, device: str = "auto") -> None:
        import torch

        try:
            from cotracker.predictor import CoTrackerPredictor
        except ImportError as exc:
            raise TrackerUnavailable(
                f"CoTracker3 is not installed: `{COTRACKER_INSTALL}` (then give the checkpoint "
                f"scaled_offline.pth from {COTRACKER3_URL}, or let torch cache it)"
            ) from exc
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        if checkpoint is not None:
            from pathlib import Path

            if not Path(checkpoint).expanduser().is_file():
                raise TrackerUnavailable(
                    f"CoTracker3 checkpoint not found at {checkpoint}: download {COTRACKER3_URL}"
                )
            predictor = CoTrackerPredictor(checkpoint=str(Path(checkpoint).expanduser()))
        else:
            predictor = CoTrackerPredictor(checkpoint=None)
            try:
                state = torch.hub.load_state_dict_from_url(COTRACKER3_URL, map_location="cpu")
            except Exception as exc:  # offline, no cache: urllib errors vary
                raise TrackerUnavailable(
                    f"CoTracker3 weights are not cached and cannot be downloaded here: fetch "
                    f"{COTRACKER3_URL} and give it as checkpoint ({type(exc).__name__})"
                ) from exc
            predictor.model.load_state_dict(state)
        self.predictor = predictor.to(device).eval()

    def track(self, video: np.ndarray, points: np.ndarray) -> PointTracks:
        import torch

        points = check_video_and_points(video, points)
        clip = torch.from_numpy(np.ascontiguousarray(video)).permute(0, 3, 1, 2)[None].float()
        queries = np.concatenate([np.zeros((len(points), 1)), points - 0.5], axis=1)
        # CoTracker's pixel centres are integers (align_corners=True scaling): shift by 0.5.
        with torch.no_grad():
            tracks, visible = self.predictor(
                clip.to(self.device),
                queries=torch.from_numpy(queries).float()[None].to(self.device),
            )
        tracks = tracks[0].cpu().numpy().astype(np.float32) + 0.5
        h, w = video.shape[1:3]
        inside = (tracks[..., 0] >= 0) & (tracks[..., 0] < w) & (tracks[..., 1] >= 0)
        inside &= tracks[..., 1] < h
        return PointTracks(tracks, visible[0].cpu().numpy().astype(bool) & inside)


TRACKERS = {"dis": DisTracker, "lk": LucasKanadeTracker, "cotracker3": CoTracker3}


def make_tracker(name: str = "dis", **options: Any) -> PointTracker:
    """A tracker backend by name (``dis``, ``lk``, ``cotracker3``) with its options."""
    if name not in TRACKERS:
        raise ValueError(f"unknown tracker {name!r}; known: {sorted(TRACKERS)}")
    return TRACKERS[name](**options)


def track_grid(tracker: PointTracker, video: np.ndarray, stride: int = 4) -> PointTracks:
    """Track every ``stride``-th pixel of frame 0 (row-major grid)."""
    h, w = np.asarray(video).shape[1:3]
    return tracker.track(video, grid_points(w, h, stride))
