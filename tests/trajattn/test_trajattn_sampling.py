"""Alg. 1 / Alg. 2 (trajattn.sampling) against a literal loop of the paper's pseudo-code."""

from __future__ import annotations

import math

import pytest
import torch

from trajattn.sampling import (
    build_trajectory_index,
    gather_tokens,
    sample_along_trajectories,
    scatter_back,
)

B, F, H_LAT, W_LAT, C = 2, 5, 4, 6, 3
IMAGE = (32, 48)


def to_grid(hidden: torch.Tensor, batch: int, h: int, w: int) -> torch.Tensor:
    """(B*h*w, F, C) -> (B, F, h, w, C)."""
    return hidden.reshape(batch, h, w, hidden.shape[1], hidden.shape[2]).permute(0, 3, 1, 2, 4)


def literal_coords(x: float, y: float, h: int, w: int) -> tuple[int, int]:
    col = min(max(int(math.floor(x * w / IMAGE[1])), 0), w - 1)
    row = min(max(int(math.floor(y * h / IMAGE[0])), 0), h - 1)
    return row, col


def literal_alg1(z, tracks, visible, h, w):
    """Paper Alg. 1 for each batch item: z (B, F, h, w, C) -> Z_t (B, F, L, C)."""
    batch, frames, _, _, channels = z.shape
    num = tracks.shape[1]
    out = torch.zeros(batch, frames, num, channels, dtype=z.dtype)
    for b in range(batch):
        for i in range(num):  # foreach trajectory
            for f in range(frames):
                row, col = literal_coords(float(tracks[f, i, 0]), float(tracks[f, i, 1]), h, w)
                out[b, f, i] = z[b, f, row, col] * float(visible[f, i])  # Z_s * M
    return out


def literal_alg2(zt, tracks, visible, h, w):
    """Paper Alg. 2 (features of invalid points masked too): Z_t (B, F, L, C) -> (B, F, h, w, C)."""
    batch, frames, num, channels = zt.shape
    zp = torch.zeros(batch, frames, h, w, channels, dtype=zt.dtype)
    count = torch.zeros(frames, h, w, dtype=zt.dtype)
    for i in range(num):
        for f in range(frames):
            row, col = literal_coords(float(tracks[f, i, 0]), float(tracks[f, i, 1]), h, w)
            m = float(visible[f, i])
            zp[:, f, row, col] += zt[:, f, i] * m
            count[f, row, col] += m
    for f in range(frames):
        for row in range(h):
            for col in range(w):
                if count[f, row, col] > 0:
                    zp[:, f, row, col] /= count[f, row, col]
    return zp


def random_tracks(num: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(F, num, 2, generator=g, dtype=torch.float64)
    tracks = torch.stack([xy[..., 0] * 56 - 4, xy[..., 1] * 40 - 4], -1)  # some outside
    visible = torch.rand(F, num, generator=g) < 0.7
    return tracks, visible


def test_alg1_alg2_match_literal_loop():
    tracks, visible = random_tracks(30)
    hidden = torch.randn(B * H_LAT * W_LAT, F, C, dtype=torch.float64)
    tokens, index = sample_along_trajectories(hidden, tracks, visible, IMAGE, (H_LAT, W_LAT))
    ref = literal_alg1(to_grid(hidden, B, H_LAT, W_LAT), tracks, visible, H_LAT, W_LAT)
    got = tokens.reshape(B, 30, F, C).permute(0, 2, 1, 3)
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=0)

    attended = torch.randn_like(tokens)  # stands in for the attention output
    back, covered = scatter_back(attended, index)
    zt = attended.reshape(B, 30, F, C).permute(0, 2, 1, 3)
    ref_back = literal_alg2(zt, tracks, visible, H_LAT, W_LAT)
    torch.testing.assert_close(to_grid(back, B, H_LAT, W_LAT), ref_back, atol=1e-6, rtol=0)
    assert covered.shape == (H_LAT * W_LAT, F)
    assert not back.reshape(B, H_LAT * W_LAT, F, C)[:, ~covered].any()


