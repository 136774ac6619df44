r"""NVS-Solver's options, targets and closed-form latent update (see :mod:`trajattn.nvs_guidance`).

Part of :mod:`trajattn.nvs_guidance` (which re-exports it): :class:`NVSGuidanceConfig`, the
warped frames encoded into target latents with their hole masks, and the update of one
denoising step (:func:`guidance_delta`) with upstream's crops and outlier rejection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

#: Upstream's divisor of the VAE's ``latent_dist.mode()`` for the targets (``factor_s``);
#: close to, but not, ``1 / vae.config.scaling_factor`` (5.49 for SVD).
UPSTREAM_LATENT_DIVISOR = 5.6
#: Upstream's guidance crop in latent cells (rows, columns): ``[:40, :72]`` ... ``[32:, 56:]``.
UPSTREAM_CROP = (40, 72)
HOLE_FILLS = {"black": -1.0, "grey": 0.0}
X0_PASSES = ("unconditional", "cfg")


@dataclass(frozen=True)
class NVSGuidanceConfig:
    r"""Options of the guidance; defaults are upstream's single-image settings (demo.sh).

    Args:
        lr: step size of the normalised update (``--lr 0.02``).
        weight_clamp: lower clamp of the kept fraction (``--weight_clamp 0.2``).
        weights: fixed (steps, frames) kept fractions; None: :func:`weight_schedule` of the
            scheduler's sigmas (upstream's ``lambda_ts``).
        refresh: re-run the UNet on the guided latents before the Euler step (upstream's order);
            False reuses the prediction of the unguided latents (one UNet pass per step).
        compat_cutoff: upstream's cutoff index (hole cells counted once where the sorted list
            holds one zero per channel); False (a departure): exactly ``w`` of the valid entries.
        crop: (rows, columns) latent crop whose statistics (cutoff, hole count, std) each part
            of the latent gets, tiled as upstream tiles 72x128 with 40x72 (see
            :func:`crop_windows`); None (a departure): statistics over the whole frame.
        x0_pass: ``"unconditional"``: x0 from a UNet pass with the zero CLIP embedding and the
            conditional image latents (upstream); ``"cfg"`` (a departure): the pipeline's own
            classifier-free-guided prediction.
        hole_fill: ``"black"``: hole pixels -1 (upstream zeroes the uint8 image); ``"grey"`` (a
            departure): 0 after scaling to [-1, 1].
        latent_divisor: targets are ``vae.encode(frames).latent_dist.mode() / latent_divisor``;
            None uses ``1 / vae.config.scaling_factor``.
        dilate_kernel: side of the square kernel dilating pixel holes (upstream 5).
        hole_threshold: a latent cell is a hole when this fraction of its pixels is (0.2).
    """

    lr: float = 0.02
    weight_clamp: float = 0.2
    weights: np.ndarray | None = None
    refresh: bool = True
    compat_cutoff: bool = True
    crop: tuple[int, int] | None = UPSTREAM_CROP
    x0_pass: str = "unconditional"
    hole_fill: str = "black"
    latent_divisor: float | None = UPSTREAM_LATENT_DIVISOR
    dilate_kernel: int = 5
    hole_threshold: float = 0.2

    def __post_init__(self) -> None:
        if self.hole_fill not in HOLE_FILLS:
            raise ValueError(
                f"hole_fill must be one of {sorted(HOLE_FILLS)}, got {self.hole_fill!r}"
            )
        if self.x0_pass not in X0_PASSES:
            raise ValueError(f"x0_pass must be one of {X0_PASSES}, got {self.x0_pass!r}")
        if self.crop is not None and (len(self.crop) != 2 or min(self.crop) < 1):
            raise ValueError(f"crop must be (rows, columns) >= 1 or None, got {self.crop!r}")


# --------------------------------------------------------------------------- targets and masks


def dilate_holes(valid: torch.Tensor, kernel: int = 5) -> torch.Tensor:
    r"""Grow the holes of ``valid`` (F, H, W) bool by a ``kernel`` x ``kernel`` square.

    Upstream dilates the hole mask with ``cv2.dilate(np.ones((5, 5)))`` before zeroing the
    warped frames and pooling.
    """
    if kernel <= 1:
        return valid.clone()
    holes = (~valid).float()[:, None]
    pad = kernel // 2
    grown = F.max_pool2d(F.pad(holes, (pad, kernel - 1 - pad) * 2), kernel, stride=1)
    return ~(grown[:, 0] > 0)


def latent_valid(valid: torch.Tensor, factor: int, threshold: float = 0.2) -> torch.Tensor:
    r"""Pool pixel validity (F, H, W) to latent cells of ``factor`` x ``factor`` pixels.

    A cell is a hole when at least ``threshold`` of its pixels are holes (upstream: mean of
    each 8x8 block of the dilated hole mask, ``>= 0.2`` -> hole).
    """
    f, h, w = valid.shape
    if h % factor or w % factor:
        raise ValueError(f"frame size {w}x{h} is not a multiple of the VAE factor {factor}")
    hole_frac = F.avg_pool2d((~valid).float()[:, None], factor)[:, 0]
    return hole_frac < threshold


def encode_targets(
    pipe: Any,
    frames: np.ndarray,
    valid: np.ndarray,
    config: NVSGuidanceConfig = NVSGuidanceConfig(),
    chunk: int = 8,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Encode warped frames into guidance targets with the pipeline's VAE.

    Args:
        pipe: an SVD pipeline (``vae``, ``vae_scale_factor``).
        frames: (F, H, W, 3) uint8 warped frames in the generated frames' pixels.
        valid: (F, H, W) bool, True where the warp has a colour.

    Returns:
        target latents (F, C, H/s, W/s) float32 and latent validity (F, H/s, W/s) bool, on the
        pipeline's device. Dilated holes are filled with ``config.hole_fill`` before encoding
        (black as upstream, which zeroes the uint8 frames).
    """
    frames = np.asarray(frames)
    valid_t = torch.as_tensor(np.asarray(valid, dtype=bool))
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(
            f"warped frames must be uint8 (F, H, W, 3), got {frames.dtype} {frames.shape}"
        )
    if tuple(valid_t.shape) != frames.shape[:3]:
        raise ValueError(f"valid masks {tuple(valid_t.shape)} do not match frames {frames.shape}")
    valid_px = dilate_holes(valid_t, config.dilate_kernel)
    cells = latent_valid(valid_px, int(pipe.vae_scale_factor), config.hole_threshold)
    pixels = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    pixels = torch.where(valid_px[:, None], pixels, HOLE_FILLS[config.hole_fill])
    vae = pipe.vae
    device, dtype = vae.device, vae.dtype
    divisor = config.latent_divisor or 1.0 / float(vae.config.scaling_factor)
    latents = []
    with torch.no_grad():
        for start in range(0, len(pixels), chunk):
            batch = pixels[start : start + chunk].to(device=device, dtype=dtype)
            latents.append(vae.encode(batch).latent_dist.mode().float() / divisor)
    return torch.cat(latents), cells.to(device)


