"""Parametric camera paths with stable names, e.g. ``orbit_left_15deg+pedestal_up_10pct``.

Each motion is the camera-to-world pose of frame i expressed in frame 0's camera coordinates
(OpenCV axes: x right, y down, z forward) as a function of progress s = i / (F - 1) in [0, 1]
(linear easing); the named magnitude is reached exactly at the last frame. D is the scene
median depth (``depth``), the unit of ``pct`` translations and the orbit radius.

- ``pan_left|pan_right_{a}deg``: rotate about the camera's y axis; pan_left turns the forward
  vector toward -x, so scene content moves right in the image.
- ``tilt_up|tilt_down_{a}deg``: rotate about x; tilt_up turns the forward vector toward -y.
- ``roll_cw|roll_ccw_{a}deg``: rotate about z; roll_cw turns the camera clockwise as displayed
  (its x axis toward +y), so image content turns counter-clockwise.
- ``dolly_in|dolly_out_{p}pct``: centre moves along +z / -z by p% of D.
- ``truck_left|truck_right_{p}pct``: along -x / +x by p% of D.
- ``pedestal_up|pedestal_down_{p}pct``: along -y / +y by p% of D.
- ``orbit_left|orbit_right_{a}deg``: around the vertical axis through P = (0, 0, D), looking at
  P: rotation R_y(alpha), centre P + R_y(alpha) @ (0, 0, -D), alpha = +a*s for left (camera
  moves toward -x) and -a*s for right.
- ``orbit_up|orbit_down_{a}deg``: the same about the x axis through P: rotation R_x(beta),
  beta = -a*s for up (camera moves toward -y and tilts down), +a*s for down.
- ``static``: identity for every frame.

Magnitudes are written canonically: no leading zeros, ``p`` for the decimal point and no
trailing zeros (``15deg``, ``12p5pct``, ``0p25deg``); other spellings are rejected so one path
has one name. Components joined by ``+`` compose in name order: T(s) = T1(s) @ T2(s).
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass

import numpy as np

from benchmark.cameras.convention import invert_rigid
from benchmark.cameras.path import CameraPath

__all__ = [
    "MOTIONS",
    "MotionSpec",
    "parse_camera_name",
    "camera_name",
    "relative_c2w",
    "make_camera_path",
]

_DIRECTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "pan": (("left", "right"), "deg"),
    "tilt": (("up", "down"), "deg"),
    "roll": (("cw", "ccw"), "deg"),
    "dolly": (("in", "out"), "pct"),
    "truck": (("left", "right"), "pct"),
    "pedestal": (("up", "down"), "pct"),
    "orbit": (("left", "right", "up", "down"), "deg"),
}

MOTIONS: list[str] = [
    f"{motion}_{direction}" for motion, (dirs, _) in _DIRECTIONS.items() for direction in dirs
] + ["static"]
"""Every motion name without its magnitude (``static`` takes none)."""

_MAGNITUDE = re.compile(r"(0|[1-9][0-9]*)(?:p([0-9]*[1-9]))?(deg|pct)")


@dataclass(frozen=True)
class MotionSpec:
    """One component of a camera name, e.g. MotionSpec("pan", "left", 15.0, "deg").

    ``static`` is MotionSpec("static", "", 0.0, "").
    """

    motion: str
    direction: str
    magnitude: float
    unit: str


def _name_error(name: str, component: str, problem: str, guess: str | None) -> ValueError:
    hint = f" Did you mean {guess!r}?" if guess else ""
    return ValueError(
        f"bad camera name {name!r}: component {component!r}: {problem}.{hint} "
        f"Valid motions: {', '.join(MOTIONS)}; magnitudes like 15deg or 12p5pct "
        f"(deg for pan/tilt/roll/orbit, pct for dolly/truck/pedestal); join with '+'."
    )


def _parse_component(name: str, comp: str) -> MotionSpec:
    if comp == "static":
        return MotionSpec("static", "", 0.0, "")
    key, _, magnitude = comp.rpartition("_")
    if key not in MOTIONS or key == "static":
        # Suggest from the motion part if the magnitude looks right, else from the whole.
        guess = None
        if _MAGNITUDE.fullmatch(magnitude) and key:
            close = difflib.get_close_matches(key, MOTIONS[:-1], n=1, cutoff=0.5)
            guess = f"{close[0]}_{magnitude}" if close else None
        if guess is None:
            close = difflib.get_close_matches(comp, MOTIONS, n=1, cutoff=0.5)
            if not close and key:
                close = difflib.get_close_matches(key, MOTIONS, n=1, cutoff=0.5)
            guess = close[0] if close else None
        raise _name_error(name, comp, "unknown motion", guess)
    motion, direction = key.split("_")
    unit = _DIRECTIONS[motion][1]
    match = _MAGNITUDE.fullmatch(magnitude)
    if match is None:
        guess = None
        loose = re.fullmatch(r"([0-9]+(?:[p.][0-9]+)?)([a-z]*)", magnitude)
        if loose:
            try:
                value = float(loose.group(1).replace("p", "."))
                guess = f"{key}_{_format_magnitude(value)}{unit}"
            except ValueError:
                guess = None
        raise _name_error(
            name, comp, f"bad magnitude {magnitude!r} (write e.g. 15{unit} or 12p5{unit})", guess
        )
    if match.group(3) != unit:
        raise _name_error(
            name,
            comp,
            f"{motion} takes {unit}, not {match.group(3)}",
            f"{key}_{match.group(1)}{'p' + match.group(2) if match.group(2) else ''}{unit}",
        )
    whole, frac = match.group(1), match.group(2)
    value = float(f"{whole}.{frac}" if frac else whole)
    return MotionSpec(motion, direction, value, unit)


def parse_camera_name(name: str) -> list[MotionSpec]:
    """Split a camera name into its components; ValueError (with a suggestion) if invalid."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"bad camera name {name!r}: empty. Valid motions: {', '.join(MOTIONS)}")
    return [_parse_component(name, comp) for comp in name.split("+")]