def test_subset_uses_selected_trajectories():
    tracks, visible = random_tracks(40, seed=1)
    hidden = torch.randn(B * H_LAT * W_LAT, F, C, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    tokens, index = sample_along_trajectories(
        hidden, tracks, visible, IMAGE, (H_LAT, W_LAT), num_trajectories=12, generator=g
    )
    assert tokens.shape == (B * 12, F, C) and len(set(index.selected.tolist())) == 12
    sel = index.selected
    ref = literal_alg1(
        to_grid(hidden, B, H_LAT, W_LAT), tracks[:, sel], visible[:, sel], H_LAT, W_LAT
    )
    torch.testing.assert_close(
        tokens.reshape(B, 12, F, C).permute(0, 2, 1, 3), ref, atol=1e-6, rtol=0
    )
    assert index.key_mask(B).shape == (B * 12, F)


def identity_tracks(height: int, width: int, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    ys, xs = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    tracks = torch.stack([xs, ys], -1).reshape(1, -1, 2).repeat(frames, 1, 1)
    return tracks, torch.ones(frames, height * width, dtype=torch.bool)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_identity_scatter_back_returns_hidden(mode):
    tracks, visible = identity_tracks(*IMAGE, F)
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(B * H_LAT * W_LAT, F, C, dtype=torch.float64)
    # a subset leaves some cells uncovered (nearest): those must be 0, the rest exact
    tokens, index = sample_along_trajectories(
        hidden, tracks, visible, IMAGE, (H_LAT, W_LAT), mode, num_trajectories=20, generator=g
    )
    back, covered = scatter_back(tokens, index)
    cov = covered.repeat(B, 1)
    if mode == "nearest":
        assert 0 < cov.sum() < cov.numel()
        torch.testing.assert_close(back[cov], hidden[cov], atol=1e-6, rtol=0)
        assert not back[~cov].any()
    # every trajectory: all cells covered, identity holds everywhere (interior for bilinear)
    tokens, index = sample_along_trajectories(hidden, tracks, visible, IMAGE, (H_LAT, W_LAT), mode)
    back, covered = scatter_back(tokens, index)
    assert covered.all()
    if mode == "nearest":
        torch.testing.assert_close(back, hidden, atol=1e-6, rtol=0)
    else:  # bilinear at latent cell centres (pixel (i + 0.5) * ratio) reads cells exactly
        ratio = IMAGE[0] // H_LAT
        ys, xs = torch.meshgrid(
            (torch.arange(H_LAT) + 0.5) * ratio, (torch.arange(W_LAT) + 0.5) * ratio, indexing="ij"
        )
        centres = torch.stack([xs, ys], -1).reshape(1, -1, 2).repeat(F, 1, 1)
        tokens, index = sample_along_trajectories(
            hidden, centres, visible[:, : H_LAT * W_LAT], IMAGE, (H_LAT, W_LAT), mode
        )
        torch.testing.assert_close(tokens, hidden, atol=1e-6, rtol=0)
        back, covered = scatter_back(tokens, index)
        assert covered.all()
        torch.testing.assert_close(back, hidden, atol=1e-6, rtol=0)


def test_bilinear_splat_weights_normalise():
    tracks, visible = random_tracks(25, seed=2)
    index = build_trajectory_index(tracks, visible, IMAGE, (H_LAT, W_LAT), "bilinear")
    assert index.index.shape == (4, 25, F)
    sums = index.weight.sum(0)
    torch.testing.assert_close(sums, visible.T.to(sums.dtype), atol=1e-6, rtol=0)
    const = torch.ones(B * 25, F, C, dtype=torch.float64)
    back, covered = scatter_back(const, index)
    cov = covered.repeat(B, 1)
    torch.testing.assert_close(back[cov], torch.ones_like(back[cov]))
    hidden = torch.randn(B * H_LAT * W_LAT, F, C, dtype=torch.float64)
    tokens = gather_tokens(hidden, index)
    assert not tokens.reshape(B, 25, F, C)[:, ~visible.T].any()


def test_bad_inputs():
    tracks, visible = random_tracks(5)
    with pytest.raises(ValueError, match="mode"):
        build_trajectory_index(tracks, visible, IMAGE, (H_LAT, W_LAT), "cubic")
    with pytest.raises(ValueError, match="visible"):
        build_trajectory_index(tracks, visible[:, :3], IMAGE, (H_LAT, W_LAT))
    index = build_trajectory_index(tracks, visible, IMAGE, (H_LAT, W_LAT))
    with pytest.raises(ValueError, match="latent"):
        gather_tokens(torch.zeros(7, F, C), index)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_gradients_match_finite_differences(mode):
    # the in-place index_fill_ / index_add_ / div_ steps must keep autograd exact
    tracks, visible = random_tracks(8, seed=4)
    index = build_trajectory_index(tracks, visible, IMAGE, (H_LAT, W_LAT), mode)
    g = torch.Generator().manual_seed(5)
    hidden = torch.randn(B * H_LAT * W_LAT, F, 2, dtype=torch.float64, generator=g)
    tokens = torch.randn(B * 8, F, 2, dtype=torch.float64, generator=g)
    assert torch.autograd.gradcheck(lambda x: gather_tokens(x, index), hidden.requires_grad_())
    assert torch.autograd.gradcheck(lambda t: scatter_back(t, index)[0], tokens.requires_grad_())


def test_half_precision_accumulates_in_float32():
    # 3000 equal tokens on one cell: a float16 running sum would stall at 2048
    num = 3000
    tracks = torch.full((F, num, 2), 1.0, dtype=torch.float64)
    index = build_trajectory_index(tracks, torch.ones(F, num, dtype=torch.bool), IMAGE, (2, 2))
    tokens = torch.full((num, F, 1), 1.5, dtype=torch.float16)
    back, covered = scatter_back(tokens, index)
    assert back.dtype == torch.float16 and covered[0].all() and not covered[1:].any()
    assert torch.equal(back[0], torch.full((F, 1), 1.5, dtype=torch.float16))
