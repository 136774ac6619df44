r"""NVS-Solver's per-step, per-frame kept fractions (upstream's ``search_hypers``).

Part of :mod:`trajattn.nvs_guidance` (which re-exports it): the weight schedule ``w[i, f]``
from the scheduler's sigmas, numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

SEARCH_V1 = tuple(np.linspace(0.001, 0.009, 9).tolist())
SEARCH_V2 = tuple(np.arange(50, 1001, 50).astype(float).tolist())
SEARCH_V3 = tuple(np.arange(10, 101, 10).astype(float).tolist())
#: Constants ``k`` and ``b`` of the quadratic in ``search_hypers``.
SEARCH_K = 0.8
SEARCH_B = -0.2

def _quadratic_roots(
    v1: np.ndarray, q: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both roots of upstream's quadratic for parameter ``v1`` and their realness.

    Written as upstream has it: numerator ``-(2 v1 + k Q)``, discriminant
    ``(2 k v1 + k Q)^2 - 4 k v1 (k v1 + Q b)``, denominator ``2 k v1``.
    """
    k, b = SEARCH_K, SEARCH_B
    disc = (2 * k * v1 + k * q) ** 2 - 4 * k * v1 * (k * v1 + q * b)
    real = disc >= 0
    root = np.sqrt(np.where(real, disc, 0.0))
    plus = (-(2 * v1 + k * q) + root) / (2 * k * v1)
    minus = (-(2 * v1 + k * q) - root) / (2 * k * v1)
    return plus, minus, real


def lambda_weight(
    v1: np.ndarray | float,
    v2: np.ndarray | float,
    v3: np.ndarray | float,
    sigma_n: np.ndarray | float,
    tau_n: np.ndarray | float,
) -> np.ndarray:
    r"""Upstream's per-step, per-frame weight ``lambda / (1 + lambda)`` (NaN where undefined).

    From ``search_hypers`` in svd_interpolate_single_img.py: with ``Q = v3 |tau_n| - v2
    sigma_n`` (``tau_n`` = frame index / (frames - 1), ``sigma_n`` = sigma / max sigma),
    ``lambda`` is the first of: root ``+`` of the quadratic for ``v1`` if real and > 1, root
    ``-`` if real and > 1, root ``+`` for ``-v1`` if real and in (0, 1], root ``-`` for ``-v1`` if
    real and in (0, 1]. When none qualifies the weight is undefined (upstream then rejects
    ``v``).

    Returns:
        The broadcast weights, float64.
    """
    v1, v2, v3, sigma_n, tau_n = np.broadcast_arrays(
        *(np.asarray(a, dtype=np.float64) for a in (v1, v2, v3, sigma_n, tau_n))
    )
    q = v3 * np.abs(tau_n) - v2 * sigma_n
    p1, p2, real_p = _quadratic_roots(v1, q)
    n1, n2, real_n = _quadratic_roots(-v1, q)
    lam = np.full(q.shape, np.nan)
    choices = [
        (real_p & (p1 > 1.0), p1),
        (real_p & (p2 > 1.0), p2),
        (real_n & (n1 <= 1.0) & (n1 > 0), n1),
        (real_n & (n2 <= 1.0) & (n2 > 0), n2),
    ]
    for cond, value in reversed(choices):  # the earliest qualifying root wins
        lam = np.where(cond, value, lam)
    return lam / (1 + lam)


def weight_schedule(
    sigmas: Sequence[float] | np.ndarray | torch.Tensor,
    num_frames: int,
    v1_grid: Sequence[float] = SEARCH_V1,
    v2_grid: Sequence[float] = SEARCH_V2,
    v3_grid: Sequence[float] = SEARCH_V3,
) -> tuple[np.ndarray, tuple[float, float, float]]:
    r"""Upstream's ``lambda_ts``: kept fraction per denoising step and frame.

    ``search_hypers`` (svd_interpolate_single_img.py) tries every ``(v1, v2, v3)`` of the grid
    (v1 outermost), drops those for which some step/frame has no weight, and keeps the first
    one with the most weights > 0.5. Frame 0 (the conditioning view) always weighs 1. Upstream
    ran it on ``sigmas/sigmas_100.npy``, which equals SVD-XT's Euler sigmas for 100 steps; here
    the pipeline's own sigmas are used, so any step count works.

    Args:
        sigmas: the step sigmas (``scheduler.sigmas[:-1]``: without the final 0).
        num_frames: frames of the clip (upstream: 25).

    Returns:
        weights (steps, num_frames) float64 in (0, 1], and the chosen (v1, v2, v3).

    Raises:
        ValueError: no grid point gives a weight everywhere.
    """
    if isinstance(sigmas, torch.Tensor):
        sigmas = sigmas.detach().double().cpu().numpy()
    sig = np.asarray(sigmas, dtype=np.float64)
    if sig.ndim != 1 or len(sig) == 0 or num_frames < 2:
        raise ValueError("need 1-D step sigmas and at least 2 frames")
    sigma_n = sig / sig.max()
    tau_n = np.arange(1, num_frames) / (num_frames - 1)
    v1 = np.asarray(v1_grid, dtype=np.float64)[:, None, None, None, None]
    v2 = np.asarray(v2_grid, dtype=np.float64)[None, :, None, None, None]
    v3 = np.asarray(v3_grid, dtype=np.float64)[None, None, :, None, None]
    w = lambda_weight(v1, v2, v3, sigma_n[:, None], tau_n[None, :])  # (V1, V2, V3, S, F-1)
    ok = np.isfinite(w).all(axis=(-2, -1))
    # Frame 0 contributes one weight 1 (> 0.5) per step to every count.
    count = (np.where(np.isfinite(w), w, 0) > 0.5).sum(axis=(-2, -1)) + len(sig)
    count = np.where(ok, count, -1)
    if not ok.any():
        raise ValueError("no (v1, v2, v3) of the grid gives a weight for every step and frame")
    best = np.unravel_index(int(np.argmax(count)), count.shape)  # first maximum, C order
    weights = np.ones((len(sig), num_frames))
    weights[:, 1:] = w[best]
    chosen = (float(v1_grid[best[0]]), float(v2_grid[best[1]]), float(v3_grid[best[2]]))
    return weights, chosen