# --------------------------------------------------------------------------- the update


def crop_windows(size: int, crop: int) -> list[tuple[int, int, int]]:
    r"""Upstream's overlapping guidance crops along one latent axis.

    Upstream tiles 72 rows with 40-row crops at 0 and 32 and 128 columns with 72-column crops
    at 0 and 56, and stitches each position from the first crop that still covers it (rows
    < 40 from the top crops). Any size is tiled the same way: ``ceil(size / crop)`` crops
    spread evenly from 0 to ``size - crop``.

    Returns:
        ``(start, lo, hi)`` per crop: it covers ``[start, start + min(crop, size))`` and owns
        positions ``[lo, hi)``.
    """
    if size <= crop:
        return [(0, 0, size)]
    count = -(-size // crop)
    starts = np.rint(np.linspace(0, size - crop, count)).astype(int).tolist()
    windows, lo = [], 0
    for k, start in enumerate(starts):
        hi = size if k == count - 1 else start + crop
        windows.append((start, lo, hi))
        lo = hi
    return windows


def keep_closest(
    diff: torch.Tensor, valid: torch.Tensor, fraction: float, compat_cutoff: bool = True
) -> torch.Tensor:
    r"""Mask of the valid entries of one frame whose ``|diff|`` is among the smallest.

    Args:
        diff: (C, h, w) ``x0 - target`` of one frame.
        valid: (h, w) bool latent validity.
        fraction: share of the valid entries to keep, in [0, 1].
        compat_cutoff: upstream's index (default): ``int(fraction * (C h w - n)) + n`` into
            the sorted ``|diff * valid|`` (holes are zeros there) with ``n`` hole *cells*, not
            entries; False: exactly ``fraction`` of the valid entries.

    Returns:
        (C, h, w) bool; never True in a hole.
    """
    mask = valid[None].expand_as(diff)
    absdiff = diff.abs()
    if compat_cutoff:
        flat = torch.sort((absdiff * mask).flatten()).values
        n_holes = int((~valid).sum())
        index = int(fraction * (flat.numel() - n_holes)) + n_holes
        cutoff = flat[index - 1]  # index 0 wraps to the largest, as upstream's indexing does
        return (absdiff <= cutoff) & mask
    values = absdiff[mask]
    count = int(fraction * values.numel())
    if count <= 0:
        return torch.zeros_like(mask)
    cutoff = torch.kthvalue(values.flatten().cpu(), count).values.to(absdiff.device)
    return (absdiff <= cutoff) & mask


def guidance_delta(
    x0: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor,
    weights: torch.Tensor | np.ndarray,
    sigma: float,
    lr: float,
    weight_clamp: float,
    compat_cutoff: bool = True,
    crop: tuple[int, int] | None = UPSTREAM_CROP,
) -> torch.Tensor | None:
    r"""The NVS-Solver latent update of one step (closed form of upstream's gradient step).

    Args:
        x0: (B, F, C, h, w) predicted clean latents.
        target: (F, C, h, w) warped-frame latents; valid: (F, h, w) bool.
        weights: (F,) kept fraction per frame before clamping to ``[weight_clamp, 1]``.
        sigma: the step's sigma; lr: step size.
        compat_cutoff: upstream's kept-fraction index (see :func:`keep_closest`).
        crop: latent crop (rows, columns) of the statistics, tiled by :func:`crop_windows`;
            None: the whole frame.

    Returns:
        ``-lr sqrt(sigma) g / std(g)`` with ``g = keep * (x0 - target)`` per video and crop,
        float32 of x0's shape; None when the update is zero (lr 0 or nothing kept), so
        callers can skip it.
    """
    if lr == 0:
        return None
    diff = x0.float() - target.float()[None]
    fractions = torch.as_tensor(np.asarray(weights, dtype=np.float64)).clamp(weight_clamp, 1.0)
    height, width = diff.shape[-2:]
    crop_h, crop_w = (height, width) if crop is None else crop
    delta = torch.zeros_like(diff)
    for b in range(diff.shape[0]):
        for r0, rlo, rhi in crop_windows(height, crop_h):
            for c0, clo, chi in crop_windows(width, crop_w):
                rows = slice(r0, r0 + min(crop_h, height))
                cols = slice(c0, c0 + min(crop_w, width))
                part, part_valid = diff[b, :, :, rows, cols], valid[:, rows, cols]
                keep = torch.stack(
                    [
                        keep_closest(part[f], part_valid[f], float(fractions[f]), compat_cutoff)
                        for f in range(diff.shape[1])
                    ]
                )
                g = part * keep
                std = g.std()
                if bool(keep.any()) and float(std) > 0:
                    step = -(lr * float(sigma) ** 0.5) * g / std
                    delta[b, :, :, rlo:rhi, clo:chi] = step[..., rlo - r0 : rhi - r0,
                                                            clo - c0 : chi - c0]
    return delta if bool(delta.any()) else None


def predicted_clean_latent(
    prediction_type: str, model_output: torch.Tensor, sample: torch.Tensor, sigma: float
) -> torch.Tensor:
    """x0 as ``EulerDiscreteScheduler.step`` computes it (no churn), in float32."""
    sample = sample.float()
    out = model_output.float()
    if prediction_type in ("sample", "original_sample"):
        return out
    if prediction_type == "epsilon":
        return sample - sigma * out
    if prediction_type == "v_prediction":
        return out * (-sigma / (sigma**2 + 1) ** 0.5) + sample / (sigma**2 + 1)
    raise ValueError(f"unsupported prediction_type {prediction_type!r}")
