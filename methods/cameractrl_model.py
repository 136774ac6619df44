r"""CameraCtrl-SVD (He et al. 2024) rebuilt natively on diffusers' SVD.

Upstream: github.com/hehao13/CameraCtrl, branch ``svd``, commit
1f9d8baeff66f6c60bb9848dfafcc667b3a22a28. This module is our own implementation of what that
code does; it reproduces the state-dict layout of the released checkpoints
(``hehao13/CameraCtrl_SVD_ckpts``: ``CameraCtrl_svd.ckpt`` for SVD, 14 frames;
``CameraCtrl_svdxt.ckpt`` for SVD-XT, 25 frames), each a dict with
``pose_encoder_state_dict`` and ``attention_processor_state_dict``.

- :class:`CameraPoseEncoder` (upstream ``cameractrl/models/pose_adaptor.py``
  ``CameraPoseEncoder`` with the ``TemporalTransformerBlock`` of ``motion_module.py``):
  Plücker rays ``(B, F, 6, H, W)`` are pixel-unshuffled by 8, ``encoder_conv_in`` (3x3),
  then per level ``nums_rb`` residual blocks, each followed by a temporal self-attention
  transformer block over the frames (sinusoidal position encoding added to the attention
  input, pre-LayerNorm, GEGLU feed-forward). Levels 1.. start with a 2x2 average pool. One
  feature ``(B, C_l, F, H / 8 / 2^l, W / 8 / 2^l)`` per level, ``C = (320, 640, 1280, 1280)``.
- :class:`PoseCondAttnProcessor` (upstream ``attention_processor.py``
  ``PoseAdaptorAttnProcessor`` with ``query_condition = key_value_condition = True``): the
  processor of ``attn1`` of every ``TemporalBasicTransformerBlock`` (upstream
  ``unet.py`` ``set_pose_cond_attn_processor`` with ``add_temporal: true``,
  ``attn_processor_name: attn1``); it replaces the normed hidden states ``x`` that q, k and
  v see by ``qkv_merge(x + pose) * scale + x``, ``qkv_merge`` a zero-initialised linear, so a
  freshly attached processor is an exact no-op. Spatial attention is untouched.
- Which feature reaches which block (upstream ``unet.py`` forward): ``down_blocks.i`` level
  ``i``, ``mid_block`` the last level, ``up_blocks.i`` level ``L - 1 - i``; the feature
  ``(B, C, F, h, w)`` is laid out as the temporal tokens ``(B * h * w, F, C)``.

SVD's UNet forward takes no attention kwargs, so the features reach the processors through
state set on the UNet before the call and cleared after (:func:`pose_features`); the
processors repeat them over the batch, so both CFG halves get the same features (upstream
``pipeline_animation.py``: ``torch.cat([x, x])``). The processors are ``nn.Module`` s
registered as ``attn1.processor``, so the UNet's own ``state_dict`` holds them under exactly
the upstream names; loading still maps every upstream key explicitly
(:func:`load_processor_state_dict`).
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from diffusers import StableVideoDiffusionPipeline
from diffusers.models.attention import TemporalBasicTransformerBlock
from torch import nn

from benchmark.cameras import CameraPath
from methods.cameractrl import CAMERACTRL_DEFAULTS
from trajattn.pipeline import to_uint8_frames

CKPT_REPO = "hehao13/CameraCtrl_SVD_ckpts"
CKPT_SVD = "CameraCtrl_svd.ckpt"
CKPT_SVD_XT = "CameraCtrl_svdxt.ckpt"

#: ``pose_encoder_kwargs`` of upstream ``configs/train_cameractrl/svdxt_320_576_cameractrl.yaml``
#: (``svd_320_576_cameractrl.yaml`` differs only in ``max_frames`` = 14), in our names:
#: downscale_factor, channels, nums_rb, cin, ksize, temporal_attention_nhead,
#: temporal_position_encoding_max_len. (sk: true, use_conv: false, compression_factor: 1 and
#: attention_block_types ["Temporal_Self"] are the only variants built here.)
SVD_XT_POSE_ENCODER: dict[str, Any] = {
    "downscale_factor": 8,
    "channels": (320, 640, 1280, 1280),
    "nums_rb": 2,
    "cin": 384,
    "ksize": 1,
    "num_heads": 8,
    "max_frames": 25,
}
SVD_POSE_ENCODER: dict[str, Any] = {**SVD_XT_POSE_ENCODER, "max_frames": 14}

#: Upstream inference settings (kept with the adapter, which must import without torch).
DEFAULTS: dict[str, Any] = CAMERACTRL_DEFAULTS

PROCESSOR_NAME = "processor"
MERGE_NAME = "qkv_merge"
_STATE_ATTR = "_cameractrl_state"


class CheckpointMismatchError(ValueError):
    """A CameraCtrl state dict does not fit the modules: names the misfitting keys."""


# ------------------------------------------------------------------------------ pose encoder


def sinusoidal_table(max_len: int, dim: int) -> torch.Tensor:
    r"""Transformer position table ``(1, max_len, dim)``: even channels ``sin(p w_k)``, odd
    ``cos(p w_k)``, ``w_k = 10000^(-2k / dim)`` (upstream ``motion_module.PositionalEncoding``)."""
    position = torch.arange(max_len, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(1, max_len, dim)
    table[0, :, 0::2] = torch.sin(position * freq)
    table[0, :, 1::2] = torch.cos(position * freq)
    return table


class _PositionTable(nn.Module):
    """Holds the position table as the persistent buffer ``pe`` (it is in the checkpoint)."""

    def __init__(self, dim: int, max_len: int) -> None:
        super().__init__()
        self.register_buffer("pe", sinusoidal_table(max_len, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[1]
        if frames > self.pe.shape[1]:
            raise ValueError(
                f"{frames} frames but the pose encoder's position table has "
                f"{self.pe.shape[1]} (temporal_position_encoding_max_len)"
            )
        return x + self.pe[:, :frames].to(x.dtype)


class _FrameSelfAttention(nn.Module):
    """Multi-head self-attention over the frame axis of ``(S, F, C)``; the position table is
    added to its input (q, k and v) only. Keys: ``to_q/to_k/to_v`` (no bias), ``to_out.0``,
    ``pos_encoder.pe``."""

    def __init__(self, dim: int, heads: int, max_frames: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim), nn.Dropout(0.0)])
        self.pos_encoder = _PositionTable(dim, max_frames)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pos_encoder(x)
        seqs, frames, dim = x.shape
        q, k, v = (
            p(x).reshape(seqs, frames, self.heads, dim // self.heads).transpose(1, 2)
            for p in (self.to_q, self.to_k, self.to_v)
        )
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(seqs, frames, dim)
        return self.to_out[1](self.to_out[0](out))


class _Geglu(nn.Module):
    """``a * gelu(b)`` with ``(a, b)`` the two halves of one projection (key ``proj``)."""

    def __init__(self, dim: int, inner: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, 2 * inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(b)


class _FeedForward(nn.Module):
    """GEGLU feed-forward with inner width 4 * dim; keys ``net.0.proj``, ``net.2``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.net = nn.ModuleList([_Geglu(dim, 4 * dim), nn.Dropout(0.0), nn.Linear(4 * dim, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class _TemporalBlock(nn.Module):
    """Pre-norm temporal transformer block: ``x += attn(norm(x))``, ``x += ff(ff_norm(x))``.
    Keys ``attention_blocks.0.*``, ``norms.0.*``, ``ff.*``, ``ff_norm.*``."""

    def __init__(self, dim: int, heads: int, max_frames: int) -> None:
        super().__init__()
        self.attention_blocks = nn.ModuleList([_FrameSelfAttention(dim, heads, max_frames)])
        self.norms = nn.ModuleList([nn.LayerNorm(dim)])
        self.ff = _FeedForward(dim)
        self.ff_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for attention, norm in zip(self.attention_blocks, self.norms, strict=True):
            x = attention(norm(x)) + x
        return self.ff(self.ff_norm(x)) + x


class _ResBlock(nn.Module):
    r"""Residual conv block with an identity skip (upstream ``ResnetBlock`` with ``sk=True``,
    ``use_conv=False``): optional 2x2 average pool, ``in_conv`` when the width changes, then
    ``x + block2(relu(block1(x)))`` (``block1`` 3x3, ``block2`` ``ksize``)."""

    def __init__(self, in_dim: int, out_dim: int, down: bool, ksize: int) -> None:
        super().__init__()
        self.down_opt = nn.AvgPool2d(2, 2) if down else None
        self.in_conv = (
            nn.Conv2d(in_dim, out_dim, ksize, 1, ksize // 2) if in_dim != out_dim else None
        )
        self.block1 = nn.Conv2d(out_dim, out_dim, 3, 1, 1)
        self.act = nn.ReLU()
        self.block2 = nn.Conv2d(out_dim, out_dim, ksize, 1, ksize // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.down_opt is not None:
            x = self.down_opt(x)
        if self.in_conv is not None:
            x = self.in_conv(x)
        return x + self.block2(self.act(self.block1(x)))


class CameraPoseEncoder(nn.Module):
    r"""CameraCtrl's pose encoder: Plücker rays to one feature map per UNet level.

    State-dict keys and shapes equal upstream ``CameraPoseEncoder``'s for the released
    configuration, so ``pose_encoder_state_dict`` loads with ``strict=True``.

    Args:
        downscale_factor: pixel-unshuffle factor (8: the VAE's).
        channels: feature width per level (the UNet's ``block_out_channels``).
        nums_rb: residual + temporal blocks per level.
        cin: channels after the unshuffle (``6 * downscale_factor ** 2``).
        ksize: kernel of ``in_conv`` / ``block2``.
        num_heads: heads of the temporal attention.
        max_frames: rows of the temporal position table (25 SVD-XT, 14 SVD).
    """

    def __init__(
        self,
        downscale_factor: int = 8,
        channels: Sequence[int] = (320, 640, 1280, 1280),
        nums_rb: int = 2,
        cin: int = 384,
        ksize: int = 1,
        num_heads: int = 8,
        max_frames: int = 25,
    ) -> None:
        super().__init__()
        if cin != 6 * downscale_factor**2:
            raise ValueError(f"cin must be 6 * downscale_factor^2 = {6 * downscale_factor**2}")
        self.channels = tuple(int(c) for c in channels)
        self.downscale_factor = downscale_factor
        self.unshuffle = nn.PixelUnshuffle(downscale_factor)
        self.encoder_down_conv_blocks = nn.ModuleList()
        self.encoder_down_attention_blocks = nn.ModuleList()
        previous = self.channels[0]
        for level, width in enumerate(self.channels):
            convs, attns = nn.ModuleList(), nn.ModuleList()
            for j in range(nums_rb):
                first = j == 0
                convs.append(_ResBlock(previous if first else width, width, first and level > 0,
                                       ksize))
                attns.append(_TemporalBlock(width, num_heads, max_frames))
            self.encoder_down_conv_blocks.append(convs)
            self.encoder_down_attention_blocks.append(attns)
            previous = width
        self.encoder_conv_in = nn.Conv2d(cin, self.channels[0], 3, 1, 1)

    @property
    def device(self) -> torch.device:
        """Device of the weights (diffusers pipelines ask their components)."""
        return self.encoder_conv_in.weight.device

    @property
    def dtype(self) -> torch.dtype:
        """Dtype of the weights (diffusers pipelines ask their components)."""
        return self.encoder_conv_in.weight.dtype

    def forward(self, plucker: torch.Tensor) -> list[torch.Tensor]:
        r"""Encode Plücker rays.

        Args:
            plucker: (B, F, 6, H, W), H and W multiples of ``downscale_factor * 2^(L-1)``.

        Returns:
            One (B, C_l, F, H / d / 2^l, W / d / 2^l) tensor per level l.
        """
        if plucker.ndim != 5:
            raise ValueError(f"plucker must be (B, F, 6, H, W), got {tuple(plucker.shape)}")
        batch, frames = plucker.shape[:2]
        x = self.encoder_conv_in(self.unshuffle(plucker.flatten(0, 1)))
        features = []
        for convs, attns in zip(
            self.encoder_down_conv_blocks, self.encoder_down_attention_blocks, strict=True
        ):
            for conv, attn in zip(convs, attns, strict=True):
                x = conv(x)
                c, h, w = x.shape[1:]
                tokens = x.reshape(batch, frames, c, h * w).permute(0, 3, 1, 2)
                tokens = attn(tokens.reshape(batch * h * w, frames, c))
                x = tokens.reshape(batch, h * w, frames, c).permute(0, 2, 3, 1)
                x = x.reshape(batch * frames, c, h, w)
            features.append(x.reshape(batch, frames, *x.shape[1:]).transpose(1, 2))
        return features


# ------------------------------------------------------------------ pose-conditioned attention


@dataclass
class _State:
    """Shared by the processors of one UNet: the features of the current call."""

    processors: dict[str, PoseCondAttnProcessor] = field(default_factory=dict)
    features: list[torch.Tensor] | None = None


class PoseCondAttnProcessor(nn.Module):
    r"""``attn1`` processor of a temporal block that merges pose features into q, k and v.

    ``x`` (the block's normed ``(B * h * w, F, C)`` tokens) becomes
    ``x' = qkv_merge(x + pose) * scale + x`` and the UNet's original processor computes
    self-attention on ``x'``. ``qkv_merge`` starts at zero (upstream init), so ``x' == x``
    exactly and the UNet's output is unchanged until weights are loaded.

    Args:
        name: module path of the ``attn1`` it serves (for errors).
        dim: the attention's width (= the pose feature's channels at its level).
        level: index of the pose-encoder level it reads.
        state: shared state holding the current features.
        base: ``attn1``'s original processor.
        scale: ``pose_embedding_scale`` (1.0 upstream).
    """

    def __init__(
        self, name: str, dim: int, level: int, state: _State, base: Any, scale: float = 1.0
    ) -> None:
        super().__init__()
        self.qkv_merge = nn.Linear(dim, dim)
        nn.init.zeros_(self.qkv_merge.weight)
        nn.init.zeros_(self.qkv_merge.bias)
        self.name, self.level, self.scale = name, level, scale
        # plain attributes: neither is a submodule with weights of ours
        object.__setattr__(self, "state", state)
        object.__setattr__(self, "base", base)

    def tokens(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """The current level's feature laid out as ``hidden_states``' tokens (B * h * w, F, C),
        repeated over the batch (CFG halves)."""
        features = self.state.features
        if features is None:
            raise RuntimeError(
                f"{self.name}: no pose features set; call the UNet inside "
                "`methods.cameractrl_model.pose_features(unet, features)`"
            )
        feat = features[self.level]
        b, c, f, h, w = feat.shape
        seqs, frames, dim = hidden_states.shape
        if frames != f or dim != c or seqs % (b * h * w):
            raise ValueError(
                f"{self.name}: pose feature (B={b}, C={c}, F={f}, h={h}, w={w}) does not fit "
                f"hidden states (B*h*w={seqs}, F={frames}, C={dim})"
            )
        tokens = feat.permute(0, 3, 4, 2, 1).reshape(b * h * w, f, c)
        repeat = seqs // (b * h * w)
        if repeat > 1:
            tokens = tokens.repeat(repeat, 1, 1)
        return tokens.to(device=hidden_states.device, dtype=hidden_states.dtype)

    def forward(
        self,
        attn: nn.Module,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        if encoder_hidden_states is not None:
            raise ValueError(f"{self.name}: pose conditioning is for self-attention only")
        pose = self.tokens(hidden_states)
        merged = self.qkv_merge(hidden_states + pose) * self.scale + hidden_states
        return self.base(attn, merged, None, attention_mask, temb)


_BLOCK_PATTERN = re.compile(r"^(down_blocks|up_blocks)\.(\d+)\.|^mid_block\.")


def _level_of(path: str, num_levels: int) -> int:
    """Pose level read by the block at ``path`` (upstream ``unet.py`` forward)."""
    match = _BLOCK_PATTERN.match(path)
    if match is None:
        raise ValueError(f"{path}: not inside down_blocks, mid_block or up_blocks")
    if match.group(1) is None:
        return num_levels - 1
    index = int(match.group(2))
    return index if match.group(1) == "down_blocks" else num_levels - 1 - index


def _state(unet: nn.Module) -> _State:
    state = getattr(unet, _STATE_ATTR, None)
    if state is None:
        raise RuntimeError("CameraCtrl processors are not attached to this UNet")
    return state


def attach_pose_processors(unet: nn.Module, scale: float = 1.0) -> dict[str, PoseCondAttnProcessor]:
    r"""Give ``attn1`` of every temporal block of an SVD UNet a :class:`PoseCondAttnProcessor`
    (through ``unet.set_attn_processor``; all other processors stay as they are).

    Returns:
        The new processors by their key in ``unet.attn_processors``
        (``"<block path>.attn1.processor"``), in module order.
    """
    if getattr(unet, _STATE_ATTR, None) is not None:
        raise RuntimeError("CameraCtrl processors are already attached")
    num_levels = len(unet.config.block_out_channels)
    state = _State()
    processors = dict(unet.attn_processors)
    for path, module in unet.named_modules():
        if not isinstance(module, TemporalBasicTransformerBlock):
            continue
        key = f"{path}.attn1.{PROCESSOR_NAME}"
        weight = module.attn1.to_q.weight
        proc = PoseCondAttnProcessor(
            key, module.attn1.query_dim, _level_of(path, num_levels), state, processors[key], scale
        ).to(device=weight.device, dtype=weight.dtype)
        processors[key] = proc
        state.processors[key] = proc
    if not state.processors:
        raise ValueError("the UNet has no TemporalBasicTransformerBlock")
    unet.set_attn_processor(processors)
    setattr(unet, _STATE_ATTR, state)
    return dict(state.processors)


def pose_processors(unet: nn.Module) -> dict[str, PoseCondAttnProcessor]:
    """The attached processors by their ``attn_processors`` key."""
    return dict(_state(unet).processors)


@contextlib.contextmanager
def pose_features(unet: nn.Module, features: Sequence[torch.Tensor]) -> Iterator[None]:
    r"""Make every UNet call inside the block use these pose features.

    Args:
        features: the :class:`CameraPoseEncoder` output, one (B, C_l, F, h_l, w_l) per UNet
            level; the processors repeat them to the UNet's batch (e.g. both CFG halves).
    """
    state = _state(unet)
    num_levels = len(unet.config.block_out_channels)
    if len(features) != num_levels:
        raise ValueError(f"{len(features)} pose feature levels for a {num_levels}-level UNet")
    state.features = list(features)
    try:
        yield
    finally:
        state.features = None


# -------------------------------------------------------------------------------- state dicts


def processor_parameters(unet: nn.Module) -> dict[str, nn.Parameter]:
    r"""Every processor parameter by its upstream name in ``attention_processor_state_dict``:
    ``"<block path>.attn1.processor.qkv_merge.weight"`` / ``.bias`` (upstream saves the UNet's
    parameters whose names contain ``merge``: ``train_camera_control.py``)."""
    out: dict[str, nn.Parameter] = {}
    for key, proc in _state(unet).processors.items():
        out[f"{key}.{MERGE_NAME}.weight"] = proc.qkv_merge.weight
        out[f"{key}.{MERGE_NAME}.bias"] = proc.qkv_merge.bias
    return out


def processor_state_dict(unet: nn.Module) -> dict[str, torch.Tensor]:
    """The processors' weights in upstream ``attention_processor_state_dict`` layout."""
    return {k: v.detach().clone() for k, v in processor_parameters(unet).items()}


def _check_fit(
    expected: dict[str, torch.Size], given: dict[str, Any], what: str
) -> None:
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    misshaped = [
        f"{k}: checkpoint {tuple(given[k].shape)} vs model {tuple(expected[k])}"
        for k in sorted(set(expected) & set(given))
        if tuple(given[k].shape) != tuple(expected[k])
    ]
    if missing or unexpected or misshaped:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
        if misshaped:
            parts.append(f"{len(misshaped)} wrong shape: {'; '.join(misshaped[:3])}")
        raise CheckpointMismatchError(f"{what} does not fit: " + ", ".join(parts))


def load_processor_state_dict(unet: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    r"""Load upstream ``attention_processor_state_dict`` into the attached processors.

    Raises:
        CheckpointMismatchError: keys missing, unexpected or of the wrong shape (named).

    Returns:
        The keys loaded.
    """
    params = processor_parameters(unet)
    _check_fit({k: p.shape for k, p in params.items()}, state, "attention_processor_state_dict")
    with torch.no_grad():
        for key, param in params.items():
            param.copy_(state[key].to(device=param.device, dtype=param.dtype))
    return sorted(params)


def load_pose_encoder_state_dict(encoder: CameraPoseEncoder, state: dict[str, Any]) -> None:
    """Load upstream ``pose_encoder_state_dict`` strictly (names the misfits otherwise)."""
    own = encoder.state_dict()
    _check_fit({k: v.shape for k, v in own.items()}, state, "pose_encoder_state_dict")
    encoder.load_state_dict(state, strict=True)


def load_cameractrl_checkpoint(
    unet: nn.Module, encoder: CameraPoseEncoder, path: str | Path
) -> None:
    r"""Load a released CameraCtrl-SVD checkpoint (``torch.save`` dict with
    ``pose_encoder_state_dict`` and ``attention_processor_state_dict``) into ``encoder`` and
    the processors attached to ``unet``.

    Raises:
        CheckpointMismatchError: a dict is missing or does not fit (names the keys).
    """
    ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    for key in ("pose_encoder_state_dict", "attention_processor_state_dict"):
        if not isinstance(ckpt, dict) or key not in ckpt:
            raise CheckpointMismatchError(f"{path}: no {key!r} (not a CameraCtrl-SVD checkpoint)")
    load_pose_encoder_state_dict(encoder, ckpt["pose_encoder_state_dict"])
    load_processor_state_dict(unet, ckpt["attention_processor_state_dict"])


# ------------------------------------------------------------------------------------ pipeline


class CameraCtrlPipeline(StableVideoDiffusionPipeline):
    r"""SVD image-to-video conditioned on a camera path by CameraCtrl.

    Build it from SVD components plus a :class:`CameraPoseEncoder`, with the processors
    attached to the UNet (:func:`attach_pose_processors`) and, for real use, a checkpoint
    loaded (:func:`load_cameractrl_checkpoint`).
    """

    def __init__(self, vae, image_encoder, unet, scheduler, feature_extractor, pose_encoder):
        super().__init__(vae, image_encoder, unet, scheduler, feature_extractor)
        self.register_modules(pose_encoder=pose_encoder)

    @torch.no_grad()
    def encode_pose(self, plucker: np.ndarray | torch.Tensor) -> list[torch.Tensor]:
        """Pose features of Plücker rays (F, 6, H, W) or (B, F, 6, H, W)."""
        rays = torch.as_tensor(plucker)
        if rays.ndim == 4:
            rays = rays[None]
        encoder = self.pose_encoder
        return encoder(rays.to(device=encoder.device, dtype=encoder.dtype))

    @torch.no_grad()
    def __call__(  # type: ignore[override]
        self,
        image: np.ndarray | PIL.Image.Image,
        plucker: np.ndarray | torch.Tensor | None = None,
        camera: CameraPath | None = None,
        height: int = DEFAULTS["height"],
        width: int = DEFAULTS["width"],
        num_frames: int | None = None,
        num_inference_steps: int = DEFAULTS["num_inference_steps"],
        min_guidance_scale: float = DEFAULTS["min_guidance_scale"],
        max_guidance_scale: float = DEFAULTS["max_guidance_scale"],
        fps: int = DEFAULTS["fps"],
        motion_bucket_id: int = DEFAULTS["motion_bucket_id"],
        noise_aug_strength: float = DEFAULTS["noise_aug_strength"],
        decode_chunk_size: int | None = None,
        generator: torch.Generator | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        r"""Generate a clip whose camera follows ``camera`` (or the given Plücker rays).

        Args:
            image: (height, width, 3) uint8 conditioning image (or a PIL image of that size).
            plucker: (F, 6, height, width) rays as CameraCtrl's ``ray_condition`` makes them
                (:func:`methods.camera_formats.plucker_embedding`); or give ``camera``.
            camera: the path with K for ``width`` x ``height`` frames.
            num_frames: defaults to the rays' frame count.
            generator: seeds the noise; the same state gives the same frames.
            kwargs: passed to ``StableVideoDiffusionPipeline.__call__``.

        Returns:
            (F, height, width, 3) uint8 frames.
        """
        if plucker is None:
            if camera is None:
                raise ValueError("give plucker rays or a camera")
            if (camera.width, camera.height) != (width, height):
                raise ValueError(
                    f"camera is for {camera.width}x{camera.height} frames, not {width}x{height}"
                )
            from methods.camera_formats import plucker_embedding

            plucker = plucker_embedding(camera, height, width)
        shape = tuple(plucker.shape[-3:])
        if shape != (6, height, width):
            raise ValueError(f"plucker must be (F, 6, {height}, {width}), got {shape}")
        rays_frames = int(plucker.shape[-4])
        num_frames = num_frames or rays_frames
        if num_frames != rays_frames:
            raise ValueError(f"num_frames {num_frames} but the rays have {rays_frames}")
        if isinstance(image, np.ndarray):
            if image.shape != (height, width, 3) or image.dtype != np.uint8:
                raise ValueError(
                    f"image must be uint8 ({height}, {width}, 3), got {image.dtype} {image.shape}"
                )
            image = PIL.Image.fromarray(image)
        elif image.size != (width, height):
            raise ValueError(f"image must be {width}x{height}, got {image.size}")
        features = self.encode_pose(plucker)
        with pose_features(self.unet, features):
            frames = super().__call__(
                image,
                height=height,
                width=width,
                num_frames=num_frames,
                num_inference_steps=num_inference_steps,
                min_guidance_scale=min_guidance_scale,
                max_guidance_scale=max_guidance_scale,
                fps=fps,
                motion_bucket_id=motion_bucket_id,
                noise_aug_strength=noise_aug_strength,
                decode_chunk_size=decode_chunk_size,
                generator=generator,
                output_type="np",
                return_dict=False,
                **kwargs,
            )
        return to_uint8_frames(frames)


# ------------------------------------------------------------------------------- tiny models


def tiny_pose_encoder(seed: int = 0, max_frames: int = 25) -> CameraPoseEncoder:
    """A pose encoder sized for ``trajattn.tiny.tiny_unet`` (levels 32, 64; VAE factor 4)."""
    torch.manual_seed(seed)
    return CameraPoseEncoder(
        downscale_factor=4, channels=(32, 64), nums_rb=2, cin=96, ksize=1, num_heads=2,
        max_frames=max_frames,
    ).eval()


def build_tiny_pipeline(seed: int = 0, max_frames: int = 25) -> CameraCtrlPipeline:
    r"""Tiny random CameraCtrl pipeline for CPU tests (noise-like frames, wiring only).

    The zero ``qkv_merge`` layers get small random weights (from ``seed``) so the camera
    changes the output, as trained weights would.
    """
    from diffusers import EulerDiscreteScheduler

    from trajattn.tiny import (
        SVD_SCHEDULER,
        tiny_feature_extractor,
        tiny_image_encoder,
        tiny_unet,
        tiny_vae,
    )

    unet = tiny_unet(seed)
    attach_pose_processors(unet)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for param in processor_parameters(unet).values():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.1)
    pipe = CameraCtrlPipeline(
        vae=tiny_vae(seed),
        image_encoder=tiny_image_encoder(seed),
        unet=unet,
        scheduler=EulerDiscreteScheduler(**SVD_SCHEDULER),
        feature_extractor=tiny_feature_extractor(),
        pose_encoder=tiny_pose_encoder(seed, max_frames),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
