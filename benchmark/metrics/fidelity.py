"""PSNR and SSIM of generated frames against a ground-truth render (torchmetrics, imported
lazily so pose scoring stays torch-free)."""

from __future__ import annotations

import math

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

    # torch (about 4 s, 650 MB per process) and torchmetrics (torchvision's model zoo) are
    # imported here, not at module level: only fidelity scoring pays for them, while pose
    # scoring, tables and aggregation stay torch-free.
    import torch
    from torchmetrics.functional.image import structural_similarity_index_measure
    from torchmetrics.image import PeakSignalNoiseRatio

    psnr_metric = PeakSignalNoiseRatio(data_range=255.0).set_dtype(torch.float64)
    ssim_sum, ssim_count = 0.0, 0
    for start in range(0, frames.shape[0], SSIM_CHUNK):
        sl = slice(start, start + SSIM_CHUNK)
        pred = torch.from_numpy(frames[sl]).permute(0, 3, 1, 2).to(torch.float64)
        target = torch.from_numpy(reference[sl]).permute(0, 3, 1, 2).to(torch.float64)
        if mask is None:
            psnr_metric.update(pred, target)
            per_frame = structural_similarity_index_measure(
                pred.float(), target.float(), data_range=255.0, reduction="none"
            )
            ssim_sum += float(per_frame.double().sum())
            ssim_count += int(per_frame.numel())
        else:
            _, ssim_map = structural_similarity_index_measure(
                pred.float(), target.float(), data_range=255.0, return_full_image=True
            )
            m = torch.from_numpy(mask[sl])[:, None].expand_as(ssim_map)
            ssim_sum += float(ssim_map.double()[m].sum())
            ssim_count += int(m.sum())

    if mask is None:
        psnr = float(psnr_metric.compute())
    else:
        psnr = masked_psnr(frames, reference, mask)
    if ssim_count == 0:
        raise ValueError("mask selects no pixels")
    return {"psnr": psnr, "ssim": ssim_sum / ssim_count}
