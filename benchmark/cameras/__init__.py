"""Camera paths: the project's single camera convention, validation and file formats.

Conventions (every module in trajbench uses these; convert at the boundary, never inside):

- Intrinsics ``K``: 3x3 float64 in pixels of the frames they describe. Upper-triangular with
  ``K[2] == (0, 0, 1)`` and positive ``fx = K[0, 0]``, ``fy = K[1, 1]`` (skew ``K[0, 1]`` is
  allowed but the RealEstate10K format cannot store it).
- Extrinsics: one world-to-camera 4x4 float64 matrix per frame (``w2c``, shape (F, 4, 4)),
  OpenCV axes (x right, y down, z forward). Frame 0 is the conditioning view.
- Pixel coordinates are continuous with the origin at the top-left image corner: pixel
  (row i, col j) covers [j, j+1) x [i, i+1) and its centre is (j + 0.5, i + 0.5) (COLMAP's
  convention). A centred principal point is therefore ``cx = W / 2``, ``cy = H / 2``, and
  resizing an image by (sx, sy) scales ``fx, skew, cx`` by sx and ``fy, cy`` by sy.
- Translations are in units of the frame-0 median scene depth unless a file says otherwise.

File formats: trajbench JSON (``trajbench.camera_path/1``, bit-exact round trip), RealEstate10K
camera text files, and TUM trajectories via evo (camera-to-world poses, for trajectory metrics).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmark.io import atomic_write, atomic_write_text

if TYPE_CHECKING:  # evo is imported lazily: it is slow to import and only needed for export
    from evo.core.trajectory import PoseTrajectory3D

__all__ = [
    "FORMAT",
    "ORTHONORMAL_TOL",
    "DEFAULT_FRAME_INTERVAL_US",
    "CameraFileError",
    "CameraPath",
    "RealEstate10KClip",
    "MAX_ROUNDING_TOL",
    "invert_rigid",
    "validate_intrinsics",
    "FOV_RANGE_DEG",
    "PRINCIPAL_POINT_MAX_OFFSET",
    "PIXEL_ASPECT_RANGE",
    "camera_path_to_dict",
    "camera_path_from_dict",
    "save_camera_path",
    "load_camera_path",
    "read_realestate10k",
    "write_realestate10k",
    "to_evo_trajectory",
    "write_tum",
]

FORMAT = "trajbench.camera_path/1"
ORTHONORMAL_TOL = 1e-6
"""Largest accepted max-abs entry of R^T R - I, and of the deviation of a pose's last row."""
DEFAULT_FRAME_INTERVAL_US = 33333
"""Default frame spacing (30 fps) for RealEstate10K and TUM timestamps."""

PathLike = str | os.PathLike[str]


class CameraFileError(ValueError):
    """A camera path or camera file is invalid; the message names the offending field."""


def invert_rigid(m: np.ndarray) -> np.ndarray:
    """Invert rigid 4x4 transforms (..., 4, 4) as [R^T, -R^T t], with an exact (0, 0, 0, 1) row.

    Preferred over np.linalg.inv so the result passes CameraPath validation bit-for-bit.
    """
    m = np.asarray(m, dtype=np.float64)
    rot_t = np.swapaxes(m[..., :3, :3], -1, -2)
    out = np.zeros(m.shape, dtype=np.float64)
    out[..., :3, :3] = rot_t
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", rot_t, m[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def _check_pose(m: np.ndarray, label: str) -> None:
    """Raise CameraFileError unless ``m`` is a finite rigid 4x4 transform (R in SO(3))."""
    if not np.all(np.isfinite(m)):
        raise CameraFileError(f"{label}: contains NaN or inf")
    last = np.abs(m[3] - np.array([0.0, 0.0, 0.0, 1.0])).max()
    if last > ORTHONORMAL_TOL:
        raise CameraFileError(f"{label}: last row is {m[3].tolist()}, expected [0, 0, 0, 1]")
    rot = m[:3, :3]
    err = float(np.abs(rot.T @ rot - np.eye(3)).max())
    if err > ORTHONORMAL_TOL:
        raise CameraFileError(f"{label}: rotation is not orthonormal (|R^T R - I| = {err:.3g})")
    det = float(np.linalg.det(rot))
    if det <= 0.0:
        raise CameraFileError(f"{label}: rotation has det(R) = {det:.3g}, expected +1")


