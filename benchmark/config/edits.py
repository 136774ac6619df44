"""Edits of editing suites (paper Sec. 4.3 / 5.4): the recolouring recipe of a synthetic scene
entry (``edit: {recolour: {...}}``), parsed and checked here so that loading a suite needs
nothing from :mod:`benchmark.sources`; :mod:`benchmark.sources.editing` applies it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: Surface kinds of the synthetic generator (:class:`benchmark.sources.synthetic.Rect`).
KINDS = ("box", "billboard", "wall")


@dataclass(frozen=True)
class Recolour:
    r"""Recolour the textures of some surfaces of a synthetic scene.

    Args:
        kinds: surface kinds to edit (``box``, ``billboard``, ``wall``).
        groups: object indices (``Rect.group``) to edit among those kinds; None: all.
        hue_deg: hue rotation (HSV, degrees).
        gain: per-channel RGB multipliers applied after the rotation (clipped to 0..255).
    """

    kinds: tuple[str, ...] = ("box",)
    groups: tuple[int, ...] | None = None
    hue_deg: float = 120.0
    gain: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(KINDS)
        if not self.kinds or unknown:
            raise ValueError(f"recolour kinds must be among {KINDS}, got {list(self.kinds)}")
        if len(self.gain) != 3 or min(self.gain) < 0:
            raise ValueError(f"recolour gain must be 3 non-negative numbers, got {self.gain}")
        if self.hue_deg % 360 == 0 and tuple(self.gain) == (1.0, 1.0, 1.0):
            raise ValueError("recolour changes nothing: give hue_deg (not 0 mod 360) or gain")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Recolour:
        known = {"kinds", "groups", "hue_deg", "gain"}
        if set(d) - known:
            raise ValueError(f"unknown recolour keys {sorted(set(d) - known)}; known: "
                             f"{sorted(known)}")
        kw: dict[str, Any] = dict(d)
        if "kinds" in kw:
            kw["kinds"] = tuple(kw["kinds"])
        if kw.get("groups") is not None:
            kw["groups"] = tuple(int(g) for g in kw["groups"])
        if "gain" in kw:
            kw["gain"] = tuple(float(g) for g in kw["gain"])
        if "hue_deg" in kw:
            kw["hue_deg"] = float(kw["hue_deg"])
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kinds"], d["gain"] = list(self.kinds), list(self.gain)
        d["groups"] = None if self.groups is None else list(self.groups)
        return d

    def selects(self, rect: Any) -> bool:
        """Whether ``rect`` (a :class:`benchmark.sources.synthetic.Rect`) is edited."""
        return rect.kind in self.kinds and (self.groups is None or rect.group in self.groups)

    def apply(self, texture: np.ndarray) -> np.ndarray:
        """The recoloured uint8 (H, W, 3) RGB texture."""
        import cv2  # only when an edit is applied: suite validation stays light

        out = np.ascontiguousarray(texture, np.uint8)
        if self.hue_deg % 360:
            hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)  # OpenCV 8-bit hue: 0..179 (2 deg)
            shift = int(round(self.hue_deg / 2.0))
            hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + shift) % 180).astype(np.uint8)
            out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        if tuple(self.gain) != (1.0, 1.0, 1.0):
            out = np.clip(np.rint(out * np.asarray(self.gain)), 0, 255).astype(np.uint8)
        return out


def parse_edit(edit: dict[str, Any]) -> Recolour:
    """The edit of a suite scene entry (``{recolour: {...}}``); errors name the problem."""
    if not isinstance(edit, dict) or set(edit) != {"recolour"}:
        raise ValueError(f"an edit is {{recolour: {{...}}}}, got {edit!r}")
    return Recolour.from_dict(edit["recolour"] or {})
