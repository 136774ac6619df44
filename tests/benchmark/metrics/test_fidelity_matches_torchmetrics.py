"""frame_fidelity computes PSNR/SSIM without importing torchmetrics; these tests hold it to
torchmetrics' own answer, bit for bit, so metrics.csv stays what the torchmetrics-based scorer
wrote."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from torchmetrics.functional.image import structural_similarity_index_measure
from torchmetrics.image import PeakSignalNoiseRatio

from benchmark.metrics.fidelity import SSIM_CHUNK, frame_fidelity


def torchmetrics_fidelity(frames: np.ndarray, reference: np.ndarray, mask=None) -> dict:
    """The scorer as it was written with torchmetrics (the oracle)."""
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
    out = {"ssim": ssim_sum / ssim_count}
    if mask is None:
        out["psnr"] = float(psnr_metric.compute())
    return out


def smooth_video(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random frames with image-like structure (a blurred field plus noise), uint8."""
    base = rng.normal(size=shape).cumsum(axis=1).cumsum(axis=2)
    base = (base - base.min()) / (np.ptp(base) + 1e-9) * 255
    return np.clip(base + rng.normal(0, 6, size=shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    "shape", [(1, 11, 13, 3), (5, 32, 48, 3), (9, 40, 72, 3), (14, 64, 112, 3)]
)
@pytest.mark.parametrize("seed", [0, 1])
def test_frame_fidelity_equals_torchmetrics_bit_for_bit(shape, seed) -> None:
    rng = np.random.default_rng(seed)
    ref = smooth_video(rng, shape)
    gen = np.clip(ref.astype(int) + rng.integers(-40, 41, size=shape), 0, 255).astype(np.uint8)
    ours, theirs = frame_fidelity(gen, ref), torchmetrics_fidelity(gen, ref)
    assert ours["psnr"] == theirs["psnr"]
    assert ours["ssim"] == theirs["ssim"]

    mask = rng.random(shape[:3]) < 0.6
    mask[:, 0, 0] = True
    ours_m, theirs_m = frame_fidelity(gen, ref, mask), torchmetrics_fidelity(gen, ref, mask)
    assert ours_m["ssim"] == theirs_m["ssim"]


def test_identical_clip_psnr_is_inf_like_torchmetrics() -> None:
    v = smooth_video(np.random.default_rng(3), (3, 20, 24, 3))
    assert frame_fidelity(v, v.copy())["psnr"] == torchmetrics_fidelity(v, v.copy())["psnr"]


def test_fidelity_does_not_import_torchmetrics() -> None:
    code = (
        "import sys, numpy as np\n"
        "from benchmark.metrics.fidelity import frame_fidelity\n"
        "v = np.zeros((2, 16, 16, 3), np.uint8)\n"
        "frame_fidelity(v, v + 1)\n"
        "print('torchmetrics' in sys.modules, 'torchvision' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