def _check_intrinsics(k: np.ndarray, label: str = "K") -> None:
    """Raise CameraFileError unless ``k`` is a finite pinhole matrix with positive focals."""
    if k.shape != (3, 3):
        raise CameraFileError(f"{label}: expected shape (3, 3), got {k.shape}")
    if not np.all(np.isfinite(k)):
        raise CameraFileError(f"{label}: contains NaN or inf")
    if k[1, 0] != 0.0 or k[2, 0] != 0.0 or k[2, 1] != 0.0:
        raise CameraFileError(f"{label}: not upper-triangular ({k.tolist()})")
    if k[2, 2] != 1.0:
        raise CameraFileError(f"{label}: K[2] is {k[2].tolist()}, expected [0, 0, 1]")
    if not (k[0, 0] > 0.0 and k[1, 1] > 0.0):
        raise CameraFileError(
            f"{label}: focal lengths must be positive (fx={k[0, 0]}, fy={k[1, 1]})"
        )


#: Plausible horizontal and vertical field of view of a pinhole K, in degrees. Outside it a K
#: almost always describes other units or other frames (RealEstate10K intrinsics written in
#: pixels give ~0.1 deg; pixel intrinsics stored as normalised ones give ~179 deg).
FOV_RANGE_DEG = (1.0, 170.0)
#: Largest offset of the principal point from the frame centre, as a fraction of the frame's
#: width (for cx) and height (for cy): (cx, cy) must lie in the middle 40% of each axis. Whole
#: frames have it near the centre; a K of frames twice (or half) the size puts it at a corner
#: (or a quarter of the way in), which is how a K for another resolution shows.
PRINCIPAL_POINT_MAX_OFFSET = 0.2
#: Plausible pixel aspect fy / fx (square pixels give 1; a K normalised by the wrong side or
#: denormalised by the wrong size gives W / H or H / W).
PIXEL_ASPECT_RANGE = (0.5, 2.0)


def _fov_deg(focal: float, size: int) -> float:
    return math.degrees(2.0 * math.atan(size / (2.0 * focal)))


def _implausibility(k: np.ndarray, width: int, height: int) -> str | None:
    """Why pixel intrinsics ``k`` cannot describe ``width`` x ``height`` frames, or None."""
    fx, fy, cx, cy = float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2])
    size = f"{width}x{height}"
    hfov, vfov = _fov_deg(fx, width), _fov_deg(fy, height)
    lo, hi = FOV_RANGE_DEG
    if not (lo <= hfov <= hi and lo <= vfov <= hi):
        if hfov < lo or vfov < lo:
            cause = (f"focal lengths of {fx:.6g}, {fy:.6g} px are far longer than the frame; "
                     "intrinsics look like pixels where normalised values were expected, or "
                     "like pixels of much larger frames")
        else:
            cause = (f"focal lengths of {fx:.6g}, {fy:.6g} px are far shorter than the frame; "
                     "intrinsics look normalised by width and height where pixels were "
                     "expected, or like pixels of much smaller frames")
        return (f"implausible field of view {hfov:.3g} x {vfov:.3g} deg for {size} frames "
                f"(sane: {lo:g}-{hi:g} deg): {cause}")
    aspect = fy / fx
    if not PIXEL_ASPECT_RANGE[0] <= aspect <= PIXEL_ASPECT_RANGE[1]:
        return (f"implausible pixel aspect fy/fx = {aspect:.3g} for {size} frames (sane: "
                f"{PIXEL_ASPECT_RANGE[0]:g}-{PIXEL_ASPECT_RANGE[1]:g}): fx and fy look "
                "normalised or scaled by different sizes")
    off_x, off_y = abs(cx / width - 0.5), abs(cy / height - 0.5)
    if max(off_x, off_y) > PRINCIPAL_POINT_MAX_OFFSET:
        inside = 0 <= cx <= width and 0 <= cy <= height
        where = "far from the centre of" if inside else "outside"
        return (f"principal point ({cx:.6g}, {cy:.6g}) is {where} the {size} frame (sane: "
                f"within {PRINCIPAL_POINT_MAX_OFFSET:.0%} of the size from the centre "
                f"({width / 2:g}, {height / 2:g})): this K looks like it describes "
                f"{2 * cx:.6g}x{2 * cy:.6g} frames, or its values are not in pixels")
    return None


