r"""Trajectory-based sampling and back projection (paper Alg. 1 and Alg. 2), vectorised.

Layout: hidden states use the layout of a diffusers ``TemporalBasicTransformerBlock`` at its
``norm1`` output, ``(B * h * w, F, C)``, where row ``b * h * w + y * w + x`` is latent cell
(row ``y``, column ``x``) of batch item ``b`` (row-major, as ``TransformerSpatioTemporalModel``
flattens space). Sampled tokens are ``(B * N, F, C)``, row ``b * N + n`` being trajectory ``n``
of batch item ``b``; every batch item (e.g. both CFG halves) uses the same trajectories.

Trajectories follow :mod:`trajattn.trajectories`: ``tracks (F, L, 2)`` pixel xy in an image of
size ``(H, W)`` with pixel centres at ``+0.5``, and ``visible (F, L)`` bool.

- ``"nearest"`` (the official code): latent coordinate ``floor(x * w / W)``, clamped to
  ``[0, w - 1]`` (and likewise for y), i.e. the latent cell containing the point.
- ``"bilinear"``: latent cell centres sit at ``i + 0.5`` in latent units; the four surrounding
  cells (clamped to the border) are read with bilinear weights, and back projection splats with
  the same weights and normalises by the summed weights.

Invalid points (``visible`` false) give zero tokens and contribute neither features nor counts
to the back projection. (The paper's Alg. 2 line 3 adds every token but counts only valid
ones; adding the attention output of a zero token at a clamped location would bias that
location, so its contribution is masked too.) Positions no valid point reaches get 0 and are
reported as uncovered.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MODES = ("nearest", "bilinear")


@dataclass(frozen=True)
class TrajectoryIndex:
    r"""Where each trajectory point reads from and writes to on the latent grid.

    Attributes:
        index: (K, N, F) long, flat cell ``y * w + x`` per corner (K = 1 nearest, 4 bilinear).
        weight: (K, N, F) float corner weights, already multiplied by validity.
        valid: (N, F) bool validity of the chosen trajectories.
        selected: (N,) long indices of the chosen trajectories among the L supplied.
        latent_size: (h, w).
    """

    index: torch.Tensor
    weight: torch.Tensor
    valid: torch.Tensor
    selected: torch.Tensor
    latent_size: tuple[int, int]

    @property
    def num_trajectories(self) -> int:
        return int(self.valid.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.valid.shape[1])

    def key_mask(self, batch_size: int) -> torch.Tensor:
        """(B * N, F) bool: True where a token is a valid key (for masked attention)."""
        return self.valid.repeat(batch_size, 1)

    def to(self, device: torch.device | str) -> TrajectoryIndex:
        """The same index on another device."""
        return TrajectoryIndex(
            self.index.to(device),
            self.weight.to(device),
            self.valid.to(device),
            self.selected.to(device),
            self.latent_size,
        )


def build_trajectory_index(
    tracks: torch.Tensor,
    visible: torch.Tensor,
    image_size: tuple[int, int],
    latent_size: tuple[int, int],
    mode: str = "nearest",
    num_trajectories: int | None = None,
    generator: torch.Generator | None = None,
) -> TrajectoryIndex:
    r"""Map pixel trajectories to latent cells (and draw a random subset of them).

    Args:
        tracks: (F, L, 2) pixel xy in an image of size ``image_size``.
        visible: (F, L) bool.
        image_size: (H, W) of the image the tracks live in.
        latent_size: (h, w) of the latent grid to sample.
        mode: ``"nearest"`` or ``"bilinear"``.
        num_trajectories: draw this many trajectories at random without replacement (all of
            them, in the given order, when None or at least L).
        generator: CPU generator for the subset draw.

    Returns:
        A :class:`TrajectoryIndex` on the device of ``tracks``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if tracks.ndim != 3 or tracks.shape[-1] != 2:
        raise ValueError(f"tracks must have shape (F, L, 2), got {tuple(tracks.shape)}")
    if visible.shape != tracks.shape[:2]:
        raise ValueError(
            f"visible must have shape {tuple(tracks.shape[:2])}, got {tuple(visible.shape)}"
        )
    device = tracks.device
    num_total = tracks.shape[1]
    if num_trajectories is None or num_trajectories >= num_total:
        selected = torch.arange(num_total, device=device)
    else:
        selected = torch.randperm(num_total, generator=generator)[:num_trajectories].to(device)
    tr = tracks[:, selected].to(torch.float32).transpose(0, 1)  # (N, F, 2)
    valid = visible[:, selected].to(torch.bool).transpose(0, 1)  # (N, F)
    h, w = latent_size
    height, width = image_size
    x = tr[..., 0] * (w / width)
    y = tr[..., 1] * (h / height)
    if mode == "nearest":
        xi = torch.floor(x).long().clamp(0, w - 1)
        yi = torch.floor(y).long().clamp(0, h - 1)
        index = (yi * w + xi)[None]
        weight = valid.to(tr.dtype)[None]
    else:
        u, v = x - 0.5, y - 0.5
        x0, y0 = torch.floor(u), torch.floor(v)
        fx, fy = u - x0, v - y0
        x0, y0 = x0.long(), y0.long()
        xs = torch.stack([x0, x0 + 1, x0, x0 + 1]).clamp(0, w - 1)
        ys = torch.stack([y0, y0, y0 + 1, y0 + 1]).clamp(0, h - 1)
        wx = torch.stack([1 - fx, fx, 1 - fx, fx])
        wy = torch.stack([1 - fy, 1 - fy, fy, fy])
        index = ys * w + xs
        weight = wx * wy * valid.to(tr.dtype)[None]
    return TrajectoryIndex(index, weight, valid, selected, (int(h), int(w)))


