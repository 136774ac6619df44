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
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.models.attention import TemporalBasicTransformerBlock
from diffusers.models.attention_processor import Attention
from diffusers.models.transformers.transformer_temporal import TransformerSpatioTemporalModel

from trajattn.sampling import (
    MODES,
    TrajectoryIndex,
    build_trajectory_index,
    gather_tokens,
    scatter_back,
)

VARIANTS = ("vanilla", "tuning", "addon", "inherit")
BRANCH_NAME = "traj_attn"
_STATE_ATTR = "_trajattn_state"


@dataclass(frozen=True)
class TrajectoryAttentionConfig:
    r"""Options of :func:`apply_trajectory_attention`.

    Attributes:
        variant: ``"vanilla"``, ``"tuning"``, ``"addon"`` or ``"inherit"``.
        mode: sampling mode, ``"nearest"`` (official) or ``"bilinear"``.
        num_trajectories_factor: each call uses ``factor * h * w`` random trajectories
            (official: 2); None uses all of them.
        seed: seed of the subset generator, reset by every :func:`set_trajectories`.
        compat_mixed_pairs: reproduce the official SDPA processor's reshape, for any number of
            trajectories (see module docstring); the ``trajattn`` preset turns it on.
        mask_invalid_keys: mask invalid points out of the keys instead of attending to
            zero tokens (the official behaviour).
    """

    variant: str = "inherit"
    mode: str = "nearest"
    num_trajectories_factor: float | None = 2
    seed: int = 0
    compat_mixed_pairs: bool = False
    mask_invalid_keys: bool = False

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")

    @property
    def has_branch(self) -> bool:
        return self.variant in ("addon", "inherit")


