r"""Weight-free scores from point tracks: end-point error between two sets of tracks and
colour persistence along tracks (first-frame-guided editing, trajectory following).

Pure functions on arrays (the score stage runs the tracker, :mod:`benchmark.stages.score`):

- tracks are ``(F, L, 2)`` pixel xy in each frame (pixel centres at +0.5, the project's
  convention) with ``visible (F, L)`` bool; frame 0 is where the points start;
- every score uses frames ``1..F-1`` only: frame 0 is the conditioning frame for every
  method, so it would only dilute the error.

No library computes these on our track arrays (``tapnet``'s TAP-Vid metrics need query
formats and occlusion scores of their own), so they are written here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class EndPointError:
    """End-point error statistics (px) over the points valid in both track sets.

    Attributes:
        median, mean: of the per-(frame, point) Euclidean distances; NaN when no point counts.
        num: (frame, point) pairs that count.
        fraction: ``num`` over the pairs valid in the reference (how much of it was compared).
    """

    median: float
    mean: float
    num: int
    fraction: float

    def as_dict(self, prefix: str) -> dict[str, float | int]:
        """``{prefix: median, prefix_mean: mean, prefix_points: num, prefix_fraction: ...}``."""
        d = asdict(self)
        return {prefix: d["median"], f"{prefix}_mean": d["mean"], f"{prefix}_points": d["num"],
                f"{prefix}_fraction": d["fraction"]}


def _check_tracks(tracks: np.ndarray, visible: np.ndarray, name: str) -> None:
    if tracks.ndim != 3 or tracks.shape[-1] != 2 or visible.shape != tracks.shape[:2]:
        raise ValueError(
            f"{name}: tracks must be (F, L, 2) with visible (F, L), got {tracks.shape} and "
            f"{visible.shape}"
        )


def end_point_error(
    reference: np.ndarray,
    reference_visible: np.ndarray,
    tracks: np.ndarray,
    visible: np.ndarray,
) -> EndPointError:
    r"""EPE between two track sets of the same frame-0 points, frames 1.. only.

    Args:
        reference, reference_visible: (F, L, 2) / (F, L) e.g. the conditioning trajectories or
            the tracks of the original video.
        tracks, visible: (F, L, 2) / (F, L) e.g. the tracks of the generated frames.

    Returns:
        :class:`EndPointError` over pairs visible in both (and finite).
    """
    reference, tracks = np.asarray(reference, np.float64), np.asarray(tracks, np.float64)
    reference_visible = np.asarray(reference_visible, bool)
    visible = np.asarray(visible, bool)
    _check_tracks(reference, reference_visible, "reference")
    _check_tracks(tracks, visible, "tracks")
    if reference.shape != tracks.shape:
        raise ValueError(f"track sets differ in shape: {reference.shape} vs {tracks.shape}")
    error = np.linalg.norm(reference[1:] - tracks[1:], axis=-1)
    base = reference_visible[1:] & np.isfinite(reference[1:]).all(-1)
    both = base & visible[1:] & np.isfinite(error)
    num = int(both.sum())
    if num == 0:
        return EndPointError(float("nan"), float("nan"), 0, 0.0)
    values = error[both]
    return EndPointError(
        float(np.median(values)), float(values.mean()), num, num / max(int(base.sum()), 1)
    )


def sample_colours(image: np.ndarray, xy: np.ndarray) -> np.ndarray:
    r"""Bilinear colours of ``image`` (H, W, 3) at continuous pixel xy (N, 2) (centres at
    +0.5; the border is replicated).

    Returns:
        (N, 3) float64.
    """
    xy = np.asarray(xy, np.float64)
    if not np.isfinite(xy).all():
        raise ValueError("sample points must be finite")
    map_x = (xy[:, 0] - 0.5).astype(np.float32).reshape(1, -1)
    map_y = (xy[:, 1] - 0.5).astype(np.float32).reshape(1, -1)
    out = cv2.remap(np.asarray(image, np.float32), map_x, map_y, cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(-1, 3).astype(np.float64)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    r"""Gaussian blur (sigma in pixels; 0: none) as float32: colour comparisons along tracks
    then measure colour, not sub-pixel texture, which a tracker error of a fraction of a pixel
    would otherwise turn into large differences on fine textures."""
    image = np.asarray(image, np.float32)
    return image if sigma <= 0 else cv2.GaussianBlur(image, (0, 0), float(sigma))


def colour_persistence(
    frames: np.ndarray,
    tracks: np.ndarray,
    visible: np.ndarray,
    first_colours: np.ndarray,
    points: np.ndarray | None = None,
    blur_sigma: float = 0.0,
) -> float:
    r"""Mean absolute RGB difference (0-255) between each frame's colour along the tracks and
    the points' colours in the (edited) first frame, frames 1.. on visible points.

    Args:
        frames: (F, H, W, 3) frames to sample (the generated video).
        tracks, visible: (F, L, 2) / (F, L) where each point is in each frame (in ``frames``'
            pixels): e.g. the tracks of the original video.
        first_colours: (L, 3) the colour each point should keep (the edited first frame at the
            point's frame-0 position).
        points: optional (L,) bool selecting the points that count (e.g. the edited ones).
        blur_sigma: Gaussian blur of each frame before sampling (:func:`blur`; blur the
            first frame the same way before sampling ``first_colours``).

    Returns:
        The mean over (frame, point, channel); NaN when no point counts.
    """
    frames = np.asarray(frames)
    tracks = np.asarray(tracks, np.float64)
    visible = np.asarray(visible, bool)
    _check_tracks(tracks, visible, "tracks")
    first_colours = np.asarray(first_colours, np.float64)
    if frames.shape[0] != tracks.shape[0] or first_colours.shape != (tracks.shape[1], 3):
        raise ValueError(
            f"{frames.shape[0]} frames and colours {first_colours.shape} for tracks "
            f"{tracks.shape}"
        )
    keep = np.ones(tracks.shape[1], bool) if points is None else np.asarray(points, bool)
    total, count = 0.0, 0
    for f in range(1, len(frames)):
        sel = visible[f] & keep & np.isfinite(tracks[f]).all(-1)
        if not sel.any():
            continue
        colours = sample_colours(blur(frames[f], blur_sigma), tracks[f, sel])
        total += float(np.abs(colours - first_colours[sel]).sum())
        count += int(sel.sum()) * 3
    return total / count if count else float("nan")


def pixel_map(K_from: np.ndarray, K_to: np.ndarray) -> np.ndarray:
    r"""The 3x3 map from pixels of one image to pixels of another image of the *same* camera
    (centre and rotation) with other intrinsics, e.g. an input frame and a method's
    centre-cropped, resized output frame: ``x_to ~ K_to @ inv(K_from) @ x_from``."""
    return np.asarray(K_to, np.float64) @ np.linalg.inv(np.asarray(K_from, np.float64))


def apply_pixel_map(H: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Apply a 3x3 pixel map to xy (..., 2) (continuous coordinates)."""
    xy = np.asarray(xy, np.float64)
    homogeneous = np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], axis=-1) @ H.T
    return homogeneous[..., :2] / homogeneous[..., 2:3]


def grid_subsample(num_rows: int, num_cols: int, step: int) -> np.ndarray:
    r"""Indices into a row-major (num_rows x num_cols) point grid of every ``step``-th row and
    column: a stride-``s`` grid subsampled to stride ``s * step``."""
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    rows, cols = np.arange(0, num_rows, step), np.arange(0, num_cols, step)
    return (rows[:, None] * num_cols + cols[None, :]).reshape(-1)