def _flat_rows(index: TrajectoryIndex, batch_size: int) -> torch.Tensor:
    """(B, K, N, F) flat row into a (B * h * w * F) view of the hidden states."""
    h, w = index.latent_size
    num_frames = index.num_frames
    batch = torch.arange(batch_size, device=index.index.device).view(-1, 1, 1, 1)
    frame = torch.arange(num_frames, device=index.index.device).view(1, 1, 1, -1)
    return ((batch * (h * w) + index.index[None]) * num_frames) + frame


def accumulator_dtype(dtype: torch.dtype) -> torch.dtype:
    """Half precision accumulates in float32 (sums of many tokens, counts above 2048)."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def gather_tokens(hidden: torch.Tensor, index: TrajectoryIndex) -> torch.Tensor:
    r"""Alg. 1: sample hidden states ``(B * h * w, F, C)`` along trajectories -> ``(B * N, F, C)``.

    Invalid points give zero tokens. Nearest mode copies each token once (``index_select``
    writes the output rows in order) and zeroes the invalid rows in place; bilinear mode adds
    the four weighted corners into the first one in place.
    """
    h, w = index.latent_size
    rows, num_frames, channels = hidden.shape
    if rows % (h * w) or num_frames != index.num_frames:
        raise ValueError(
            f"hidden {tuple(hidden.shape)} does not fit latent {h}x{w} "
            f"with {index.num_frames} frames"
        )
    batch_size = rows // (h * w)
    flat = _flat_rows(index, batch_size)  # (B, K, N, F)
    source = hidden.reshape(-1, channels)
    shape = (batch_size * index.num_trajectories, num_frames, channels)
    if flat.shape[1] == 1:
        tokens = source.index_select(0, flat[:, 0].reshape(-1))
        invalid = (~index.valid).reshape(-1).nonzero().squeeze(1)  # (n, f) positions
        if invalid.numel():
            offsets = torch.arange(batch_size, device=invalid.device) * index.valid.numel()
            tokens = tokens.index_fill_(0, (offsets[:, None] + invalid[None]).reshape(-1), 0)
        return tokens.reshape(shape)
    weight = index.weight.to(hidden.dtype)  # (K, N, F), zero at invalid points
    tokens = None
    for corner in range(flat.shape[1]):
        values = source.index_select(0, flat[:, corner].reshape(-1)).reshape(
            batch_size, -1, num_frames, channels
        )
        term = values.mul_(weight[corner, ..., None])
        tokens = term if tokens is None else tokens.add_(term)
    return tokens.reshape(shape)


def scatter_back(tokens: torch.Tensor, index: TrajectoryIndex) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Alg. 2: back-project tokens ``(B * N, F, C)`` onto the latent grid.

    Every token row is added (``index_add_``) straight into one preallocated accumulator laid
    out like the output, ``(B * h * w * F + 1, C)``; invalid points go to the extra last row,
    which is dropped, so nearest mode makes no weighted or masked copy of the tokens. The sums
    are then divided in place by the counts. Half-precision tokens accumulate in float32.

    Returns:
        ``(out, covered)``: ``out (B * h * w, F, C)`` is the (weighted) mean of the valid
        tokens landing on each cell and 0 where none lands; ``covered (h * w, F)`` bool marks
        cells with a positive count (the same for every batch item).
    """
    h, w = index.latent_size
    rows, num_frames, channels = tokens.shape
    if rows % index.num_trajectories or num_frames != index.num_frames:
        raise ValueError(
            f"tokens {tuple(tokens.shape)} do not fit {index.num_trajectories} trajectories "
            f"with {index.num_frames} frames"
        )
    batch_size = rows // index.num_trajectories
    cells = h * w * num_frames
    acc = accumulator_dtype(tokens.dtype)
    trash = batch_size * cells
    flat = target_rows(index, batch_size)  # (B, K, N, F)
    weight = index.weight.to(acc)  # (K, N, F)
    out = torch.zeros(trash + 1, channels, dtype=acc, device=tokens.device)
    source = tokens.reshape(batch_size, -1, channels)  # (B, N * F, C)
    if flat.shape[1] == 1 and acc == tokens.dtype:  # nearest: one call, no copy
        out.index_add_(0, flat.reshape(-1), source.reshape(-1, channels))
    else:  # one batch item at a time bounds the float32 / weighted copies to one item
        for b in range(batch_size):
            part = source[b].to(acc)
            for corner in range(flat.shape[1]):
                contrib = part if flat.shape[1] == 1 else part * weight[corner].reshape(-1, 1)
                out.index_add_(0, flat[b, corner].reshape(-1), contrib)
    covered, denom = cell_counts(index, flat[0], acc)
    out = out[:-1].view(batch_size, cells, channels).div_(denom[:, None]).to(tokens.dtype)
    return out.view(batch_size * h * w, num_frames, channels), covered.reshape(h * w, num_frames)


