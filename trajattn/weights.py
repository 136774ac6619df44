r"""Save and load trajectory-attention branch weights.

Our format is a safetensors file whose keys are module paths, e.g.
``down_blocks.0.attentions.0.temporal_transformer_blocks.0.traj_attn.to_q.weight``.

The released official checkpoint ``trajattn_temp.pth`` is a positional list of tensors, 5 per
temporal block (:data:`PROJECTIONS`), blocks in :func:`official_block_order`: the
``down_blocks`` with attentions (SVD: 0-2, attentions 0, 1), then the ``up_blocks`` with
attentions (SVD: 1-3, attentions 0, 1, 2), then ``mid_block.attentions.0``; 16 blocks and 80
tensors for SVD.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from trajattn.attention import BRANCH_NAME

PROJECTIONS = ("to_q.weight", "to_k.weight", "to_v.weight", "to_out.0.weight", "to_out.0.bias")


def official_block_order(unet: torch.nn.Module) -> list[str]:
    """Module paths of the temporal blocks in the official checkpoint's order."""
    names: list[str] = []

    def add(prefix: str, block: torch.nn.Module) -> None:
        for j, attention in enumerate(getattr(block, "attentions", None) or []):
            for k in range(len(attention.temporal_transformer_blocks)):
                names.append(f"{prefix}.attentions.{j}.temporal_transformer_blocks.{k}")

    for i, block in enumerate(unet.down_blocks):
        add(f"down_blocks.{i}", block)
    for i, block in enumerate(unet.up_blocks):
        add(f"up_blocks.{i}", block)
    add("mid_block", unet.mid_block)
    return names


def _branch(unet: torch.nn.Module, block_name: str) -> torch.nn.Module:
    block = unet.get_submodule(block_name)
    branch = getattr(block, BRANCH_NAME, None)
    if branch is None:
        raise RuntimeError(
            f"{block_name} has no {BRANCH_NAME} branch: apply trajectory attention with the "
            "'addon' or 'inherit' variant first"
        )
    return branch


def branch_state_dict(unet: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Branch tensors of every temporal block, keyed by module path."""
    state: dict[str, torch.Tensor] = {}
    for name in official_block_order(unet):
        branch = _branch(unet, name)
        params = dict(branch.named_parameters())
        for proj in PROJECTIONS:
            state[f"{name}.{BRANCH_NAME}.{proj}"] = params[proj].detach()
    return state


def save_branch_weights(unet: torch.nn.Module, path: str | Path) -> None:
    """Write :func:`branch_state_dict` to a safetensors file."""
    state = {k: v.cpu().contiguous().clone() for k, v in branch_state_dict(unet).items()}
    save_file(state, str(path), metadata={"format": "trajattn-branch"})


def _copy_checked(target: torch.Tensor, value: torch.Tensor, what: str) -> None:
    if tuple(value.shape) != tuple(target.shape):
        raise ValueError(f"{what}: expected shape {tuple(target.shape)}, got {tuple(value.shape)}")
    with torch.no_grad():
        target.copy_(value.to(device=target.device, dtype=target.dtype))


def load_branch_weights(
    unet: torch.nn.Module, source: str | Path | dict[str, torch.Tensor], strict: bool = True
) -> list[str]:
    r"""Load branch weights saved by :func:`save_branch_weights`.

    Args:
        source: a safetensors path or a dict of tensors.
        strict: fail on missing or unexpected keys.

    Returns:
        The keys loaded.
    """
    state = load_file(str(source)) if isinstance(source, (str, Path)) else dict(source)
    expected = branch_state_dict(unet)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if strict and (missing or unexpected):
        raise KeyError(f"missing keys {missing[:5]}..., unexpected keys {unexpected[:5]}...")
    loaded = []
    for key, target in expected.items():
        if key in state:
            _copy_checked(target, state[key], key)
            loaded.append(key)
    return loaded


def load_official_weights(
    unet: torch.nn.Module,
    state: list[torch.Tensor] | str | Path,
    expected_blocks: int | None = None,
) -> list[str]:
    r"""Load the official positional checkpoint into the branches.

    Args:
        state: the list of tensors, or a path to ``trajattn_temp.pth``.
        expected_blocks: number of temporal blocks the list is for; defaults to the model's
            (16 for SVD). A mismatch with the model is an error.

    Returns:
        The module paths loaded, in list order.

    Raises:
        ValueError: wrong list length or a tensor whose shape does not fit, naming the block
            and projection.
    """
    if isinstance(state, (str, Path)):
        state = torch.load(str(state), map_location="cpu", weights_only=True)
    if isinstance(state, dict):
        raise ValueError("expected the official positional list; use load_branch_weights")
    state = list(state)
    blocks = official_block_order(unet)
    if expected_blocks is not None and expected_blocks != len(blocks):
        raise ValueError(f"the model has {len(blocks)} temporal blocks, expected {expected_blocks}")
    if len(state) != len(PROJECTIONS) * len(blocks):
        raise ValueError(
            f"official weights: expected {len(PROJECTIONS) * len(blocks)} tensors "
            f"({len(PROJECTIONS)} per block x {len(blocks)} blocks), got {len(state)}"
        )
    targets = []
    for name in blocks:
        params = dict(_branch(unet, name).named_parameters())
        for proj in PROJECTIONS:
            targets.append((f"{name}.{BRANCH_NAME}.{proj}", params[proj]))
    for (what, target), value in zip(targets, state, strict=True):  # check all before copying
        if tuple(value.shape) != tuple(target.shape):
            raise ValueError(
                f"official weights: {what}: expected shape {tuple(target.shape)}, "
                f"got {tuple(value.shape)}"
            )
    for (what, target), value in zip(targets, state, strict=True):
        _copy_checked(target, value, what)
    return [what for what, _ in targets]


def official_state_list(unet: torch.nn.Module) -> list[torch.Tensor]:
    """The branches as the official positional list (inverse of :func:`load_official_weights`)."""
    state = branch_state_dict(unet)
    return [
        state[f"{n}.{BRANCH_NAME}.{p}"] for n in official_block_order(unet) for p in PROJECTIONS
    ]