def _format_magnitude(value: float) -> str:
    """Canonical magnitude text: 15.0 -> "15", 12.5 -> "12p5" (shortest exact decimal)."""
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"magnitude must be finite and >= 0, got {value}")
    return np.format_float_positional(value, trim="-").replace(".", "p")


def camera_name(specs: list[MotionSpec] | MotionSpec) -> str:
    """Canonical name of a list of components; inverse of parse_camera_name."""
    if isinstance(specs, MotionSpec):
        specs = [specs]
    if not specs:
        raise ValueError("camera_name: need at least one MotionSpec")
    parts = []
    for spec in specs:
        if spec.motion == "static":
            parts.append("static")
            continue
        if spec.motion not in _DIRECTIONS or spec.direction not in _DIRECTIONS[spec.motion][0]:
            raise ValueError(f"unknown motion {spec.motion}_{spec.direction}; valid: {MOTIONS}")
        unit = _DIRECTIONS[spec.motion][1]
        if spec.unit != unit:
            raise ValueError(f"{spec.motion} takes unit {unit!r}, got {spec.unit!r}")
        parts.append(f"{spec.motion}_{spec.direction}_{_format_magnitude(spec.magnitude)}{unit}")
    return "+".join(parts)


def _matrices(rows: list[list[np.ndarray]]) -> np.ndarray:
    """Stack a 3x3 grid of (N,) arrays into (N, 3, 3)."""
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def _rot_x(phi: np.ndarray) -> np.ndarray:
    """R_x(phi) = [[1, 0, 0], [0, cos, -sin], [0, sin, cos]] for each angle."""
    c, s, o, z = np.cos(phi), np.sin(phi), np.ones_like(phi), np.zeros_like(phi)
    return _matrices([[o, z, z], [z, c, -s], [z, s, c]])


def _rot_y(phi: np.ndarray) -> np.ndarray:
    """R_y(phi) = [[cos, 0, sin], [0, 1, 0], [-sin, 0, cos]] for each angle."""
    c, s, o, z = np.cos(phi), np.sin(phi), np.ones_like(phi), np.zeros_like(phi)
    return _matrices([[c, z, s], [z, o, z], [-s, z, c]])


