"""Trajectory attention on a tiny random SVD UNet (trajattn.attention)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.tiny_models import tiny_unet
from trajattn.attention import (
    BRANCH_NAME,
    TrajectoryAttentionConfig,
    apply_trajectory_attention,
    capture_attention_maps,
    freeze_except_trainable,
    remove_trajectory_attention,
    temporal_blocks,
    trainable_parameters,
    trajectories,
)
from trajattn.branch import attend

IMAGE = (32, 32)  # pixels; latent 8x8 (factor 4 here, 8 in SVD: only the ratio matters)


def inputs(batch: int = 1, frames: int = 4, size: int = 8, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    sample = torch.randn(batch, frames, 8, size, size, generator=g)
    enc = torch.randn(batch, 1, 32, generator=g)
    ids = torch.randn(batch, 3, generator=g)
    return sample, enc, ids


def run(unet, sample, enc, ids) -> torch.Tensor:
    return unet(sample, 10.0, enc, ids).sample


def identity_tracks(frames: int, size=IMAGE):
    ys, xs = torch.meshgrid(torch.arange(size[0]) + 0.5, torch.arange(size[1]) + 0.5, indexing="ij")
    tracks = torch.stack([xs, ys], -1).reshape(1, -1, 2).repeat(frames, 1, 1)
    return tracks, torch.ones(frames, size[0] * size[1], dtype=torch.bool)


def moving_tracks(frames: int, num: int = 200, size=IMAGE, seed: int = 2):
    """Random start points drifting right, some invalid."""
    g = torch.Generator().manual_seed(seed)
    start = torch.rand(num, 2, generator=g) * torch.tensor([size[1], size[0]])
    drift = torch.arange(frames, dtype=torch.float32)[:, None, None] * torch.tensor([1.5, 0.5])
    tracks = start[None] + drift
    visible = (tracks[..., 0] < size[1]) & (torch.rand(frames, num, generator=g) < 0.9)
    return tracks, visible


def randomise_branch_out(unet, seed: int = 5) -> None:
    """Give the zero-initialised ``to_out`` of inherit branches some weight."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for block in temporal_blocks(unet).values():
            out = getattr(block, BRANCH_NAME).to_out[0]
            out.weight.copy_(torch.randn(out.weight.shape, generator=g) * 0.1)
            out.bias.copy_(torch.randn(out.bias.shape, generator=g) * 0.1)


@torch.no_grad()
def test_inherit_fresh_is_exact_noop():
    unet = tiny_unet()
    sample, enc, ids = inputs(batch=2)
    ref = run(unet, sample, enc, ids)
    names = apply_trajectory_attention(unet, TrajectoryAttentionConfig("inherit"))
    assert len(names) == 4
    with trajectories(unet, *moving_tracks(4), IMAGE):
        out = run(unet, sample, enc, ids)
    assert torch.equal(out, ref)


@torch.no_grad()
@pytest.mark.parametrize("factor", [None, 2])
def test_vanilla_identity_tracks_reproduce_unet(factor):
    unet = tiny_unet()
    sample, enc, ids = inputs(batch=2)
    ref = run(unet, sample, enc, ids)
    apply_trajectory_attention(
        unet, TrajectoryAttentionConfig("vanilla", num_trajectories_factor=factor)
    )
    with trajectories(unet, *identity_tracks(4), IMAGE):
        out = run(unet, sample, enc, ids)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    with trajectories(unet, *moving_tracks(4), IMAGE):
        moved = run(unet, sample, enc, ids)
    assert (moved - ref).abs().max() > 1e-3


@torch.no_grad()
def test_remove_restores_model_and_cfg_halves_share_trajectories():
    unet = tiny_unet()
    sample, enc, ids = inputs(batch=1)
    ref = run(unet, sample, enc, ids)
    apply_trajectory_attention(unet, TrajectoryAttentionConfig("addon"))
    doubled = [torch.cat([t, t]) for t in (sample, enc, ids)]
    with trajectories(unet, *moving_tracks(4), IMAGE):
        out = run(unet, *doubled)
        again = run(unet, *doubled)  # new random subsets per call
    assert torch.equal(out[0], out[1])
    assert not torch.allclose(out[:1], ref, atol=1e-4)
    assert not torch.equal(out, again)
    with trajectories(unet, *moving_tracks(4), IMAGE):  # the seed restarts on every set
        assert torch.equal(run(unet, *doubled), out)
    remove_trajectory_attention(unet)
    assert not any(BRANCH_NAME in k for k in unet.state_dict())
    assert torch.equal(run(unet, sample, enc, ids), ref)


