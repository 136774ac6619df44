"""Reference stage: the exact render of a synthetic scene along a camera path, the frames
that fidelity metrics (PSNR/SSIM) compare each method's output with.

Its own module so that a reference job imports the renderer and nothing of scoring (evo,
scipy, trackers)."""

from __future__ import annotations

from pathlib import Path

from benchmark.cameras import CameraFileError, load_camera_path
from benchmark.io import atomic_write_text, write_frames
from benchmark.sources.scenes import load_scene_view


def render_reference(
    scene_dir: str | Path,
    camera_file: str | Path,
    out_dir: str | Path,
    edit_dir: str | Path | None = None,
) -> Path:
    """Render the synthetic scene of ``scene_dir`` (edited by ``edit_dir``'s recipe when
    given: the exact edited video of an editing clip) along the path into ``out_dir/*.png``;
    an unreadable camera file leaves ``out_dir/reason.txt`` instead of frames."""
    # the renderer needs torch: loaded only by the reference rule, never by score jobs
    from benchmark.sources.synthetic import render_frames

    if edit_dir is not None:
        from benchmark.sources.editing import load_edited_scene  # cv2 (editing runs only)

        scene = load_edited_scene(scene_dir, edit_dir)
    else:
        scene = load_scene_view(scene_dir).synthetic_scene()
    if scene is None:
        raise ValueError(f"{scene_dir} is not a synthetic scene: no reference render exists")
    try:
        camera = load_camera_path(camera_file)
    except (CameraFileError, OSError) as exc:  # recorded: scoring then reports no reference
        atomic_write_text(Path(out_dir) / "reason.txt", f"no reference render: {exc}\n")
        return Path(out_dir)
    frames, _ = render_frames(scene, camera.K, camera.w2c, camera.width, camera.height)
    write_frames(out_dir, frames)
    return Path(out_dir)