def validate_intrinsics(
    k: Any, label: str = "K", width: int | None = None, height: int | None = None
) -> np.ndarray:
    r"""Check intrinsics wherever a K enters trajbench (camera files, a method's K, a real
    image's K): the one function for it, so every entry point refuses the same things.

    Args:
        k: array-like, expected a (3, 3) pinhole matrix in pixels.
        label: what to call it in the error (e.g. the file, and line, it came from).
        width, height: size of the frames ``k`` describes; when given, ``k`` must also be
            plausible for them (see below).

    Returns:
        ``k`` as a float64 (3, 3) array.

    Raises:
        CameraFileError: not numeric, wrong shape, NaN/inf, not upper-triangular with
            ``K[2] == (0, 0, 1)``, or a non-positive focal length; with a frame size also a
            field of view outside :data:`FOV_RANGE_DEG` (1-170 deg, horizontal and vertical),
            a pixel aspect fy/fx outside :data:`PIXEL_ASPECT_RANGE` (0.5-2) or a principal
            point more than :data:`PRINCIPAL_POINT_MAX_OFFSET` (20%) of the frame size from
            its centre. The message names the problem and its likely cause (values in other
            units, or a K for frames of another size).
    """
    try:
        arr = np.array(k, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CameraFileError(f"{label}: cannot convert to a float array ({exc})") from exc
    _check_intrinsics(arr, label)
    if (width is None) != (height is None):
        raise ValueError("validate_intrinsics: give both width and height, or neither")
    if width is not None and height is not None:
        problem = _implausibility(arr, int(width), int(height))
        if problem:
            raise CameraFileError(f"{label}: {problem}")
    return arr


def _check_size(value: Any, label: str) -> int:
    """Return ``value`` as a positive int (numpy ints accepted, bools and floats rejected)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise CameraFileError(f"{label}: expected a positive integer, got {value!r}")
    if value <= 0:
        raise CameraFileError(f"{label}: must be positive, got {value}")
    return int(value)


def _frozen_array(value: Any, label: str) -> np.ndarray:
    """Copy ``value`` into a read-only float64 array (CameraPath is immutable)."""
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CameraFileError(f"{label}: cannot convert to a float array ({exc})") from exc
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class CameraPath:
    """One pinhole camera moving over F frames (see the module docstring for conventions).

    Arrays are stored as read-only float64 copies; build a new path (``with_w2c``,
    ``dataclasses.replace``) instead of editing one. ``==`` compares arrays exactly.
    """

    K: np.ndarray
    w2c: np.ndarray
    width: int
    height: int
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "K", _frozen_array(self.K, "K"))
        object.__setattr__(self, "w2c", _frozen_array(self.w2c, "w2c"))
        object.__setattr__(self, "width", _check_size(self.width, "width"))
        object.__setattr__(self, "height", _check_size(self.height, "height"))
        self.validate()

    def validate(self) -> None:
        """Raise CameraFileError (naming the field) if any invariant of the convention fails."""
        if not isinstance(self.name, str):
            raise CameraFileError(f"name: expected a string, got {type(self.name).__name__}")
        _check_size(self.width, "width")
        _check_size(self.height, "height")
        _check_intrinsics(self.K)
        w2c = self.w2c
        if w2c.ndim != 3 or w2c.shape[1:] != (4, 4):
            raise CameraFileError(f"w2c: expected shape (F, 4, 4), got {w2c.shape}")
        if w2c.shape[0] < 1:
            raise CameraFileError("w2c: needs at least one frame (F >= 1)")
        for i, m in enumerate(w2c):
            _check_pose(m, f"w2c[{i}]")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CameraPath):
            return NotImplemented
        return (
            self.width == other.width
            and self.height == other.height
            and self.name == other.name
            and np.array_equal(self.K, other.K)
            and np.array_equal(self.w2c, other.w2c)
        )

    __hash__ = None  # type: ignore[assignment]  # holds arrays; equality is by value

    @property
    def num_frames(self) -> int:
        """Number of frames F."""
        return int(self.w2c.shape[0])

    @property
    def c2w(self) -> np.ndarray:
        """Camera-to-world poses (F, 4, 4)."""
        return invert_rigid(self.w2c)

    @property
    def centers(self) -> np.ndarray:
        """Camera centres in world coordinates (F, 3)."""
        return self.c2w[:, :3, 3]

    def with_w2c(self, w2c: np.ndarray) -> CameraPath:
        """Same intrinsics, size and name with new extrinsics."""
        return replace(self, w2c=w2c)

    def relative_to_first(self) -> CameraPath:
        """Re-express the path in frame 0's camera coordinates: w2c_i @ inv(w2c_0).

        Frame 0 becomes exactly the identity; relative motion between frames is unchanged.
        """
        rel = self.w2c @ invert_rigid(self.w2c[0])
        rel[0] = np.eye(4)
        return self.with_w2c(rel)

    def resample(self, n: int) -> CameraPath:
        """Return ``n`` frames spanning the same path uniformly in frame index.

        Rotations are interpolated by scipy's Slerp on camera-to-world rotations and camera
        centres linearly. Sample times that fall on an input frame (always the first and
        last) reuse that frame's pose exactly, so ``n == F`` returns identical poses.
        ``n == 1`` returns frame 0; a one-frame path is repeated (a static camera).
        """
        n = _check_size(n, "n")
        num = self.num_frames
        if n == num:
            return self
        if n == 1:
            return self.with_w2c(self.w2c[:1])
        if num == 1:
            return self.with_w2c(np.repeat(self.w2c, n, axis=0))
        from scipy.spatial.transform import Rotation, Slerp

        c2w = self.c2w
        times = np.linspace(0.0, num - 1.0, n)
        slerp = Slerp(np.arange(num, dtype=np.float64), Rotation.from_matrix(c2w[:, :3, :3]))
        new_c2w = np.zeros((n, 4, 4))
        new_c2w[:, :3, :3] = slerp(times).as_matrix()
        for axis in range(3):
            new_c2w[:, axis, 3] = np.interp(times, np.arange(num), c2w[:, axis, 3])
        new_c2w[:, 3, 3] = 1.0
        out = invert_rigid(new_c2w)
        for k, t in enumerate(times):
            if t == round(t):
                out[k] = self.w2c[int(round(t))]
        return self.with_w2c(out)

    def rescaled(self, width: int, height: int) -> CameraPath:
        """Same cameras for the image resized to (width, height): row 0 of K times width/W,
        row 1 times height/H (corner-origin convention, so cx = W/2 stays centred)."""
        width = _check_size(width, "width")
        height = _check_size(height, "height")
        k = self.K.copy()
        k[0] *= width / self.width
        k[1] *= height / self.height
        return replace(self, K=k, width=width, height=height)


# --------------------------------------------------------------------------------------- JSON


def camera_path_to_dict(path: CameraPath) -> dict[str, Any]:
    """Plain-data form of ``path`` in the ``trajbench.camera_path/1`` format."""
    return {
        "format": FORMAT,
        "name": path.name,
        "width": path.width,
        "height": path.height,
        "num_frames": path.num_frames,
        "K": path.K.tolist(),
        "w2c": path.w2c.tolist(),
    }


def _nested_floats(value: Any, label: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """Check nested lists of finite numbers against ``shape`` (None = any length >= 1)."""

    def walk(v: Any, where: str, depth: int) -> Any:
        if depth == len(shape):
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise CameraFileError(
                    f"{where}: wrong type: expected a number, got {type(v).__name__}"
                )
            try:
                x = float(v)
            except OverflowError:
                x = math.inf
            if not math.isfinite(x):
                raise CameraFileError(f"{where}: not finite ({v})")
            return x
        if not isinstance(v, list):
            raise CameraFileError(f"{where}: wrong type: expected a list, got {type(v).__name__}")
        want = shape[depth]
        if want is not None and len(v) != want:
            raise CameraFileError(f"{where}: wrong shape: expected {want} entries, got {len(v)}")
        if want is None and not v:
            raise CameraFileError(f"{where}: wrong shape: empty list")
        return [walk(x, f"{where}[{i}]", depth + 1) for i, x in enumerate(v)]

    return np.array(walk(value, label, 0), dtype=np.float64)


def camera_path_from_dict(d: Any, check_plausible: bool = True) -> CameraPath:
    """Validate plain data in the ``trajbench.camera_path/1`` format and build a CameraPath.

    Unknown extra keys are ignored (room for annotations); every error names its field. K
    must be plausible for the frame size (:func:`validate_intrinsics`); ``check_plausible=
    False`` skips only that, to inspect or convert a file whose K is known to be unusual
    (every stage of the benchmark checks).
    """
    if not isinstance(d, dict):
        raise CameraFileError(f"top level: expected a JSON object, got {type(d).__name__}")
    if UNAVAILABLE in d:  # written by a stage that could not make the path: say why
        raise CameraFileError(f"no camera path: {d[UNAVAILABLE]}")
    for key in ("format", "name", "width", "height", "num_frames", "K", "w2c"):
        if key not in d:
            raise CameraFileError(f"{key}: missing key")
    if d["format"] != FORMAT:
        raise CameraFileError(f"format: unknown format {d['format']!r}, expected {FORMAT!r}")
    if not isinstance(d["name"], str):
        kind = type(d["name"]).__name__
        raise CameraFileError(f"name: wrong type: expected a string, got {kind}")
    for key in ("width", "height", "num_frames"):
        value = d[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise CameraFileError(
                f"{key}: wrong type: expected an integer, got {type(value).__name__}"
            )
    k = _nested_floats(d["K"], "K", (3, 3))
    w2c = _nested_floats(d["w2c"], "w2c", (None, 4, 4))
    if check_plausible and d["width"] > 0 and d["height"] > 0:  # sizes: CameraPath checks
        validate_intrinsics(k, "K", d["width"], d["height"])
    if d["num_frames"] != len(w2c):
        raise CameraFileError(
            f"num_frames: frame-count mismatch (num_frames={d['num_frames']}, "
            f"w2c has {len(w2c)} frames)"
        )
    return CameraPath(K=k, w2c=w2c, width=d["width"], height=d["height"], name=d["name"])


def save_camera_path(path: CameraPath, file: PathLike) -> Path:
    """Write ``path`` as JSON atomically; floats use repr, so loading is bit-exact."""
    d = camera_path_to_dict(path)
    header = {k: v for k, v in d.items() if k not in ("K", "w2c")}
    lines = ["{"]
    lines += [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in header.items()]
    lines.append(f'  "K": {json.dumps(d["K"], allow_nan=False)},')
    frames = [f"    {json.dumps(m, allow_nan=False)}" for m in d["w2c"]]
    lines.append('  "w2c": [\n' + ",\n".join(frames) + "\n  ]")
    lines.append("}")
    text = "\n".join(lines) + "\n"

    return atomic_write_text(file, text)


#: Key of a camera file that stands for a path that could not be made (e.g. the cameras of a
#: real clip COLMAP could not recover): loading it raises CameraFileError with the reason, so
#: every run that needs it is recorded as failed and the rest of the suite goes on.
UNAVAILABLE = "unavailable"


def save_unavailable_camera(reason: str, file: PathLike) -> None:
    """Write a camera file that records why there is no camera path (see UNAVAILABLE)."""
    atomic_write_text(file, json.dumps({"format": FORMAT, UNAVAILABLE: reason}, indent=1))


def load_camera_path(file: PathLike, check_plausible: bool = True) -> CameraPath:
    """Read and validate a ``trajbench.camera_path/1`` JSON file.

    Raises CameraFileError naming the file and the offending field (FileNotFoundError when
    there is no such file); NaN/Infinity tokens, which Python's json accepts, are rejected as
    non-finite values. ``check_plausible``: see :func:`camera_path_from_dict`.
    """
    source = Path(file)
    if not source.is_file():
        what = "is a folder" if source.is_dir() else "does not exist"
        raise FileNotFoundError(f"camera file {source} {what}")
    try:
        text = source.read_text(encoding="utf-8")
        if not text.strip():
            raise CameraFileError(f"{file}: malformed JSON (the file is empty)")
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CameraFileError(f"{file}: malformed JSON ({exc})") from exc
    try:
        return camera_path_from_dict(data, check_plausible)
    except CameraFileError as exc:
        raise CameraFileError(f"{file}: {exc}") from exc


# ----------------------------------------------------------------------------- RealEstate10K

_RE10K_COLUMNS = ["timestamp_us", "fx", "fy", "cx", "cy", "k1", "k2"] + [
    f"r{r}{c}" if c < 3 else f"t{r}" for r in range(3) for c in range(4)
]
_EXACT = Context(prec=200)


@dataclass(frozen=True)
class RealEstate10KClip:
    """A RealEstate10K camera file: the camera path, the source URL and timestamps (us).

    ``metadata`` records what reading changed: ``reorthonormalised_lines`` (the lines whose
    rotation, printed with few decimals, was projected back onto SO(3) by SVD),
    ``max_rotation_error`` (largest |R^T R - I| as printed) and ``url_line`` (whether the
    file had one).
    """

    camera: CameraPath
    url: str = ""
    timestamps: list[int] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


#: Coarsest printed precision whose rounding a RealEstate10K rotation may carry (4 decimals):
#: a tolerance matched to coarser printing would let non-rotations through.
MAX_ROUNDING_TOL = 2e-4


def _rounding_tolerance(tokens: Sequence[str]) -> float:
    """|R^T R - I| that printing the rotation entries ``tokens`` can cause by rounding alone.

    An entry off by at most e gives, for a rotation R + E, |R^T E + E^T R + E^T E| <= 2 sqrt(3)
    e + 3 e^2 < 4 e entrywise. e comes from how the row is printed, read off its tokens: with
    a fixed number of decimals (``%.6f``: every token shows them, trailing zeros too) e is half
    a unit of the finest decimal; with significant digits (``%g``, ``repr``: trailing zeros
    dropped, so 0.8 may be exact) half a unit of the most digits any token shows, at each
    token's own magnitude. The larger of the two counts; a row at full precision gets
    ORTHONORMAL_TOL, and no row more than MAX_ROUNDING_TOL.
    """
    numbers = [Decimal(tok) for tok in tokens]
    finest = max(-int(x.as_tuple().exponent) for x in numbers)
    digits = max(len(x.as_tuple().digits) for x in numbers)
    half_unit = 0.5 * 10.0**-finest
    for x in numbers:
        if x != 0 and x != x.to_integral_value():
            half_unit = max(half_unit, 0.5 * 10.0 ** (x.adjusted() - digits + 1))
    return min(max(ORTHONORMAL_TOL, 4.0 * half_unit), MAX_ROUNDING_TOL)


def _denormalise(token: str, size: int) -> float:
    """Pixel value of a normalised intrinsic: float(exact decimal of ``token`` times ``size``).

    Multiplying the decimal exactly (not float(token) * size) lets every pixel value be
    written back exactly; see _normalised_token.
    """
    with localcontext(_EXACT):
        return float(Decimal(token) * size)


def _normalised_token(value: float, size: int) -> str:
    """Shortest decimal string d with _denormalise(d, size) == value.

    Why not repr(value / size): (v / W) * W != v for some v when W is not a power of two, and
    for ~10% of values like 512.3 with W = 576, 320 or 144 no double q satisfies q * W == v at
    all (adjacent q are ~1.1-2.2 ulps of v apart), so nudging q with np.nextafter cannot make
    float-multiplying readers exact. Reading the decimal exactly and writing the shortest
    decimal that maps back is exact for every value; and a token with up to 15 significant
    digits (RealEstate10K uses 9) is the unique shortest decimal mapping to its pixel value, so
    text -> CameraPath -> text reproduces it. Float-multiplying readers get within 1 ulp.
    """
    with localcontext(_EXACT):
        quotient = Decimal(value) / size
    for digits in range(1, 60):
        with localcontext(Context(prec=digits, rounding=ROUND_HALF_EVEN)):
            candidate = +quotient
        if _denormalise(str(candidate), size) == value:
            return format(candidate, "f")
    return repr(value / size)  # unreachable for finite values: 60 digits is always enough


def _looks_like_frame_row(line: str) -> bool:
    """Whether ``line`` has the 19 numeric columns of a frame row (so it is not a URL)."""
    tokens = line.split()
    if len(tokens) != len(_RE10K_COLUMNS):
        return False
    try:
        [float(t) for t in tokens]
    except ValueError:
        return False
    return True


def _parse_re10k_line(
    line: str, lineno: int, where: str
) -> tuple[int, list[str], np.ndarray, float]:
    """Parse one frame line into (timestamp, intrinsic tokens, 4x4 w2c, rotation error).

    A rotation off SO(3) by no more than its printed precision explains (see
    _rounding_tolerance) is re-orthonormalised by SVD; its error before that is returned.
    """
    tokens = line.split()
    if len(tokens) != len(_RE10K_COLUMNS):
        raise CameraFileError(
            f"{where}line {lineno}: expected {len(_RE10K_COLUMNS)} numbers, got {len(tokens)}"
        )
    values = []
    for col, (tok, name) in enumerate(zip(tokens, _RE10K_COLUMNS, strict=True), start=1):
        try:
            x = float(tok)
            Decimal(tok)
        except (ValueError, InvalidOperation):
            raise CameraFileError(
                f"{where}line {lineno}, column {col} ({name}): {tok!r} is not a number"
            ) from None
        if not math.isfinite(x):
            raise CameraFileError(
                f"{where}line {lineno}, column {col} ({name}): not finite ({tok})"
            )
        values.append(x)
    if not values[0].is_integer():
        raise CameraFileError(
            f"{where}line {lineno}, column 1 (timestamp_us): {tokens[0]!r} is not an integer"
        )
    if values[5] != 0.0 or values[6] != 0.0:
        raise CameraFileError(
            f"{where}line {lineno}, columns 6-7 (k1, k2): lens distortion is not supported"
        )
    w2c = np.eye(4)
    w2c[:3, :] = np.array(values[7:], dtype=np.float64).reshape(3, 4)
    rot = w2c[:3, :3]
    err = float(np.abs(rot.T @ rot - np.eye(3)).max())
    if err > ORTHONORMAL_TOL:
        rot_tokens = [tokens[7 + 4 * r + c] for r in range(3) for c in range(3)]
        tol = _rounding_tolerance(rot_tokens)
        if err > tol:
            raise CameraFileError(
                f"{where}line {lineno}: w2c: rotation is not orthonormal (|R^T R - I| = "
                f"{err:.3g}, more than the {tol:.3g} its printed precision explains)"
            )
        u, _, vt = np.linalg.svd(rot)  # nearest orthonormal matrix (Frobenius norm)
        w2c[:3, :3] = u @ vt
    _check_pose(w2c, f"{where}line {lineno}: w2c")
    try:
        timestamp = int(tokens[0])
    except ValueError:  # written as a float such as 1.0e6
        timestamp = int(values[0])
    return timestamp, tokens[1:5], w2c, err


def _check_re10k_intrinsics(
    k: np.ndarray, tokens: list[str], width: int, height: int, label: str
) -> None:
    """validate_intrinsics with the RealEstate10K hint when the tokens look like pixels."""
    try:
        validate_intrinsics(k, label, width, height)
    except CameraFileError as exc:
        normalised = [float(t) for t in tokens]
        if max(abs(v) for v in normalised) > 4.0:  # normalised fx ~0.5-2, cx ~0.5
            raise CameraFileError(
                f"{exc}. The intrinsics (fx, fy, cx, cy) = ({', '.join(tokens)}) look like "
                "pixels: RealEstate10K stores them normalised by width and height (fx / W, "
                "fy / H, cx / W, cy / H)"
            ) from None
        raise


def read_realestate10k(
    file: PathLike, width: int, height: int, check_plausible: bool = True
) -> RealEstate10KClip:
    """Read a RealEstate10K camera file for frames of ``width`` x ``height`` pixels.

    Line 1 is the URL; each further non-blank line is ``timestamp_us fx fy cx cy k1 k2`` then
    the 3x4 world-to-camera matrix row-major (OpenCV axes), intrinsics normalised by W and H.
    All frames must share one set of intrinsics. The path's name is the file stem.

    Files from the field: blank lines and ``#`` comment lines are skipped; a first line that
    parses as a frame row is a frame (the file has no URL line), never dropped. Timestamps
    must increase strictly (a jump back or a duplicated row is an error naming the line).
    Rotations printed with few decimals (``%f`` writes 6) are accepted when they are off
    SO(3) by no more than that precision explains, and re-orthonormalised by SVD (recorded in
    ``metadata``); anything further off is refused. Intrinsics must be plausible for the
    frame size (:func:`validate_intrinsics`); pixels where normalised values belong are named.
    ``check_plausible=False`` skips only that plausibility check (to inspect or convert a
    file whose K is known to be unusual; every stage of the benchmark checks).
    """
    width = _check_size(width, "width")
    height = _check_size(height, "height")
    where = f"{file}: "
    try:
        lines = Path(file).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise CameraFileError(f"{where}not UTF-8 text ({exc})") from exc
    numbered = [
        (lineno, line)
        for lineno, line in enumerate(lines, start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not numbered:
        raise CameraFileError(f"{where}empty file (expected a URL line and frame lines)")
    url = ""
    if not _looks_like_frame_row(numbered[0][1]):
        url = numbered.pop(0)[1].strip()
    timestamps: list[int] = []
    poses: list[np.ndarray] = []
    first_intr: tuple[int, list[float]] | None = None
    fixed: list[int] = []
    max_err = 0.0
    k = np.eye(3)
    for lineno, line in numbered:
        ts, intr_tokens, w2c, err = _parse_re10k_line(line, lineno, where)
        if err > ORTHONORMAL_TOL:
            fixed.append(lineno)
        max_err = max(max_err, err)
        intr = [float(t) for t in intr_tokens]
        if first_intr is None:
            first_intr = (lineno, intr)
            k[0, 0] = _denormalise(intr_tokens[0], width)
            k[1, 1] = _denormalise(intr_tokens[1], height)
            k[0, 2] = _denormalise(intr_tokens[2], width)
            k[1, 2] = _denormalise(intr_tokens[3], height)
            label = f"{where}line {lineno}: K ({width}x{height})"
            if check_plausible:
                _check_re10k_intrinsics(k, intr_tokens, width, height, label)
            else:
                _check_intrinsics(k, label)
        elif intr != first_intr[1]:
            raise CameraFileError(
                f"{where}line {lineno}: intrinsics (fx, fy, cx, cy) = {intr} differ from "
                f"line {first_intr[0]}'s {first_intr[1]}; a CameraPath has a single K"
            )
        if timestamps and ts <= timestamps[-1]:
            previous = numbered[len(timestamps) - 1][0]
            what = "repeats" if ts == timestamps[-1] else "goes back from"
            raise CameraFileError(
                f"{where}line {lineno}: timestamp {ts} {what} line {previous}'s "
                f"{timestamps[-1]}; timestamps must increase strictly (a duplicated row or "
                "frames out of order)"
            )
        timestamps.append(ts)
        poses.append(w2c)
    if not poses:
        raise CameraFileError(f"{where}no frame lines after the URL line")
    camera = CameraPath(K=k, w2c=np.stack(poses), width=width, height=height, name=Path(file).stem)
    metadata = {
        "url_line": bool(url),
        "reorthonormalised_lines": fixed,
        "max_rotation_error": max_err,
    }
    return RealEstate10KClip(camera=camera, url=url, timestamps=timestamps, metadata=metadata)


def _check_timestamps(timestamps: Sequence[Any] | np.ndarray, num: int) -> None:
    if len(timestamps) != num:
        raise CameraFileError(f"timestamps: expected {num} entries, got {len(timestamps)}")


def write_realestate10k(
    file: PathLike,
    camera: CameraPath,
    url: str = "",
    timestamps: Sequence[int] | None = None,
) -> Path:
    """Write ``camera`` as a RealEstate10K camera file (atomically).

    Timestamps default to i * 33333 us. Distortion columns are written as 0. Raises
    CameraFileError if K has skew (the format cannot hold it) or the URL spans lines.
    """
    if "\n" in url or "\r" in url:
        raise CameraFileError("url: must be a single line")
    if camera.K[0, 1] != 0.0:
        raise CameraFileError("K[0][1]: skew cannot be stored in a RealEstate10K file")
    num = camera.num_frames
    if timestamps is None:
        timestamps = [i * DEFAULT_FRAME_INTERVAL_US for i in range(num)]
    _check_timestamps(timestamps, num)
    stamps = []
    for i, ts in enumerate(timestamps):
        if isinstance(ts, bool) or not isinstance(ts, int | np.integer):
            raise CameraFileError(f"timestamps[{i}]: expected an integer, got {ts!r}")
        stamps.append(int(ts))
    k = camera.K
    intr = " ".join(
        [
            _normalised_token(float(k[0, 0]), camera.width),
            _normalised_token(float(k[1, 1]), camera.height),
            _normalised_token(float(k[0, 2]), camera.width),
            _normalised_token(float(k[1, 2]), camera.height),
            "0",
            "0",
        ]
    )
    lines = [url]
    for ts, m in zip(stamps, camera.w2c, strict=True):
        pose = " ".join(repr(float(x)) for x in m[:3, :].ravel())
        lines.append(f"{ts} {intr} {pose}")
    text = "\n".join(lines) + "\n"

    return atomic_write_text(file, text)


# ---------------------------------------------------------------------------------- evo / TUM


def _seconds(camera: CameraPath, timestamps: Sequence[float] | np.ndarray | None) -> np.ndarray:
    """Timestamps in seconds; default i * 33333 us, matching the RealEstate10K default."""
    if timestamps is None:
        return np.arange(camera.num_frames) * (DEFAULT_FRAME_INTERVAL_US / 1e6)
    _check_timestamps(timestamps, camera.num_frames)
    stamps = np.asarray(timestamps, dtype=np.float64)
    if not np.all(np.isfinite(stamps)):
        raise CameraFileError("timestamps: contain NaN or inf")
    return stamps


def to_evo_trajectory(
    camera: CameraPath, timestamps: Sequence[float] | np.ndarray | None = None
) -> PoseTrajectory3D:
    """evo trajectory of camera-to-world poses; timestamps in seconds (default i / 30 s)."""
    from evo.core.trajectory import PoseTrajectory3D

    return PoseTrajectory3D(poses_se3=list(camera.c2w), timestamps=_seconds(camera, timestamps))


def write_tum(
    file: PathLike, camera: CameraPath, timestamps: Sequence[float] | np.ndarray | None = None
) -> Path:
    """Write camera-to-world poses as a TUM file (``t tx ty tz qx qy qz qw``) with evo.

    Timestamps are seconds (default i * 33333 us). Written atomically.
    """
    from evo.tools import file_interface

    traj = to_evo_trajectory(camera, timestamps)
    return atomic_write(file, lambda tmp: file_interface.write_tum_trajectory_file(str(tmp), traj))
