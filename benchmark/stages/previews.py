r"""MP4 previews of generated clips for the HTML report (``snakemake --report``).

Scores always use the lossless PNG frames; previews are only for looking. Each preview shows
the generated clip beside the reference (the exact render on synthetic suites, else the
conditioning image held still), with a one-line label burnt into the top of each panel, as
H.264 (yuv420p) so browsers play it. ffmpeg comes from ``imageio-ffmpeg`` (a static build).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from benchmark.io import read_frames, read_image


def label(frame: np.ndarray, text: str) -> np.ndarray:
    """A copy of ``frame`` with ``text`` on a dark band at the top."""
    out = frame.copy()
    scale = max(0.35, frame.shape[1] / 900)
    band = int(22 * scale / 0.6)
    out[:band] = (out[:band] * 0.35).astype(np.uint8)
    cv2.putText(out, text, (4, int(band * 0.72)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), 1, cv2.LINE_AA)
    return out


def side_by_side(panels: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """Clips (F, H, W, 3) with labels, resized to the first one's height and placed left to
    right; shorter clips hold their last frame."""
    num = max(len(clip) for _, clip in panels)
    height = panels[0][1].shape[1]
    columns = []
    for text, clip in panels:
        if clip.shape[1] != height:
            width = round(clip.shape[2] * height / clip.shape[1])
            clip = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA)
                             for f in clip])
        clip = np.concatenate([clip, np.repeat(clip[-1:], num - len(clip), 0)])
        columns.append(np.stack([label(f, text) for f in clip]))
    return np.concatenate(columns, axis=2)


def write_mp4(frames: np.ndarray, path: str | Path, fps: int = 7) -> Path:
    """Write (F, H, W, 3) uint8 RGB as H.264 MP4 (odd sizes padded by one black pixel),
    atomically: a killed run never leaves a truncated video under the final name."""
    import imageio_ffmpeg  # locates the ffmpeg binary: only MP4 previews need it

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
        raise ValueError(f"frames must be uint8 (F, H, W, 3), got {frames.dtype} {frames.shape}")
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".mp4")
    os.close(fd)
    try:
        writer = imageio_ffmpeg.write_frames(
            tmp, (frames.shape[2], frames.shape[1]), fps=fps, codec="libx264",
            macro_block_size=1, quality=8,
        )
        writer.send(None)  # start ffmpeg
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        writer.close()
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def run_preview(run_dir: str | Path, reference_dir: str | Path | None, scene_dir: str | Path,
                out: str | Path, fps: int = 7) -> Path:
    """Preview of one run: its frames beside the reference render (or the conditioning image),
    labelled; a failed generation shows the reference beside a card with its reason."""
    run = Path(run_dir)
    meta = json.loads((run / "meta.json").read_text())
    if reference_dir is not None:
        reference, _ = read_frames(reference_dir)
        ref_label = "exact render"
    else:
        image = read_image(Path(scene_dir) / "image.png")
        reference, ref_label = image[None], "conditioning image"
    if meta.get("status") == "ok":
        frames, _ = read_frames(run / "frames")
        text = meta["method"]
    else:
        frames = np.zeros_like(reference[:1])
        text = f"{meta['method']}: failed"
        reason = str(meta.get("reason", ""))[:80]
        cv2.putText(frames[0], reason, (4, frames.shape[1] // 2), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return write_mp4(side_by_side([(text, frames), (ref_label, reference)]), out, fps)
