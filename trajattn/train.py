r"""Train the trajectory-attention branch (paper Sec. 3.4): ``python -m trajattn.train``.

The authors released no training code; this follows the paper: trajectories come from dense
optical flow of real clips (:mod:`trajattn.flow_tracks`), the objective is Stable Video
Diffusion's EDM denoising loss on VAE latents conditioned on the first frame, Adam at lr 1e-5,
and only the chosen variant's parameters train (Table 3: vanilla has none, tuning trains
attn1, addon/inherit train the branch).

Conditioning reuses diffusers' own ``StableVideoDiffusionPipeline`` helpers (CLIP image
embedding, VAE image latents, added time ids) so training sees exactly what sampling feeds the
UNet. EDM preconditioning (Karras et al. 2022) and SVD's log-normal noise levels are the only
maths written here, since diffusers has no SVD training loop.

Determinism and exact resume: the data order of each epoch is a permutation seeded by
``(seed, epoch)`` and every step's noise by ``(seed, step)``; checkpoints hold the trainable
weights (safetensors), the optimizer state and the step, so a resumed run continues with the
same numbers as an uninterrupted one. One clip per step (trajectories differ per clip); use
``--grad-accum`` for larger effective batches.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trajattn.attention import (
    TrajectoryAttentionConfig,
    apply_trajectory_attention,
    freeze_except_trainable,
    trainable_parameters,
    trajectories,
)
from trajattn.training import (
    latest_checkpoint,
    list_clips,
    read_checkpoint,
    run_training_cli,
    run_training_loop,
    training_device,
    write_checkpoint,
)

log = logging.getLogger(__name__)

#: SVD's log-normal training noise distribution, log(sigma) ~ N(P_MEAN, P_STD^2).
P_MEAN, P_STD = 0.7, 1.6


@dataclass
class TrainConfig:
    """Training options (the CLI flags; stored with every checkpoint)."""

    data: str
    out: str
    base_model: str = "stabilityai/stable-video-diffusion-img2vid-xt"
    tiny: bool = False
    variant: str = "inherit"
    num_frames: int = 14
    frame_stride: int = 1
    height: int = 320
    width: int = 512
    track_stride: int = 4
    flow: str = "dis"  # dis (OpenCV, weight-free) | raft (torchvision, needs its weights)
    steps: int = 1000
    lr: float = 1e-5
    grad_accum: int = 1
    checkpoint_every: int = 500
    seed: int = 0
    fps: int = 7
    motion_bucket_id: int = 127
    noise_aug_strength: float = 0.02
    mixed_precision: str = "auto"  # auto | no | bf16 | fp16 (autocast on CUDA only)
    gradient_checkpointing: bool = False
    device: str = "auto"


# ------------------------------------------------------------------------------- components


def load_pipeline(config: TrainConfig) -> Any:
    """The SVD pipeline whose components are trained (tiny random one with ``tiny``)."""
    from diffusers import EulerDiscreteScheduler, StableVideoDiffusionPipeline

    if config.tiny:
        from trajattn import tiny  # test-sized models: built only when asked for

        return StableVideoDiffusionPipeline(
            vae=tiny.tiny_vae(config.seed),
            image_encoder=tiny.tiny_image_encoder(config.seed),
            unet=tiny.tiny_unet(config.seed),
            scheduler=EulerDiscreteScheduler(**tiny.SVD_SCHEDULER),
            feature_extractor=tiny.tiny_feature_extractor(),
        )
    try:
        return StableVideoDiffusionPipeline.from_pretrained(config.base_model)
    except OSError as exc:
        raise OSError(
            f"cannot load {config.base_model!r}: download it on a networked machine "
            f"(huggingface-cli download {config.base_model}) or pass a local path"
        ) from exc


def edm_loss(
    pipe: Any,
    video: torch.Tensor,
    config: TrainConfig,
    generator: torch.Generator,
) -> torch.Tensor:
    """SVD's EDM denoising loss for one clip ``video`` (F, 3, H, W) in [-1, 1]."""
    unet, vae = pipe.unet, pipe.vae
    device = video.device
    num_frames = video.shape[0]
    with torch.no_grad():
        latents = vae.encode(video).latent_dist.sample(generator) * vae.config.scaling_factor
        latents = latents.unsqueeze(0)  # (1, F, C, h, w)
        first = video[:1]
        # As the pipeline does for PIL input: antialiased resize to the CLIP input size.
        from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import (
            _resize_with_antialiasing,
        )

        size = pipe.image_encoder.config.image_size
        clip_input = (_resize_with_antialiasing(first, (size, size)) + 1) / 2
        embeddings = pipe._encode_image(clip_input, device, 1, False)
        noise = torch.randn(first.shape, generator=generator, device=device)
        cond = pipe._encode_vae_image(first + config.noise_aug_strength * noise, device, 1, False)
        cond = cond.unsqueeze(1).repeat(1, num_frames, 1, 1, 1)
        time_ids = pipe._get_add_time_ids(
            config.fps - 1, config.motion_bucket_id, config.noise_aug_strength,
            embeddings.dtype, 1, 1, False,
        ).to(device)
    log_sigma = P_MEAN + P_STD * torch.randn((1,), generator=generator, device=device)
    sigma = log_sigma.exp().view(1, 1, 1, 1, 1)
    noisy = latents + sigma * torch.randn(latents.shape, generator=generator, device=device)
    # EDM preconditioning (Karras et al. 2022, Table 1) as SVD uses it.
    c_in = 1 / (sigma**2 + 1).sqrt()
    c_skip = 1 / (sigma**2 + 1)
    c_out = -sigma / (sigma**2 + 1).sqrt()
    c_noise = 0.25 * sigma.log().view(1)
    model_input = torch.cat([c_in * noisy, cond], dim=2)
    out = unet(model_input, c_noise, encoder_hidden_states=embeddings,
               added_time_ids=time_ids, return_dict=False)[0]
    denoised = c_skip * noisy + c_out * out
    weight = (sigma**2 + 1) / sigma**2
    return (weight * (denoised.float() - latents.float()) ** 2).mean()


