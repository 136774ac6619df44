r"""Input videos of the video camera-control task (paper Sec. 4.2, Table 2).

For each scene and frame count, ``results/{suite}/videos/f{F}/{scene}/`` holds the input video
(``frames/00000.png``...), its per-frame z-depth (``depths.npy``, float32 (F, H, W)) and its own
camera path (``camera.json``, world-to-camera per frame in the scene's median-depth units).

The requested camera path is applied on top of the video frame by frame: with offsets
``M_f = w2c_B_f inv(w2c_B_0)`` of the parametric path B (made from the conditioning view like
any image-task path), the re-shot frame f has world-to-camera ``M_f @ w2c_video_f``. That
composed path is the clip's camera file: what methods are asked to follow and what scoring
compares with. Synthetic videos are rendered exactly; real clips need their own camera path
estimated (see :mod:`benchmark.sources.real_videos`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.cameras import CameraPath, load_camera_path, save_camera_path
from benchmark.cameras.paths import make_camera_path
from benchmark.config.suites import Suite
from benchmark.io import read_frames, write_frames, write_npy
from benchmark.sources.scenes import SceneView, make_scene_camera, median_depth
from trajattn.geometry import relative_w2c


@dataclass(frozen=True)
class InputVideo:
    """An input video: frames (F, H, W, 3) uint8, depths (F, H, W) and its camera path."""

    frames: np.ndarray
    depths: np.ndarray | None
    camera: CameraPath

    def __post_init__(self) -> None:
        num, h, w = self.frames.shape[:3]
        if self.camera.num_frames != num or (self.camera.height, self.camera.width) != (h, w):
            raise ValueError(
                f"video camera path ({self.camera.num_frames} frames, {self.camera.width}x"
                f"{self.camera.height}) does not match the {num} frames of {w}x{h}"
            )
        if self.depths is not None and self.depths.shape != (num, h, w):
            raise ValueError(f"video depths must be {(num, h, w)}, got {self.depths.shape}")


def prepare_synthetic_video(
    suite: Suite, scene: SceneView, name: str, num_frames: int, out_dir: str | Path
) -> Path:
    """Render scene ``name`` along its ``video_camera`` path: the exact input video."""
    from benchmark.sources.synthetic import render_frames  # the renderer needs torch

    synthetic = scene.synthetic_scene()
    if synthetic is None:
        raise ValueError(f"scene {name!r} is not synthetic: no exact video to render")
    view = scene.view
    path = make_camera_path(
        suite.video_camera(name), view.K, view.width, view.height, num_frames,
        depth=median_depth(scene.depth), base_w2c=view.w2c[0],
    )
    frames, depths = render_frames(synthetic, view.K, path.w2c, view.width, view.height)
    return write_video(out_dir, InputVideo(frames, depths.astype(np.float32), path))


def write_video(out_dir: str | Path, video: InputVideo) -> Path:
    """Write frames, depths and camera path (each atomically; camera.json last)."""
    out = Path(out_dir)
    write_frames(out / "frames", video.frames)
    if video.depths is not None:
        write_npy(out / "depths.npy", video.depths.astype(np.float32))
    save_camera_path(video.camera, out / "camera.json")
    return out


def load_video(video_dir: str | Path) -> InputVideo:
    """Read a prepared input video; errors name the missing file or the mismatch."""
    folder = Path(video_dir)
    camera_file = folder / "camera.json"
    if not camera_file.exists():
        raise FileNotFoundError(f"{camera_file} is missing: prepare the video first")
    camera = load_camera_path(camera_file)  # first: a recorded "unavailable" says why
    frames, _ = read_frames(folder / "frames")
    depths = np.load(folder / "depths.npy") if (folder / "depths.npy").exists() else None
    return InputVideo(frames, depths, camera)


def compose_camera(scene: SceneView, camera: str, video: InputVideo) -> CameraPath:
    """The re-shot clip's cameras: the offsets of path ``camera`` applied to each video frame's
    camera (``M_f @ w2c_video_f``)."""
    path = make_scene_camera(scene, camera, video.camera.num_frames)
    w2c = relative_w2c(path.w2c) @ video.camera.w2c
    return CameraPath(K=video.camera.K, w2c=w2c, width=video.camera.width,
                      height=video.camera.height, name=f"{camera}@video")
