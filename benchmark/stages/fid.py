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
import platform
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

#: File name and URL of clean-fid's Inception weights (``cleanfid/downloads_helper.py``:
#: ``inception_url``, ``check_download_inception``).
INCEPTION_FILE = "inception-2015-12-05.pt"
INCEPTION_URL = (
    "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/" + INCEPTION_FILE
)
#: Environment variable naming the folder that holds :data:`INCEPTION_FILE`.
INCEPTION_DIR_ENV = "TRAJBENCH_INCEPTION_DIR"
#: Feature size of Inception's pool3 layer.
INCEPTION_DIM = 2048
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
#: A feature extractor: float images (B, 3, 299, 299) in [0, 255] -> features (B, D).
Extractor = Callable[["torch.Tensor"], "torch.Tensor"]


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


# --------------------------------------------------------------------------- Inception weights


def inception_dir() -> Path:
    r"""Folder holding clean-fid's Inception weights.

    Returns:
        ``$TRAJBENCH_INCEPTION_DIR`` when set, else the folder clean-fid itself uses
        (``/tmp``; ``./`` on Windows, see ``cleanfid/features.py: feature_extractor``), so a
        file clean-fid downloaded earlier is reused.
    """
    env = os.environ.get(INCEPTION_DIR_ENV)
    if env:
        return Path(env)
    return Path("./" if platform.system() == "Windows" else "/tmp")


def inception_path() -> Path:
    """Path of clean-fid's Inception weights file (present or not)."""
    return inception_dir() / INCEPTION_FILE


def _fetch_hint() -> str:
    return (
        "on a machine with internet run `trajbench fetch-weights inception`, or "
        f"download {INCEPTION_URL} to {inception_path()} (set {INCEPTION_DIR_ENV} to use "
        "another folder)"
    )


def inception_available() -> str | None:
    r"""Whether clean-fid's Inception weights are in the cache.

    Returns:
        None when the weights file is present, else the reason, naming what to run.
    """
    path = inception_path()
    if not path.is_file() or path.stat().st_size == 0:
        return f"clean-fid Inception weights not found at {path}: {_fetch_hint()}"
    return None


