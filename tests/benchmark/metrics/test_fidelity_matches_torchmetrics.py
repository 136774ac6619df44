"""frame_fidelity computes PSNR/SSIM without torch (numpy and OpenCV, float64); these tests
hold it to torchmetrics' own answer: PSNR bit for bit, SSIM to 1e-12 of torchmetrics on float64
input and to 1e-5 of its float32 answer (what the scorer reported before issue 17)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from torchmetrics.functional.image import structural_similarity_index_measure
from torchmetrics.image import PeakSignalNoiseRatio

from benchmark.metrics.fidelity import frame_fidelity

#: Frames per torchmetrics call in the oracle (per-frame SSIM does not depend on it).
CHUNK = 4


def torchmetrics_fidelity(
    frames: np.ndarray, reference: np.ndarray, mask=None, dtype=torch.float64
) -> dict:
    """The scorer written with torchmetrics (the oracle); SSIM on ``dtype`` input (the scorer
    before issue 17 used float32)."""
    psnr_metric = PeakSignalNoiseRatio(data_range=255.0).set_dtype(torch.float64)
    ssim_sum, ssim_count = 0.0, 0
    for start in range(0, frames.shape[0], CHUNK):
        sl = slice(start, start + CHUNK)
        pred = torch.from_numpy(frames[sl]).permute(0, 3, 1, 2).to(torch.float64)
        target = torch.from_numpy(reference[sl]).permute(0, 3, 1, 2).to(torch.float64)
        if mask is None:
            psnr_metric.update(pred, target)
            per_frame = structural_similarity_index_measure(
                pred.to(dtype), target.to(dtype), data_range=255.0, reduction="none"
            )
            ssim_sum += float(per_frame.double().sum())
            ssim_count += int(per_frame.numel())
        else:
            _, ssim_map = structural_similarity_index_measure(
                pred.to(dtype), target.to(dtype), data_range=255.0, return_full_image=True
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
def test_frame_fidelity_equals_torchmetrics(shape, seed) -> None:
    rng = np.random.default_rng(seed)
    ref = smooth_video(rng, shape)
    gen = np.clip(ref.astype(int) + rng.integers(-40, 41, size=shape), 0, 255).astype(np.uint8)
    ours, theirs = frame_fidelity(gen, ref), torchmetrics_fidelity(gen, ref)
    assert ours["psnr"] == theirs["psnr"]
    assert ours["ssim"] == pytest.approx(theirs["ssim"], abs=1e-12)
    float32 = torchmetrics_fidelity(gen, ref, dtype=torch.float32)
    assert ours["ssim"] == pytest.approx(float32["ssim"], abs=1e-5)

    mask = rng.random(shape[:3]) < 0.6
    mask[:, 0, 0] = True
    ours_m, theirs_m = frame_fidelity(gen, ref, mask), torchmetrics_fidelity(gen, ref, mask)
    assert ours_m["ssim"] == pytest.approx(theirs_m["ssim"], abs=1e-12)
    assert ours_m["ssim"] != pytest.approx(ours["ssim"], abs=1e-6)  # the mask mattered


def test_ssim_of_flat_frames_is_the_closed_form() -> None:
    """Flat frames a and b: means a, b, no variance, so SSIM = (2ab + c1) / (a^2 + b^2 + c1)
    with c1 = (0.01 * 255)^2, whatever the padding."""
    a = np.full((2, 17, 23, 3), 90, np.uint8)
    b = np.full((2, 17, 23, 3), 140, np.uint8)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 90 * 140 + c1) / (90**2 + 140**2 + c1)
    assert frame_fidelity(a, b)["ssim"] == pytest.approx(expected, rel=1e-13)


def test_identical_clip_psnr_is_inf_like_torchmetrics() -> None:
    v = smooth_video(np.random.default_rng(3), (3, 20, 24, 3))
    assert frame_fidelity(v, v.copy())["psnr"] == torchmetrics_fidelity(v, v.copy())["psnr"]


def test_fidelity_imports_no_torch() -> None:
    code = (
        "import sys, numpy as np\n"
        "from benchmark.metrics.fidelity import frame_fidelity\n"
        "v = np.zeros((2, 16, 16, 3), np.uint8)\n"
        "frame_fidelity(v, v + 1)\n"
        "print([m in sys.modules for m in ('torch', 'torchmetrics', 'torchvision')])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[False, False, False]"
