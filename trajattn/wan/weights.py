r"""Save and load the Wan trajectory-attention weights (safetensors).

Keys are module paths in the transformer, e.g. ``blocks.3.traj_attn.to_q.weight`` (addon,
inherit) or ``blocks.3.attn1.to_q.weight`` (tuning): exactly
:func:`trajattn.wan.attention.named_trainable_parameters` of the applied variant. The file's
metadata records the variant and block count, checked on load.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from trajattn.wan.attention import get_config, named_trainable_parameters

FORMAT = "trajattn-wan/1"


def trainable_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The applied variant's trainable tensors (detached, CPU, contiguous), by module path."""
    return {
        name: p.detach().cpu().contiguous()
        for name, p in named_trainable_parameters(model).items()
    }


def save_weights(model: torch.nn.Module, path: str | Path) -> Path:
    """Write the variant's trainable tensors to ``path`` (atomic: temporary file, rename)."""
    variant = get_config(model).variant
    state = trainable_state_dict(model)
    if not state:
        raise ValueError(f"variant {variant!r} has no trainable parameters to save")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(state, str(tmp), metadata={"format": FORMAT, "variant": variant})
    tmp.replace(path)
    return path


def load_weights(model: torch.nn.Module, path: str | Path) -> list[str]:
    r"""Load weights saved by :func:`save_weights` into a model with the same variant applied.

    Raises:
        ValueError: vanilla (nothing to load), a different variant, or missing/extra keys.

    Returns:
        The keys loaded.
    """
    path = Path(path)
    variant = get_config(model).variant
    if variant == "vanilla":
        raise ValueError("the vanilla variant trains nothing: give no weights")
    if path.suffix != ".safetensors":
        raise ValueError(f"{path}: Wan trajectory-attention weights must be .safetensors")
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata() or {}
    saved = meta.get("variant")
    # addon and inherit share the branch layout; tuning holds attn1 tensors
    if saved is not None and (saved == "tuning") != (variant == "tuning"):
        raise ValueError(f"{path} holds {saved!r} weights, the model has {variant!r} applied")
    state = load_file(str(path))
    params = named_trainable_parameters(model)
    if set(state) != set(params):
        missing, extra = sorted(set(params) - set(state)), sorted(set(state) - set(params))
        raise ValueError(f"{path}: missing {missing[:3]}, unexpected {extra[:3]}")
    with torch.no_grad():
        for name, param in params.items():
            if state[name].shape != param.shape:
                raise ValueError(f"{path}: {name} is {tuple(state[name].shape)}, "
                                 f"the model's {tuple(param.shape)}")
            param.copy_(state[name])
    return sorted(state)
