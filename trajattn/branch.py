r"""The attention of trajectory attention: along trajectories, with the projections moved.

:func:`attend` is ``attn``'s multi-head self-attention over the frame axis of ``(S, F, C)``
tokens (optionally regrouped as the official SDPA processor does, see
:func:`official_sequence_length`). :func:`attend_along_trajectories` is paper Alg. 1, that
attention, and Alg. 2 in one call, with q/k/v projected on the latent grid before the gather
and ``to_out`` applied after the scatter when that is exact
(:func:`commutes_with_sampling`). Used by the SVD processor (:mod:`trajattn.attention`) and
by ``bench/trajattn.py``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention

from trajattn.chunked import attend_grid_chunked
from trajattn.sampling import (
    TrajectoryIndex,
    accumulator_dtype,
    cell_counts,
    gather_tokens,
    scatter_back,
    target_rows,
)

#: devices on which half-precision tokens take the chunked nearest path (float32 and float64
#: take it everywhere). On CUDA half precision takes the projected path, whose attention is
#: SDPA (flash): on an H200 at an SVD-XT layer (``python -m bench.trajattn --device cuda
#: --block-only --both-paths --dtype float16``) the chunked path took 33 against 28 ms
#: forward+backward at the same peak (3.8 GiB); forward only 16 against 13 ms, but 0.7 GiB
#: less (docs/trajattn.md): add "cuda" here where sampling is short of memory. On the CPU the
#: chunked path's smaller buffers cut page faults, which dominate there.
CHUNKED_HALF_PRECISION_DEVICES = frozenset({"cpu"})


def takes_chunked_path(hidden: torch.Tensor, index: TrajectoryIndex) -> bool:
    """The automatic choice of :func:`attend_along_trajectories`: nearest mode, and float32 /
    float64 tokens or a device listed in :data:`CHUNKED_HALF_PRECISION_DEVICES`."""
    if index.index.shape[0] != 1:  # bilinear: four weighted corners per point
        return False
    full = hidden.dtype in (torch.float32, torch.float64)
    return full or hidden.device.type in CHUNKED_HALF_PRECISION_DEVICES


def official_sequence_length(num_tokens: int, frames: int, rows: int) -> int:
    r"""Tokens per attention sequence of the official SDPA processor's reshape.

    It views the ``num_tokens`` gathered sequences of ``frames`` tokens (``B N``) with the
    pre-gather batch size ``rows`` (``B h w``): ``num_tokens * frames / rows`` tokens each
    (``2 F`` for the official ``N = 2 h w``). Raises ValueError where the official ``view``
    fails (not a whole number).
    """
    if (num_tokens * frames) % rows:
        raise ValueError(
            f"compat_mixed_pairs: the official view(B*h*w, -1, ...) cannot split "
            f"{num_tokens} x {frames} tokens into {rows} sequences; choose a trajectory "
            "count N with N * frames divisible by h * w"
        )
    return num_tokens * frames // rows


def attend(
    attn: Attention,
    x: torch.Tensor,
    key_mask: torch.Tensor | None = None,
    mixed_pairs: bool = False,
    want_probs: bool = False,
    mixed_length: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""Self-attention of ``attn`` over the frame axis of ``x (S, F, C)``.

    ``mixed_length``: regroup the ``S F`` tokens into sequences of this many (the official
    reshape, :func:`official_sequence_length`); ``mixed_pairs`` alone means ``2 F``.

    Returns the projected output ``(S, F, C)`` and, if ``want_probs``, the attention
    probabilities averaged over sequences and heads.
    """
    q, k, v = attn.to_q(x), attn.to_k(x), attn.to_v(x)
    out, probs = attend_projected(attn, q, k, v, key_mask, mixed_pairs, want_probs, mixed_length)
    return attn.to_out[1](attn.to_out[0](out)) / attn.rescale_output_factor, probs


