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
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.models.transformers.transformer_wan import (
    WanAttention,
    WanAttnProcessor,
    WanTransformerBlock,
)

from trajattn.attention import BRANCH_NAME, VARIANTS, TrajectoryAttentionConfig
from trajattn.sampling import TrajectoryIndex, build_trajectory_index, gather_tokens, scatter_back
from trajattn.wan.frames import latent_frame_tracks

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
class _State:
    config: TrajectoryAttentionConfig
    spec: WanSpec
    processors: dict[str, WanTrajectoryAttnProcessor]
    hooks: list = field(default_factory=list)
    tracks: torch.Tensor | None = None  # (T, L, 2) latent-frame tracks
    visible: torch.Tensor | None = None
    image_size: tuple[int, int] | None = None
    generator: torch.Generator | None = None
    grid: tuple[int, int, int] | None = None
    on_device: dict = field(default_factory=dict)

    def device_tracks(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = str(device)
        if key not in self.on_device:
            self.on_device[key] = (self.tracks.to(device), self.visible.to(device))
        return self.on_device[key]


def temporal_rope(
    rotary_emb: tuple[torch.Tensor, torch.Tensor], grid: tuple[int, int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The temporal-axis-only RoPE of each latent frame from Wan's 3-D RoPE.

    Wan's ``rotary_emb`` is ``(cos, sin)``, each ``(1, T * h * w, 1, D)``: per token, the
    rotation angles of its frame index (first ``t_dim`` channels), row and column. The token at
    cell ``(0, 0)`` of frame ``t`` has row = column = 0, i.e. the identity rotation on the
    spatial channels, so its entry is exactly "rotate by the frame index only".

    Returns:
        ``(cos, sin)``, each ``(1, T, 1, D)``.
    """
    frames, h, w = grid
    cos, sin = rotary_emb
    if cos.shape[1] != frames * h * w:
        raise ValueError(f"rotary embedding has {cos.shape[1]} tokens, grid {grid}")
    pick = torch.arange(frames, device=cos.device) * (h * w)
    return cos[:, pick], sin[:, pick]


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Wan's RoPE convention: channel pairs (2i, 2i + 1) rotated by the angle of pair i
    (``cos``/``sin`` repeat each angle twice). Written out because diffusers keeps it inside
    ``WanAttnProcessor.__call__``."""
    x1, x2 = x.unflatten(-1, (-1, 2)).unbind(-1)
    cos, sin = cos[..., 0::2], sin[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x1 * cos - x2 * sin
    out[..., 1::2] = x1 * sin + x2 * cos
    return out.type_as(x)


def attend_along_trajectories(
    module: WanAttention,
    tokens: torch.Tensor,
    rope: tuple[torch.Tensor, torch.Tensor] | None,
    key_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Self-attention of ``module`` over the frame axis of ``tokens (S, T, C)``.

    q/k/v projections, RMSNorm on q and k, ``rope`` (``(1, T, 1, D)`` each, or None), scaled
    dot-product attention (``key_mask (S, T)``: False keys are masked; a row with no valid key
    attends to all), output projection. Returns ``(S, T, C)`` in the dtype of ``tokens``; the
    maths runs in the module's dtype (a float32 branch may train inside a bfloat16 model).
    """
    in_dtype = tokens.dtype
    tokens = tokens.to(module.to_q.weight.dtype)
    q = module.norm_q(module.to_q(tokens)).unflatten(2, (module.heads, -1))
    k = module.norm_k(module.to_k(tokens)).unflatten(2, (module.heads, -1))
    v = module.to_v(tokens).unflatten(2, (module.heads, -1))
    if rope is not None:
        q, k = _rotate(q, *rope), _rotate(k, *rope)
    mask = None
    if key_mask is not None:
        key_mask = key_mask | ~key_mask.any(-1, keepdim=True)
        mask = key_mask[:, None, None, :]
    out = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask
    )
    out = out.transpose(1, 2).flatten(2, 3).type_as(q)
    return module.to_out[1](module.to_out[0](out)).to(in_dtype)


def trajectory_attention(
    module: WanAttention,
    hidden_states: torch.Tensor,
    rotary_emb: tuple[torch.Tensor, torch.Tensor] | None,
    index: TrajectoryIndex,
    grid: tuple[int, int, int],
    mask_invalid_keys: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Gather (Alg. 1), attend along trajectories, scatter back (Alg. 2) on a DiT token grid.

    Args:
        module: the attention whose weights attend (branch, or ``attn1``).
        hidden_states: ``(B, T * h * w, C)`` in token order ``t, y, x``.
        rotary_emb: Wan's 3-D RoPE ``(cos, sin)``; only its temporal axis is used.
        index: trajectories on the ``(h, w)`` grid over ``T`` latent frames.
        grid: ``(T, h, w)``.

    Returns:
        ``(out (B, T * h * w, C), covered (T * h * w,) bool)``: the count-normalised
        trajectory attention output (0 where no valid point lands) and where some point lands.
    """
    frames, h, w = grid
    batch, tokens, channels = hidden_states.shape
    if tokens != frames * h * w:
        raise ValueError(f"{tokens} tokens do not fit the grid {grid}")
    cells = hidden_states.reshape(batch, frames, h * w, channels).transpose(1, 2)
    sampled = gather_tokens(cells.reshape(batch * h * w, frames, channels), index)
    rope = temporal_rope(rotary_emb, grid) if rotary_emb is not None else None
    key_mask = index.key_mask(batch) if mask_invalid_keys else None
    out = attend_along_trajectories(module, sampled, rope, key_mask)
    back, covered = scatter_back(out, index)  # (B * h * w, T, C), (h * w, T)
    back = back.reshape(batch, h * w, frames, -1).transpose(1, 2).reshape(batch, tokens, -1)
    return back, covered.transpose(0, 1).reshape(-1)


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
        count = None
        if config.num_trajectories_factor is not None:
            count = int(config.num_trajectories_factor * h * w)
        tracks, visible = state.device_tracks(hidden_states.device)
        index = build_trajectory_index(
            tracks, visible, state.image_size, (h, w), config.mode, count, state.generator
        )
        module = self.branch if self.branch is not None else attn
        back, _ = trajectory_attention(
            module, hidden_states, rotary_emb, index, state.grid, config.mask_invalid_keys
        )
        return out + back.to(out.dtype)


def _state(model: torch.nn.Module) -> _State:
    state = getattr(model, _STATE_ATTR, None)
    if state is None:
        raise RuntimeError("trajectory attention is not applied to this model")
    return state


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
    state = _State(config=config, spec=spec, processors={})
    for name, block in blocks.items():
        attn = spec.self_attention(block)
        branch = None
        if config.has_branch:
            branch = spec.make_branch(attn, copy_weights=config.variant == "inherit")
            block.add_module(BRANCH_NAME, branch)
        processor = WanTrajectoryAttnProcessor(name, state, attn.processor, branch)
        attn.processor = processor
        state.processors[name] = processor

    def read_grid(module, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        state.grid = spec.grid(module, hidden)

    state.hooks.append(model.register_forward_pre_hook(read_grid, with_kwargs=True))
    setattr(model, _STATE_ATTR, state)
    return list(blocks)


def remove_trajectory_attention(model: torch.nn.Module) -> None:
    """Undo :func:`apply_trajectory_attention`: original processors back, branches removed."""
    state = _state(model)
    blocks = state.spec.blocks(model)
    for name, proc in state.processors.items():
        block = blocks[name]
        state.spec.self_attention(block).processor = proc.base
        if BRANCH_NAME in block._modules:
            del block._modules[BRANCH_NAME]
    for handle in state.hooks:
        handle.remove()
    delattr(model, _STATE_ATTR)


def get_config(model: torch.nn.Module) -> TrajectoryAttentionConfig:
    """The config trajectory attention was applied with."""
    return _state(model).config


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
    state = _state(model)
    latent_tracks, latent_visible = latent_frame_tracks(tracks, visible, temporal_compression)
    state.tracks = latent_tracks
    state.visible = latent_visible
    state.image_size = (int(image_size[0]), int(image_size[1]))
    state.generator = torch.Generator().manual_seed(state.config.seed)
    state.on_device = {}


def clear_trajectories(model: torch.nn.Module) -> None:
    """Back to plain 3-D attention (the branch is skipped)."""
    state = _state(model)
    state.tracks = state.visible = state.image_size = state.generator = None
    state.on_device = {}


@contextlib.contextmanager
def trajectories(
    model: torch.nn.Module,
    tracks: torch.Tensor | np.ndarray,
    visible: torch.Tensor | np.ndarray,
    image_size: tuple[int, int],
    temporal_compression: int = 4,
) -> Iterator[None]:
    """Context manager around :func:`set_trajectories` / :func:`clear_trajectories`."""
    set_trajectories(model, tracks, visible, image_size, temporal_compression)
    try:
        yield
    finally:
        clear_trajectories(model)


def named_trainable_parameters(
    model: torch.nn.Module, variant: str | None = None
) -> dict[str, torch.nn.Parameter]:
    r"""The parameters a variant trains, by name: none (vanilla), every block's ``attn1``
    (tuning), every ``traj_attn`` branch (addon, inherit). ``variant`` defaults to the applied
    one."""
    state = _state(model)
    variant = variant or state.config.variant
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    params: dict[str, torch.nn.Parameter] = {}
    for name, block in state.spec.blocks(model).items():
        if variant == "tuning":
            module, prefix = state.spec.self_attention(block), f"{name}.attn1"
        elif variant in ("addon", "inherit"):
            module, prefix = getattr(block, BRANCH_NAME, None), f"{name}.{BRANCH_NAME}"
            if module is None:
                raise RuntimeError(f"{name} has no {BRANCH_NAME} branch")
        else:
            continue
        params.update({f"{prefix}.{key}": p for key, p in module.named_parameters()})
    return params


def trainable_parameters(
    model: torch.nn.Module, variant: str | None = None
) -> list[torch.nn.Parameter]:
    """:func:`named_trainable_parameters` as a list."""
    return list(named_trainable_parameters(model, variant).values())


def freeze_except_trainable(
    model: torch.nn.Module, variant: str | None = None
) -> list[torch.nn.Parameter]:
    """Set ``requires_grad`` on exactly :func:`trainable_parameters` and return them."""
    params = trainable_parameters(model, variant)
    model.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    return params
