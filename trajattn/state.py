"""Model-level state of trajectory attention, shared by the SVD and Wan integrations.

Neither diffusers' SVD UNet nor Wan's transformer passes attention kwargs to its processors,
so the trajectories reach them through a state object stored on the model: set before a
forward call (``set_trajectories``), read by every processor, cleared after. This module
holds that state and the steps both integrations take the same way (attach processors and
branches, detach them, pick the trainable parameters, freeze the rest).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from trajattn.config import BRANCH_NAME, VARIANTS, TrajectoryAttentionConfig
from trajattn.sampling import TrajectoryIndex, build_trajectory_index


def as_track_tensors(
    tracks: torch.Tensor | np.ndarray, visible: torch.Tensor | np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tracks ``(F, L, 2)`` and ``visible (F, L)`` as tensors, shapes checked (no copy)."""
    tracks = torch.as_tensor(np.asarray(tracks) if not torch.is_tensor(tracks) else tracks)
    visible = torch.as_tensor(np.asarray(visible) if not torch.is_tensor(visible) else visible)
    if tracks.ndim != 3 or tracks.shape[-1] != 2:
        raise ValueError(f"tracks must have shape (F, L, 2), got {tuple(tracks.shape)}")
    if tuple(visible.shape) != tuple(tracks.shape[:2]):
        raise ValueError(
            f"visible must have shape {tuple(tracks.shape[:2])}, got {tuple(visible.shape)}"
        )
    return tracks, visible


@dataclass
class TrajectoryState:
    """What a model's trajectory-attention processors share.

    Attributes:
        config: the options attention was applied with.
        processors: the installed processors by block path.
        hooks: forward-hook handles to remove on detach.
        tracks, visible: current trajectories ``(F, L, 2)`` float32 / ``(F, L)`` bool, or None.
        image_size: ``(H, W)`` the tracks live in.
        generator: draws each call's trajectory subset; reseeded by :meth:`set`.
    """

    config: TrajectoryAttentionConfig
    processors: dict[str, Any] = field(default_factory=dict)
    hooks: list = field(default_factory=list)
    tracks: torch.Tensor | None = None
    visible: torch.Tensor | None = None
    image_size: tuple[int, int] | None = None
    generator: torch.Generator | None = None
    on_device: dict = field(default_factory=dict)

    def set(self, tracks: torch.Tensor, visible: torch.Tensor, image_size) -> None:
        """Use these trajectories from now on; the subset generator restarts at the seed."""
        self.tracks = tracks.to(torch.float32)
        self.visible = visible.to(torch.bool)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.generator = torch.Generator().manual_seed(self.config.seed)
        self.on_device = {}

    def clear(self) -> None:
        """No trajectories: processors compute plain attention."""
        self.tracks = self.visible = self.image_size = self.generator = None
        self.on_device = {}

    def device_tracks(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The trajectories on ``device`` (copied once per :meth:`set`)."""
        key = str(device)
        if key not in self.on_device:
            self.on_device[key] = (self.tracks.to(device), self.visible.to(device))
        return self.on_device[key]

    def index(self, latent_size: tuple[int, int], device: torch.device) -> TrajectoryIndex:
        """This call's trajectory index on an ``(h, w)`` grid (a fresh random subset)."""
        tracks, visible = self.device_tracks(device)
        return build_trajectory_index(
            tracks,
            visible,
            self.image_size,
            latent_size,
            self.config.mode,
            self.config.num_trajectories(latent_size),
            self.generator,
        )


def _attn1(block: torch.nn.Module) -> torch.nn.Module:
    return block.attn1


def get_state(model: torch.nn.Module, attr: str) -> Any:
    """The state stored on ``model`` under ``attr``; RuntimeError if none is."""
    state = getattr(model, attr, None)
    if state is None:
        raise RuntimeError("trajectory attention is not applied to this model")
    return state


@contextlib.contextmanager
def scoped(start: Callable[[], None], stop: Callable[[], None]) -> Iterator[None]:
    """Run ``start``, yield, and always run ``stop`` (the ``trajectories`` context managers)."""
    start()
    try:
        yield
    finally:
        stop()


def install(
    model: torch.nn.Module,
    attr: str,
    state: TrajectoryState,
    blocks: dict[str, torch.nn.Module],
    make_branch: Callable[[torch.nn.Module, bool], torch.nn.Module],
    make_processor: Callable[[str, Any, torch.nn.Module | None], Any],
    self_attention: Callable[[torch.nn.Module], torch.nn.Module] = _attn1,
) -> list[str]:
    """Give every block's self-attention a trajectory processor (and a branch for addon and
    inherit).

    ``make_branch(attn, copy_weights)`` builds a branch; ``make_processor(name, base,
    branch)`` the processor wrapping the attention's original one; ``self_attention(block)``
    is the attention (``attn1`` in SVD and Wan). Stores ``state`` on the model.
    """
    if getattr(model, attr, None) is not None:
        raise RuntimeError("trajectory attention is already applied; remove it first")
    config = state.config
    for name, block in blocks.items():
        attn = self_attention(block)
        branch = None
        if config.has_branch:
            branch = make_branch(attn, config.variant == "inherit")
            block.add_module(BRANCH_NAME, branch)
        processor = make_processor(name, attn.processor, branch)
        attn.processor = processor
        state.processors[name] = processor
    setattr(model, attr, state)
    return list(blocks)


def uninstall(
    model: torch.nn.Module,
    attr: str,
    blocks: dict[str, torch.nn.Module],
    self_attention: Callable[[torch.nn.Module], torch.nn.Module] = _attn1,
) -> None:
    """Undo :func:`install`: original processors back, branches and hooks removed."""
    state = get_state(model, attr)
    for name, proc in state.processors.items():
        block = blocks[name]
        self_attention(block).processor = proc.base
        if BRANCH_NAME in block._modules:
            del block._modules[BRANCH_NAME]
    for handle in state.hooks:
        handle.remove()
    delattr(model, attr)


def variant_parameters(
    blocks: dict[str, torch.nn.Module],
    variant: str,
    self_attention: Callable[[torch.nn.Module], torch.nn.Module] = _attn1,
) -> dict[str, torch.nn.Parameter]:
    r"""The parameters a variant trains, by model path: none (vanilla), every block's ``attn1``
    (tuning), every ``traj_attn`` branch (addon, inherit)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    params: dict[str, torch.nn.Parameter] = {}
    for name, block in blocks.items():
        if variant == "tuning":
            module, prefix = self_attention(block), f"{name}.attn1"
        elif variant in ("addon", "inherit"):
            module, prefix = getattr(block, BRANCH_NAME, None), f"{name}.{BRANCH_NAME}"
            if module is None:
                raise RuntimeError(f"{name} has no {BRANCH_NAME} branch")
        else:
            continue
        params.update({f"{prefix}.{key}": p for key, p in module.named_parameters()})
    return params


def freeze_except(
    model: torch.nn.Module, params: list[torch.nn.Parameter]
) -> list[torch.nn.Parameter]:
    """Set ``requires_grad`` on exactly ``params`` in ``model`` and return them."""
    model.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    return params
