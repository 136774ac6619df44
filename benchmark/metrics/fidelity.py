"""PSNR and SSIM of generated frames against a ground-truth render: torchmetrics' definitions,
evaluated with numpy and OpenCV in float64.

Why not torchmetrics (or torch) here: every score job is its own process, and importing torch
costs about 2.3 s of CPU and 650 MB (the ``torchmetrics`` package adds 9 s: its ``__init__``
loads every domain, torchvision's model zoo included). The smoke suite paid that 36 times, a
paper suite thousands of times, for a dozen array operations. So the score stage stays
torch-free: SSIM is torchmetrics' ``structural_similarity_index_measure`` (1.x,
``functional/image/ssim.py``: Gaussian window 11x11, sigma 1.5, reflect padding, variances
clamped at 0, mean of the full map) with the window applied by OpenCV's separable filter
(``BORDER_REFLECT_101`` is torch's ``reflect``), and PSNR is torchmetrics'
``PeakSignalNoiseRatio`` over the clip's pooled squared error.

Precision: PSNR equals torchmetrics' float64 answer bit for bit (the squared error of uint8
frames is an exact integer). SSIM equals torchmetrics run on float64 input to ~1e-12 and
differs from its float32 answer (what the scorer reported before issue 17) by about 1e-6:
float32 rounding in torch's convolution, not a change of definition. Tests hold both.
"""

from __future__ import annotations

import math

import numpy as np


def _check_video(name: str, video: np.ndarray) -> None:
    """Raise ValueError unless ``video`` is uint8 (F, H, W, 3)."""
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 (F, H, W, 3), got {video.dtype} {video.shape}")


def masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray, data_range: float = 255.0) -> float:
    """PSNR (dB) over the pixels where ``mask`` is True, pooled over all frames and channels.

    ``mask`` has the shape of ``a`` without its last (channel) axis, or exactly ``a``'s shape.
    torchmetrics' PSNR takes no mask, so the MSE over masked pixels is computed here (float64;
    exact for uint8 inputs). Identical masked pixels give ``inf``; an empty mask is a
    ValueError.
    """
    a, b, mask = np.asarray(a), np.asarray(b), np.asarray(mask, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: a {a.shape} vs b {b.shape}")
    if mask.shape == a.shape[:-1]:
        mask = mask[..., None]
    elif mask.shape != a.shape:
        raise ValueError(f"mask shape {mask.shape} matches neither {a.shape} nor {a.shape[:-1]}")
    mask = np.broadcast_to(mask, a.shape)
    count = int(mask.sum())
    if count == 0:
        raise ValueError("mask selects no pixels")
    diff = a[mask].astype(np.float64) - b[mask].astype(np.float64)
    mse = float(np.dot(diff, diff)) / count
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def frame_fidelity(
    frames: np.ndarray, reference: np.ndarray, mask: np.ndarray | None = None
) -> dict[str, float]:
    """PSNR (dB) and SSIM of generated ``frames`` against a ground-truth render ``reference``.

    Both are uint8 (F, H, W, 3); data range 255. PSNR is of the whole clip as one signal (MSE
    pooled over all frames, pixels and channels, torchmetrics' ``PeakSignalNoiseRatio``
    accumulated over frames), *not* the mean of per-frame PSNR: one identical frame (frame 0
    is the conditioning view, which e.g. the ``static`` control copies) would make that mean
    infinite. A clip identical throughout gives ``inf``. SSIM is torchmetrics' (Gaussian
    11x11, sigma 1.5, per RGB channel then averaged), mean over frames.

    With ``mask`` (F, H, W) bool, only True pixels count: PSNR via :func:`masked_psnr`, SSIM as
    the mean of the full SSIM map over masked pixels (the map is computed on the whole frame,
    so unmasked neighbours still enter each window). Shape mismatches raise ValueError naming
    both shapes.
    """
    frames, reference = np.asarray(frames), np.asarray(reference)
    if frames.shape != reference.shape:
        raise ValueError(f"shape mismatch: frames {frames.shape} vs reference {reference.shape}")
    _check_video("frames", frames)
    _check_video("reference", reference)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != frames.shape[:3]:
            raise ValueError(f"mask shape {mask.shape} must be {frames.shape[:3]} (frames' F,H,W)")
        if not mask.any():
            raise ValueError("mask selects no pixels")

    # Frame by frame: a 1024x576x25 clip as float64 or int64 would take ~350 MB per array.
    ssim_sum, ssim_count, sse = 0.0, 0, 0
    for i in range(frames.shape[0]):
        ssim = ssim_map(frames[i], reference[i], data_range=255.0)
        if mask is None:
            ssim_sum += float(ssim.mean())
            ssim_count += 1
            diff = frames[i].astype(np.int64) - reference[i].astype(np.int64)
            sse += int(np.dot(diff.ravel(), diff.ravel()))  # exact: integers
        else:
            ssim_sum += float(ssim[mask[i]].sum())
            ssim_count += int(mask[i].sum()) * ssim.shape[-1]
    if mask is None:
        psnr = psnr_like_torchmetrics(sse, frames.size, data_range=255.0)
    else:
        psnr = masked_psnr(frames, reference, mask)
    return {"psnr": psnr, "ssim": ssim_sum / ssim_count}


def gaussian_window(size: int, sigma: float) -> np.ndarray:
    """torchmetrics' 1-D Gaussian window (float64, sums to 1); its 2-D kernel is the outer
    product of this window with itself."""
    dist = np.arange((1 - size) / 2, (1 + size) / 2, 1.0)
    gauss = np.exp(-((dist / sigma) ** 2) / 2)
    return gauss / gauss.sum()


def ssim_map(
    preds: np.ndarray,
    target: np.ndarray,
    data_range: float,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> np.ndarray:
    """Per-pixel SSIM map (H, W, C) of one frame pair (H, W, C), float64: torchmetrics'
    ``return_full_image`` output (reflect padding, window size ``int(3.5 sigma + 0.5) * 2 +
    1``, variances clamped at 0). The frame's SSIM is the map's mean."""
    # OpenCV (0.2 s) is imported here: tables and aggregation import this package too.
    import cv2

    size = int(3.5 * sigma + 0.5) * 2 + 1
    window = gaussian_window(size, sigma)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    p = np.ascontiguousarray(preds, dtype=np.float64)
    t = np.ascontiguousarray(target, dtype=np.float64)

    def local_mean(x: np.ndarray) -> np.ndarray:
        out = cv2.sepFilter2D(x, cv2.CV_64F, window, window, borderType=cv2.BORDER_REFLECT_101)
        return out.reshape(x.shape)  # OpenCV drops a trailing axis of length 1

    mu_p, mu_t = local_mean(p), local_mean(t)
    mu_p_sq, mu_t_sq, mu_pt = mu_p * mu_p, mu_t * mu_t, mu_p * mu_t
    var_p = np.maximum(local_mean(p * p) - mu_p_sq, 0.0)
    var_t = np.maximum(local_mean(t * t) - mu_t_sq, 0.0)
    cov = local_mean(p * t) - mu_pt
    return ((2 * mu_pt + c1) * (2 * cov + c2)) / ((mu_p_sq + mu_t_sq + c1) * (var_p + var_t + c2))


#: torchmetrics multiplies the natural-log PSNR by ``10 / ln 10`` evaluated in float32.
_DB_PER_NEPER = float(np.float32(10.0) / np.log(np.float32(10.0)))


def psnr_like_torchmetrics(sum_squared_error: float, count: int, data_range: float) -> float:
    """Pooled PSNR (dB) as torchmetrics' ``PeakSignalNoiseRatio`` in float64 computes it from
    the accumulated squared error; ``inf`` when the error is 0."""
    if sum_squared_error == 0:
        return math.inf
    base_e = 2 * math.log(data_range) - math.log(sum_squared_error / count)
    return base_e * _DB_PER_NEPER