# ---------------------------------------------------------------------------- checkpoints


def _named_trainable(unet: torch.nn.Module, variant: str) -> dict[str, torch.nn.Parameter]:
    wanted = {id(p) for p in trainable_parameters(unet, variant)}
    return {n: p for n, p in unet.named_parameters() if id(p) in wanted}


def save_checkpoint(folder: Path, step: int, unet: torch.nn.Module, optimizer: Any,
                    config: TrainConfig) -> Path:
    """``folder/step-{step:07d}/`` (:func:`write_checkpoint`) with the variant's trainable
    weights."""
    from safetensors.torch import save_file

    def write(file: Path) -> None:
        params = _named_trainable(unet, config.variant).items()
        save_file({n: p.detach().cpu().contiguous() for n, p in params}, str(file))

    return write_checkpoint(folder, step, write, optimizer, config)


def load_checkpoint(path: Path, unet: torch.nn.Module, optimizer: Any, variant: str) -> int:
    """Restore weights and optimizer from ``path``; returns the step it was taken at."""
    from safetensors.torch import load_file

    def read(file: Path) -> None:
        weights = load_file(str(file))
        params = _named_trainable(unet, variant)
        missing = sorted(set(params) - set(weights))
        if missing:
            raise ValueError(f"{path}: checkpoint lacks {missing[:3]}... for variant {variant!r}")
        with torch.no_grad():
            for name, param in params.items():
                param.copy_(weights[name])

    return read_checkpoint(path, read, optimizer)


# ------------------------------------------------------------------------------------ loop


def train(config: TrainConfig, resume: bool = True) -> dict[str, Any]:
    """Train the branch; returns ``{"step", "losses"}``. Resumes from the latest checkpoint
    in ``config.out`` when ``resume``."""
    if config.variant == "vanilla":
        raise ValueError("variant 'vanilla' has no trainable parameters (Table 3): nothing to do")
    device = training_device(config)
    out = Path(config.out)
    clips = list_clips(config.data)
    pipe = load_pipeline(config)
    pipe.to(device)
    unet = pipe.unet
    # Recomputing a checkpointed forward would draw a different random trajectory subset than
    # the first pass did: with gradient checkpointing every trajectory is used instead.
    factor = None if config.gradient_checkpointing else 2
    attention = TrajectoryAttentionConfig(
        variant=config.variant, seed=config.seed, num_trajectories_factor=factor
    )
    apply_trajectory_attention(unet, attention)
    freeze_except_trainable(unet, config.variant)
    for module in (pipe.vae, pipe.image_encoder):
        module.requires_grad_(False)
    if config.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    params = trainable_parameters(unet, config.variant)
    optimizer = torch.optim.Adam(params, lr=config.lr)
    step = 0
    if resume and (last := latest_checkpoint(out / "checkpoints")) is not None:
        step = load_checkpoint(last, unet, optimizer, config.variant)
        log.info("resumed from %s (step %d)", last, step)
    return run_training_loop(
        config,
        unet,
        optimizer,
        step,
        clips,
        device,
        lambda tracks, visible: trajectories(unet, tracks, visible, (config.height, config.width)),
        lambda video, generator: edm_loss(pipe, _video_tensor(video).to(device), config, generator),
        lambda done: save_checkpoint(out / "checkpoints", done, unet, optimizer, config),
    )


def _video_tensor(video: np.ndarray) -> torch.Tensor:
    """(F, H, W, 3) uint8 -> (F, 3, H, W) float in [-1, 1]."""
    return torch.from_numpy(video).permute(0, 3, 1, 2).float().div(127.5).sub(1)


def main(argv: Sequence[str] | None = None) -> int:
    return run_training_cli(TrainConfig, train, __doc__.split("\n\n")[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
