r"""Nearest-mode Alg. 1, attention and Alg. 2 in one autograd function, a chunk of sequences
at a time.

The direct composition materialises every sampled token: for ``N = 2 h w`` trajectories the
gathered q/k/v are twice the grid's q/k/v, and so are their gradients; the attention output
and its gradient come on top. Here only grid-sized buffers exist (the q/k/v projection of
the grid, the scatter's accumulator, their gradients) plus the attention probabilities; each
chunk of sequences is gathered into a small reused buffer, attended, and added straight into
the accumulator, and the backward gathers the chunk again and adds its q/k/v gradients
straight into the grid's. At an SVD-XT layer this cut the branch's memory above ``attn1``
from 3.7 to 2.2 GiB and its page faults by 30% (``docs/trajattn.md``).

Nothing in torch fuses gather, attention and scatter-add this way (SDPA needs
its inputs materialised), hence the hand-written forward and backward, which
``tests/trajattn/test_trajattn_branch_algebra.py`` checks against the direct composition and
finite differences.

Rows follow :func:`trajattn.sampling.target_rows`: grid row ``(b h w + cell) F + f``, and
invalid points read the extra zero row past the grid (gathers) and write to it (scatters,
discarded). The arithmetic is softmax attention with ``scale``; keys outside ``key_mask`` get
zero weight (a sequence with no key left keeps all, as :func:`trajattn.branch.attend_projected`).
"""

from __future__ import annotations

import torch

from trajattn.sampling import accumulator_dtype

#: bytes of gathered q/k/v per chunk: small enough on CPU to stay in cache and be reused by the
#: allocator instead of faulting in fresh pages. On CUDA (H200, SVD-XT layer, float32,
#: ``python -m bench.trajattn --device cuda --block-only --chunk-mib N``) 64 MiB peaked at
#: 5.4 GB for 2.51x attn1's time, 256 MiB at 6.4 GB (2.45x), 1 GiB at 10.4 GB (2.43x):
#: launches cost little there, the workspace a lot (docs/trajattn.md).
CHUNK_BYTES = {"cpu": 16 << 20, "cuda": 64 << 20}


