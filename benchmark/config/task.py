"""What a suite asks of the workflow: one task object for the Snakemake rules.

A suite's ``kind`` combines two independent choices: the *task* (``image``: a clip from one
image; ``video``: re-shoot an input video, paper Table 2; ``edit``: keep an input video's
motion from an edited first frame, paper Sec. 4.3) and the *source* (``synthetic``:
procedural scenes with exact depth and ground-truth renders; ``real``: fetched images or
clips with estimated depth). The rules ask this object which extra inputs and command-line
arguments a job needs, instead of branching on ``SUITE.is_*`` themselves. Every path it
returns sits under ``root`` (``<results>/<suite>``) at the place the rules write it.

Imports nothing heavy: ``snakemake -n`` loads it while parsing the workflow.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any, Literal

from benchmark.config.suites import Suite

TaskKind = Literal["image", "video", "edit"]
SourceKind = Literal["synthetic", "real"]

# Suite kind -> (task, source); the suite schema lists the same six kinds.
KINDS: dict[str, tuple[TaskKind, SourceKind]] = {
    "synthetic": ("image", "synthetic"),
    "image": ("image", "real"),
    "synthetic-video": ("video", "synthetic"),
    "video": ("video", "real"),
    "synthetic-editing": ("edit", "synthetic"),
    "editing": ("edit", "real"),
}

# The aggregate table each task is reported in (the paper's numbering).
TABLES: dict[TaskKind, str] = {"image": "table1", "video": "table2", "edit": "table_edit"}


def _wc(wildcards: Any, name: str) -> str:
    """One wildcard's value (Snakemake's Wildcards object or any object with attributes)."""
    return str(getattr(wildcards, name))


@dataclass(frozen=True)
class Task:
    """A suite's task and source, and the per-job inputs and arguments that follow from them.

    ``root`` is the suite's results folder (``<results>/<suite>``) as the rules spell it.
    Methods that take ``wildcards`` are Snakemake input or params functions.
    """

    suite: Suite
    root: str

    @property
    def kind(self) -> TaskKind:
        return KINDS[self.suite.kind][0]

    @property
    def source(self) -> SourceKind:
        return KINDS[self.suite.kind][1]

    @property
    def synthetic(self) -> bool:
        """Procedural scenes: exact depth (no depth model) and an exact reference render."""
        return self.source == "synthetic"

    @property
    def has_video(self) -> bool:
        """Each scene has an input video (video and edit tasks)."""
        return self.kind in ("video", "edit")

    @property
    def edits(self) -> bool:
        """Each scene has an edited first frame (edit tasks)."""
        return self.kind == "edit"

    @property
    def table(self) -> str:
        """Name of the aggregate table (``table1``, ``table2`` or ``table_edit``)."""
        return TABLES[self.kind]

    @property
    def depth_gpus(self) -> int:
        """GPUs a scene or input-video job needs: real sources run a depth model."""
        return 0 if self.synthetic else 1

    @property
    def preview_image_dir(self) -> str:
        """Folder under ``root`` holding the image the methods were given (edit tasks: the
        edited first frame)."""
        return "edits" if self.edits else "scenes"

    # Folders -------------------------------------------------------------------------

    def video_dir(self, frames: Any, scene: str) -> str:
        return f"{self.root}/videos/f{frames}/{scene}"

    def edit_dir(self, scene: str) -> str:
        return f"{self.root}/edits/{scene}"

    def reference_dir(self, frames: Any, scene: str, camera: str) -> str:
        return f"{self.root}/reference/f{frames}/{scene}__{camera}"

    # Input functions ---------------------------------------------------------------------

    def scene_source(self, wildcards: Any) -> str | list[str]:
        """A real scene's fetched image; synthetic scenes are generated from their seed."""
        return [] if self.synthetic else f"{self.root}/scenes/{_wc(wildcards, 'scene')}/source"

    def edited_source(self, wildcards: Any) -> str | list[str]:
        """A real editing clip's fetched edited first frame."""
        return [] if self.synthetic else f"{self.edit_dir(_wc(wildcards, 'scene'))}/source"

    def video_input(self, wildcards: Any) -> str | list[str]:
        """The scene's input video (its cameras file), for tasks that have one."""
        if not self.has_video:
            return []
        return f"{self.video_dir(_wc(wildcards, 'frames'), _wc(wildcards, 'scene'))}/camera.json"

    def video_arg(self, wildcards: Any) -> str:
        if not self.has_video:
            return ""
        return "--video-dir " + shlex.quote(
            self.video_dir(_wc(wildcards, "frames"), _wc(wildcards, "scene"))
        )

    def edit_input(self, wildcards: Any) -> str | list[str]:
        """The scene's edit recipe, for edit tasks."""
        return f"{self.edit_dir(_wc(wildcards, 'scene'))}/edit.json" if self.edits else []

    def edit_arg(self, wildcards: Any) -> str:
        if not self.edits:
            return ""
        return "--edit-dir " + shlex.quote(self.edit_dir(_wc(wildcards, "scene")))

    def reference_input(self, wildcards: Any) -> str | list[str]:
        """The exact render along the clip's path (synthetic sources only)."""
        if not self.synthetic:
            return []
        folder = self.reference_dir(
            _wc(wildcards, "frames"), _wc(wildcards, "scene"), _wc(wildcards, "camera")
        )
        return f"{folder}/done"

    def reference_arg(self, wildcards: Any) -> str:
        if not self.synthetic:
            return ""
        return "--reference-dir " + shlex.quote(self.reference_dir(
            _wc(wildcards, "frames"), _wc(wildcards, "scene"), _wc(wildcards, "camera")
        ))

    def score_video_input(self, wildcards: Any) -> str | list[str]:
        """Scoring reads the input video only for edit tasks (track agreement with it)."""
        return self.video_input(wildcards) if self.edits else []

    def score_args(self, wildcards: Any) -> str:
        """Edit tasks: the input video and the edit, for track agreement and persistence."""
        if not self.edits:
            return ""
        return f"{self.video_arg(wildcards)} {self.edit_arg(wildcards)}"
