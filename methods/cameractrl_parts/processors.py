"""Pose-conditioned attention: the ``attn1`` processor of every temporal block merges the pose
feature of its level into q, k and v (upstream ``attention_processor.py``
``PoseAdaptorAttnProcessor``); features reach the processors through state set on the UNet
(:func:`pose_features`)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from diffusers.models.attention import TemporalBasicTransformerBlock
from torch import nn

PROCESSOR_NAME = "processor"
MERGE_NAME = "qkv_merge"
_STATE_ATTR = "_cameractrl_state"


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
