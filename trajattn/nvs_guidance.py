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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from trajattn.nvs_schedule import (
    SEARCH_B,
    SEARCH_K,
    SEARCH_V1,
    SEARCH_V2,
    SEARCH_V3,
    lambda_weight,
    weight_schedule,
)
from trajattn.nvs_update import (
    HOLE_FILLS,
    UPSTREAM_CROP,
    UPSTREAM_LATENT_DIVISOR,
    X0_PASSES,
    NVSGuidanceConfig,
    crop_windows,
    dilate_holes,
    encode_targets,
    guidance_delta,
    keep_closest,
    latent_valid,
    predicted_clean_latent,
)

__all__ = [
    "HOLE_FILLS",
    "SEARCH_B",
    "SEARCH_K",
    "SEARCH_V1",
    "SEARCH_V2",
    "SEARCH_V3",
    "UPSTREAM_CROP",
    "UPSTREAM_LATENT_DIVISOR",
    "X0_PASSES",
    "NVSGuidanceConfig",
    "NVSGuidedScheduler",
    "crop_windows",
    "dilate_holes",
    "encode_targets",
    "guidance_delta",
    "keep_closest",
    "lambda_weight",
    "latent_valid",
    "nvs_guidance",
    "predicted_clean_latent",
    "weight_schedule",
]

log = logging.getLogger(__name__)


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