def _rot_z(phi: np.ndarray) -> np.ndarray:
    """R_z(phi) = [[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]] for each angle."""
    c, s, o, z = np.cos(phi), np.sin(phi), np.ones_like(phi), np.zeros_like(phi)
    return _matrices([[c, -s, z], [s, c, z], [z, z, o]])


_ROTATIONS = {  # (axis rotation, sign of the angle) per rotating motion
    ("pan", "left"): (_rot_y, -1.0),
    ("pan", "right"): (_rot_y, 1.0),
    ("tilt", "up"): (_rot_x, 1.0),
    ("tilt", "down"): (_rot_x, -1.0),
    ("roll", "cw"): (_rot_z, 1.0),
    ("roll", "ccw"): (_rot_z, -1.0),
    ("orbit", "left"): (_rot_y, 1.0),
    ("orbit", "right"): (_rot_y, -1.0),
    ("orbit", "up"): (_rot_x, -1.0),
    ("orbit", "down"): (_rot_x, 1.0),
}
_TRANSLATIONS = {  # unit direction of the camera centre per translating motion
    ("dolly", "in"): (0.0, 0.0, 1.0),
    ("dolly", "out"): (0.0, 0.0, -1.0),
    ("truck", "left"): (-1.0, 0.0, 0.0),
    ("truck", "right"): (1.0, 0.0, 0.0),
    ("pedestal", "up"): (0.0, -1.0, 0.0),
    ("pedestal", "down"): (0.0, 1.0, 0.0),
}


def _motion_c2w(spec: MotionSpec, s: np.ndarray, depth: float) -> np.ndarray:
    """Relative camera-to-frame-0 transforms (len(s), 4, 4) of one component."""
    out = np.tile(np.eye(4), (len(s), 1, 1))
    key = (spec.motion, spec.direction)
    if spec.motion == "static":
        return out
    if key in _TRANSLATIONS:
        out[:, :3, 3] = np.outer(s * (spec.magnitude / 100.0 * depth), _TRANSLATIONS[key])
        return out
    rot, sign = _ROTATIONS[key]
    r = rot(sign * math.radians(spec.magnitude) * s)
    out[:, :3, :3] = r
    if spec.motion == "orbit":  # centre P + R @ (0, 0, -D) with P = (0, 0, D)
        out[:, :3, 3] = np.array([0.0, 0.0, depth]) + r @ np.array([0.0, 0.0, -depth])
    return out


def _check_frames_depth(num_frames: int, depth: float) -> None:
    if isinstance(num_frames, bool) or not isinstance(num_frames, int | np.integer):
        raise ValueError(f"num_frames must be an integer, got {num_frames!r}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if not (math.isfinite(depth) and depth > 0):
        raise ValueError(f"depth must be finite and positive, got {depth}")


def relative_c2w(name: str, num_frames: int, depth: float = 1.0) -> np.ndarray:
    """Camera-to-frame-0 poses (F, 4, 4) of the named path; frame 0 is exactly the identity."""
    specs = parse_camera_name(name)
    _check_frames_depth(num_frames, depth)
    s = np.arange(num_frames, dtype=np.float64) / max(num_frames - 1, 1)
    total = _motion_c2w(specs[0], s, depth)
    for spec in specs[1:]:
        total = total @ _motion_c2w(spec, s, depth)
    return total


def make_camera_path(
    name: str,
    K: np.ndarray,
    width: int,
    height: int,
    num_frames: int,
    depth: float = 1.0,
    base_w2c: np.ndarray | None = None,
) -> CameraPath:
    """CameraPath of the named motion starting from ``base_w2c`` (default identity).

    w2c_i = inv(T_i) @ base_w2c with T_i = relative_c2w(name)[i], so frame 0 is base_w2c and
    the motion happens in frame 0's camera coordinates.
    """
    rel = relative_c2w(name, num_frames, depth)
    base = np.eye(4) if base_w2c is None else np.asarray(base_w2c, dtype=np.float64)
    if base.shape != (4, 4):
        raise ValueError(f"base_w2c must be 4x4, got shape {base.shape}")
    return CameraPath(K=K, w2c=invert_rigid(rel) @ base, width=width, height=height, name=name)
