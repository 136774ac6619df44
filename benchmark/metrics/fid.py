r"""FID and KID of generated frames against a declared reference set, through clean-fid.

Image files are decoded by the project's own reader (:func:`benchmark.io.read_image`: 8/16-bit,
gray, gray+alpha, RGBA and palette images to uint8 RGB by one documented rule), never by
clean-fid's PIL loader (whose ``convert("RGB")`` clips 16-bit gray to white), and handed over
as arrays. Everything else that defines the numbers is clean-fid's own code (clean-fid 0.1.35,
``cleanfid/fid.py``): the array loading and "clean" resizing (``get_files_features`` ->
``cleanfid.utils.ResizeDataset`` -> ``cleanfid.resize.build_resizer``: PIL bicubic on float32
channels to 299x299, no quantisation), the batch feature call (``get_batch_features``), the
Frechet distance (``frechet_distance``, Sutherland's stable version; mean/covariance exactly as
``fid_from_feats``) and KID (``kernel_distance``: cubic polynomial kernel, 100 subsets of at
most 1000 samples). This module only chooses the images, the feature extractor and reports
why a number is missing.

Feature extractors:

* ``extractor=None``: clean-fid's Inception (the StyleGAN2-ADA TorchScript port of the TF
  Inception graph, ``inception-2015-12-05.pt``), loaded from the cache only. clean-fid itself
  keeps that file in ``/tmp`` (``cleanfid/features.py: feature_extractor``) and downloads it on
  first use; here a missing file is reported (see :func:`inception_available`) and
  :func:`fetch_inception_weights` downloads it on a networked machine. Set
  ``TRAJBENCH_INCEPTION_DIR`` to keep it somewhere that survives reboots and is shared by
  cluster nodes (``/tmp`` is node-local).
* :func:`random_inception_extractor`: torchvision's Inception-v3 architecture with seeded
  Kaiming-normal weights, for tests and offline checks. Its numbers are NOT comparable with
  published FIDs.

Small-sample bias: FID estimates a mean and a covariance in D dimensions (2048 for Inception)
from N images; its expectation grows as N shrinks (Chong & Forsyth, "Effectively Unbiased FID
and Inception Score and where to find them", CVPR 2020), and for N <= D the covariance is
rank-deficient. FIDs are therefore only comparable at equal N, and the tables must state N.
KID (unbiased MMD estimate) has no such bias but a larger variance.
"""


from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.io import read_image
from benchmark.metrics.inception import (
    Extractor,
    _cleanfid_inception,
    _fetch_hint,
    inception_available,
    inception_path,
)

#: Modes served by the TorchScript Inception (``cleanfid/features.py:
#: build_feature_extractor``); "legacy_pytorch" needs other weights and is not offered.
MODES = ("clean", "legacy_tensorflow")
#: Fewest images per set: a covariance (FID) and the unbiased KID need two samples.
MIN_SAMPLES = 2
#: Image file types clean-fid reads (``cleanfid/utils.py: EXTENSIONS``).
IMAGE_SUFFIXES = {".bmp", ".jpg", ".jpeg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp"}
#: Seed of KID's random subsets (clean-fid draws them from numpy's global generator).
KID_SEED = 0

#: Frames: a uint8 (N, H, W, 3) array or a list of (H, W, 3) arrays, or image files / folders.
FrameSource = np.ndarray | Sequence[np.ndarray] | str | Path | Sequence[str | Path]


@dataclass(frozen=True)
class FidResult:
    """FID/KID of one generated set against one reference set.

    ``fid``/``kid`` are None when they could not be computed and ``reason`` says why (never
    an invented number); ``note`` carries caveats about a number that was computed (small
    samples); ``extractor`` names the features (only "clean-fid inception" values compare
    with published FIDs)."""

    fid: float | None
    kid: float | None
    num_gen: int
    num_ref: int
    reason: str = ""
    note: str = ""
    extractor: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)



# --------------------------------------------------------------------------- features


