"""The one place a :class:`methods.base.GenerationRequest` is built from files on disk.

Generation (:mod:`benchmark.stages.generate`), adapter conformance
(:mod:`benchmark.stages.conformance`) and attention maps (:mod:`benchmark.stages.attention`)
all ask the same thing: the conditioning view of a prepared scene, a camera path and a seed,
plus for video and editing clips the input video and the edit. Building it once keeps the
three in step (which image conditions an edit, when the synthetic scene is rebuilt).
"""

from __future__ import annotations

from pathlib import Path

from benchmark.cameras import CameraPath
from benchmark.sources.editing import load_edit, load_edited_scene
from benchmark.sources.scenes import SceneView
from benchmark.sources.videos import InputVideo
from methods.base import GenerationRequest


def build_request(
    view: SceneView,
    camera: CameraPath,
    seed: int = 0,
    *,
    needs_scene: bool = False,
    video: InputVideo | None = None,
    scene_dir: str | Path | None = None,
    edit_dir: str | Path | None = None,
) -> GenerationRequest:
    r"""The request of one clip.

    Args:
        view: the scene's conditioning view (:func:`benchmark.sources.scenes.load_scene_view`).
        camera: the camera path to follow (frame 0 = the view).
        seed: the run's seed.
        needs_scene: the method renders the synthetic scene (``Method.needs_scene``): rebuild
            it (the *edited* scene for editing clips); other methods never pay for it.
        video: the input video of a video or editing clip, else None.
        scene_dir: the prepared scene folder (needed with ``edit_dir`` and ``needs_scene``).
        edit_dir: editing clips, the prepared edit: its edited first frame conditions.

    Returns:
        The request; its ``task`` is ``edit`` with an edit, ``video`` with a video, else
        ``image``.
    """
    image, synthetic = view.image, None
    if edit_dir is not None:
        image = load_edit(edit_dir).image
        if needs_scene:
            if scene_dir is None:
                raise ValueError("an edited scene is rebuilt from its scene folder: give scene_dir")
            synthetic = load_edited_scene(scene_dir, edit_dir)
    elif needs_scene:
        synthetic = view.synthetic_scene()
    return GenerationRequest(
        image=image,
        camera=camera,
        seed=int(seed),
        depth=view.depth,
        scene=synthetic,
        video=None if video is None else video.frames,
        video_depth=None if video is None else video.depths,
        video_camera=None if video is None else video.camera,
        task="edit" if edit_dir is not None else ("video" if video is not None else "image"),
    )
