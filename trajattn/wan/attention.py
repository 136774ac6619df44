r"""Trajectory attention on the 3-D self-attention of diffusers' ``WanTransformer3DModel``.

Every ``WanTransformerBlock``'s ``attn1`` (full self-attention over all ``T * h * w`` latent
tokens, 3-D RoPE) gets a :class:`WanTrajectoryAttnProcessor` (diffusers is not forked) and,
for the branch variants, a sibling submodule ``traj_attn``: a ``WanAttention`` with the
structure of ``attn1`` (q/k/v/out projections with bias, RMSNorm on q and k across heads).

One call, with trajectories set:

1. ``attn1``'s own processor computes the 3-D attention output (unchanged).
2. The normalised block input ``(B, T * h * w, C)`` (token order ``t, y, x``, as Wan's patch
   embedding flattens it) is viewed as ``(B * h * w, T, C)`` and sampled along the
   trajectories with :func:`trajattn.sampling.gather_tokens` (paper Alg. 1) on the patch grid
   ``(h, w)``: tracks live in latent frames (:mod:`trajattn.wan.frames`).
3. Attention along each trajectory over its ``T`` latent frames, with the branch's (or, for
   ``vanilla``/``tuning``, ``attn1``'s) projections and norms. RoPE: the *temporal* axis of
   Wan's 3-D RoPE only (see :func:`temporal_rope`); the two spatial axes are dropped.
4. :func:`trajattn.sampling.scatter_back` (Alg. 2, count-normalised) back onto the grid, and
   the result is *added* to the 3-D attention output (the block's gate then scales the sum).

Variants (``TrajectoryAttentionConfig`` of :mod:`trajattn.attention`, shared with SVD):
``inherit`` (branch q/k/v and norms copied from ``attn1``, ``to_out`` zeroed: a freshly
attached branch is an exact no-op), ``addon`` (branch at default init), ``vanilla`` (``attn1``'s
own weights along the trajectories, added; nothing trains), ``tuning`` (vanilla with ``attn1``
trainable). Unlike SVD, vanilla *adds* rather than replaces: ``attn1`` here also mixes space,
and replacing its output at covered cells would drop all spatial attention.
``compat_mixed_pairs`` (an SVD-checkpoint quirk) is refused.

Wan's forward passes no attention kwargs to processors, so, as for SVD, trajectories reach
them through state on the model (:func:`set_trajectories` / :func:`trajectories`), and the
latent grid ``(T, h, w)`` is read by a forward pre-hook on the transformer. Both CFG passes
(Wan's pipeline runs them as separate calls) see the same trajectories.

Second DiT: the model-specific parts are collected in :class:`WanSpec` (which blocks, which
attention, the branch module, the grid); another DiT (e.g. CogVideoX) would supply its own
spec and, if its RoPE differs, its own :func:`temporal_rope`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
import torch
from diffusers.models.transformers.transformer_wan import (
    WanAttention,
    WanAttnProcessor,
    WanTransformerBlock,
)

from trajattn.config import TrajectoryAttentionConfig
from trajattn.state import (
    TrajectoryState,
    freeze_except,
    get_state,
    install,
    scoped,
    uninstall,
    variant_parameters,
)
from trajattn.wan.branch import attend_along_trajectories, temporal_rope, trajectory_attention
from trajattn.wan.frames import latent_frame_tracks

__all__ = [
    "WanSpec",
    "WanTrajectoryAttnProcessor",
    "apply_trajectory_attention",
    "attend_along_trajectories",
    "clear_trajectories",
    "freeze_except_trainable",
    "get_config",
    "is_applied",
    "named_trainable_parameters",
    "remove_trajectory_attention",
    "set_trajectories",
    "temporal_rope",
    "trainable_parameters",
    "trajectories",
    "trajectory_attention",
]

_STATE_ATTR = "_trajattn_wan_state"


class WanSpec:
    """Where trajectory attention attaches in a ``WanTransformer3DModel``."""

    block_type = WanTransformerBlock

    def blocks(self, model: torch.nn.Module) -> dict[str, torch.nn.Module]:
        """Transformer blocks by module path, in order."""
        return {n: m for n, m in model.named_modules() if isinstance(m, self.block_type)}

    @staticmethod
    def self_attention(block: torch.nn.Module) -> WanAttention:
        return block.attn1

    @staticmethod
    def grid(model: torch.nn.Module, hidden_states: torch.Tensor) -> tuple[int, int, int]:
        """Token grid ``(T, h, w)`` of the input latents ``(B, C, T, H, W)`` after patching."""
        p_t, p_h, p_w = model.config.patch_size
        _, _, frames, height, width = hidden_states.shape
        return frames // p_t, height // p_h, width // p_w

    @staticmethod
    def make_branch(attn: WanAttention, copy_weights: bool) -> WanAttention:
        """A self-attention module shaped like ``attn``; ``copy_weights``: q/k/v and the q/k
        norms copied, output projection zeroed (inherit)."""
        weight = attn.to_q.weight
        branch = WanAttention(
            dim=attn.to_q.in_features,
            heads=attn.heads,
            dim_head=attn.inner_dim // attn.heads,
            eps=attn.norm_q.eps,
            processor=WanAttnProcessor(),
        ).to(device=weight.device, dtype=weight.dtype)
        if copy_weights:
            with torch.no_grad():
                for name in ("to_q", "to_k", "to_v", "norm_q", "norm_k"):
                    getattr(branch, name).load_state_dict(getattr(attn, name).state_dict())
                branch.to_out[0].weight.zero_()
                branch.to_out[0].bias.zero_()
        return branch


@dataclass
class _State(TrajectoryState):
    """The shared state plus the model's spec and its current token grid ``(T, h, w)``.

    ``tracks``/``visible`` are latent-frame tracks (:mod:`trajattn.wan.frames`).
    """

    spec: WanSpec = field(default_factory=WanSpec)
    grid: tuple[int, int, int] | None = None


class WanTrajectoryAttnProcessor:
    r"""``attn1`` processor adding trajectory attention (see the module docstring).

    Args:
        name: module path of the block.
        state: shared state of the model.
        base: ``attn1``'s original processor (plain 3-D attention).
        branch: the block's ``traj_attn`` module, or None for vanilla/tuning.
    """

    def __init__(self, name: str, state: _State, base, branch: WanAttention | None):
        self.name = name
        self.state = state
        self.base = base
        self.branch = branch

    def __call__(
        self,
        attn: WanAttention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
        **kwargs,
    ) -> torch.Tensor:
        out = self.base(attn, hidden_states, encoder_hidden_states, attention_mask, rotary_emb)
        state = self.state
        if state.tracks is None:
            return out
        if state.grid is None:
            raise RuntimeError(f"{self.name}: token grid unknown (block called outside its model)")
        frames, h, w = state.grid
        if state.tracks.shape[0] != frames:
            raise ValueError(
                f"{self.name}: trajectories have {state.tracks.shape[0]} latent frames, "
                f"the latents {frames}"
            )
        config = state.config
        index = state.index((h, w), hidden_states.device)
        module = self.branch if self.branch is not None else attn
        back, _ = trajectory_attention(
            module, hidden_states, rotary_emb, index, state.grid, config.mask_invalid_keys
        )
        return out + back.to(out.dtype)


def apply_trajectory_attention(
    model: torch.nn.Module,
    config: TrajectoryAttentionConfig | None = None,
    spec: WanSpec | None = None,
) -> list[str]:
    r"""Attach trajectory attention to every block's self-attention of ``model`` (in place).

    Returns:
        The module paths of the blocks.
    """
    if getattr(model, _STATE_ATTR, None) is not None:
        raise RuntimeError("trajectory attention is already applied; remove it first")
    config = config or TrajectoryAttentionConfig()
    if config.compat_mixed_pairs:
        raise ValueError("compat_mixed_pairs reproduces an SVD checkpoint quirk; not for Wan")
    spec = spec or WanSpec()
    blocks = spec.blocks(model)
    if not blocks:
        raise ValueError(f"the model has no {spec.block_type.__name__}")
    state = _State(config=config, spec=spec)
    names = install(
        model,
        _STATE_ATTR,
        state,
        blocks,
        spec.make_branch,
        lambda name, base, branch: WanTrajectoryAttnProcessor(name, state, base, branch),
        spec.self_attention,
    )

    def read_grid(module, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        state.grid = spec.grid(module, hidden)

    state.hooks.append(model.register_forward_pre_hook(read_grid, with_kwargs=True))
    return names


def remove_trajectory_attention(model: torch.nn.Module) -> None:
    """Undo :func:`apply_trajectory_attention`: original processors back, branches removed."""
    spec = get_state(model, _STATE_ATTR).spec
    uninstall(model, _STATE_ATTR, spec.blocks(model), spec.self_attention)


def get_config(model: torch.nn.Module) -> TrajectoryAttentionConfig:
    """The config trajectory attention was applied with."""
    return get_state(model, _STATE_ATTR).config


def is_applied(model: torch.nn.Module | None) -> bool:
    return model is not None and getattr(model, _STATE_ATTR, None) is not None


def set_trajectories(
    model: torch.nn.Module,
    tracks: torch.Tensor | np.ndarray,
    visible: torch.Tensor | np.ndarray,
    image_size: tuple[int, int],
    temporal_compression: int = 4,
) -> None:
    r"""Use these trajectories in the following forward calls.

    Args:
        tracks: (F, L, 2) pixel xy of the generated frames (pixel centres at +0.5),
            ``F = temporal_compression * k + 1``; mapped to latent frames by
            :func:`trajattn.wan.frames.latent_frame_tracks`.
        visible: (F, L) bool.
        image_size: (H, W) of the frames the tracks live in.
        temporal_compression: the VAE's (Wan: 4; 1 = tracks already per latent frame).
    """
    state = get_state(model, _STATE_ATTR)
    state.set(*latent_frame_tracks(tracks, visible, temporal_compression), image_size)


def clear_trajectories(model: torch.nn.Module) -> None:
    """Back to plain 3-D attention (the branch is skipped)."""
    get_state(model, _STATE_ATTR).clear()


def trajectories(
    model: torch.nn.Module,
    tracks: torch.Tensor | np.ndarray,
    visible: torch.Tensor | np.ndarray,
    image_size: tuple[int, int],
    temporal_compression: int = 4,
) -> contextlib.AbstractContextManager[None]:
    """Context manager around :func:`set_trajectories` / :func:`clear_trajectories`."""
    return scoped(
        lambda: set_trajectories(model, tracks, visible, image_size, temporal_compression),
        lambda: clear_trajectories(model),
    )


def named_trainable_parameters(
    model: torch.nn.Module, variant: str | None = None
) -> dict[str, torch.nn.Parameter]:
    r"""The parameters a variant trains, by name: none (vanilla), every block's ``attn1``
    (tuning), every ``traj_attn`` branch (addon, inherit). ``variant`` defaults to the applied
    one."""
    state = get_state(model, _STATE_ATTR)
    return variant_parameters(
        state.spec.blocks(model), variant or state.config.variant, state.spec.self_attention
    )


def trainable_parameters(
    model: torch.nn.Module, variant: str | None = None
) -> list[torch.nn.Parameter]:
    """:func:`named_trainable_parameters` as a list."""
    return list(named_trainable_parameters(model, variant).values())


def freeze_except_trainable(
    model: torch.nn.Module, variant: str | None = None
) -> list[torch.nn.Parameter]:
    """Set ``requires_grad`` on exactly :func:`trainable_parameters` and return them."""
    return freeze_except(model, trainable_parameters(model, variant))
