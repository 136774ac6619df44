r"""Attention along trajectories on a DiT token grid (Wan): temporal RoPE, Alg. 1/2 around it.

:func:`trajectory_attention` views the block input ``(B, T * h * w, C)`` as ``(B * h * w, T,
C)``, gathers it along the trajectories (paper Alg. 1), attends over each trajectory's ``T``
latent frames with the module's projections and q/k RMSNorm and the *temporal* axis of Wan's
3-D RoPE (:func:`temporal_rope`), and scatters back (Alg. 2). Used by
:mod:`trajattn.wan.attention`'s processor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.transformers.transformer_wan import WanAttention

from trajattn.sampling import TrajectoryIndex, gather_tokens, scatter_back


def temporal_rope(
    rotary_emb: tuple[torch.Tensor, torch.Tensor], grid: tuple[int, int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The temporal-axis-only RoPE of each latent frame from Wan's 3-D RoPE.

    Wan's ``rotary_emb`` is ``(cos, sin)``, each ``(1, T * h * w, 1, D)``: per token, the
    rotation angles of its frame index (first ``t_dim`` channels), row and column. The token at
    cell ``(0, 0)`` of frame ``t`` has row = column = 0, i.e. the identity rotation on the
    spatial channels, so its entry is exactly "rotate by the frame index only".

    Returns:
        ``(cos, sin)``, each ``(1, T, 1, D)``.
    """
    frames, h, w = grid
    cos, sin = rotary_emb
    if cos.shape[1] != frames * h * w:
        raise ValueError(f"rotary embedding has {cos.shape[1]} tokens, grid {grid}")
    pick = torch.arange(frames, device=cos.device) * (h * w)
    return cos[:, pick], sin[:, pick]


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Wan's RoPE convention: channel pairs (2i, 2i + 1) rotated by the angle of pair i
    (``cos``/``sin`` repeat each angle twice). Written out because diffusers keeps it inside
    ``WanAttnProcessor.__call__``."""
    x1, x2 = x.unflatten(-1, (-1, 2)).unbind(-1)
    cos, sin = cos[..., 0::2], sin[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x1 * cos - x2 * sin
    out[..., 1::2] = x1 * sin + x2 * cos
    return out.type_as(x)


def attend_along_trajectories(
    module: WanAttention,
    tokens: torch.Tensor,
    rope: tuple[torch.Tensor, torch.Tensor] | None,
    key_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Self-attention of ``module`` over the frame axis of ``tokens (S, T, C)``.

    q/k/v projections, RMSNorm on q and k, ``rope`` (``(1, T, 1, D)`` each, or None), scaled
    dot-product attention (``key_mask (S, T)``: False keys are masked; a row with no valid key
    attends to all), output projection. Returns ``(S, T, C)`` in the dtype of ``tokens``; the
    maths runs in the module's dtype (a float32 branch may train inside a bfloat16 model).
    """
    in_dtype = tokens.dtype
    tokens = tokens.to(module.to_q.weight.dtype)
    q = module.norm_q(module.to_q(tokens)).unflatten(2, (module.heads, -1))
    k = module.norm_k(module.to_k(tokens)).unflatten(2, (module.heads, -1))
    v = module.to_v(tokens).unflatten(2, (module.heads, -1))
    if rope is not None:
        q, k = _rotate(q, *rope), _rotate(k, *rope)
    mask = None
    if key_mask is not None:
        key_mask = key_mask | ~key_mask.any(-1, keepdim=True)
        mask = key_mask[:, None, None, :]
    out = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask
    )
    out = out.transpose(1, 2).flatten(2, 3).type_as(q)
    return module.to_out[1](module.to_out[0](out)).to(in_dtype)


def trajectory_attention(
    module: WanAttention,
    hidden_states: torch.Tensor,
    rotary_emb: tuple[torch.Tensor, torch.Tensor] | None,
    index: TrajectoryIndex,
    grid: tuple[int, int, int],
    mask_invalid_keys: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Gather (Alg. 1), attend along trajectories, scatter back (Alg. 2) on a DiT token grid.

    Args:
        module: the attention whose weights attend (branch, or ``attn1``).
        hidden_states: ``(B, T * h * w, C)`` in token order ``t, y, x``.
        rotary_emb: Wan's 3-D RoPE ``(cos, sin)``; only its temporal axis is used.
        index: trajectories on the ``(h, w)`` grid over ``T`` latent frames.
        grid: ``(T, h, w)``.

    Returns:
        ``(out (B, T * h * w, C), covered (T * h * w,) bool)``: the count-normalised
        trajectory attention output (0 where no valid point lands) and where some point lands.
    """
    frames, h, w = grid
    batch, tokens, channels = hidden_states.shape
    if tokens != frames * h * w:
        raise ValueError(f"{tokens} tokens do not fit the grid {grid}")
    cells = hidden_states.reshape(batch, frames, h * w, channels).transpose(1, 2)
    sampled = gather_tokens(cells.reshape(batch * h * w, frames, channels), index)
    rope = temporal_rope(rotary_emb, grid) if rotary_emb is not None else None
    key_mask = index.key_mask(batch) if mask_invalid_keys else None
    out = attend_along_trajectories(module, sampled, rope, key_mask)
    back, covered = scatter_back(out, index)  # (B * h * w, T, C), (h * w, T)
    back = back.reshape(batch, h * w, frames, -1).transpose(1, 2).reshape(batch, tokens, -1)
    return back, covered.transpose(0, 1).reshape(-1)
