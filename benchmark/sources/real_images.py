"""Real-image scenes: download by URL with a sha256 check, crop to the suite's size, and
estimate depth with Depth-Anything-V2 through ``transformers`` on the user's machine.

Depth-Anything-V2's relative models predict an affine-invariant *disparity*; like the official
trajectory-attention code we take depth proportional to its inverse (clipped away from zero),
then scale it so the median depth is 1, the unit of camera-path magnitudes. The intrinsics are
the suite's (horizontal FOV, centred principal point): a single image has no known K.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from pathlib import Path

import cv2
import numpy as np

from benchmark.cameras import CameraPath, camera_path_to_dict, canonical_K, validate_intrinsics
from benchmark.config.suites import Suite
from benchmark.io import atomic_write_bytes, atomic_write_text, read_image, write_npy, write_png
from benchmark.sources.clips import center_crop_resize, first_frame

#: Disparity below this fraction of the image's maximum is clipped (sky, far background).
MIN_DISPARITY_FRACTION = 0.01


class InputUnavailable(RuntimeError):
    """An input (image file, depth model weights) is missing; says what to fetch."""


def fetch_image(url: str, sha256: str, out: str | Path) -> Path:
    """Download ``url`` to ``out`` and check its sha256; a mismatch is an error, never used."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (suite URLs)
            data = response.read()
    except OSError as exc:
        raise InputUnavailable(f"cannot download {url}: {exc} (needs network access)") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ValueError(f"{url}: sha256 {digest} does not match the suite's {sha256}")
    atomic_write_bytes(out, data)
    return Path(out)


def disparity_to_depth(disparity: np.ndarray) -> np.ndarray:
    """Relative depth from affine-invariant disparity, scaled to median 1."""
    disparity = np.asarray(disparity, dtype=np.float64)
    if not np.isfinite(disparity).all():
        raise ValueError("depth model returned non-finite disparity")
    floor = MIN_DISPARITY_FRACTION * float(disparity.max())
    if floor <= 0:
        raise ValueError("depth model returned no positive disparity")
    depth = 1.0 / np.maximum(disparity, floor)
    return (depth / np.median(depth)).astype(np.float32)


def estimate_depth(image: np.ndarray, model: str, device: str | None = None) -> np.ndarray:
    """Depth (H, W) of an RGB uint8 image with a transformers depth-estimation model."""
    try:  # torch + transformers (seconds, GBs): only depth estimation loads them
        import torch
        from PIL import Image
        from transformers import pipeline
    except ImportError as exc:  # pragma: no cover - transformers is a dependency
        raise InputUnavailable(f"transformers is needed for depth: {exc}") from exc
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        estimator = pipeline("depth-estimation", model=model, device=device)
    except OSError as exc:
        raise InputUnavailable(
            f"depth model {model!r} is not available: download it on a networked machine "
            f"(huggingface-cli download {model}) or set the suite's depth_model to a local path"
        ) from exc
    output = estimator(Image.fromarray(image))
    disparity = output["predicted_depth"].squeeze().float().cpu().numpy()
    disparity = cv2.resize(disparity, (image.shape[1], image.shape[0]), cv2.INTER_LINEAR)
    return disparity_to_depth(disparity)


def prepare_image_scene(suite: Suite, name: str, out_dir: str | Path) -> Path:
    """Write image.png, depth.npy and view.json of the real-image scene ``name`` (for a
    ``video`` suite: of its clip's first frame)."""
    out = Path(out_dir)
    width, height = suite.data["width"], suite.data["height"]
    K = validate_intrinsics(  # the one plausibility check every K entering trajbench gets,
        canonical_K(width, height, suite.data["hfov_deg"]),  # before any download
        f"{suite.path}: scene {name}: K from hfov_deg={suite.data['hfov_deg']}", width, height,
    )
    source = out / "source"
    if not source.exists():
        entry = suite.scene(name)
        fetch_image(entry["url"], entry["sha256"], source)
    if suite.is_video:  # a clip (video, editing): its first used frame is the conditioning view
        raw = first_frame(source, suite.scene(name))
    else:
        raw = read_image(source)
    image = center_crop_resize(raw, width, height)
    depth = estimate_depth(image, suite.data["depth_model"])
    write_png(out / "image.png", image)
    write_npy(out / "depth.npy", depth)
    view = CameraPath(K=K, w2c=np.eye(4)[None], width=width, height=height, name=name)
    atomic_write_text(out / "view.json", json.dumps(camera_path_to_dict(view), indent=1))
    return out
