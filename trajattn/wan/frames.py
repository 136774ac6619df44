r"""Pixel frames -> latent frames of a causal video VAE with temporal compression ``r``.

Wan's VAE (``AutoencoderKLWan``, ``r = 4``) encodes pixel frame 0 alone into latent frame 0
and each following group of ``r`` pixel frames into one latent frame: pixel frame ``f >= 1``
lies in latent frame ``(f - 1) // r + 1``, so ``F = r * k + 1`` pixel frames give ``k + 1``
latent frames (81 -> 21).

Rule used for trajectories: latent frame ``t`` is represented by pixel frame ``r * t`` (frame 0
for ``t = 0``, the *last* frame of its group for ``t >= 1``). Every latent frame contains its
representative, the representatives are evenly spaced (stride ``r`` from the conditioning
frame, like subsampling the clip), and no track positions are averaged, so a point's
visibility stays a plain per-frame flag. The track position and visibility of the latent frame
are those of the representative pixel frame.
"""

from __future__ import annotations

import numpy as np
import torch

from trajattn.state import as_track_tensors


def num_latent_frames(num_pixel_frames: int, ratio: int = 4) -> int:
    """Latent frames of ``num_pixel_frames`` (which must be ``ratio * k + 1``)."""
    if ratio < 1:
        raise ValueError(f"temporal compression must be >= 1, got {ratio}")
    if num_pixel_frames < 1 or (num_pixel_frames - 1) % ratio:
        raise ValueError(
            f"{num_pixel_frames} frames: a VAE with temporal compression {ratio} needs "
            f"{ratio}k + 1 frames (e.g. {ratio * ((num_pixel_frames - 1) // ratio) + 1} or "
            f"{ratio * ((num_pixel_frames - 1) // ratio + 1) + 1})"
        )
    return (num_pixel_frames - 1) // ratio + 1


def pixel_to_latent_frame(frame: int, ratio: int = 4) -> int:
    """The latent frame containing pixel frame ``frame``: 0 -> 0, f >= 1 -> (f - 1) // r + 1."""
    if frame < 0:
        raise ValueError(f"frame must be >= 0, got {frame}")
    return 0 if frame == 0 else (frame - 1) // ratio + 1


def representative_frames(num_pixel_frames: int, ratio: int = 4) -> np.ndarray:
    """(T,) the pixel frame standing for each latent frame: ``r * t``."""
    return np.arange(num_latent_frames(num_pixel_frames, ratio)) * ratio


def latent_frame_tracks(
    tracks: torch.Tensor | np.ndarray, visible: torch.Tensor | np.ndarray, ratio: int = 4
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Pixel-frame trajectories -> latent-frame trajectories.

    Args:
        tracks: (F, L, 2) pixel xy, F = ratio * k + 1.
        visible: (F, L) bool.
        ratio: the VAE's temporal compression.

    Returns:
        ``(tracks (T, L, 2) float32, visible (T, L) bool)`` at the representative frames.
    """
    tracks, visible = as_track_tensors(tracks, visible)
    keep = torch.from_numpy(representative_frames(int(tracks.shape[0]), ratio)).to(tracks.device)
    return tracks[keep].to(torch.float32), visible[keep].to(torch.bool)