def target_rows(index: TrajectoryIndex, batch_size: int) -> torch.Tensor:
    """(B, K, N, F) row of each token's corner in a ``(B * h * w * F + 1, C)`` layout of the
    grid, row ``(b * h * w + cell) * F + f``; points of zero weight (invalid) go to the
    extra last row, a trash row for scatters and a zero row for gathers."""
    h, w = index.latent_size
    flat = _flat_rows(index, batch_size)
    return torch.where(index.weight[None] > 0, flat, batch_size * h * w * index.num_frames)


def cell_counts(
    index: TrajectoryIndex, first: torch.Tensor, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per cell and frame (``h * w * F``, flat): covered (summed weight > 0) and the divisor
    of the mean (the summed weight, 1 where uncovered). ``first``: batch item 0's
    :func:`target_rows` ``(K, N, F)``."""
    h, w = index.latent_size
    cells = h * w * index.num_frames
    count = torch.zeros(cells + 1, dtype=dtype, device=first.device)
    first = torch.where(first >= cells, cells, first)  # batch item 0's own trash row
    count.index_add_(0, first.reshape(-1), index.weight.to(dtype).reshape(-1))
    count = count[:-1]
    covered = count > 0
    return covered, torch.where(covered, count, torch.ones_like(count))


def sample_along_trajectories(
    hidden: torch.Tensor,
    tracks: torch.Tensor,
    visible: torch.Tensor,
    image_size: tuple[int, int],
    latent_size: tuple[int, int],
    mode: str = "nearest",
    num_trajectories: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, TrajectoryIndex]:
    r"""Alg. 1 in one call: build the index, then gather.

    Args:
        hidden: (B * h * w, F, C), see the module docstring.
        tracks, visible, image_size, latent_size, mode, num_trajectories, generator: as in
            :func:`build_trajectory_index`.

    Returns:
        ``(tokens (B * N, F, C), index)``; pass ``index`` to :func:`scatter_back` and use
        ``index.key_mask(B)`` for masked attention instead of zero tokens.
    """
    index = build_trajectory_index(
        tracks.to(hidden.device),
        visible.to(hidden.device),
        image_size,
        latent_size,
        mode,
        num_trajectories,
        generator,
    )
    return gather_tokens(hidden, index), index
