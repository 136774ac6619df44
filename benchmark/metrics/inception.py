r"""Feature extractors for FID: clean-fid's Inception weights (cache, fetch, load; never an
implicit download) and a seeded random Inception-v3 for tests and offline checks (numbers
NOT comparable with published FIDs). See :mod:`benchmark.metrics.fid` for the distances."""

from __future__ import annotations

import math
import os
import platform
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch only for annotations: imported lazily where it is used
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

#: A feature extractor: float images (B, 3, 299, 299) in [0, 255] -> features (B, D).
Extractor = Callable[["torch.Tensor"], "torch.Tensor"]


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
    import torch  # heavy (torch): only FID runs load it
    from cleanfid.downloads_helper import check_download_inception  # heavy: FID only

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
    from cleanfid.inception_torchscript import InceptionV3W  # heavy (torch): only FID runs load it

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
    import torch  # heavy (torch): only FID runs load it
    import torchvision  # heavy (torch): only FID runs load it

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


