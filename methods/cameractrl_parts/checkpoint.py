"""CameraCtrl state dicts in the released checkpoints' layout: the processors' ``qkv_merge``
weights and the pose encoder, loaded with every misfitting key named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from methods.cameractrl_parts.encoder import CameraPoseEncoder
from methods.cameractrl_parts.processors import MERGE_NAME, _state


class CheckpointMismatchError(ValueError):
    """A CameraCtrl state dict does not fit the modules: names the misfitting keys."""


def processor_parameters(unet: nn.Module) -> dict[str, nn.Parameter]:
    r"""Every processor parameter by its upstream name in ``attention_processor_state_dict``:
    ``"<block path>.attn1.processor.qkv_merge.weight"`` / ``.bias`` (upstream saves the UNet's
    parameters whose names contain ``merge``: ``train_camera_control.py``)."""
    out: dict[str, nn.Parameter] = {}
    for key, proc in _state(unet).processors.items():
        out[f"{key}.{MERGE_NAME}.weight"] = proc.qkv_merge.weight
        out[f"{key}.{MERGE_NAME}.bias"] = proc.qkv_merge.bias
    return out


def processor_state_dict(unet: nn.Module) -> dict[str, torch.Tensor]:
    """The processors' weights in upstream ``attention_processor_state_dict`` layout."""
    return {k: v.detach().clone() for k, v in processor_parameters(unet).items()}


def _check_fit(
    expected: dict[str, torch.Size], given: dict[str, Any], what: str
) -> None:
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    misshaped = [
        f"{k}: checkpoint {tuple(given[k].shape)} vs model {tuple(expected[k])}"
        for k in sorted(set(expected) & set(given))
        if tuple(given[k].shape) != tuple(expected[k])
    ]
    if missing or unexpected or misshaped:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
        if misshaped:
            parts.append(f"{len(misshaped)} wrong shape: {'; '.join(misshaped[:3])}")
        raise CheckpointMismatchError(f"{what} does not fit: " + ", ".join(parts))


def load_processor_state_dict(unet: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    r"""Load upstream ``attention_processor_state_dict`` into the attached processors.

    Raises:
        CheckpointMismatchError: keys missing, unexpected or of the wrong shape (named).

    Returns:
        The keys loaded.
    """
    params = processor_parameters(unet)
    _check_fit({k: p.shape for k, p in params.items()}, state, "attention_processor_state_dict")
    with torch.no_grad():
        for key, param in params.items():
            param.copy_(state[key].to(device=param.device, dtype=param.dtype))
    return sorted(params)


def load_pose_encoder_state_dict(encoder: CameraPoseEncoder, state: dict[str, Any]) -> None:
    """Load upstream ``pose_encoder_state_dict`` strictly (names the misfits otherwise)."""
    own = encoder.state_dict()
    _check_fit({k: v.shape for k, v in own.items()}, state, "pose_encoder_state_dict")
    encoder.load_state_dict(state, strict=True)


def load_cameractrl_checkpoint(
    unet: nn.Module, encoder: CameraPoseEncoder, path: str | Path
) -> None:
    r"""Load a released CameraCtrl-SVD checkpoint (``torch.save`` dict with
    ``pose_encoder_state_dict`` and ``attention_processor_state_dict``) into ``encoder`` and
    the processors attached to ``unet``.

    Raises:
        CheckpointMismatchError: a dict is missing or does not fit (names the keys).
    """
    ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    for key in ("pose_encoder_state_dict", "attention_processor_state_dict"):
        if not isinstance(ckpt, dict) or key not in ckpt:
            raise CheckpointMismatchError(f"{path}: no {key!r} (not a CameraCtrl-SVD checkpoint)")
    load_pose_encoder_state_dict(encoder, ckpt["pose_encoder_state_dict"])
    load_processor_state_dict(unet, ckpt["attention_processor_state_dict"])
