r"""Trajectories from a video by chained dense optical flow (training data, paper Sec. 3.4).

Frame-0 pixel centres are carried from frame to frame by dense optical flow (OpenCV's DIS by
default, weight-free so it runs anywhere; torchvision's RAFT where its weights exist):
``p_{f} = p_{f-1} + flow_{f-1 -> f}(p_{f-1})``, the flow sampled
bilinearly at the point's sub-pixel position. A point stays valid while every step passes a
forward-backward consistency check (the backward flow at ``p_f`` must bring it back to
``p_{f-1}`` within a tolerance that grows with the motion, as in Sundaram et al. 2010) and it
stays inside the image. Conventions are those of :mod:`trajattn.trajectories`: pixel centres at
``+0.5``, ``tracks (F, L, 2)``, ``visible (F, L)``.

OpenCV computes the flow; chaining, sampling and the consistency rule are written here because
no library tracks dense points through a clip with a validity mask.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Forward-backward check: |fw + bw|^2 < ALPHA * (|fw|^2 + |bw|^2) + BETA (pixels^2).
FB_ALPHA = 0.01
FB_BETA = 0.5


class DisFlow:
    """OpenCV DIS optical flow (weight-free): forward and backward flow of a frame pair."""

    def __init__(self, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) -> None:
        self.dis = cv2.DISOpticalFlow_create(preset)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ga = cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2GRAY)
        gb = cv2.cvtColor(np.ascontiguousarray(b), cv2.COLOR_RGB2GRAY)
        return self.dis.calc(ga, gb, None), self.dis.calc(gb, ga, None)


class RaftFlow:
    """torchvision's RAFT (stronger than DIS where its weights exist).

    ``pretrained=True`` loads ``Raft_Large_Weights.DEFAULT`` from torch's cache, downloading it
    on a networked machine; offline without the file it raises a RuntimeError saying so.
    ``pretrained=False`` is random weights, only for exercising the code path in tests.
    """

    def __init__(self, pretrained: bool = True, device: str = "cpu") -> None:
        from torchvision.models.optical_flow import Raft_Large_Weights, raft_large

        weights = Raft_Large_Weights.DEFAULT if pretrained else None
        try:
            self.model = raft_large(weights=weights, progress=False).eval().to(device)
        except Exception as exc:  # urllib/OSError when the weights cannot be fetched
            raise RuntimeError(
                "RAFT weights are not available: run once on a networked machine (torchvision "
                f"downloads Raft_Large_Weights.DEFAULT into torch's hub cache): {exc}"
            ) from exc
        self.device = device

    def __call__(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        h, w = a.shape[:2]
        # RAFT needs sizes divisible by 8 and at least 128 (its correlation pyramid).
        pad_h = max(128 - h, 0) + (-max(h, 128)) % 8
        pad_w = max(128 - w, 0) + (-max(w, 128)) % 8
        pair = np.stack([a, b]).astype(np.float32) / 127.5 - 1
        pair = np.pad(pair, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        t = torch.from_numpy(pair).permute(0, 3, 1, 2).to(self.device)
        with torch.no_grad():
            flows = self.model(t, t.flip(0))[-1]  # (a->b, b->a)
        flows = flows[:, :, :h, :w].permute(0, 2, 3, 1).cpu().numpy()
        return np.ascontiguousarray(flows[0]), np.ascontiguousarray(flows[1])


def grid_points(width: int, height: int, stride: int = 1) -> np.ndarray:
    """(L, 2) pixel-centre xy of every ``stride``-th pixel, row-major (our +0.5 convention)."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    xs, ys = np.meshgrid(np.arange(0, width, stride) + 0.5, np.arange(0, height, stride) + 0.5)
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def _sample(flow: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear sample of a (H, W, 2) flow at continuous pixel xy (N, 2) (centres at +0.5).

    Points must be finite (cv2.remap with NaN maps can hang); the border is replicated.
    """
    map_x = (points[:, 0] - 0.5).astype(np.float32).reshape(1, -1)
    map_y = (points[:, 1] - 0.5).astype(np.float32).reshape(1, -1)
    out = cv2.remap(flow, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(-1, 2).astype(np.float64)


def flow_trajectories(
    video: np.ndarray,
    stride: int = 1,
    flow: DisFlow | RaftFlow | None = None,
    points: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Track frame-0 pixels through ``video`` with chained dense optical flow.

    Args:
        video: (F, H, W, 3) uint8 RGB frames.
        stride: track every ``stride``-th pixel of frame 0 in x and y.
        flow: the flow estimator (default :class:`DisFlow`; :class:`RaftFlow` where its
            weights exist).
        points: (L, 2) frame-0 pixel xy to track instead of the grid (centres at +0.5).

    Returns:
        tracks (F, L, 2) float32 pixel xy and visible (F, L) bool; once a point fails the
        consistency check or leaves the image it stays invalid (its track is frozen there).
    """
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
        raise ValueError(f"video must be uint8 (F, H, W, 3), got {video.dtype} {video.shape}")
    num_frames, height, width = video.shape[:3]
    if points is None:
        points = grid_points(width, height, stride)
    points = np.asarray(points, np.float64).reshape(-1, 2)
    if not np.all(np.isfinite(points)):
        raise ValueError("points to track must be finite")
    tracks = np.empty((num_frames, len(points), 2), np.float32)
    visible = np.zeros((num_frames, len(points)), bool)
    tracks[0], visible[0] = points, True
    alive = np.ones(len(points), bool)
    flow = flow or DisFlow()
    for f in range(1, num_frames):  # each step needs the previous one: sequential by nature
        forward, backward = flow(video[f - 1], video[f])
        fw = _sample(forward, points)
        moved = points + fw
        inside = (moved[:, 0] >= 0) & (moved[:, 0] < width) & (moved[:, 1] >= 0)
        inside &= moved[:, 1] < height
        safe = np.where(inside[:, None], moved, points)  # never sample outside the image
        bw = _sample(backward, safe)
        error = np.sum((fw + bw) ** 2, axis=1)
        bound = FB_ALPHA * (np.sum(fw**2, axis=1) + np.sum(bw**2, axis=1)) + FB_BETA
        alive &= inside & (error < bound)
        points = np.where(alive[:, None], moved, points)
        tracks[f], visible[f] = points, alive
    return tracks, visible