@dataclass
class _State:
    config: TrajectoryAttentionConfig
    processors: dict[str, TrajectoryAttnProcessor]
    hooks: list = field(default_factory=list)
    tracks: torch.Tensor | None = None
    visible: torch.Tensor | None = None
    image_size: tuple[int, int] | None = None
    generator: torch.Generator | None = None
    on_device: dict = field(default_factory=dict)
    capture: dict | None = None

    def device_tracks(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = str(device)
        if key not in self.on_device:
            self.on_device[key] = (self.tracks.to(device), self.visible.to(device))
        return self.on_device[key]


def official_sequence_length(num_tokens: int, frames: int, rows: int) -> int:
    r"""Tokens per attention sequence of the official SDPA processor's reshape.

    It views the ``num_tokens`` gathered sequences of ``frames`` tokens (``B N``) with the
    pre-gather batch size ``rows`` (``B h w``): ``num_tokens * frames / rows`` tokens each
    (``2 F`` for the official ``N = 2 h w``). Raises ValueError where the official ``view``
    fails (not a whole number).
    """
    if (num_tokens * frames) % rows:
        raise ValueError(
            f"compat_mixed_pairs: the official view(B*h*w, -1, ...) cannot split "
            f"{num_tokens} x {frames} tokens into {rows} sequences; choose a trajectory "
            "count N with N * frames divisible by h * w"
        )
    return num_tokens * frames // rows


def _attend(
    attn: Attention,
    x: torch.Tensor,
    key_mask: torch.Tensor | None = None,
    mixed_pairs: bool = False,
    want_probs: bool = False,
    mixed_length: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""Self-attention of ``attn`` over the frame axis of ``x (S, F, C)``.

    ``mixed_length``: regroup the ``S F`` tokens into sequences of this many (the official
    reshape, :func:`official_sequence_length`); ``mixed_pairs`` alone means ``2 F``.

    Returns the projected output ``(S, F, C)`` and, if ``want_probs``, the attention
    probabilities averaged over sequences and heads.
    """
    q, k, v = attn.to_q(x), attn.to_k(x), attn.to_v(x)
    out, probs = _attend_projected(
        attn, q, k, v, key_mask, mixed_pairs, want_probs, mixed_length
    )
    return attn.to_out[1](attn.to_out[0](out)) / attn.rescale_output_factor, probs


def _attend_projected(
    attn: Attention,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_mask: torch.Tensor | None = None,
    mixed_pairs: bool = False,
    want_probs: bool = False,
    mixed_length: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""The multi-head attention of :func:`_attend` on projected ``q, k, v (S, F, C)``, before
    ``to_out``: returns ``(S, F, C)`` and the probabilities if ``want_probs``."""
    seqs, frames, _ = q.shape
    if mixed_pairs and mixed_length is None:
        mixed_length = 2 * frames
    if mixed_length is not None:
        total = seqs * frames
        if total % mixed_length:
            raise ValueError(
                f"compat_mixed_pairs: {seqs} x {frames} tokens do not split into sequences "
                f"of {mixed_length}"
            )
        q, k, v = (t.reshape(total // mixed_length, mixed_length, t.shape[-1]) for t in (q, k, v))
        if key_mask is not None:
            key_mask = key_mask.reshape(total // mixed_length, mixed_length)
    heads = attn.heads
    head_dim = q.shape[-1] // heads
    q, k, v = (
        t.reshape(t.shape[0], t.shape[1], heads, head_dim).transpose(1, 2) for t in (q, k, v)
    )
    mask = None
    if key_mask is not None:
        key_mask = key_mask | ~key_mask.any(-1, keepdim=True)  # never mask a whole row
        mask = key_mask[:, None, None, :]
    probs = None
    if want_probs:
        scores = (q @ k.transpose(-1, -2)) * attn.scale
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = scores.softmax(-1)
        out = weights @ v
        probs = weights.detach().float().mean(dim=(0, 1))
    else:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=attn.scale)
    out = out.transpose(1, 2).reshape(q.shape[0], q.shape[2], heads * head_dim)
    return out.reshape(seqs, frames, -1), probs


def _commutes_with_sampling(attn: Attention) -> bool:
    """Whether projecting before Alg. 1 and applying ``to_out`` after Alg. 2 is exact.

    q/k/v are linear without bias, so ``to_q(gather(h)) == gather(to_q(h))`` (zero tokens stay
    zero); ``to_out`` is affine, so it commutes with the count-normalised mean on covered
    cells (its bias is then masked to keep uncovered cells 0). Dropout breaks the identity;
    layers other than plain ``nn.Linear`` (LoRA, quantised) take the direct path, since the
    fast one reads their ``weight`` and ``bias`` only.
    """
    layers = [getattr(attn, n) for n in ("to_q", "to_k", "to_v")] + [attn.to_out[0]]
    plain = all(type(layer) is torch.nn.Linear for layer in layers)
    no_bias = plain and all(layer.bias is None for layer in layers[:3])
    dropout = attn.to_out[1]
    inert = not isinstance(dropout, torch.nn.Dropout) or dropout.p == 0 or not dropout.training
    return no_bias and inert


def _attend_along_trajectories(
    attn: Attention,
    hidden: torch.Tensor,
    index: TrajectoryIndex,
    key_mask: torch.Tensor | None = None,
    mixed_pairs: bool = False,
    want_probs: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    r"""Alg. 1, attention of ``attn`` along the trajectories, Alg. 2, on ``(B * h * w, F, C)``.

    Returns ``(back (B * h * w, F, C), covered (h * w, F), probs)``. Equal (to rounding) to
    ``scatter_back(_attend(attn, gather_tokens(hidden, index)))``, which is the path taken when
    :func:`_commutes_with_sampling` is false. Otherwise the projections run on the ``h * w``
    grid cells rather than on the ``N = 2 h w`` sampled tokens, halving their cost: q/k/v in
    one matmul before one gather, ``to_out`` after the scatter.
    """
    mixed_length = None
    if mixed_pairs:  # the official view(B*h*w, -1, ...): N F / (h w) tokens per sequence
        batch = hidden.shape[0] // (index.latent_size[0] * index.latent_size[1])
        mixed_length = official_sequence_length(
            batch * index.num_trajectories, hidden.shape[1], hidden.shape[0]
        )
    if not _commutes_with_sampling(attn):
        out, probs = _attend(
            attn, gather_tokens(hidden, index), key_mask, mixed_pairs, want_probs, mixed_length
        )
        back, covered = scatter_back(out, index)
        return back, covered, probs
    weight = torch.cat([attn.to_q.weight, attn.to_k.weight, attn.to_v.weight])
    qkv = gather_tokens(F.linear(hidden, weight), index)
    q, k, v = qkv.split(
        [attn.to_q.out_features, attn.to_k.out_features, attn.to_v.out_features], -1
    )
    out, probs = _attend_projected(
        attn, q, k, v, key_mask, mixed_pairs, want_probs, mixed_length
    )
    mean, covered = scatter_back(out, index)
    proj = attn.to_out[0]
    back = F.linear(mean, proj.weight)
    if proj.bias is not None:
        batch = hidden.shape[0] // covered.shape[0]
        back = back.add_(proj.bias).mul_(covered.repeat(batch, 1)[..., None].to(back.dtype))
    if attn.rescale_output_factor != 1:
        back = back / attn.rescale_output_factor
    return back, covered, probs


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
            temporal, probs = _attend(attn, hidden_states, want_probs=True)
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
        count = None
        if config.num_trajectories_factor is not None:
            count = int(config.num_trajectories_factor * h * w)
        tracks, visible = state.device_tracks(hidden_states.device)
        index = build_trajectory_index(
            tracks, visible, state.image_size, (h, w), config.mode, count, state.generator
        )
        batch = hidden_states.shape[0] // (h * w)
        key_mask = index.key_mask(batch) if config.mask_invalid_keys else None
        module = self.branch if self.branch is not None else attn
        back, covered, probs = _attend_along_trajectories(
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


def _state(unet: torch.nn.Module) -> _State:
    state = getattr(unet, _STATE_ATTR, None)
    if state is None:
        raise RuntimeError("trajectory attention is not applied to this model")
    return state


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
    config = config or TrajectoryAttentionConfig()
    state = _State(config=config, processors={})
    blocks = temporal_blocks(unet)
    if not blocks:
        raise ValueError("the model has no TemporalBasicTransformerBlock")
    for name, block in blocks.items():
        branch = None
        if config.has_branch:
            branch = _make_branch(block.attn1, copy_qkv=config.variant == "inherit")
            block.add_module(BRANCH_NAME, branch)
        processor = TrajectoryAttnProcessor(name, state, block.attn1.processor, branch)
        block.attn1.processor = processor
        state.processors[name] = processor
    for module in unet.modules():
        if isinstance(module, TransformerSpatioTemporalModel):
            procs = [b.attn1.processor for b in module.temporal_transformer_blocks]
            state.hooks.append(
                module.register_forward_pre_hook(_latent_size_hook(procs), with_kwargs=True)
            )
    setattr(unet, _STATE_ATTR, state)
    return list(blocks)


def _latent_size_hook(processors: list):
    def hook(module, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        for proc in processors:
            if isinstance(proc, TrajectoryAttnProcessor):
                proc.latent_size = (int(hidden.shape[-2]), int(hidden.shape[-1]))

    return hook


def remove_trajectory_attention(unet: torch.nn.Module) -> None:
    """Undo :func:`apply_trajectory_attention`: original processors back, branches removed."""
    state = _state(unet)
    blocks = temporal_blocks(unet)
    for name, proc in state.processors.items():
        block = blocks[name]
        block.attn1.processor = proc.base
        if BRANCH_NAME in block._modules:
            del block._modules[BRANCH_NAME]
    for handle in state.hooks:
        handle.remove()
    delattr(unet, _STATE_ATTR)


def get_config(unet: torch.nn.Module) -> TrajectoryAttentionConfig:
    """The config trajectory attention was applied with."""
    return _state(unet).config


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
    state = _state(unet)
    tracks = torch.as_tensor(np.asarray(tracks) if not torch.is_tensor(tracks) else tracks)
    visible = torch.as_tensor(np.asarray(visible) if not torch.is_tensor(visible) else visible)
    if tracks.ndim != 3 or tracks.shape[-1] != 2:
        raise ValueError(f"tracks must have shape (F, L, 2), got {tuple(tracks.shape)}")
    if tuple(visible.shape) != tuple(tracks.shape[:2]):
        raise ValueError(
            f"visible must have shape {tuple(tracks.shape[:2])}, got {tuple(visible.shape)}"
        )
    state.tracks = tracks.to(torch.float32)
    state.visible = visible.to(torch.bool)
    state.image_size = (int(image_size[0]), int(image_size[1]))
    state.generator = torch.Generator().manual_seed(state.config.seed)
    state.on_device = {}


def clear_trajectories(unet: torch.nn.Module) -> None:
    """Back to plain temporal attention (the branch is skipped)."""
    state = _state(unet)
    state.tracks = state.visible = state.image_size = state.generator = None
    state.on_device = {}


@contextlib.contextmanager
def trajectories(
    unet: torch.nn.Module,
    tracks: torch.Tensor | np.ndarray,
    visible: torch.Tensor | np.ndarray,
    image_size: tuple[int, int],
) -> Iterator[None]:
    """Context manager around :func:`set_trajectories` / :func:`clear_trajectories`."""
    set_trajectories(unet, tracks, visible, image_size)
    try:
        yield
    finally:
        clear_trajectories(unet)


def trainable_parameters(
    unet: torch.nn.Module, variant: str | None = None
) -> list[torch.nn.Parameter]:
    r"""The parameters a variant trains: none (vanilla), every ``attn1`` (tuning), every
    ``traj_attn`` branch (addon, inherit). ``variant`` defaults to the applied one."""
    variant = variant or get_config(unet).variant
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    params: list[torch.nn.Parameter] = []
    for name, block in temporal_blocks(unet).items():
        if variant == "tuning":
            params.extend(block.attn1.parameters())
        elif variant in ("addon", "inherit"):
            branch = getattr(block, BRANCH_NAME, None)
            if branch is None:
                raise RuntimeError(f"{name} has no {BRANCH_NAME} branch")
            params.extend(branch.parameters())
    return params


def freeze_except_trainable(
    unet: torch.nn.Module, variant: str | None = None
) -> list[torch.nn.Parameter]:
    """Set ``requires_grad`` on exactly :func:`trainable_parameters` and return them."""
    params = trainable_parameters(unet, variant)
    unet.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    return params


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
    state = _state(unet)
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
