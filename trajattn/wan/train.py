r"""Train the Wan trajectory branch with Wan's own objective: ``python -m trajattn.wan.train``.

As :mod:`trajattn.train` does for SVD (whose data helpers this imports: clip listing and
reading, cached optical-flow trajectories), but with Wan 2.1 I2V's rectified-flow
(flow-matching) loss: for clean latents ``x0`` and noise ``e``, ``x_s = (1 - s) x0 + s e`` at a
noise level ``s`` drawn as ``u ~ U(0, 1)`` shifted by Wan's ``flow_shift``
(``s = shift * u / (1 + (shift - 1) u)``, the shifted schedule the sampler uses), the
transformer at timestep ``1000 s`` predicts the velocity ``e - x0`` (MSE).

Conditioning is built by the pipeline's own methods (``prepare_latents``: the first frame's VAE
latents + the frame mask; ``encode_image``: the CLIP image tokens; ``encode_prompt``), so
training feeds the transformer exactly what sampling does. Only the variant's parameters train
(:func:`trajattn.wan.attention.named_trainable_parameters`).

Determinism and exact resume as for SVD: epoch order seeded by ``(seed, epoch)``, each step's
noise by ``(seed, step)``, the trajectory subset re-seeded every step; checkpoints
(``step-NNNNNNN/``: trainable.safetensors, optimizer.pt, state.json) restore the numbers
exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import torch

from trajattn.attention import TrajectoryAttentionConfig
from trajattn.training import (
    latest_checkpoint,
    list_clips,
    read_checkpoint,
    run_training_cli,
    run_training_loop,
    training_device,
    write_checkpoint,
)
from trajattn.wan.attention import (
    apply_trajectory_attention,
    freeze_except_trainable,
    trajectories,
)
from trajattn.wan.weights import load_weights, save_weights

log = logging.getLogger(__name__)


@dataclass
class WanTrainConfig:
    """Training options (the CLI flags; stored with every checkpoint)."""

    data: str
    out: str
    base_model: str = "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers"
    tiny: bool = False
    variant: str = "inherit"
    num_frames: int = 49  # 4k + 1
    frame_stride: int = 1
    height: int = 480
    width: int = 832
    track_stride: int = 8
    flow: str = "dis"  # dis (OpenCV, weight-free) | raft (torchvision, needs its weights)
    prompt: str = ""
    flow_shift: float = 3.0  # Wan 2.1 480p
    steps: int = 1000
    lr: float = 1e-5
    grad_accum: int = 1
    checkpoint_every: int = 500
    seed: int = 0
    # frozen weights: float32, or bfloat16 (VAE and image encoder stay float32; the trained
    # branch is kept in float32): 14B Wan in float32 alone is 56 GB
    dtype: str = "float32"
    mixed_precision: str = "auto"  # auto | no | bf16 | fp16 (autocast on CUDA only)
    gradient_checkpointing: bool = False
    device: str = "auto"


def load_pipeline(config: WanTrainConfig) -> Any:
    """The Wan I2V pipeline whose transformer is trained (tiny random one with ``tiny``)."""
    from diffusers import WanImageToVideoPipeline

    if config.dtype not in ("float32", "bfloat16"):
        raise ValueError(f"dtype must be float32 or bfloat16, got {config.dtype!r}")
    if config.dtype == "bfloat16" and config.variant == "tuning":
        raise ValueError("variant 'tuning' trains attn1 inside the model: use dtype float32")
    base = getattr(torch, config.dtype)
    if config.tiny:
        from trajattn.wan import tiny  # test-sized models: built only when asked for

        pipe = WanImageToVideoPipeline(**tiny.tiny_components(config.seed))
        pipe.transformer.to(base)
        return pipe
    try:
        return WanImageToVideoPipeline.from_pretrained(
            config.base_model,
            dtype={"default": base, "vae": torch.float32, "image_encoder": torch.float32},
        )
    except OSError as exc:
        raise OSError(
            f"cannot load {config.base_model!r}: download it on a networked machine "
            f"(huggingface-cli download {config.base_model}) or pass a local path"
        ) from exc


def prompt_embeddings(pipe: Any, config: WanTrainConfig, device: torch.device) -> torch.Tensor:
    """The text tokens of ``config.prompt`` (tiny: fixed random tokens, no text encoder)."""
    if config.tiny:
        from trajattn.wan.tiny import tiny_prompt_embeds  # test-sized models only

        return tiny_prompt_embeds(config.seed)[0].to(device)
    with torch.no_grad():
        embeds, _ = pipe.encode_prompt(
            config.prompt, do_classifier_free_guidance=False, device=device
        )
    return embeds


def shifted_sigma(u: torch.Tensor, shift: float) -> torch.Tensor:
    """Wan's shifted noise level for a uniform ``u``: ``shift u / (1 + (shift - 1) u)``."""
    return shift * u / (1 + (shift - 1) * u)


