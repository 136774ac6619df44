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

from trajattn.sampling import (
    TrajectoryIndex,
    cell_counts,
    gather_tokens,
    scatter_back,
    target_rows,
)


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
    out, probs = attend_projected(
        attn, q, k, v, key_mask, mixed_pairs, want_probs, mixed_length
    )
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
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    r"""Alg. 1, attention of ``attn`` along the trajectories, Alg. 2, on ``(B * h * w, F, C)``.

    Returns ``(back (B * h * w, F, C), covered (h * w, F), probs)``. Equal (to rounding) to
    ``scatter_back(attend(attn, gather_tokens(hidden, index)))``, which is the path taken when
    :func:`commutes_with_sampling` is false. Otherwise the projections run on the ``h * w``
    grid cells rather than on the ``N = 2 h w`` sampled tokens, halving their cost: q/k/v in
    one matmul before one gather, ``to_out`` after the scatter.
    """
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
    if index.index.shape[0] == 1 and hidden.dtype in (torch.float32, torch.float64):
        # nearest mode: the fused autograd functions below (same forward arithmetic)
        batch = hidden.shape[0] // (index.latent_size[0] * index.latent_size[1])
        rows = target_rows(index, batch).reshape(-1)
        q, k, v = _ProjectGather.apply(hidden, weight, rows, sizes)
        out, probs = attend_projected(
            attn, q, k, v, key_mask, mixed_pairs, want_probs, mixed_length
        )
        covered, denom = cell_counts(index, rows[: index.valid.numel()], hidden.dtype)
        back = _ScatterProject.apply(out, proj.weight, proj.bias, rows, covered, denom, batch)
    else:
        qkv = gather_tokens(F.linear(hidden, weight), index)
        q, k, v = qkv.split(sizes, -1)
        out, probs = attend_projected(
            attn, q, k, v, key_mask, mixed_pairs, want_probs, mixed_length
        )
        mean, covered = scatter_back(out, index)
        back = F.linear(mean, proj.weight)
        if proj.bias is not None:
            batch = hidden.shape[0] // covered.shape[0]
            back = back.add_(proj.bias).mul_(covered.repeat(batch, 1)[..., None].to(back.dtype))
    covered = covered.reshape(index.latent_size[0] * index.latent_size[1], -1)
    if attn.rescale_output_factor != 1:
        back = back / attn.rescale_output_factor
    return back, covered, probs


class _ProjectGather(torch.autograd.Function):
    r"""Nearest-mode q/k/v: ``gather_tokens(F.linear(hidden, weight), index).split(sizes)``.

    One function rather than autograd's chain of linear, index_select, index_fill and split,
    whose backward copies the whole gradient twice (the fill's clone, the split's
    concatenation): here q, k and v's gradients are each added straight into their columns
    of one grid-sized buffer. The projection goes into a buffer with one extra zero row,
    which invalid points (``rows`` past the grid) read.
    """

    @staticmethod
    def forward(ctx, hidden, weight, rows, sizes):
        frames, channels = hidden.shape[1:]
        flat = hidden.reshape(-1, channels)
        qkv = flat.new_empty(flat.shape[0] + 1, weight.shape[0])
        torch.mm(flat, weight.t(), out=qkv[:-1])
        qkv[-1].zero_()
        tokens = qkv.index_select(0, rows).view(-1, frames, weight.shape[0])
        ctx.save_for_backward(hidden, weight, rows)
        ctx.sizes = sizes
        return tuple(tokens.split(sizes, -1))

    @staticmethod
    def backward(ctx, *grads):
        hidden, weight, rows = ctx.saved_tensors
        flat = hidden.reshape(-1, hidden.shape[-1])
        onto = flat.new_zeros(flat.shape[0] + 1, weight.shape[0])  # q, k, v grads on the grid
        start = 0
        for size, grad in zip(ctx.sizes, grads, strict=True):
            if grad is not None:
                onto[:, start : start + size].index_add_(0, rows, grad.reshape(-1, size))
            start += size
        onto = onto[:-1]
        grad_hidden = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_hidden = (onto @ weight).view_as(hidden)
        if ctx.needs_input_grad[1]:
            grad_weight = onto.t() @ flat
        return grad_hidden, grad_weight, None, None


class _ScatterProject(torch.autograd.Function):
    r"""Nearest-mode Alg. 2 and ``to_out``: the count-normalised mean of the tokens landing on
    each cell (as :func:`trajattn.sampling.scatter_back`), times ``weight`` (+ ``bias``, kept
    off uncovered cells). One function so that the backward copies no accumulator (autograd
    records one for the in-place index_add and division) and the tokens' gradient is one
    gather from a buffer whose extra zero row invalid points read.

    ``rows``: :func:`trajattn.sampling.target_rows` flattened; ``covered``, ``denom``: per
    cell and frame (:func:`trajattn.sampling.cell_counts`).
    """

    @staticmethod
    def forward(ctx, tokens, weight, bias, rows, covered, denom, batch):
        frames, channels = tokens.shape[1:]
        cells = denom.shape[0]  # h * w * F
        acc = tokens.new_zeros(batch * cells + 1, channels)
        acc.index_add_(0, rows, tokens.reshape(-1, channels))
        mean = acc[:-1].view(batch, cells, channels).div_(denom[:, None]).view(-1, channels)
        back = mean @ weight.t()
        mask = None
        if bias is not None:
            mask = covered.reshape(1, cells, 1).to(back.dtype)
            back = back.add_(bias).view(batch, cells, -1).mul_(mask).view(-1, back.shape[-1])
        ctx.save_for_backward(weight, mean, rows, denom, mask)
        ctx.has_bias = bias is not None
        ctx.tokens_shape = tokens.shape
        return back.view(batch * cells // frames, frames, -1)

    @staticmethod
    def backward(ctx, grad):
        weight, mean, rows, denom, mask = ctx.saved_tensors
        batch, cells = mean.shape[0] // denom.shape[0], denom.shape[0]
        grad = grad.reshape(-1, grad.shape[-1])
        if ctx.has_bias:
            grad = (grad.view(batch, cells, -1) * mask).view(-1, grad.shape[-1])
        grad_tokens = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            onto = grad.new_empty(mean.shape[0] + 1, weight.shape[1])
            torch.mm(grad, weight, out=onto[:-1])
            onto[-1].zero_()
            onto[:-1].view(batch, cells, -1).div_(denom[:, None])
            grad_tokens = onto.index_select(0, rows).view(ctx.tokens_shape)
        if ctx.needs_input_grad[1]:
            grad_weight = grad.t() @ mean
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad.sum(0)
        return grad_tokens, grad_weight, grad_bias, None, None, None, None