def chunk_sequences(sequence_bytes: int, device: torch.device) -> int:
    """How many sequences one chunk holds on ``device`` (at least 1)."""
    budget = CHUNK_BYTES.get(device.type, CHUNK_BYTES["cuda"])
    return max(1, budget // max(1, sequence_bytes))


def attend_grid_chunked(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    rows: torch.Tensor,
    denom: torch.Tensor,
    heads: int,
    scale: float,
    length: int,
    key_mask: torch.Tensor | None = None,
    want_probs: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""Count-normalised mean, per grid cell, of trajectory attention's output (before ``to_out``).

    Args:
        hidden: ``(B * h * w, F, C)``, the block's input.
        weight: ``(3 D, C)``, q, k and v's weights stacked (no biases).
        rows: ``(T,)`` the grid row of every sampled token (:func:`target_rows`, flattened),
            ``T / length`` sequences of ``length`` consecutive tokens.
        denom: ``(h * w * F,)`` the divisor of each cell's mean (:func:`cell_counts`).
        heads, scale: the attention's heads and softmax scale.
        key_mask: ``(T,)`` bool, keys that may be attended to; None: all.
        want_probs: also return the probabilities averaged over sequences and heads.

    Returns:
        ``(B * h * w, F, D)`` and the ``(length, length)`` probabilities or None.
    """
    if weight.shape[0] % 3 or (weight.shape[0] // 3) % heads:
        raise ValueError(f"q/k/v weight of {weight.shape[0]} rows is not 3 x {heads} heads")
    if rows.numel() % length:
        raise ValueError(f"{rows.numel()} tokens do not split into sequences of {length}")
    mask = None
    if key_mask is not None:
        mask = key_mask.reshape(-1, length)
        mask = mask | ~mask.any(-1, keepdim=True)  # never mask a whole row
    mean, probs = _ChunkedAttention.apply(hidden, weight, rows, denom, heads, scale, length, mask)
    if not want_probs:
        return mean, None
    return mean, probs.sum((0, 1)).div_(probs.shape[0] * probs.shape[1]).float()


class _ChunkedAttention(torch.autograd.Function):
    """See the module docstring; the second output (all probabilities) is not differentiable.

    Every per-chunk tensor lives in a :class:`_Workspace` allocated once per call and written
    with ``out=`` / in-place ops, so the loop allocates nothing large.
    """

    @staticmethod
    def forward(ctx, hidden, weight, rows, denom, heads, scale, length, mask):
        frames, channels = hidden.shape[1:]
        width, inner = weight.shape[0], weight.shape[0] // 3
        flat = hidden.reshape(-1, channels)
        acc_dtype = accumulator_dtype(flat.dtype)  # half precision: softmax and sums in float32
        half = acc_dtype != flat.dtype
        qkv = flat.new_empty(flat.shape[0] + 1, width)  # + a zero row that invalid points read
        torch.mm(flat, weight.t(), out=qkv[:-1])
        qkv[-1].zero_()
        # + a trash row that they write
        acc = torch.zeros(flat.shape[0] + 1, inner, dtype=acc_dtype, device=flat.device)
        sequences = rows.numel() // length
        probs = torch.empty(sequences, heads, length, length, dtype=acc_dtype,
                            device=flat.device)
        step = chunk_sequences(length * width * flat.element_size(), flat.device)
        ws = _Workspace(min(step, sequences), length, heads, inner, flat, acc_dtype=acc_dtype)
        for start in range(0, sequences, step):
            stop = min(sequences, start + step)
            chunk_rows = rows[start * length : stop * length]
            q, k, v = ws.heads_of(qkv, chunk_rows, stop - start)
            p = probs[start:stop].view(-1, length, length)
            if half:
                p.copy_(torch.bmm(q, k.transpose(1, 2), out=ws.scores[: p.shape[0]]))
            else:
                torch.bmm(q, k.transpose(1, 2), out=p)
            p.mul_(scale)
            if mask is not None:
                p.view(stop - start, heads, length, length).masked_fill_(
                    ~mask[start:stop, None, None, :], float("-inf")
                )
            _softmax_(p)
            p_in = ws.scores[: p.shape[0]].copy_(p) if half else p
            out = torch.bmm(p_in, v, out=ws.out[: p.shape[0]])
            acc.index_add_(0, chunk_rows, ws.tokens_of(out, stop - start, ws.token_out))
        cells = denom.shape[0]
        mean = acc[:-1].view(-1, cells, inner).div_(denom[:, None])
        ctx.save_for_backward(hidden, weight, rows, denom, qkv, probs)
        ctx.shape = (heads, scale, length, step)
        ctx.mark_non_differentiable(probs)
        return mean.view(-1, frames, inner).to(flat.dtype), probs

    @staticmethod
    def backward(ctx, grad, _):
        hidden, weight, rows, denom, qkv, probs = ctx.saved_tensors
        heads, scale, length, step = ctx.shape
        inner = weight.shape[0] // 3
        cells = denom.shape[0]
        acc_dtype = probs.dtype
        half = acc_dtype != qkv.dtype
        # + the zero row invalid points read
        grad_mean = qkv.new_empty(qkv.shape[0], inner)
        into = grad_mean[:-1].view(-1, cells, inner)
        if half:  # the division in float32, the gathered gradient in the tokens' precision
            into.copy_(grad.reshape(-1, cells, inner).to(acc_dtype).div_(denom[:, None]))
        else:
            torch.div(grad.reshape(-1, cells, inner), denom[:, None], out=into)
        grad_mean[-1].zero_()
        onto = torch.zeros(qkv.shape, dtype=acc_dtype, device=qkv.device)  # q/k/v grads, grid
        sequences = probs.shape[0]
        ws = _Workspace(min(step, sequences), length, heads, inner, qkv, backward=True,
                        acc_dtype=acc_dtype)
        for start in range(0, sequences, step):
            stop = min(sequences, start + step)
            n = stop - start
            chunk_rows = rows[start * length : stop * length]
            q, k, v = ws.heads_of(qkv, chunk_rows, n)
            (d_out,) = ws.heads_of(grad_mean, chunk_rows, n, into=ws.d_out)
            p = probs[start:stop].view(-1, length, length)
            p_in = ws.scores[: p.shape[0]].copy_(p) if half else p
            d_v = torch.bmm(p_in.transpose(1, 2), d_out, out=ws.d_v[: p.shape[0]])
            d_s = torch.bmm(d_out, v.transpose(1, 2), out=ws.d_s[: p.shape[0]])
            d_s_acc = ws.d_s_acc[: p.shape[0]].copy_(d_s) if half else d_s
            row_dot = torch.mul(d_s_acc, p, out=ws.product[: p.shape[0]]).sum(-1, keepdim=True)
            d_s_acc.sub_(row_dot).mul_(p).mul_(scale)  # softmax's and the scale's backward
            if half:
                d_s.copy_(d_s_acc)
            d_q = torch.bmm(d_s, k, out=ws.d_q[: p.shape[0]])
            d_k = torch.bmm(d_s.transpose(1, 2), q, out=ws.d_k[: p.shape[0]])
            onto.index_add_(0, chunk_rows, ws.tokens_of((d_q, d_k, d_v), n, ws.token_grad))
        onto = onto[:-1].to(qkv.dtype) if half else onto[:-1]
        flat = hidden.reshape(-1, hidden.shape[-1])
        grad_hidden = (onto @ weight).view_as(hidden) if ctx.needs_input_grad[0] else None
        grad_weight = onto.t() @ flat if ctx.needs_input_grad[1] else None
        return grad_hidden, grad_weight, None, None, None, None, None, None


def _softmax_(scores: torch.Tensor) -> None:
    """Softmax over the last axis, in place (``torch.softmax`` has no ``out=``); ``-inf`` entries
    get 0 (a row always keeps a finite entry, see :func:`attend_grid_chunked`)."""
    scores.sub_(scores.amax(-1, keepdim=True)).exp_()
    scores.div_(scores.sum(-1, keepdim=True))


class _Workspace:
    """Chunk buffers: gathered rows, head-major q/k/v (``(sequences * heads, length, D /
    heads)``, what ``bmm`` takes) and the chunk's outputs and gradients in token layout."""

    def __init__(self, sequences, length, heads, inner, like, backward=False, acc_dtype=None):
        self.length, self.heads, self.per_head = length, heads, inner // heads
        tokens, batches = sequences * length, sequences * heads
        acc_dtype = acc_dtype or like.dtype  # softmax and sums (float32 for half precision)
        self.gathered = like.new_empty(tokens, 3 * inner)
        self.split = like.new_empty(3, batches, length, self.per_head)
        self.out = like.new_empty(batches, length, self.per_head)
        self.token_out = like.new_empty(tokens, inner, dtype=acc_dtype)
        # half precision: scores and probabilities in the tokens' precision for bmm
        self.scores = (like.new_empty(batches, length, length) if acc_dtype != like.dtype
                       else None)
        if backward:
            self.d_q, self.d_k, self.d_v = like.new_empty(3, batches, length, self.per_head)
            self.d_out = like.new_empty(1, batches, length, self.per_head)
            self.d_s = like.new_empty(batches, length, length)
            self.d_s_acc = (like.new_empty(batches, length, length, dtype=acc_dtype)
                            if acc_dtype != like.dtype else None)
            self.product = like.new_empty(batches, length, length, dtype=acc_dtype)
            self.token_grad = like.new_empty(tokens, 3 * inner, dtype=acc_dtype)

    def heads_of(self, source, rows, sequences, into=None):
        """Rows of ``source`` (blocks of ``heads`` heads each: q/k/v, or one gradient) gathered
        and copied head-major into ``into`` (default: the q/k/v buffer), one ``(sequences *
        heads, length, D / heads)`` tensor per block."""
        into = self.split if into is None else into
        parts = into.shape[0]
        count = rows.numel()
        buffer = self.gathered.view(-1)[: count * source.shape[1]].view(count, -1)
        gathered = torch.index_select(source, 0, rows, out=buffer)
        by_token = gathered.view(sequences, self.length, parts, self.heads, self.per_head)
        split = into[:, : sequences * self.heads]
        split.view(parts, sequences, self.heads, self.length, self.per_head).copy_(
            by_token.permute(2, 0, 3, 1, 4)
        )
        return tuple(split)

    def tokens_of(self, blocks, sequences, into):
        """Head-major ``(sequences * heads, length, D / heads)`` block(s) back in token layout
        ``(sequences * length, len(blocks) * D)``, written into ``into``."""
        blocks = blocks if isinstance(blocks, tuple) else (blocks,)
        count = sequences * self.length
        tokens = into[:count, : len(blocks) * self.heads * self.per_head]
        by_token = tokens.view(sequences, self.length, len(blocks), self.heads, self.per_head)
        for i, block in enumerate(blocks):
            by_token[:, :, i].copy_(
                block.view(sequences, self.heads, self.length, self.per_head).transpose(1, 2)
            )
        return tokens
