r"""NVS-Solver guidance (Zhu et al., ICLR 2025) as a component for any diffusers SVD pipeline.

NVS-Solver steers SVD's Euler sampler toward depth-warped copies of the conditioning image.
What the upstream code computes (ZHU-Zhiyu/NVS_Solver @ b69f2f7, ``svd_interpolate_single_img.py``
``StableVideoDiffusionPipeline.__call__`` and ``src/diffusers/schedulers/
scheduling_euler_discrete.py`` ``EulerDiscreteScheduler.step_single``), per denoising step ``i``:

1. A UNet pass predicts the clean latent ``x0`` of the current latents ``x``: upstream runs it
   with the *zero* CLIP embedding (``image_embeddings[0:1]``, the unconditional half) and the
   *conditional* image latents (``image_latents[1:2]``), no classifier-free guidance.
2. The update is computed on four overlapping latent crops of 40x72 cells (rows 0-40 and
   32-72, columns 0-72 and 56-128 of the 72x128 latent), each on its own: per frame ``f`` only
   the fraction ``w[i, f]`` (clamped to ``[weight_clamp, 1]``) of the valid entries of the
   crop whose ``|x0 - target|`` is smallest is kept (outlier rejection), with upstream's cutoff
   index ``int(w (C h w - n)) + n`` into the sorted ``|diff * valid|`` where ``n`` counts hole
   *cells* of the crop (the list holds ``C n`` hole zeros, so a frame with many holes keeps
   fewer entries, or none); holes (warp masks dilated by 5 px, pooled to latent cells, a
   cell is a hole when >= 20 % of its pixels are) are never kept. Frame 0 keeps everything.
3. ``loss = sum(mask * (x0 - target)^2) / sum(mask)`` and its gradient is taken with respect to
   ``x`` *only through the explicit ``x`` term of x0* (upstream detaches the UNet input, so
   no gradient flows through the network): ``grad ~ mask * (x0 - target)``. Normalised by the
   crop's std, ``x <- x - lr * sqrt(sigma_i) * grad / std(grad)`` (upstream lr 0.02); the
   crops are stitched back with rows < 40 from the top crops and columns < 72 from the left.
4. A normal classifier-free-guided UNet pass on the updated latents and an Euler step.

Warped frames are zeroed in the dilated holes *as uint8 images* before preprocessing
(``svd_interpolate_single_img.py`` ``np.uint8(warped_frame2 * (1 - mask_erosion_))``), so the
VAE sees black (-1 after scaling to [-1, 1]) there.

So the update is closed form on the latents; no autograd through the UNet is needed (it
equals upstream's backward pass to 1e-7).
Here that is done without forking diffusers' denoising loop: :class:`NVSGuidedScheduler` wraps
the pipeline's ``EulerDiscreteScheduler``; its ``step`` takes the pipeline's own prediction for
``x``, computes the update (:func:`guidance_delta`), and (``refresh=True``, upstream's order)
re-runs the pipeline's UNet with the conditioning captured from the pipeline's own call on
the updated latents before delegating the Euler step. :func:`nvs_guidance` installs it on a
pipeline for one call and always restores the original scheduler.

Upstream's rules are the defaults. Departures are explicit options of
:class:`NVSGuidanceConfig`, each off by default:

- ``x0_pass="cfg"``: x0 from the pipeline's classifier-free-guided prediction (one UNet pass
  fewer per step) instead of upstream's unconditional pass.
- ``crop=None``: cutoff, hole count and std normalisation over the whole frame instead of per
  upstream crop. (The UNet itself always runs on the whole frame here: upstream's crops only
  fit its unused backward pass through the UNet into GPU memory.)
- ``compat_cutoff=False``: keep exactly ``w`` of the valid entries instead of upstream's index.
- ``hole_fill="grey"``: holes at 0 after scaling (mid-grey) instead of black.

Remaining difference, not an option: frame 0's target is the encoded conditioning image
without SVD's noise augmentation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

#: Hyper-parameter grid of upstream's ``search_hypers`` (svd_interpolate_single_img.py).
SEARCH_V1 = tuple(np.linspace(0.001, 0.009, 9).tolist())
SEARCH_V2 = tuple(np.arange(50, 1001, 50).astype(float).tolist())
SEARCH_V3 = tuple(np.arange(10, 101, 10).astype(float).tolist())
#: Constants ``k`` and ``b`` of the quadratic in ``search_hypers``.
SEARCH_K = 0.8
SEARCH_B = -0.2
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


# --------------------------------------------------------------------------- weight schedule


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


# --------------------------------------------------------------------------- the hook


class NVSGuidedScheduler:
    r"""Wraps an ``EulerDiscreteScheduler``: ``step`` applies the NVS-Solver update first.

    Every other attribute is the wrapped scheduler's, so a pipeline uses it unchanged. Built
    by :func:`nvs_guidance`; ``history`` records per step the update's RMS and kept share.
    """

    def __init__(
        self,
        scheduler: Any,
        pipe: Any,
        targets: torch.Tensor,
        valid: torch.Tensor,
        config: NVSGuidanceConfig,
    ) -> None:
        self.scheduler = scheduler
        self.pipe = pipe
        self.targets = targets
        self.valid = valid
        self.config = config
        self.weights: np.ndarray | None = (
            None if config.weights is None else np.asarray(config.weights, dtype=np.float64)
        )
        self.chosen: tuple[float, float, float] | None = None
        self.history: list[dict[str, float]] = []
        self._unet_call: tuple[tuple, dict] | None = None

    def __getattr__(self, name: str) -> Any:
        scheduler = self.__dict__.get("scheduler")
        if scheduler is None:
            raise AttributeError(name)
        return getattr(scheduler, name)

    def set_timesteps(self, *args: Any, **kwargs: Any) -> None:
        """Delegate, then compute the weight schedule for the new sigmas."""
        self.scheduler.set_timesteps(*args, **kwargs)
        steps = len(self.scheduler.sigmas) - 1
        frames = self.targets.shape[0]
        if self.config.weights is None:
            self.weights, self.chosen = weight_schedule(self.scheduler.sigmas[:-1], frames)
        elif self.weights.shape != (steps, frames):
            raise ValueError(f"weights {self.weights.shape} but the call has {(steps, frames)}")

    def record_unet_call(self, module: Any, args: tuple, kwargs: dict) -> None:
        """Forward pre-hook on the UNet: keep the conditioning of the pipeline's last call."""
        self._unet_call = (args, kwargs)

    def _unconditional_output(self, sample: torch.Tensor, timestep: Any) -> torch.Tensor:
        """The UNet output for ``sample`` as upstream's guidance pass computes it: the zero CLIP
        embedding with the *conditional* image latents, no classifier-free guidance.

        The recorded call's batch layout is kept (both CFG halves get the same inputs, the
        first is used), so processors that rely on the pipeline's batch size work unchanged.
        """
        if self._unet_call is None:
            raise RuntimeError("no UNet call was recorded before the scheduler step")
        args, kwargs = self._unet_call
        first = args[0] if args else kwargs["sample"]
        scaled = self.scheduler.scale_model_input(sample, timestep)
        batch, channels = scaled.shape[0], scaled.shape[2]
        copies = first.shape[0] // batch
        cond_image = first[-batch:, :, channels:]  # the conditional half (the last)
        new_input = torch.cat([torch.cat([scaled, cond_image], dim=2)] * copies)
        if "encoder_hidden_states" in kwargs:
            kwargs = {**kwargs, "encoder_hidden_states": torch.zeros_like(
                kwargs["encoder_hidden_states"])}
        elif len(args) > 2:
            args = (*args[:2], torch.zeros_like(args[2]), *args[3:])
        else:
            raise RuntimeError("the recorded UNet call has no encoder_hidden_states")
        if args:
            args = (new_input, *args[1:])
        else:
            kwargs = {**kwargs, "sample": new_input}
        out = self.pipe.unet(*args, **kwargs)
        out = out[0] if isinstance(out, tuple) else out.sample
        return out[:batch]

    def _refreshed_output(self, sample: torch.Tensor, timestep: Any) -> torch.Tensor:
        """The pipeline's CFG prediction for ``sample``, from its last UNet call's inputs."""
        if self._unet_call is None:
            raise RuntimeError("no UNet call was recorded before the scheduler step")
        args, kwargs = self._unet_call
        first = args[0] if args else kwargs["sample"]
        scaled = self.scheduler.scale_model_input(sample, timestep)
        copies = first.shape[0] // scaled.shape[0]
        channels = scaled.shape[2]
        new_input = torch.cat([torch.cat([scaled] * copies), first[:, :, channels:]], dim=2)
        if args:
            args = (new_input, *args[1:])
        else:
            kwargs = {**kwargs, "sample": new_input}
        out = self.pipe.unet(*args, **kwargs)
        out = out[0] if isinstance(out, tuple) else out.sample
        if copies == 2:  # the pipeline's classifier-free guidance, as its loop combines it
            uncond, cond = out.chunk(2)
            out = uncond + self.pipe.guidance_scale * (cond - uncond)
        return out

    def step(self, model_output: torch.Tensor, timestep: Any, sample: torch.Tensor, **kwargs: Any):
        """Guide ``sample`` toward the targets, then the wrapped scheduler's Euler step."""
        inner = self.scheduler
        if inner.step_index is None:
            inner._init_step_index(timestep)
        index = int(inner.step_index)
        if sample.shape[1] != self.targets.shape[0] or sample.shape[-2:] != self.targets.shape[-2:]:
            raise ValueError(
                f"latents {tuple(sample.shape)} do not match the guidance targets "
                f"{tuple(self.targets.shape)}: warp to the generated frame count and size"
            )
        sigma = float(inner.sigmas[index])
        cfg = self.config
        delta = None
        if cfg.lr != 0:
            x0_output = (
                self._unconditional_output(sample, timestep)
                if cfg.x0_pass == "unconditional"
                else model_output
            )
            x0 = predicted_clean_latent(inner.config.prediction_type, x0_output, sample, sigma)
            delta = guidance_delta(
                x0, self.targets, self.valid, self.weights[index], sigma, cfg.lr,
                cfg.weight_clamp, cfg.compat_cutoff, cfg.crop,
            )
        self.history.append(
            {"sigma": sigma, "rms": 0.0 if delta is None else float(delta.pow(2).mean().sqrt())}
        )
        if delta is not None:
            sample = sample + delta.to(sample.dtype)
            if cfg.refresh:
                model_output = self._refreshed_output(sample, timestep)
        return inner.step(model_output, timestep, sample, **kwargs)


