"""RealEstate10K camera text files: exact read (decimal arithmetic) and write."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.cameras.convention import (
    DEFAULT_FRAME_INTERVAL_US,
    ORTHONORMAL_TOL,
    CameraFileError,
    PathLike,
    _check_intrinsics,
    _check_pose,
    validate_intrinsics,
)
from benchmark.cameras.path import CameraPath, _check_size
from benchmark.io import atomic_write_text

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
