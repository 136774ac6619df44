"""Trajectory attention on Wan's 3-D self-attention, on tiny random Wan components (CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers.models.transformers.transformer_wan import WanAttnProcessor

from trajattn.attention import TrajectoryAttentionConfig
from trajattn.sampling import build_trajectory_index
from trajattn.wan import tiny
from trajattn.wan.attention import (
    apply_trajectory_attention,
    named_trainable_parameters,
    remove_trajectory_attention,
    set_trajectories,
    temporal_rope,
    trajectories,
    trajectory_attention,
)
from trajattn.wan.frames import (
    latent_frame_tracks,
    num_latent_frames,
    pixel_to_latent_frame,
    representative_frames,
)
from trajattn.wan.weights import load_weights, save_weights

# latents (B, C, T, H, W): 3 latent frames (9 pixel frames) on a 4x4 patch grid (64x64 pixels)
T, GH, GW = 3, 4, 4
PIX = 64
PIXEL_FRAMES = 9


def _inputs(batch: int = 1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3 * tiny.Z_DIM, T, 2 * GH, 2 * GW, generator=g)
    text, _ = tiny.tiny_prompt_embeds(seed)
    image = torch.randn(batch, 17, tiny.IMAGE_DIM, generator=g)
    return x, torch.tensor([700.0] * batch), text.repeat(batch, 1, 1), image


def _forward(model, inputs):
    with torch.no_grad():
        return model(*inputs, return_dict=False)[0]


def _grid_tracks(frames: int = PIXEL_FRAMES) -> tuple[torch.Tensor, torch.Tensor]:
    """Identity trajectories: one per patch cell centre, still in every frame."""
    ys, xs = torch.meshgrid(torch.arange(GH), torch.arange(GW), indexing="ij")
    cell = PIX / GH
    points = torch.stack([(xs + 0.5) * cell, (ys + 0.5) * cell], -1).reshape(-1, 2)
    return points[None].repeat(frames, 1, 1), torch.ones(frames, GH * GW, dtype=torch.bool)


def _random_tracks(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    tracks = torch.rand(PIXEL_FRAMES, 40, 2, generator=g) * PIX
    visible = torch.rand(PIXEL_FRAMES, 40, generator=g) > 0.2
    return tracks, visible


# ------------------------------------------------------------------------ frame mapping


def test_pixel_to_latent_frame_rule():
    assert [pixel_to_latent_frame(f) for f in range(10)] == [0, 1, 1, 1, 1, 2, 2, 2, 2, 3]
    assert num_latent_frames(81) == 21 and num_latent_frames(1) == 1
    assert list(representative_frames(9)) == [0, 4, 8]
    # each representative lies in the latent frame it stands for
    assert all(pixel_to_latent_frame(f) == t for t, f in enumerate(representative_frames(81)))
    with pytest.raises(ValueError, match="4k \\+ 1"):
        num_latent_frames(6)


def test_pixel_frames_map_to_latent_frames_as_wans_vae_encodes_them():
    """Independent truth: Wan's causal VAE. Changing pixel frame f first changes the latent
    frame our rule assigns f to, and no earlier one."""
    vae = tiny.tiny_vae()
    g = torch.Generator().manual_seed(0)
    video = torch.rand(1, 3, PIXEL_FRAMES, 16, 16, generator=g) * 2 - 1
    with torch.no_grad():
        base = vae.encode(video).latent_dist.mode()
        assert base.shape[2] == num_latent_frames(PIXEL_FRAMES)
        for frame in (0, 1, 4, 5, 8):
            bumped = video.clone()
            bumped[:, :, frame] += 0.5
            changed = (vae.encode(bumped).latent_dist.mode() - base).abs().amax(dim=(0, 1, 3, 4))
            first = int(torch.nonzero(changed > 1e-6)[0])
            assert first == pixel_to_latent_frame(frame), frame


def test_hand_built_tracks_reach_the_latent_cells_of_their_representative_frames():
    """One trajectory at a different patch cell in every pixel frame: latent frame t reads the
    cell of pixel frame 4t (cells numbered y * 4 + x on the 4x4 grid of 16-px patches)."""
    cells = torch.arange(PIXEL_FRAMES) % (GH * GW)  # pixel frame f sits in cell f
    xy = torch.stack([(cells % GW) * 16 + 8.0, (cells // GW) * 16 + 8.0], -1)
    tracks, visible = xy[:, None], torch.ones(PIXEL_FRAMES, 1, dtype=torch.bool)
    visible[4, 0] = False  # latent frame 1 inherits pixel frame 4's visibility
    lt, lv = latent_frame_tracks(tracks, visible, ratio=4)
    index = build_trajectory_index(lt, lv, (PIX, PIX), (GH, GW))
    assert index.index[0, 0].tolist() == [0, 4, 8]
    assert index.valid[0].tolist() == [True, False, True]


# ------------------------------------------------------------------------------ variants


def test_fresh_inherit_branch_is_an_exact_no_op():
    inputs = _inputs(batch=2)
    model = tiny.tiny_transformer()
    reference = _forward(model, inputs)
    blocks = apply_trajectory_attention(model, TrajectoryAttentionConfig(variant="inherit"))
    assert blocks == ["blocks.0", "blocks.1"]
    for block in model.blocks:  # q/k/v and norms copied, output zero
        for name in ("to_q", "to_k", "to_v", "norm_q", "norm_k"):
            for key, value in getattr(block.traj_attn, name).state_dict().items():
                assert torch.equal(value, getattr(block.attn1, name).state_dict()[key])
        assert not block.traj_attn.to_out[0].weight.any()
    tracks, visible = _random_tracks()
    with trajectories(model, tracks, visible, (PIX, PIX)):
        assert torch.equal(_forward(model, inputs), reference)


def test_trajectories_change_the_output_once_the_branch_has_weights():
    inputs = _inputs()
    model = tiny.tiny_transformer()
    apply_trajectory_attention(model, TrajectoryAttentionConfig(variant="addon"))
    plain = _forward(model, inputs)  # no trajectories set: the branch is skipped
    remove_trajectory_attention(model)
    assert torch.equal(plain, _forward(tiny.tiny_transformer(), inputs))
    apply_trajectory_attention(model, TrajectoryAttentionConfig(variant="addon"))
    tracks, visible = _random_tracks()
    with trajectories(model, tracks, visible, (PIX, PIX)):
        assert (_forward(model, inputs) - plain).abs().max() > 1e-4
    assert torch.equal(_forward(model, inputs), plain)  # cleared after the context


def test_temporal_rope_keeps_the_frame_axis_only():
    model = tiny.tiny_transformer()
    latents = torch.zeros(1, 3 * tiny.Z_DIM, T, 2 * GH, 2 * GW)
    cos, sin = temporal_rope(model.rope(latents), (T, GH, GW))
    t_dim = model.rope.t_dim
    assert cos.shape == (1, T, 1, 8)
    assert torch.all(cos[..., t_dim:] == 1) and torch.all(sin[..., t_dim:] == 0)
    # the temporal channels are Wan's own rotation of frame t (angle t * base frequency)
    freqs = model.rope.freqs_cos.split([t_dim, model.rope.h_dim, model.rope.w_dim], dim=1)[0]
    assert torch.equal(cos[0, :, 0, :t_dim], freqs[:T])
    assert not torch.all(cos[0, 1:, 0, :t_dim] == 1)


def test_vanilla_on_identity_trajectories_is_self_attention_within_each_position():
    """Identity trajectories, all valid, all used: attn1 along trajectories equals diffusers'
    own Wan attention (full 3-D RoPE) masked to tokens of the same spatial position."""
    model = tiny.tiny_transformer()
    attn = model.blocks[0].attn1
    g = torch.Generator().manual_seed(3)
    hidden = torch.randn(2, T * GH * GW, 16, generator=g)
    latents = torch.zeros(1, 3 * tiny.Z_DIM, T, 2 * GH, 2 * GW)
    rotary = model.rope(latents)
    tracks, visible = latent_frame_tracks(*_grid_tracks(), ratio=4)
    index = build_trajectory_index(tracks, visible, (PIX, PIX), (GH, GW))
    ours, covered = trajectory_attention(attn, hidden, rotary, index, (T, GH, GW))
    assert covered.all()
    position = torch.arange(T * GH * GW) % (GH * GW)
    same_position = position[:, None] == position[None, :]
    with torch.no_grad():
        reference = WanAttnProcessor()(attn, hidden, None, same_position[None, None], rotary)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)
    # without the mask the 3-D attention is a different thing (the test can fail)
    with torch.no_grad():
        full = WanAttnProcessor()(attn, hidden, None, None, rotary)
    assert (full - ours).abs().max() > 1e-3


def test_vanilla_processor_adds_trajectory_attention_to_the_3d_output():
    model = tiny.tiny_transformer()
    attn = model.blocks[0].attn1
    apply_trajectory_attention(
        model, TrajectoryAttentionConfig(variant="vanilla", num_trajectories_factor=None)
    )
    assert named_trainable_parameters(model) == {}
    set_trajectories(model, *_grid_tracks(), (PIX, PIX))
    model._trajattn_wan_state.grid = (T, GH, GW)
    hidden = torch.randn(1, T * GH * GW, 16, generator=torch.Generator().manual_seed(4))
    rotary = model.rope(torch.zeros(1, 3 * tiny.Z_DIM, T, 2 * GH, 2 * GW))
    with torch.no_grad():
        out = attn(hidden, None, None, rotary)
        plain = WanAttnProcessor()(attn, hidden, None, None, rotary)
        tracks, visible = latent_frame_tracks(*_grid_tracks(), ratio=4)
        index = build_trajectory_index(tracks, visible, (PIX, PIX), (GH, GW))
        along, _ = trajectory_attention(attn, hidden, rotary, index, (T, GH, GW))
    torch.testing.assert_close(out, plain + along)


def test_wrong_frame_count_and_options_are_refused():
    model = tiny.tiny_transformer()
    with pytest.raises(ValueError, match="compat_mixed_pairs"):
        apply_trajectory_attention(model, TrajectoryAttentionConfig(compat_mixed_pairs=True))
    apply_trajectory_attention(model)
    with pytest.raises(ValueError, match="4k \\+ 1"):
        set_trajectories(model, *_grid_tracks(6), (PIX, PIX))
    set_trajectories(model, *_grid_tracks(5), (PIX, PIX))  # 2 latent frames, the input has 3
    with pytest.raises(ValueError, match="2 latent frames"):
        _forward(model, _inputs())


def test_trainable_parameters_per_variant():
    model = tiny.tiny_transformer()
    apply_trajectory_attention(model, TrajectoryAttentionConfig(variant="inherit"))
    names = set(named_trainable_parameters(model))
    assert names and all(".traj_attn." in n for n in names)
    assert {n for n in names if n.startswith("blocks.0.")} == {
        f"blocks.0.traj_attn.{k}" for k, _ in model.blocks[0].traj_attn.named_parameters()
    }
    tuning = set(named_trainable_parameters(model, "tuning"))
    assert tuning and all(".attn1." in n for n in tuning)


def test_branch_weights_round_trip(tmp_path):
    model = tiny.tiny_transformer()
    apply_trajectory_attention(model, TrajectoryAttentionConfig(variant="addon"))
    path = save_weights(model, tmp_path / "branch.safetensors")
    saved = {n: p.detach().clone() for n, p in named_trainable_parameters(model).items()}
    other = tiny.tiny_transformer(seed=5)
    apply_trajectory_attention(other, TrajectoryAttentionConfig(variant="inherit"))
    assert sorted(load_weights(other, path)) == sorted(saved)
    for name, value in named_trainable_parameters(other).items():
        assert torch.equal(value, saved[name])
    tuned = tiny.tiny_transformer()
    apply_trajectory_attention(tuned, TrajectoryAttentionConfig(variant="tuning"))
    with pytest.raises(ValueError, match="'addon' weights"):
        load_weights(tuned, path)
    small = tiny.tiny_transformer(num_layers=1)
    apply_trajectory_attention(small, TrajectoryAttentionConfig(variant="inherit"))
    with pytest.raises(ValueError, match="unexpected"):
        load_weights(small, path)


def test_random_subset_is_seeded():
    model = tiny.tiny_transformer()
    apply_trajectory_attention(
        model, TrajectoryAttentionConfig(variant="addon", num_trajectories_factor=0.5)
    )
    inputs = _inputs()
    tracks, visible = _random_tracks()
    outs = []
    for _ in range(2):
        with trajectories(model, tracks, visible, (PIX, PIX)):
            outs.append(_forward(model, inputs))
    assert torch.equal(outs[0], outs[1])
    assert np.isfinite(outs[0].numpy()).all()


def test_masked_invalid_keys_match_masked_3d_attention():
    """mask_invalid_keys on identity trajectories equals Wan's attention masked to the same
    position *and* valid keys; without the mask the invalid point's zero token is a key."""
    model = tiny.tiny_transformer()
    attn = model.blocks[0].attn1
    rotary = model.rope(torch.zeros(1, 3 * tiny.Z_DIM, T, 2 * GH, 2 * GW))
    tracks, visible = latent_frame_tracks(*_grid_tracks(), ratio=4)
    visible = visible.clone()
    visible[2, 5] = False  # cell 5 is invalid in latent frame 2
    index = build_trajectory_index(tracks, visible, (PIX, PIX), (GH, GW))
    hidden = torch.randn(1, T * GH * GW, 16, generator=torch.Generator().manual_seed(6))
    ours, covered = trajectory_attention(
        attn, hidden, rotary, index, (T, GH, GW), mask_invalid_keys=True
    )
    invalid_token = 2 * GH * GW + 5
    assert covered.sum() == T * GH * GW - 1 and not covered[invalid_token]
    assert not ours[0, invalid_token].any()
    position = torch.arange(T * GH * GW) % (GH * GW)
    key_valid = torch.ones(T * GH * GW, dtype=torch.bool)
    key_valid[invalid_token] = False
    mask = (position[:, None] == position[None, :]) & key_valid[None, :]
    with torch.no_grad():
        reference = WanAttnProcessor()(attn, hidden, None, mask[None, None], rotary)
    torch.testing.assert_close(ours[0, covered], reference[0, covered], atol=1e-5, rtol=1e-5)
    unmasked, _ = trajectory_attention(attn, hidden, rotary, index, (T, GH, GW))
    assert (unmasked[0, 5] - ours[0, 5]).abs().max() > 1e-4  # frame 0 of cell 5