@contextmanager
def nvs_guidance(
    pipe: Any,
    warped: np.ndarray,
    valid: np.ndarray,
    config: NVSGuidanceConfig | None = None,
) -> Iterator[NVSGuidedScheduler]:
    r"""Run the pipeline calls inside this block with NVS-Solver guidance.

    Works with diffusers' ``StableVideoDiffusionPipeline`` and its subclasses (e.g.
    :class:`trajattn.pipeline.TrajectoryAttentionPipeline`): the scheduler is swapped for an
    :class:`NVSGuidedScheduler` and (for upstream's unconditional x0 pass or ``refresh``) a
    forward pre-hook on the UNet records the conditioning; both are undone on exit, also
    after an exception.

    Args:
        pipe: the SVD pipeline (its scheduler must be an Euler discrete scheduler).
        warped: (F, H, W, 3) uint8 warped frames in the generated frames' pixels (frame 0 the
            conditioning image); valid: (F, H, W) bool, True where the warp has a colour.
        config: guidance options (default: upstream's).

    Yields:
        The installed scheduler wrapper (``weights``, ``chosen``, ``history`` after the call).
    """
    config = config or NVSGuidanceConfig()
    if not hasattr(pipe.scheduler, "sigmas") or not hasattr(pipe.scheduler, "step"):
        raise TypeError(f"{type(pipe.scheduler).__name__} is not an Euler discrete scheduler")
    targets, cells = encode_targets(pipe, warped, valid, config)
    original = pipe.scheduler
    wrapper = NVSGuidedScheduler(original, pipe, targets, cells, config)
    handle = None
    try:
        if config.refresh or config.x0_pass == "unconditional":
            handle = pipe.unet.register_forward_pre_hook(wrapper.record_unet_call, with_kwargs=True)
        pipe.scheduler = wrapper
        yield wrapper
    finally:
        pipe.scheduler = original
        if handle is not None:
            handle.remove()