def fetch_inception_weights(folder: str | Path | None = None) -> Path:
    r"""Download clean-fid's Inception weights into its cache (needs internet).

    Uses clean-fid's own downloader (``check_download_inception``) into a temporary folder
    beside the target and renames the file into place, so an interrupted download never
    leaves a truncated file that looks complete; the file is then loaded once to check it.

    Args:
        folder: where to put :data:`INCEPTION_FILE`; default :func:`inception_dir`.

    Returns:
        Path of the weights file (existing files are kept).
    """
    import torch
    from cleanfid.downloads_helper import check_download_inception

    target_dir = Path(folder) if folder is not None else inception_dir()
    target = target_dir / INCEPTION_FILE
    if target.is_file() and target.stat().st_size > 0:
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target_dir, prefix=".inception-download-"))
    try:
        downloaded = Path(check_download_inception(fpath=str(tmp)))
        torch.jit.load(str(downloaded), map_location="cpu")
        os.replace(downloaded, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _cleanfid_inception(mode: str, device: str) -> Extractor:
    """clean-fid's Inception wrapper (``InceptionV3W``) from the cached file, no download."""
    from cleanfid.inception_torchscript import InceptionV3W

    model = InceptionV3W(
        str(inception_dir()), download=False, resize_inside=mode == "legacy_tensorflow"
    )
    model = model.to(device).eval()
    model.name = "clean-fid inception"
    return model


# --------------------------------------------------------------------------- test extractor


def random_inception_extractor(
    seed: int = 0, feature_dim: int = INCEPTION_DIM, input_size: int = 299
) -> torch.nn.Module:
    r"""Inception-v3 with seeded random weights: a feature extractor for tests, offline.

    NOT comparable with published FIDs: same architecture as the real feature network,
    random weights. Conv weights are Kaiming-normal (fan-in, ReLU gain); eval-mode batch norm
    with fresh running statistics is then (almost) the identity, so activations keep their
    scale through the 94 conv layers and pool features differ between images (about 20% of
    their mean magnitude on smooth test images). torchvision's own init (``init_weights=True``,
    torchvision/models/inception.py: truncated normal, std 0.1 whatever the fan-in) was tried
    and is degenerate: features grow to ~1e10, and clean-fid's Frechet distance of a set with
    itself came out at -3e5 or failed on imaginary sqrtm parts.

    Args:
        seed: torch seed of the weights (and of the projection).
        feature_dim: output size; below 2048 the pool features are multiplied by a fixed
            Gaussian matrix with variance ``1/feature_dim`` (Johnson-Lindenstrauss, keeps
            distances): FID's sqrtm is cubic in the dimension, and covariances need more
            samples than dimensions, so tests use small values.
        input_size: the network's input side; clean mode always hands over 299x299 images,
            below 299 they are area-averaged first (>= 75, Inception's minimum) to make CPU
            tests fast.

    Returns:
        A module mapping float (B, 3, 299, 299) images in [0, 255] to (B, feature_dim).
    """
    import torch
    import torchvision

    if not 75 <= input_size <= 299:
        raise ValueError(f"input_size must be in [75, 299], got {input_size}")
    if not 1 <= feature_dim <= INCEPTION_DIM:
        raise ValueError(f"feature_dim must be in [1, {INCEPTION_DIM}], got {feature_dim}")

    class RandomInception(torch.nn.Module):
        name = f"random inception (seed {seed}, dim {feature_dim}; not comparable)"

        def __init__(self) -> None:
            super().__init__()
            generator_state = torch.random.get_rng_state()
            torch.manual_seed(seed)
            try:
                # init_weights=False: torchvision's truncated-normal init takes seconds and is
                # overwritten below; batch norm starts at weight 1, bias 0 either way.
                net = torchvision.models.inception_v3(
                    weights=None, aux_logits=False, init_weights=False
                )
                for module in net.modules():
                    if isinstance(module, torch.nn.Conv2d):
                        torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                net.fc = torch.nn.Identity()
                projection = None
                if feature_dim < INCEPTION_DIM:
                    projection = torch.randn(INCEPTION_DIM, feature_dim) / math.sqrt(feature_dim)
            finally:
                torch.random.set_rng_state(generator_state)
            self.net = net.eval()
            self.register_buffer("projection", projection)

        @torch.no_grad()
        def forward(self, images: torch.Tensor) -> torch.Tensor:
            # The same input scaling as clean-fid's InceptionV3W: (x - 128) / 128.
            x = (images - 128.0) / 128.0
            if input_size != x.shape[-1]:
                x = torch.nn.functional.interpolate(x, size=(input_size, input_size), mode="area")
            features = self.net(x)
            return features if self.projection is None else features @ self.projection

    return RandomInception().eval()


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
    from benchmark.io import read_image

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
    import torch

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
    import torch
    from cleanfid.fid import get_files_features

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
    from cleanfid.fid import frechet_distance

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
    from dataclasses import replace

    from cleanfid.fid import kernel_distance

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


# --------------------------------------------------------------------------- suite level

#: Reference sets of :func:`suite_fid`.
REFERENCES = ("auto", "renders", "conditioning")


def _run_frames(run: Path) -> list[Path] | None:
    """Frames 1.. of a run whose generation succeeded (frame 0 is the conditioning image);
    None for a failed or unfinished run."""
    import json

    meta = run / "meta.json"
    if not meta.is_file() or json.loads(meta.read_text()).get("status") != "ok":
        return None
    return sorted((run / "frames").glob("*.png"))[1:]


def reference_kind(results_dir: str | Path, num_frames: int, reference: str = "auto") -> str:
    """The reference set a suite uses at one frame count: ``reference`` with "auto" resolved
    to "renders" when the suite has ``reference/f{F}/`` (synthetic), else "conditioning"."""
    if reference not in REFERENCES:
        raise ValueError(f"reference {reference!r} not one of {REFERENCES}")
    if reference != "auto":
        return reference
    renders = Path(results_dir) / "reference" / f"f{num_frames}"
    return "renders" if renders.is_dir() else "conditioning"


def reference_files(results_dir: str | Path, num_frames: int, reference: str) -> list[Path]:
    r"""The declared reference set of a suite at one frame count.

    Args:
        results_dir: ``results/{suite}``.
        num_frames: frame count of the setting.
        reference: "renders": frames 1.. of every exact render
            ``reference/f{F}/{scene}__{camera}/*.png`` (synthetic suites; frame 0 is the
            conditioning view); "conditioning": ``scenes/*/image.png`` (real-image suites);
            "auto": see :func:`reference_kind`.

    Returns:
        Image paths (possibly empty).
    """
    root = Path(results_dir)
    if reference_kind(root, num_frames, reference) == "renders":
        clips = sorted((root / "reference" / f"f{num_frames}").glob("*__*"))
        return [p for clip in clips for p in sorted(clip.glob("*.png"))[1:]]
    return sorted(root.glob("scenes/*/image.png"))


def suite_fid(
    results_dir: str | Path,
    method: str | Sequence[str],
    reference: str = "auto",
    extractor: Extractor | None = None,
    mode: str = "clean",
    device: str = "auto",
    kid: bool = True,
) -> list[dict[str, Any]]:
    r"""One FID per (method, frame count) over all frames 1.. of all generated runs.

    Args:
        results_dir: ``results/{suite}`` with ``{method}/f{F}/{scene}__{camera}/seed{k}/``.
        method: a method name or several (reference features are computed once).
        reference: see :func:`reference_files`.
        extractor, mode, device, kid: as in :func:`fid_between`.

    Returns:
        Rows ``{method, num_frames, fid, kid, num_gen, num_ref, num_runs, runs_skipped,
        reference, reason, note, extractor}``; runs whose generation failed are skipped
        and counted.
    """
    root = Path(results_dir)
    methods = [method] if isinstance(method, str) else list(method)
    device = _resolve_device(device)
    extractor, missing = _prepare_extractor(extractor, mode, device)
    name = getattr(extractor, "name", type(extractor).__name__) if extractor is not None else ""
    ref_cache: dict[int, tuple[str, list[Path], np.ndarray | None]] = {}
    rows = []
    for m in methods:
        for setting in sorted(root.glob(f"{m}/f*"), key=lambda p: int(p.name[1:])):
            if not setting.name[1:].isdigit():
                continue
            num_frames = int(setting.name[1:])
            runs = sorted(setting.glob("*__*/seed*"))
            frames = [_run_frames(run) for run in runs]
            gen_files = [p for f in frames if f for p in f]
            if num_frames not in ref_cache:
                kind = reference_kind(root, num_frames, reference)
                ref_cache[num_frames] = (kind, reference_files(root, num_frames, kind), None)
            kind, ref_files, ref_feats = ref_cache[num_frames]
            row = {
                "method": m,
                "num_frames": num_frames,
                "num_runs": sum(f is not None for f in frames),
                "runs_skipped": sum(f is None for f in frames),
                "reference": kind,
            }
            if missing:
                result = FidResult(None, None, len(gen_files), len(ref_files), reason=missing)
            else:
                kwargs = {"mode": mode, "device": device}
                if ref_feats is None:
                    ref_feats = frame_features(ref_files, extractor, **kwargs)
                    ref_cache[num_frames] = (kind, ref_files, ref_feats)
                gen_feats = frame_features(gen_files, extractor, **kwargs)
                result = fid_from_features(gen_feats, ref_feats, extractor_name=name, kid=kid)
            rows.append({**row, **result.as_dict()})
    return rows


def fid_footnote(rows: Sequence[dict[str, Any]]) -> str:
    r"""Table footnote: what FID was computed against, with how many frames, and caveats.

    Args:
        rows: output of :func:`suite_fid`.

    Returns:
        One paragraph (empty string for no rows).
    """
    if not rows:
        return ""
    references = {
        "renders": "frames 1.. of the exact renders of every path",
        "conditioning": "the conditioning images",
    }
    refs = sorted({references[r["reference"]] for r in rows})
    counts = "; ".join(
        f"{r['method']} {r['num_frames']} frames: {r['num_gen']} vs {r['num_ref']}" for r in rows
    )
    text = (
        "FID/KID: clean-fid, clean mode (PIL bicubic resize to 299), of frames 1.. of every "
        f"generated run against {' / '.join(refs)}; frames generated vs reference: {counts}. "
        "FID is biased upward for few frames (rank-deficient covariance below 2049 frames for "
        "Inception's 2048 features): compare only at equal frame counts."
    )
    names = sorted({r["extractor"] for r in rows if r.get("extractor")})
    if names and names != ["clean-fid inception"]:
        text += (
            f" Features: {', '.join(names)}; only clean-fid's Inception compares with "
            "published FIDs."
        )
    reasons = sorted({r["reason"] for r in rows if r.get("fid") is None and r.get("reason")})
    if reasons:
        text += " Missing FID: " + " | ".join(reasons)
    return text
