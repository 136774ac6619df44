"""Decoding and framing of real inputs, shared by real-image scenes, real clips and real edits:
read a clip's frames, its first used frame, and the centre crop / resize every real frame gets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np


class VideoUnavailable(RuntimeError):
    """The clip cannot be used (unreadable, too short, cameras not recoverable)."""


def read_clip(path: str | Path, start_frame: int = 0, frame_step: int = 1,
              num_frames: int | None = None) -> np.ndarray:
    """Decode frames ``start_frame, start_frame + frame_step, ...`` of a video file as
    (F, H, W, 3) uint8 RGB; ``num_frames`` None: to the end. Errors name the file."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoUnavailable(f"{path}: not a video OpenCV can decode")
    frames: list[np.ndarray] = []
    index = 0
    try:
        while num_frames is None or len(frames) < num_frames:
            ok, bgr = capture.read()
            if not ok:
                break
            if index >= start_frame and (index - start_frame) % frame_step == 0:
                frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            index += 1
    finally:
        capture.release()
    if num_frames is not None and len(frames) < num_frames:
        raise VideoUnavailable(
            f"{path}: {len(frames)} frames from frame {start_frame} every {frame_step}, "
            f"{num_frames} needed"
        )
    if not frames:
        raise VideoUnavailable(f"{path}: no frames decoded")
    return np.stack(frames)


def first_frame(path: str | Path, entry: dict[str, Any]) -> np.ndarray:
    """The conditioning frame of a clip entry (its first used frame)."""
    return read_clip(path, entry.get("start_frame", 0), 1, 1)[0]


def center_crop_resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize so the image covers (width, height), then crop the centre (no distortion)."""
    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    new_w, new_h = max(width, round(w * scale)), max(height, round(h * scale))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
    x0, y0 = (new_w - width) // 2, (new_h - height) // 2
    return np.ascontiguousarray(resized[y0 : y0 + height, x0 : x0 + width])
