r"""Stage: one FID per (method, frame count) of a suite against its declared reference set
(exact renders or conditioning images), and the table footnote saying how it was computed.

The FID math (clean-fid features, Frechet distance, KID) lives in :mod:`benchmark.metrics.fid`
and the feature extractors in :mod:`benchmark.metrics.inception`; both are re-exported here so
``benchmark.stages.fid`` stays the one entry point.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.metrics.fid import (
    IMAGE_SUFFIXES,
    KID_SEED,
    MIN_SAMPLES,
    MODES,
    FidResult,
    FrameSource,
    _prepare_extractor,
    _resolve_device,
    count_frames,
    fid_between,
    fid_from_features,
    frame_features,
    frechet_distance_low_rank,
    image_files,
)
from benchmark.metrics.inception import (
    INCEPTION_DIM,
    INCEPTION_DIR_ENV,
    INCEPTION_FILE,
    INCEPTION_URL,
    Extractor,
    fetch_inception_weights,
    inception_available,
    inception_dir,
    inception_path,
    random_inception_extractor,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "INCEPTION_DIM",
    "INCEPTION_DIR_ENV",
    "INCEPTION_FILE",
    "INCEPTION_URL",
    "KID_SEED",
    "MIN_SAMPLES",
    "MODES",
    "REFERENCES",
    "Extractor",
    "FidResult",
    "FrameSource",
    "count_frames",
    "fetch_inception_weights",
    "fid_between",
    "fid_footnote",
    "fid_from_features",
    "frame_features",
    "frechet_distance_low_rank",
    "image_files",
    "inception_available",
    "inception_dir",
    "inception_path",
    "random_inception_extractor",
    "reference_files",
    "reference_kind",
    "suite_fid",
]

#: Reference sets of :func:`suite_fid`.
REFERENCES = ("auto", "renders", "conditioning")


def _run_frames(run: Path) -> list[Path] | None:
    """Frames 1.. of a run whose generation succeeded (frame 0 is the conditioning image);
    None for a failed or unfinished run."""
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
