"""The CameraCtrl pose encoder (upstream ``cameractrl/models/pose_adaptor.py``
``CameraPoseEncoder`` with the ``TemporalTransformerBlock`` of ``motion_module.py``): Plücker
rays in, one feature per UNet level out."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


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
