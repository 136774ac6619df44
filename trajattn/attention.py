r"""Trajectory attention for diffusers' ``UNetSpatioTemporalConditionModel`` (SVD).

Every ``TemporalBasicTransformerBlock`` gets a trajectory-attention step in its ``attn1`` call:
:func:`apply_trajectory_attention` swaps ``attn1``'s processor for a
:class:`TrajectoryAttnProcessor` (diffusers is not forked) and, for the branch variants, adds a
submodule ``traj_attn`` (an ``Attention`` shaped like ``attn1``: no q/k/v bias, ``to_out``
with bias) to the block. Both see the block's ``norm1`` output ``(B * h * w, F, C)``.

Variants (paper Sec. 3.2-3.4):

- ``"vanilla"``: ``attn1`` itself attends along the trajectories (Alg. 1, attention, Alg. 2).
  At latent cells some valid trajectory point reaches, ``attn1``'s output is replaced by the
  back-projected trajectory attention; at cells none reaches it keeps ``attn1``'s ordinary
  temporal attention output. No parameters are trained.
- ``"tuning"``: vanilla with ``attn1`` trainable.
- ``"addon"``: a new branch with default (random) init, its back-projected output added,
  unscaled, to ``attn1``'s output before the block's residual (uncovered cells get + 0).
- ``"inherit"``: the same branch with q/k/v copied from ``attn1`` and ``to_out`` zeroed, so
  a freshly attached branch is an exact no-op.

SVD's UNet forward takes no attention kwargs, so trajectories reach the processors through
state set on the model (:func:`set_trajectories` / :func:`trajectories`). The latent size of
each block is read by a forward pre-hook on its ``TransformerSpatioTemporalModel``. Without
trajectories every processor computes plain ``attn1``. The same trajectories serve every batch
item (e.g. both CFG halves); each call draws its own random subset of
``num_trajectories_factor * h * w`` trajectories from a generator seeded by ``config.seed``
when the trajectories are set.

Each call draws a fresh subset, so recomputing a forward (UNet-level gradient checkpointing)
samples different trajectories than the original pass; use ``num_trajectories_factor=None``
(all trajectories) when checkpointing around these blocks.

``compat_mixed_pairs=True`` reproduces a reshape in the official torch-2 (SDPA) processor,
the one the released inference code runs and the released weights were used with: the
``B N`` sampled ``(B N, F, C)`` tokens are viewed with the *pre-gather* batch size,
``view(B h w, -1, ...)``, so each attention sequence holds ``N F / (h w)`` consecutive tokens
(:func:`official_sequence_length`): with the official ``N = 2 h w`` two trajectories share a
sequence of length 2F; with fewer trajectories (e.g. a coarser track stride) a trajectory is
split over several sequences. The ``trajattn`` preset turns it on (official behaviour);
``trajattn_exact`` keeps per-trajectory attention.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from diffusers.models.attention import TemporalBasicTransformerBlock
from diffusers.models.attention_processor import Attention
from diffusers.models.transformers.transformer_temporal import TransformerSpatioTemporalModel

from trajattn.branch import attend, attend_along_trajectories, official_sequence_length
from trajattn.config import BRANCH_NAME, VARIANTS, TrajectoryAttentionConfig
from trajattn.state import (
    TrajectoryState,
    as_track_tensors,
    freeze_except,
    get_state,
    install,
    scoped,
    uninstall,
    variant_parameters,
)

__all__ = [
    "BRANCH_NAME",
    "VARIANTS",
    "TrajectoryAttentionConfig",
    "TrajectoryAttnProcessor",
    "apply_trajectory_attention",
    "capture_attention_maps",
    "clear_trajectories",
    "freeze_except_trainable",
    "get_config",
    "official_sequence_length",
    "remove_trajectory_attention",
    "set_trajectories",
    "temporal_blocks",
    "trainable_parameters",
    "trajectories",
]

_STATE_ATTR = "_trajattn_state"


@dataclass
class _State(TrajectoryState):
    """The shared state plus the attention-map recorder (:func:`capture_attention_maps`)."""

    capture: dict | None = None


class TrajectoryAttnProcessor:
    r"""``attn1`` processor adding trajectory attention (see the module docstring).

    Args:
        name: module path of the block.
        state: shared state of the model.
        base: ``attn1``'s original processor (plain temporal attention).
        branch: the block's ``traj_attn`` module, or None for vanilla/tuning.
    """

    def __init__(self, name: str, state: _State, base, branch: Attention | None):
        self.name = name
        self.state = state
        self.base = base
        self.branch = branch
        self.latent_size: tuple[int, int] | None = None

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        **kwargs,
    ) -> torch.Tensor:
        state = self.state
        capture = state.capture
        if capture is not None:
            temporal, probs = attend(attn, hidden_states, want_probs=True)
            self._record("temporal", probs)
        else:
            temporal = self.base(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        if state.tracks is None:
            return temporal
        if self.latent_size is None:
            raise RuntimeError(f"{self.name}: latent size unknown (block called outside its model)")
        config = state.config
        h, w = self.latent_size
        if hidden_states.shape[1] != state.tracks.shape[0]:
            raise ValueError(
                f"{self.name}: trajectories have {state.tracks.shape[0]} frames, "
                f"hidden states {hidden_states.shape[1]}"
            )
        index = state.index((h, w), hidden_states.device)
        batch = hidden_states.shape[0] // (h * w)
        key_mask = index.key_mask(batch) if config.mask_invalid_keys else None
        module = self.branch if self.branch is not None else attn
        back, covered, probs = attend_along_trajectories(
            module,
            hidden_states,
            index,
            key_mask,
            config.compat_mixed_pairs,
            want_probs=capture is not None,
        )
        if probs is not None:
            self._record("trajectory", probs)
        if self.branch is not None:
            return temporal + back
        covered = covered.repeat(batch, 1)[..., None]
        return torch.where(covered, back, temporal)

    def _record(self, kind: str, probs: torch.Tensor) -> None:
        entry = self.state.capture.setdefault(self.name, {})
        if kind in entry and entry[kind][0].shape == probs.shape:
            total, calls = entry[kind]
            entry[kind] = (total + probs, calls + 1)
        else:
            entry[kind] = (probs.clone(), 1)


def temporal_blocks(unet: torch.nn.Module) -> dict[str, TemporalBasicTransformerBlock]:
    """Every ``TemporalBasicTransformerBlock`` of the model by module path, in module order."""
    return {
        name: module
        for name, module in unet.named_modules()
        if isinstance(module, TemporalBasicTransformerBlock)
    }


def _make_branch(attn1: Attention, copy_qkv: bool) -> Attention:
    weight = attn1.to_q.weight
    branch = Attention(
        query_dim=attn1.query_dim,
        heads=attn1.heads,
        dim_head=attn1.inner_dim // attn1.heads,
        bias=False,
        out_bias=True,
    ).to(device=weight.device, dtype=weight.dtype)
    if copy_qkv:
        with torch.no_grad():
            for proj in ("to_q", "to_k", "to_v"):
                getattr(branch, proj).weight.copy_(getattr(attn1, proj).weight)
            branch.to_out[0].weight.zero_()
            branch.to_out[0].bias.zero_()
    return branch


def apply_trajectory_attention(
    unet: torch.nn.Module, config: TrajectoryAttentionConfig | None = None
) -> list[str]:
    r"""Attach trajectory attention to every temporal block of ``unet`` (in place).

    Returns:
        The module paths of the wrapped blocks.
    """
    if getattr(unet, _STATE_ATTR, None) is not None:
        raise RuntimeError("trajectory attention is already applied; remove it first")
    state = _State(config=config or TrajectoryAttentionConfig())
    blocks = temporal_blocks(unet)
    if not blocks:
        raise ValueError("the model has no TemporalBasicTransformerBlock")
    names = install(
        unet,
        _STATE_ATTR,
        state,
        blocks,
        _make_branch,
        lambda name, base, branch: TrajectoryAttnProcessor(name, state, base, branch),
    )
    for module in unet.modules():
        if isinstance(module, TransformerSpatioTemporalModel):
            procs = [b.attn1.processor for b in module.temporal_transformer_blocks]
            state.hooks.append(
                module.register_forward_pre_hook(_latent_size_hook(procs), with_kwargs=True)
            )
    return names


def _latent_size_hook(processors: list):
    def hook(module, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        for proc in processors:
            if isinstance(proc, TrajectoryAttnProcessor):
                proc.latent_size = (int(hidden.shape[-2]), int(hidden.shape[-1]))

    return hook


def remove_trajectory_attention(unet: torch.nn.Module) -> None:
    """Undo :func:`apply_trajectory_attention`: original processors back, branches removed."""
    uninstall(unet, _STATE_ATTR, temporal_blocks(unet))


def get_config(unet: torch.nn.Module) -> TrajectoryAttentionConfig:
    """The config trajectory attention was applied with."""
    return get_state(unet, _STATE_ATTR).config


def set_trajectories(
    unet: torch.nn.Module,
    tracks: torch.Tensor | np.ndarray,
    visible: torch.Tensor | np.ndarray,
    image_size: tuple[int, int],
) -> None:
    r"""Use these trajectories in the following forward calls.

    Args:
        tracks: (F, L, 2) pixel xy, pixel centres at +0.5 (see :mod:`trajattn.trajectories`).
        visible: (F, L) bool.
        image_size: (H, W) of the image the tracks live in.
    """
    state = get_state(unet, _STATE_ATTR)
    state.set(*as_track_tensors(tracks, visible), image_size)


def clear_trajectories(unet: torch.nn.Module) -> None:
    """Back to plain temporal attention (the branch is skipped)."""
    get_state(unet, _STATE_ATTR).clear()


def trajectories(
    unet: torch.nn.Module,
    tracks: torch.Tensor | np.ndarray,
    visible: torch.Tensor | np.ndarray,
    image_size: tuple[int, int],
) -> contextlib.AbstractContextManager[None]:
    """Context manager around :func:`set_trajectories` / :func:`clear_trajectories`."""
    return scoped(
        lambda: set_trajectories(unet, tracks, visible, image_size),
        lambda: clear_trajectories(unet),
    )


def trainable_parameters(
    unet: torch.nn.Module, variant: str | None = None
) -> list[torch.nn.Parameter]:
    r"""The parameters a variant trains: none (vanilla), every ``attn1`` (tuning), every
    ``traj_attn`` branch (addon, inherit). ``variant`` defaults to the applied one."""
    variant = variant or get_config(unet).variant
    return list(variant_parameters(temporal_blocks(unet), variant).values())


def freeze_except_trainable(
    unet: torch.nn.Module, variant: str | None = None
) -> list[torch.nn.Parameter]:
    """Set ``requires_grad`` on exactly :func:`trainable_parameters` and return them."""
    return freeze_except(unet, trainable_parameters(unet, variant))


@contextlib.contextmanager
def capture_attention_maps(unet: torch.nn.Module) -> Iterator[dict[str, dict[str, np.ndarray]]]:
    r"""Record frame x frame attention probabilities (paper Fig. 2).

    Yields a dict that, once the context exits, maps each block path to
    ``{"temporal": (F, F), "trajectory": (F, F)}`` float32 numpy arrays: the softmax
    probabilities of ``attn1`` and of the trajectory attention (the branch, or ``attn1`` along
    trajectories for vanilla), averaged over tokens, heads and calls. ``"trajectory"`` is
    present only for calls made with trajectories set (``(L, L)`` with compat_mixed_pairs:
    ``L = N F / (h w)`` tokens per sequence, ``2F`` for ``N = 2 h w``).
    """
    state = get_state(unet, _STATE_ATTR)
    maps: dict[str, dict[str, np.ndarray]] = {}
    state.capture = {}
    try:
        yield maps
    finally:
        for name, entry in state.capture.items():
            maps[name] = {
                kind: (total / calls).cpu().numpy().astype(np.float32)
                for kind, (total, calls) in entry.items()
            }
        state.capture = None
