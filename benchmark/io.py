"""Small file helpers shared by the stages: atomic writes, frame folders."""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place, so
    a killed run never leaves a file that looks complete. The file gets the permissions a
    plain ``open()`` would give (mkstemp's are 0600)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and durably (see :func:`atomic_write`)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    return atomic_write(path, write)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_npy(path: str | Path, array: np.ndarray) -> Path:
    """Save ``array`` as a .npy file, atomically."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    return atomic_write_bytes(path, buffer.getvalue())


def frame_name(index: int) -> str:
    """File name of frame ``index`` (zero-padded so names sort in frame order)."""
    return f"{index:05d}.png"


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Save a uint8 RGB (H, W, 3) image as a lossless PNG, atomically."""
    import cv2  # ~0.3 s: only image reads and writes pay for it, not every importer of io

    ok, data = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))
    if not ok:
        raise OSError(f"could not encode {path} as PNG")
    atomic_write_bytes(path, data.tobytes())
    return Path(path)


def write_frames(folder: str | Path, frames: np.ndarray) -> list[Path]:
    """Save (F, H, W, 3) uint8 frames as lossless PNGs ``00000.png, ...``; returns paths."""
    folder = Path(folder)
    return [write_png(folder / frame_name(i), frame) for i, frame in enumerate(frames)]


def to_rgb8(image: np.ndarray, where: str = "image") -> np.ndarray:
    """The one rule that turns a decoded image into uint8 RGB (H, W, 3).

    - 16-bit samples become 8-bit by round(v * 255 / 65535) = round(v / 257): the exact
      inverse of the usual 8 -> 16 bit widening (v * 257), so a 16-bit twin of an 8-bit
      image reads back identical (never clipped to white).
    - Gray becomes RGB by repeating the one channel.
    - Alpha is ignored: colour as stored (what OpenCV and clean-fid's PIL loader do with RGBA).
    - Palette images arrive expanded to their colours (the decoder's job).

    ``image`` is gray (H, W) or (H, W, 1), gray+alpha (H, W, 2), RGB (H, W, 3) or RGBA
    (H, W, 4), uint8 or uint16; anything else is a ValueError naming ``where``.
    """
    if image.dtype == np.uint16:
        wide = image.astype(np.uint32)
        image = ((2 * wide + 257) // 514).astype(np.uint8)  # round half up of v / 257
    elif image.dtype != np.uint8:
        raise ValueError(
            f"cannot read {where}: {image.dtype} samples are not supported (8- or 16-bit only)"
        )
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"cannot read {where}: unsupported image shape {image.shape}")
    if image.shape[-1] in (1, 2):  # gray (+ alpha)
        image = np.repeat(image[..., :1], 3, axis=-1)
    return np.ascontiguousarray(image[..., :3])


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 RGB (H, W, 3), converted by :func:`to_rgb8` (8/16-bit,
    gray, gray+alpha, RGB, RGBA and palette images all read by that one rule).

    Raises FileNotFoundError for a missing file (IsADirectoryError for a folder) and a
    ValueError naming the file for an empty, corrupt or truncated one (OpenCV's decoder
    rejects a PNG whose data or CRC is cut short) or an unsupported sample type.
    """
    import cv2  # ~0.3 s: only image reads and writes pay for it, not every importer of io

    file = Path(path)
    if file.is_dir():
        raise IsADirectoryError(f"image {file} is a folder, not an image file")
    if not file.is_file():
        raise FileNotFoundError(f"image {file} does not exist")
    if file.stat().st_size == 0:
        raise ValueError(f"cannot read image {file}: the file is empty (0 bytes)")
    # ANYDEPTH keeps 16-bit samples (IMREAD_COLOR would shift them to 8 bits itself), ANYCOLOR
    # keeps gray as one channel and expands palettes; alpha is dropped by the decoder, and
    # EXIF orientation is still applied (unlike IMREAD_UNCHANGED).
    image = cv2.imread(str(file), cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH)
    if image is None:
        raise ValueError(
            f"cannot read image {file}: not a decodable image (corrupt, truncated or an "
            "unsupported format)"
        )
    if image.ndim == 3 and image.shape[-1] >= 3:
        image = image[..., [2, 1, 0, *range(3, image.shape[-1])]]  # BGR(A) -> RGB(A)
    return to_rgb8(image, f"image {file}")


_FRAME_NAME = re.compile(r"^(\d{5})\.png$")


def read_frames(folder: str | Path) -> tuple[np.ndarray, list[Path]]:
    """Read the PNG frames of ``folder`` in name order: (F, H, W, 3) uint8 and their paths.

    Errors name the folder or file: FileNotFoundError for a missing folder, ValueError for an
    empty folder, an unreadable frame, frames of different sizes, or a gap in the numbering of
    ``00000.png, 00001.png, ...`` (a lost frame would otherwise shorten the clip silently).
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"frames folder {root} does not exist")
    paths = sorted(root.glob("*.png"))
    if not paths:
        raise ValueError(f"no PNG frames in {root} (empty frames folder)")
    numbers = [_FRAME_NAME.match(p.name) for p in paths]
    if all(numbers):
        indices = [int(m.group(1)) for m in numbers if m]
        missing = sorted(set(range(max(indices) + 1)) - set(indices))
        if missing:
            names = ", ".join(frame_name(i) for i in missing[:5])
            raise ValueError(f"frames in {root} are not contiguous: missing {names}")
    frames = [read_image(p) for p in paths]
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise ValueError(f"frames in {root} differ in size: {sorted(shapes)}")
    return np.stack(frames), paths