@pytest.mark.parametrize("variant", ["vanilla", "tuning", "addon", "inherit"])
def test_gradients_only_on_variant_parameters(variant):
    unet = tiny_unet()
    apply_trajectory_attention(unet, TrajectoryAttentionConfig(variant))
    if variant == "inherit":
        # a zero to_out passes no gradient to q/k/v, so give it weight before checking them
        randomise_branch_out(unet)
    params = freeze_except_trainable(unet)
    names = {n for n, p in unet.named_parameters() if any(p is q for q in params)}
    blocks = list(temporal_blocks(unet))
    if variant == "vanilla":
        assert names == set()
        return
    part = "attn1" if variant == "tuning" else BRANCH_NAME
    assert names == {
        f"{b}.{part}.{p}"
        for b in blocks
        for p in ("to_q.weight", "to_k.weight", "to_v.weight", "to_out.0.weight", "to_out.0.bias")
    }
    sample, enc, ids = inputs(batch=1)
    with trajectories(unet, *moving_tracks(4), IMAGE):
        run(unet, sample, enc, ids).square().mean().backward()
    for name, p in unet.named_parameters():
        if name in names:
            assert p.grad is not None and p.grad.abs().max() > 0, name
        else:
            assert p.grad is None or not p.grad.any(), name


@torch.no_grad()
def test_same_branch_weights_any_frame_count():
    unet = tiny_unet()
    apply_trajectory_attention(unet, TrajectoryAttentionConfig("inherit"))
    randomise_branch_out(unet)
    for frames in (12, 14, 25):
        sample, enc, ids = inputs(batch=1, frames=frames, size=4)
        plain = run(unet, sample, enc, ids)
        with trajectories(unet, *moving_tracks(frames, size=(16, 16)), (16, 16)):
            out = run(unet, sample, enc, ids)
        assert out.shape == (1, frames, 4, 4, 4) and torch.isfinite(out).all()
        assert (out - plain).abs().max() > 1e-5


@torch.no_grad()
def test_compat_mixed_pairs_differs_from_per_trajectory_attention():
    # The official processor views (S, F, C) tokens as (S/2, 2F, C): two trajectories share a
    # sequence, so one trajectory's output depends on its neighbour's features.
    torch.manual_seed(0)
    attn = tiny_unet().down_blocks[0].attentions[0].temporal_transformer_blocks[0].attn1
    tokens = torch.randn(6, 4, 32)
    other = tokens.clone()
    other[1] += 1.0  # change trajectory 1 only
    ok, _ = attend(attn, tokens)
    ok2, _ = attend(attn, other)
    torch.testing.assert_close(ok[0], ok2[0])  # correct: trajectories are independent
    mixed, _ = attend(attn, tokens, mixed_pairs=True)
    mixed2, _ = attend(attn, other, mixed_pairs=True)
    assert (mixed[0] - mixed2[0]).abs().max() > 1e-4
    assert (mixed - ok).abs().max() > 1e-4

    unet = tiny_unet()
    sample, enc, ids = inputs(batch=2)
    outs = []
    for compat in (False, True):
        if compat:
            remove_trajectory_attention(unet)
        apply_trajectory_attention(
            unet, TrajectoryAttentionConfig("inherit", compat_mixed_pairs=compat)
        )
        randomise_branch_out(unet)
        with trajectories(unet, *moving_tracks(4), IMAGE):
            outs.append(run(unet, sample, enc, ids))
    assert (outs[0] - outs[1]).abs().max() > 1e-5


@torch.no_grad()
def test_key_mask_and_bilinear_run():
    unet = tiny_unet()
    sample, enc, ids = inputs(batch=2)
    ref = run(unet, sample, enc, ids)
    config = TrajectoryAttentionConfig("vanilla", mode="bilinear", mask_invalid_keys=True)
    apply_trajectory_attention(unet, config)
    with trajectories(unet, *moving_tracks(4), IMAGE):
        out = run(unet, sample, enc, ids)
    assert torch.isfinite(out).all() and (out - ref).abs().max() > 1e-4