def flow_matching_loss(
    pipe: Any,
    video: np.ndarray,
    prompt_embeds: torch.Tensor,
    config: WanTrainConfig,
    generator: torch.Generator,
) -> torch.Tensor:
    """Wan's flow-matching loss for one clip ``video`` (F, H, W, 3) uint8."""
    transformer, vae = pipe.transformer, pipe.vae
    device = prompt_embeds.device
    num_frames, height, width = video.shape[:3]
    with torch.no_grad():
        pixels = torch.from_numpy(video).to(device).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
        z_dim = vae.config.z_dim
        mean = torch.tensor(vae.config.latents_mean, device=device).view(1, z_dim, 1, 1, 1)
        std = torch.tensor(vae.config.latents_std, device=device).view(1, z_dim, 1, 1, 1)
        x0 = (vae.encode(pixels.to(vae.dtype)).latent_dist.mode().float() - mean) / std
        first = PIL.Image.fromarray(video[0])
        image_embeds = None
        if transformer.config.image_dim is not None:
            image_embeds = pipe.encode_image(first, device).to(transformer.dtype)
        image = pipe.video_processor.preprocess(first, height=height, width=width)
        _, condition = pipe.prepare_latents(
            image.to(device), 1, z_dim, height, width, num_frames, torch.float32, device,
            None, torch.zeros_like(x0),
        )
    u = torch.rand((1,), generator=generator, device=device)
    sigma = shifted_sigma(u, config.flow_shift).view(1, 1, 1, 1, 1)
    noise = torch.randn(x0.shape, generator=generator, device=device)
    noisy = (1 - sigma) * x0 + sigma * noise
    model_input = torch.cat([noisy, condition], dim=1).to(transformer.dtype)
    timestep = sigma.view(1) * pipe.scheduler.config.num_train_timesteps
    pred = transformer(
        model_input, timestep, prompt_embeds.to(transformer.dtype), image_embeds,
        return_dict=False,
    )[0]
    return ((pred.float() - (noise - x0)) ** 2).mean()


# ---------------------------------------------------------------------------- checkpoints


def save_checkpoint(
    folder: Path, step: int, model: torch.nn.Module, optimizer: Any, config: WanTrainConfig
) -> Path:
    """``folder/step-{step:07d}/`` (:func:`write_checkpoint`) with the trainable weights."""
    return write_checkpoint(folder, step, lambda f: save_weights(model, f), optimizer, config)


def load_checkpoint(path: Path, model: torch.nn.Module, optimizer: Any) -> int:
    """Restore weights and optimizer from ``path``; returns the step it was taken at."""
    return read_checkpoint(path, lambda f: load_weights(model, f), optimizer)


# ------------------------------------------------------------------------------------ loop


def train(config: WanTrainConfig, resume: bool = True) -> dict[str, Any]:
    """Train the variant's parameters; returns ``{"step", "losses"}``. Resumes from the latest
    checkpoint in ``config.out`` when ``resume``."""
    if config.variant == "vanilla":
        raise ValueError("variant 'vanilla' has no trainable parameters (Table 3): nothing to do")
    device = training_device(config)
    out = Path(config.out)
    clips = list_clips(config.data)
    pipe = load_pipeline(config)
    pipe.to(device)
    model = pipe.transformer
    ratio = int(pipe.vae_scale_factor_temporal)
    # A recomputed (checkpointed) block would draw another random subset: use all then.
    factor = None if config.gradient_checkpointing else 2
    attention = TrajectoryAttentionConfig(
        variant=config.variant, seed=config.seed, num_trajectories_factor=factor
    )
    apply_trajectory_attention(model, attention)
    params = freeze_except_trainable(model, config.variant)
    for param in params:  # a bfloat16 model trains a float32 branch
        param.data = param.data.float()
    for module in (pipe.vae, pipe.image_encoder, pipe.text_encoder):
        if module is not None:
            module.requires_grad_(False)
    if config.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    optimizer = torch.optim.Adam(params, lr=config.lr)
    step = 0
    if resume and (last := latest_checkpoint(out / "checkpoints")) is not None:
        step = load_checkpoint(last, model, optimizer)
        log.info("resumed from %s (step %d)", last, step)
    prompt_embeds = prompt_embeddings(pipe, config, device)
    return run_training_loop(
        config,
        model,
        optimizer,
        step,
        clips,
        device,
        lambda tracks, visible: trajectories(
            model, tracks, visible, (config.height, config.width), ratio
        ),
        lambda video, generator: flow_matching_loss(pipe, video, prompt_embeds, config, generator),
        lambda done: save_checkpoint(out / "checkpoints", done, model, optimizer, config),
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run_training_cli(WanTrainConfig, train, __doc__.split("\n\n")[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
