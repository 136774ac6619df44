"""PSNR and SSIM of generated frames against a ground-truth render, computed as torchmetrics
computes them (tests check equality with torchmetrics' own answer, bit for bit).

Why not call torchmetrics here: importing the ``torchmetrics`` package costs about 9 s of CPU and
300 MB per process on top of torch (its ``__init__`` loads every domain, torchvision's model zoo
included), and every score job is its own process: the smoke suite paid it 36 times, a paper
suite thousands of times. SSIM and pooled PSNR are a dozen torch operations, so they are written
here in torchmetrics' order and dtype (1.x: ``functional/image/ssim.py``, ``image/psnr.py``),
which keeps ``metrics.csv`` byte-identical to the torchmetrics-based scores.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: Frames per SSIM batch (bounds memory on 576x1024 clips).
SSIM_CHUNK = 4


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
    accumulated over frame chunks), *not* the mean of per-frame PSNR: one identical frame
    (frame 0 is the conditioning view, which e.g. the ``static`` control copies) would make that
    mean infinite. A clip identical throughout gives ``inf``. SSIM is torchmetrics'
    (Gaussian 11x11, sigma 1.5, per RGB channel then averaged), mean over frames.

    With ``mask`` (F, H, W) bool, only True pixels count: PSNR via :func:`masked_psnr`, SSIM as
    the mean of torchmetrics' full SSIM map over masked pixels (the map is computed on the
    whole frame, so unmasked neighbours still enter each window). Shape mismatches raise
    ValueError naming both shapes.
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

    # torch (about 3 s, 650 MB per process) is imported here, not at module level: only fidelity
    # scoring pays for it, while pose scoring, tables and aggregation stay torch-free.
    import torch

    sse, count = torch.zeros((), dtype=torch.float64), 0
    ssim_sum, ssim_count = 0.0, 0
    for start in range(0, frames.shape[0], SSIM_CHUNK):
        sl = slice(start, start + SSIM_CHUNK)
        pred = torch.from_numpy(frames[sl]).permute(0, 3, 1, 2).to(torch.float64)
        target = torch.from_numpy(reference[sl]).permute(0, 3, 1, 2).to(torch.float64)
        ssim_map = ssim_map_like_torchmetrics(pred.float(), target.float(), data_range=255.0)
        if mask is None:
            sse += torch.sum(torch.pow(pred - target, 2))
            count += target.numel()
            per_frame = ssim_map.reshape(ssim_map.shape[0], -1).mean(-1)
            ssim_sum += float(per_frame.double().sum())
            ssim_count += int(per_frame.numel())
        else:
            m = torch.from_numpy(mask[sl])[:, None].expand_as(ssim_map)
            ssim_sum += float(ssim_map.double()[m].sum())
            ssim_count += int(m.sum())

    if mask is None:
        psnr = psnr_like_torchmetrics(sse, count, data_range=255.0)
    else:
        psnr = masked_psnr(frames, reference, mask)
    if ssim_count == 0:
        raise ValueError("mask selects no pixels")
    return {"psnr": psnr, "ssim": ssim_sum / ssim_count}


def _gaussian_kernel(channels: int, size: int, sigma: float, dtype: Any) -> Any:
    """torchmetrics' separable Gaussian window, (channels, 1, size, size), normalised per axis."""
    import torch  # only the fidelity path pays for torch (see the module docstring)

    dist = torch.arange(start=(1 - size) / 2, end=(1 + size) / 2, step=1, dtype=dtype)
    gauss = torch.exp(-torch.pow(dist / sigma, 2) / 2)
    row = (gauss / gauss.sum()).unsqueeze(dim=0)
    return torch.matmul(row.t(), row).expand(channels, 1, size, size)


def ssim_map_like_torchmetrics(
    preds: Any,
    target: Any,
    data_range: float,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> Any:
    """Per-pixel SSIM map (B, C, H, W) of torchmetrics' ``structural_similarity_index_measure``
    with a Gaussian window (its ``return_full_image`` output): reflect padding, window size
    ``int(3.5 sigma + 0.5) * 2 + 1``, variances clamped at 0. The per-image SSIM is the map's
    mean over C, H, W."""
    import torch  # only the fidelity path pays for torch (see the module docstring)
    from torch.nn import functional

    size = int(3.5 * sigma + 0.5) * 2 + 1
    pad = (size - 1) // 2
    c1, c2 = pow(k1 * data_range, 2), pow(k2 * data_range, 2)
    channels, dtype = preds.size(1), preds.dtype
    preds = functional.pad(preds, (pad, pad, pad, pad), mode="reflect")
    target = functional.pad(target, (pad, pad, pad, pad), mode="reflect")
    kernel = _gaussian_kernel(channels, size, sigma, dtype)
    stacked = torch.cat((preds, target, preds * preds, target * target, preds * target))
    mu_p, mu_t, e_pp, e_tt, e_pt = functional.conv2d(stacked, kernel, groups=channels).split(
        preds.shape[0]
    )
    mu_p_sq, mu_t_sq, mu_pt = mu_p.pow(2), mu_t.pow(2), mu_p * mu_t
    var_p = torch.clamp(e_pp - mu_p_sq, min=0.0)
    var_t = torch.clamp(e_tt - mu_t_sq, min=0.0)
    cov = e_pt - mu_pt
    upper = 2 * cov.to(dtype) + c2
    lower = (var_p + var_t).to(dtype) + c2
    return ((2 * mu_pt + c1) * upper) / ((mu_p_sq + mu_t_sq + c1) * lower)


def psnr_like_torchmetrics(sum_squared_error: Any, count: int, data_range: float) -> float:
    """Pooled PSNR (dB) as torchmetrics' ``PeakSignalNoiseRatio`` in float64 computes it from the
    accumulated squared error (its 10 / ln 10 factor is evaluated in float32, as there)."""
    import torch  # only the fidelity path pays for torch (see the module docstring)

    base_e = 2 * torch.log(torch.tensor(data_range, dtype=torch.float64)) - torch.log(
        sum_squared_error / torch.tensor(count)
    )
    return float(base_e * (10 / torch.log(torch.tensor(10.0))))