@torch.no_grad()
def test_capture_attention_maps():
    unet = tiny_unet()
    apply_trajectory_attention(unet, TrajectoryAttentionConfig("inherit"))
    sample, enc, ids = inputs(batch=2)
    with capture_attention_maps(unet) as maps:
        with trajectories(unet, *moving_tracks(4), IMAGE):
            run(unet, sample, enc, ids)
        run(unet, sample, enc, ids)  # no trajectories: temporal only
    assert set(maps) == set(temporal_blocks(unet))
    for entry in maps.values():
        assert set(entry) == {"temporal", "trajectory"}
        for probs in entry.values():
            assert isinstance(probs, np.ndarray) and probs.shape == (4, 4)
            np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)


def test_errors():
    unet = tiny_unet()
    with pytest.raises(ValueError, match="variant"):
        TrajectoryAttentionConfig("sideways")
    apply_trajectory_attention(unet, TrajectoryAttentionConfig("vanilla"))
    with pytest.raises(RuntimeError, match="already"):
        apply_trajectory_attention(unet)
    with pytest.raises(RuntimeError, match="branch"):
        trainable_parameters(unet, "addon")
    sample, enc, ids = inputs(batch=1, frames=4)
    with torch.no_grad(), trajectories(unet, *moving_tracks(5), IMAGE):
        with pytest.raises(ValueError, match="frames"):
            run(unet, sample, enc, ids)


@torch.no_grad()
@pytest.mark.parametrize("num", [8, 12, 32])
def test_compat_mode_is_the_official_view_for_any_trajectory_count(num):
    """The official SDPA processor views the gathered (B N, F, C) tokens with the pre-gather
    batch B h w: query.view(B*h*w, -1, heads, head_dim), i.e. N F / (h w) consecutive tokens
    per sequence. Reference built by hand from that reshape (4x4 latent, F = 4, B = 2 CFG
    halves): N = 8 -> sequences of 2 tokens (half a trajectory), 12 -> 3, 32 = 2hw -> 8."""
    from trajattn.branch import attend_along_trajectories
    from trajattn.sampling import build_trajectory_index, gather_tokens, scatter_back

    torch.manual_seed(0)
    attn = tiny_unet().down_blocks[0].attentions[0].temporal_transformer_blocks[0].attn1
    with torch.no_grad():  # a bias on to_out, so the affine to_out path is exercised
        attn.to_out[0].bias.copy_(torch.randn(attn.to_out[0].bias.shape) * 0.1)
    frames, h, w, batch = 4, 4, 4, 2
    tracks, visible = moving_tracks(frames, num=40, size=(16, 16))
    index = build_trajectory_index(tracks, visible, (16, 16), (h, w), "nearest", num,
                                   torch.Generator().manual_seed(3))
    assert index.num_trajectories == num
    hidden = torch.randn(batch * h * w, frames, 32)
    # Hand-built reference of the official code path.
    tokens = gather_tokens(hidden, index)  # (B N, F, C), b-major then n then f
    heads, dim = attn.heads, 32 // attn.heads
    q, k, v = (proj(tokens).view(batch * h * w, -1, heads, dim).transpose(1, 2)
               for proj in (attn.to_q, attn.to_k, attn.to_v))
    assert q.shape[2] == num * frames // (h * w)
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    out = out.transpose(1, 2).reshape(batch * h * w, -1, heads * dim)
    out = attn.to_out[0](out).reshape(batch * num, frames, -1)
    expected, covered_ref = scatter_back(out, index)
    back, covered, _ = attend_along_trajectories(attn, hidden, index, None, mixed_pairs=True)
    torch.testing.assert_close(covered, covered_ref)
    cov = covered.repeat(batch, 1)
    torch.testing.assert_close(back[cov], expected[cov], rtol=1e-5, atol=1e-5)


def test_compat_mode_refuses_counts_the_official_view_cannot_split():
    from trajattn.branch import official_sequence_length

    assert official_sequence_length(2 * 32, 4, 2 * 16) == 8  # N = 2hw: 2F
    assert official_sequence_length(2 * 8, 4, 2 * 16) == 2
    with pytest.raises(ValueError, match="official view"):
        official_sequence_length(2 * 5, 4, 2 * 16)  # 5 x 4 tokens over 16 cells