def attend_projected(
    attn: Attention,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_mask: torch.Tensor | None = None,
    mixed_pairs: bool = False,
    want_probs: bool = False,
    mixed_length: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""The multi-head attention of :func:`attend` on projected ``q, k, v (S, F, C)``, before
    ``to_out``: returns ``(S, F, C)`` and the probabilities if ``want_probs``."""
    seqs, frames, _ = q.shape
    if mixed_pairs and mixed_length is None:
        mixed_length = 2 * frames
    if mixed_length is not None:
        total = seqs * frames
        if total % mixed_length:
            raise ValueError(
                f"compat_mixed_pairs: {seqs} x {frames} tokens do not split into sequences "
                f"of {mixed_length}"
            )
        q, k, v = (t.reshape(total // mixed_length, mixed_length, t.shape[-1]) for t in (q, k, v))
        if key_mask is not None:
            key_mask = key_mask.reshape(total // mixed_length, mixed_length)
    heads = attn.heads
    head_dim = q.shape[-1] // heads
    q, k, v = (
        t.reshape(t.shape[0], t.shape[1], heads, head_dim).transpose(1, 2) for t in (q, k, v)
    )
    mask = None
    if key_mask is not None:
        key_mask = key_mask | ~key_mask.any(-1, keepdim=True)  # never mask a whole row
        mask = key_mask[:, None, None, :]
    probs = None
    if want_probs:
        scores = (q @ k.transpose(-1, -2)) * attn.scale
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = scores.softmax(-1)
        out = weights @ v
        probs = weights.detach().float().mean(dim=(0, 1))
    else:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=attn.scale)
    out = out.transpose(1, 2).reshape(q.shape[0], q.shape[2], heads * head_dim)
    return out.reshape(seqs, frames, -1), probs


def commutes_with_sampling(attn: Attention) -> bool:
    """Whether projecting before Alg. 1 and applying ``to_out`` after Alg. 2 is exact.

    q/k/v are linear without bias, so ``to_q(gather(h)) == gather(to_q(h))`` (zero tokens stay
    zero); ``to_out`` is affine, so it commutes with the count-normalised mean on covered
    cells (its bias is then masked to keep uncovered cells 0). Dropout breaks the identity;
    layers other than plain ``nn.Linear`` (LoRA, quantised) take the direct path, since the
    fast one reads their ``weight`` and ``bias`` only.
    """
    layers = [getattr(attn, n) for n in ("to_q", "to_k", "to_v")] + [attn.to_out[0]]
    plain = all(type(layer) is torch.nn.Linear for layer in layers)
    no_bias = plain and all(layer.bias is None for layer in layers[:3])
    dropout = attn.to_out[1]
    inert = not isinstance(dropout, torch.nn.Dropout) or dropout.p == 0 or not dropout.training
    return no_bias and inert


def attend_along_trajectories(
    attn: Attention,
    hidden: torch.Tensor,
    index: TrajectoryIndex,
    key_mask: torch.Tensor | None = None,
    mixed_pairs: bool = False,
    want_probs: bool = False,
    chunked: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    r"""Alg. 1, attention of ``attn`` along the trajectories, Alg. 2, on ``(B * h * w, F, C)``.

    Returns ``(back (B * h * w, F, C), covered (h * w, F), probs)``. Equal (to rounding) to
    ``scatter_back(attend(attn, gather_tokens(hidden, index)))``, which is the path taken when
    :func:`commutes_with_sampling` is false. Otherwise the projections run on the ``h * w``
    grid cells rather than on the ``N = 2 h w`` sampled tokens, halving their cost: q/k/v in
    one matmul before one gather, ``to_out`` after the scatter. Then ``chunked`` picks how
    the rest runs: gather, attention and scatter a chunk of sequences at a time
    (:mod:`trajattn.chunked`, nearest mode only), or on the gathered q/k/v (the projected
    path); None: :func:`takes_chunked_path`. Both give the same result to rounding.
    """
    if chunked is None:
        chunked = takes_chunked_path(hidden, index)
    elif chunked and index.index.shape[0] != 1:
        raise ValueError("the chunked path samples nearest cells; this index is bilinear")
    mixed_length = None
    if mixed_pairs:  # the official view(B*h*w, -1, ...): N F / (h w) tokens per sequence
        batch = hidden.shape[0] // (index.latent_size[0] * index.latent_size[1])
        mixed_length = official_sequence_length(
            batch * index.num_trajectories, hidden.shape[1], hidden.shape[0]
        )
    if not commutes_with_sampling(attn):
        out, probs = attend(
            attn, gather_tokens(hidden, index), key_mask, mixed_pairs, want_probs, mixed_length
        )
        back, covered = scatter_back(out, index)
        return back, covered, probs
    sizes = [attn.to_q.out_features, attn.to_k.out_features, attn.to_v.out_features]
    weight = torch.cat([attn.to_q.weight, attn.to_k.weight, attn.to_v.weight])
    proj = attn.to_out[0]
    if chunked:
        # gather, attention and scatter chunk by chunk (trajattn.chunked); half precision
        # keeps its softmax, sums and counts in float32
        batch = hidden.shape[0] // (index.latent_size[0] * index.latent_size[1])
        rows = target_rows(index, batch).reshape(-1)
        covered, denom = cell_counts(index, rows[: index.valid.numel()],
                                     accumulator_dtype(hidden.dtype))
        mean, probs = attend_grid_chunked(
            hidden,
            weight,
            rows,
            denom,
            attn.heads,
            attn.scale,
            mixed_length or hidden.shape[1],
            None if key_mask is None else key_mask.reshape(-1),
            want_probs,
        )
        covered = covered.view(-1, hidden.shape[1])
        back = _project_out(mean, proj, covered.repeat(batch, 1))
    else:
        qkv = gather_tokens(F.linear(hidden, weight), index)
        q, k, v = qkv.split(sizes, -1)
        out, probs = attend_projected(
            attn, q, k, v, key_mask, mixed_pairs, want_probs, mixed_length
        )
        mean, covered = scatter_back(out, index)
        back = _project_out(mean, proj, covered.repeat(hidden.shape[0] // covered.shape[0], 1))
    covered = covered.reshape(index.latent_size[0] * index.latent_size[1], -1)
    if attn.rescale_output_factor != 1:
        back = back / attn.rescale_output_factor
    return back, covered, probs


def _project_out(mean: torch.Tensor, proj: torch.nn.Linear, covered: torch.Tensor) -> torch.Tensor:
    """``to_out`` on the scattered mean ``(B * h * w, F, D)``; its bias only where ``covered``
    ``(B * h * w, F)``, so that cells no trajectory reaches stay 0 (as ``to_out`` applied
    before the scatter leaves them)."""
    back = F.linear(mean, proj.weight)
    if proj.bias is None:
        return back
    return back.add_(proj.bias).mul_(covered[..., None].to(back.dtype))
