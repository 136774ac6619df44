"""Branch weights: safetensors round trip and the official positional list (trajattn.weights)."""

from __future__ import annotations

import time

import pytest
import torch
from diffusers import UNetSpatioTemporalConditionModel

from tests.tiny_models import tiny_unet as tiny_base_unet
from trajattn.attention import BRANCH_NAME, TrajectoryAttentionConfig, apply_trajectory_attention
from trajattn.weights import (
    PROJECTIONS,
    branch_state_dict,
    load_branch_weights,
    load_official_weights,
    official_block_order,
    official_state_list,
    save_branch_weights,
)


def tiny_unet(seed: int = 0, variant: str = "inherit") -> UNetSpatioTemporalConditionModel:
    unet = tiny_base_unet(seed)
    apply_trajectory_attention(unet, TrajectoryAttentionConfig(variant))
    return unet


def known_list(unet) -> list[torch.Tensor]:
    """Tensor k of the official list filled with the value k."""
    return [torch.full_like(t, float(k)) for k, t in enumerate(official_state_list(unet))]


def test_safetensors_round_trip(tmp_path):
    a, b = tiny_unet(0, "addon"), tiny_unet(1, "addon")
    path = tmp_path / "branch.safetensors"
    save_branch_weights(a, path)
    keys = load_branch_weights(b, path)
    assert len(keys) == 5 * len(official_block_order(a))
    assert all(f".{BRANCH_NAME}." in k for k in keys)
    for key, value in branch_state_dict(a).items():
        assert torch.equal(branch_state_dict(b)[key], value), key
    state = branch_state_dict(a)
    state.pop(keys[0])
    with pytest.raises(KeyError, match="missing"):
        load_branch_weights(b, state)


def test_official_list_loads_into_right_block_and_projection(tmp_path):
    unet = tiny_unet()
    blocks = official_block_order(unet)
    assert blocks == [
        "down_blocks.0.attentions.0.temporal_transformer_blocks.0",
        "up_blocks.1.attentions.0.temporal_transformer_blocks.0",
        "up_blocks.1.attentions.1.temporal_transformer_blocks.0",
        "mid_block.attentions.0.temporal_transformer_blocks.0",
    ]
    state = known_list(unet)
    loaded = load_official_weights(unet, state, expected_blocks=len(blocks))
    assert len(loaded) == 5 * len(blocks)
    for i, name in enumerate(blocks):
        params = dict(unet.get_submodule(f"{name}.{BRANCH_NAME}").named_parameters())
        for j, proj in enumerate(PROJECTIONS):
            assert torch.all(params[proj] == 5 * i + j), (name, proj)
    path = tmp_path / "trajattn_temp.pth"
    torch.save([t * 2 for t in state], path)
    load_official_weights(unet, path)
    assert torch.all(unet.get_submodule(f"{blocks[1]}.{BRANCH_NAME}").to_k.weight == 12)


def test_official_list_errors_name_the_misfit():
    unet = tiny_unet()
    blocks = official_block_order(unet)
    state = known_list(unet)
    with pytest.raises(ValueError, match="expected 20 tensors"):
        load_official_weights(unet, state[:-1])
    with pytest.raises(ValueError, match="expected 16"):
        load_official_weights(unet, state, expected_blocks=16)
    bad = list(state)
    bad[7] = torch.zeros(3, 3)  # block 1, to_v
    before = official_state_list(unet)[0].clone()
    with pytest.raises(ValueError, match=f"{blocks[1]}.{BRANCH_NAME}.to_v.weight"):
        load_official_weights(unet, bad)
    assert torch.equal(official_state_list(unet)[0], before)  # nothing loaded on failure
    with pytest.raises(RuntimeError, match="branch"):
        load_official_weights(tiny_unet(variant="vanilla"), state)


def test_real_svd_block_order_and_shapes():
    start = time.perf_counter()
    with torch.device("meta"):  # SVD's real structure without allocating its weights
        unet = UNetSpatioTemporalConditionModel()
        apply_trajectory_attention(unet, TrajectoryAttentionConfig("inherit"))
    if time.perf_counter() - start > 10:
        pytest.skip("building SVD's structure is slow here")
    expected = (
        [f"down_blocks.{i}.attentions.{j}" for i in range(3) for j in range(2)]
        + [f"up_blocks.{i}.attentions.{j}" for i in range(1, 4) for j in range(3)]
        + ["mid_block.attentions.0"]
    )
    assert official_block_order(unet) == [f"{e}.temporal_transformer_blocks.0" for e in expected]
    shapes = [tuple(t.shape) for t in official_state_list(unet)]
    assert len(shapes) == 80
    assert shapes[:5] == [(320, 320)] * 4 + [(320,)]
    assert shapes[-5:] == [(1280, 1280)] * 4 + [(1280,)]
    assert shapes[6 * 5] == (1280, 1280)  # up_blocks.1 runs at 1280 channels
