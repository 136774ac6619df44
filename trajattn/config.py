"""Options of trajectory attention, shared by the SVD (:mod:`trajattn.attention`) and Wan
(:mod:`trajattn.wan.attention`) integrations.

Variants (paper Sec. 3.2-3.4): ``vanilla`` (``attn1`` itself attends along the trajectories,
nothing trains), ``tuning`` (vanilla with ``attn1`` trainable), ``addon`` (a new branch at
default init) and ``inherit`` (the branch's q/k/v copied from ``attn1``, ``to_out`` zeroed).
"""

from __future__ import annotations

from dataclasses import dataclass

from trajattn.sampling import MODES

VARIANTS = ("vanilla", "tuning", "addon", "inherit")
#: Name of the branch submodule added to each block (``addon``, ``inherit``).
BRANCH_NAME = "traj_attn"


@dataclass(frozen=True)
class TrajectoryAttentionConfig:
    r"""Options of ``apply_trajectory_attention`` (SVD and Wan).

    Attributes:
        variant: ``"vanilla"``, ``"tuning"``, ``"addon"`` or ``"inherit"``.
        mode: sampling mode, ``"nearest"`` (official) or ``"bilinear"``.
        num_trajectories_factor: each call uses ``factor * h * w`` random trajectories
            (official: 2); None uses all of them.
        seed: seed of the subset generator, reset by every ``set_trajectories``.
        compat_mixed_pairs: reproduce the official SDPA processor's reshape, for any number of
            trajectories (see :mod:`trajattn.attention`); the ``trajattn`` preset turns it on.
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

    def num_trajectories(self, latent_size: tuple[int, int]) -> int | None:
        """How many trajectories one call draws on an ``(h, w)`` grid (None: all)."""
        if self.num_trajectories_factor is None:
            return None
        return int(self.num_trajectories_factor * latent_size[0] * latent_size[1])