def image_files(path: str | Path) -> list[Path]:
    """Image files of a folder (recursively, name order, as clean-fid's
    ``get_folder_features`` lists them) or the file itself."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"no image file or folder at {path}")
    return sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def _check_frame(frame: np.ndarray, where: str) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"{where}: expected uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
    return frame


def _split_source(source: FrameSource) -> tuple[list[str], list[np.ndarray]]:
    """(image files, in-memory frames) of a frame source; exactly one of them is used."""
    if isinstance(source, str | Path):
        return [str(p) for p in image_files(source)], []
    if isinstance(source, np.ndarray):
        if source.ndim != 4:
            raise ValueError(f"expected (N, H, W, 3) uint8 frames, got shape {source.shape}")
        return [], [_check_frame(f, f"frame {i}") for i, f in enumerate(source)]
    items = list(source)
    if all(isinstance(item, str | Path) for item in items):
        return [str(p) for item in items for p in image_files(item)], []
    return [], [_check_frame(f, f"frame {i}") for i, f in enumerate(items)]


def count_frames(source: FrameSource) -> int:
    """Number of images in a frame source."""
    files, frames = _split_source(source)
    return len(files) + len(frames)


@contextlib.contextmanager
def _as_files(source: FrameSource) -> Iterator[list[str]]:
    """File list for clean-fid's loader: every frame as a temporary ``.npy`` file, which
    ``ResizeDataset`` reads with ``np.load`` and then treats exactly like a decoded PNG.

    Image files are read by the project's own reader (:func:`benchmark.io.read_image`: 8- and
    16-bit, gray, gray+alpha, RGB, RGBA, palette, all to uint8 RGB by one rule), one at a
    time, never by clean-fid's PIL loader, whose ``convert("RGB")`` clips 16-bit gray to white.
    """
    files, frames = _split_source(source)
    if not files and not frames:
        yield []
        return
    with tempfile.TemporaryDirectory(prefix="trajbench-fid-") as tmp:
        out = []
        for i, file in enumerate(files):
            out.append(os.path.join(tmp, f"f{i:06d}.npy"))
            np.save(out[-1], read_image(file))
        for i, frame in enumerate(frames):
            out.append(os.path.join(tmp, f"a{i:06d}.npy"))
            np.save(out[-1], frame)
        yield out


def _resolve_device(device: str) -> str:
    import torch  # heavy (torch): only FID runs load it

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def frame_features(
    source: FrameSource,
    extractor: Extractor,
    mode: str = "clean",
    device: str = "cpu",
    batch_size: int = 32,
    num_workers: int = 0,
) -> np.ndarray:
    r"""Features of a set of frames through clean-fid's loader, resizer and batch call.

    Args:
        source: uint8 (N, H, W, 3) array, list of (H, W, 3) arrays, or image files/folders.
        extractor: float (B, 3, 299, 299) in [0, 255] -> (B, D) (already on ``device``).
        mode: clean-fid resize mode (:data:`MODES`).
        device: torch device the batches are moved to.
        batch_size, num_workers: clean-fid's DataLoader settings.

    Returns:
        (N, D) float features; (0, 0) for an empty set.
    """
    import torch  # heavy (torch): only FID runs load it
    from cleanfid.fid import get_files_features  # heavy (torch): only FID runs load it

    if mode not in MODES:
        raise ValueError(f"mode {mode!r} not supported; one of {MODES}")
    with _as_files(source) as files:
        if not files:
            return np.zeros((0, 0))
        return get_files_features(
            files,
            model=extractor,
            num_workers=num_workers,
            batch_size=batch_size,
            device=torch.device(device),
            mode=mode,
            verbose=False,
        )


# --------------------------------------------------------------------------- distances


@contextlib.contextmanager
def _seeded_numpy(seed: int) -> Iterator[None]:
    """clean-fid's KID draws subsets from numpy's global generator: seed it for a reproducible
    value and put the caller's state back afterwards."""
    state = np.random.get_state()  # noqa: NPY002 (clean-fid uses the legacy global generator)
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def fid_from_features(
    gen: np.ndarray, ref: np.ndarray, extractor_name: str = "", kid: bool = True
) -> FidResult:
    r"""FID (and KID) between two feature sets with clean-fid's distance functions.

    Args:
        gen, ref: (N, D) features of the generated and the reference set.
        extractor_name: recorded in the result.
        kid: also compute KID (cost: 100 subsets of ``min(N_gen, N_ref, 1000)`` samples).

    Returns:
        :class:`FidResult`; fid/kid None with the reason when they cannot be computed.
    """
    from cleanfid.fid import frechet_distance  # heavy (torch): only FID runs load it

    num_gen, num_ref = len(gen), len(ref)
    base = {"num_gen": num_gen, "num_ref": num_ref, "extractor": extractor_name}
    if min(num_gen, num_ref) < MIN_SAMPLES:
        return FidResult(
            fid=None,
            kid=None,
            reason=(
                f"too few frames: {num_gen} generated, {num_ref} reference; FID needs at least "
                f"{MIN_SAMPLES} per set (a covariance) and many more than the feature size "
                f"({gen.shape[-1] if gen.ndim == 2 and num_gen else 'D'}) to be unbiased"
            ),
            **base,
        )
    gen, ref = np.asarray(gen, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if not (np.isfinite(gen).all() and np.isfinite(ref).all()):
        return FidResult(fid=None, kid=None, reason="non-finite features", **base)
    dim = gen.shape[1]
    note = ""
    if min(num_gen, num_ref) <= dim:
        note = (
            f"small sample: {min(num_gen, num_ref)} frames <= {dim} feature dimensions, "
            "covariances are rank-deficient; FID is biased upward and comparable only at "
            "equal frame counts"
        )
    reason = ""
    fid: float | None
    if min(num_gen, num_ref) <= dim:
        # Rank-deficient covariances: scipy's sqrtm inside clean-fid's frechet_distance is
        # unstable there (complex parts, then a ValueError), so compute the same quantity
        # exactly from the features (see frechet_distance_low_rank); equal where both work.
        fid = frechet_distance_low_rank(gen, ref)
        return _with_kid(FidResult(fid=fid, kid=None, reason="", note=note, **base), gen, ref, kid)
    try:
        # Same statistics as clean-fid's fid_from_feats / compare_folders.
        fid = float(
            frechet_distance(
                np.mean(gen, axis=0),
                np.cov(gen, rowvar=False),
                np.mean(ref, axis=0),
                np.cov(ref, rowvar=False),
            )
        )
        if not math.isfinite(fid):
            fid, reason = None, "Frechet distance is not finite"
    except (ValueError, np.linalg.LinAlgError) as exc:
        fid, reason = None, f"Frechet distance failed ({exc}); too few frames for {dim} dims?"
    return _with_kid(FidResult(fid=fid, kid=None, reason=reason, note=note, **base), gen, ref, kid)


def _with_kid(result: FidResult, gen: np.ndarray, ref: np.ndarray, kid: bool) -> FidResult:
    """``result`` with clean-fid's KID (seeded subsets) filled in when asked."""
    from cleanfid.fid import kernel_distance  # heavy (torch): only FID runs load it

    if not kid:
        return result
    with _seeded_numpy(KID_SEED):
        return replace(result, kid=float(kernel_distance(gen, ref)))


def frechet_distance_low_rank(gen: np.ndarray, ref: np.ndarray) -> float:
    r"""Frechet distance of two feature sets, exact when covariances are rank-deficient.

    With centred features A (N1, D) and B (N2, D), S1 = A^T A / (N1 - 1) and
    S2 = B^T B / (N2 - 1); the nonzero eigenvalues of S1 S2 are the squared singular values
    of A B^T / sqrt((N1 - 1)(N2 - 1)), so ``tr sqrt(S1 S2)`` is that matrix's nuclear norm —
    an (N1, N2) problem instead of a (D, D) matrix square root. Written here because
    clean-fid only offers the sqrtm route, which fails on few frames.
    """
    gen, ref = np.asarray(gen, np.float64), np.asarray(ref, np.float64)
    a, b = gen - gen.mean(0), ref - ref.mean(0)
    n1, n2 = len(gen) - 1, len(ref) - 1
    mean_term = float(np.sum((gen.mean(0) - ref.mean(0)) ** 2))
    trace1, trace2 = float(np.sum(a * a)) / n1, float(np.sum(b * b)) / n2
    cross = np.linalg.svd(a @ b.T, compute_uv=False).sum() / math.sqrt(n1 * n2)
    return mean_term + trace1 + trace2 - 2.0 * float(cross)


def _prepare_extractor(
    extractor: Extractor | None, mode: str, device: str
) -> tuple[Extractor | None, str]:
    """(extractor on ``device``, "") or (None, why clean-fid's Inception cannot be used)."""
    if extractor is not None:
        return (extractor.to(device) if hasattr(extractor, "to") else extractor), ""
    missing = inception_available()
    if missing:
        return None, missing
    try:
        return _cleanfid_inception(mode, device), ""
    except Exception as exc:  # a corrupt or incompatible TorchScript file
        return None, f"cannot load {inception_path()} ({exc}); delete it and {_fetch_hint()}"


def fid_between(
    gen_frames: FrameSource,
    ref_frames: FrameSource,
    extractor: Extractor | None = None,
    mode: str = "clean",
    device: str = "auto",
    kid: bool = True,
    batch_size: int = 32,
    num_workers: int = 0,
) -> FidResult:
    r"""FID (clean-fid) and KID between generated frames and a reference set.

    Args:
        gen_frames, ref_frames: uint8 (N, H, W, 3) arrays, lists of (H, W, 3) arrays, or
            image files / folders (all images below a folder, name order).
        extractor: feature network; None = clean-fid's Inception from the cache (missing
            weights give a result with ``fid=None`` and the reason, never a download).
        mode: clean-fid resize mode, "clean" (PIL bicubic to 299) by default.
        device: "auto" (cuda when available), "cpu", "cuda", ...
        kid: also compute KID.
        batch_size, num_workers: clean-fid's DataLoader settings.

    Returns:
        :class:`FidResult`.
    """
    device = _resolve_device(device)
    extractor, missing = _prepare_extractor(extractor, mode, device)
    if extractor is None:
        return FidResult(
            None, None, count_frames(gen_frames), count_frames(ref_frames), reason=missing
        )
    name = getattr(extractor, "name", type(extractor).__name__)
    kwargs = {"mode": mode, "device": device, "batch_size": batch_size, "num_workers": num_workers}
    gen = frame_features(gen_frames, extractor, **kwargs)
    ref = frame_features(ref_frames, extractor, **kwargs)
    return fid_from_features(gen, ref, extractor_name=name, kid=kid)


