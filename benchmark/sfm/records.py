"""Options of pose recovery and its record, ``poses.json`` (format ``trajbench.poses/1``).

Kept apart from the COLMAP calls so that the scoring and report stages read poses without
loading pycolmap."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from benchmark.io import atomic_write_text

MIN_REGISTERED = 0.8
POSES_FORMAT = "trajbench.poses/1"


@dataclass
class PoseRecoveryConfig:
    """Options of pose recovery; the defaults are the benchmark's protocol (docs/protocol.md).

    ``legacy()`` is the single-trial protocol used before the calibration study (relaxed
    initial-pair rules, no plausibility check, full-size 8192-feature SIFT); bench_poses runs
    it beside the default so every speed and accuracy claim is a ratio from one run."""

    matcher: Literal["exhaustive", "sequential"] = "sequential"
    #: "global" (COLMAP's global mapper, formerly GLOMAP; the protocol since 2026-12-04) or
    #: "incremental"; chosen by measurement on the calibration suite (docs/protocol.md).
    mapper: Literal["incremental", "global"] = "global"
    sequential_overlap: int = 8
    max_num_features: int = 4096
    #: Long side (px) the frames are downscaled to for SIFT when larger (0: full size);
    #: keypoints are scaled back to full-resolution pixels by COLMAP, and K stays the frames'
    #: own. 768: at 1024x576x25 0.77x the CPU time of native-size SIFT at the same ATE and
    #: seed stability on the calibration clips; smaller frames are untouched (protocol.md).
    max_image_size: int = 768
    num_threads: int = 1
    seed: int = 0
    min_registered: float = MIN_REGISTERED
    #: SIFT's first octave: -1 upsamples the frame 2x first (COLMAP's default), 0 starts at
    #: native size; None (auto): -1 for frames whose long side is below ``upsample_below``
    #: pixels, else 0. No benchmark size upsamples (the smallest, 448x256, is native): that
    #: cut extraction 3-4x and mapping 2-3x (fewer, larger-scale features) at equal accuracy
    #: on the calibration clips (docs/protocol.md, "Decisions"). Thumbnail-sized frames
    #: (long side < 320 px, e.g. test clips) keep COLMAP's 2x: at native size they give too
    #: few keypoints to match at all.
    sift_first_octave: int | None = None
    upsample_below: int = 320
    #: Initial pairs the incremental mapper tries per attempt (COLMAP's default: 200).
    init_num_trials: int = 200
    #: The incremental mapper runs a global bundle adjustment whenever the model has grown by
    #: this ratio in frames or points since the last one (COLMAP's default: 1.1).
    ba_global_ratio: float = 1.1
    #: Global mapper only: track establishment keeps tracks until every frame has this many
    #: (COLMAP's default: no limit, every track). Global positioning's cost grows with the
    #: track count: on room00 / orbit_left_15deg at 1024x576x25, 300 per frame cut two
    #: trials' mapping from 34 to 9.6 CPU s at the same ATE (docs/protocol.md).
    global_tracks_per_view: int = 300
    #: Mapping trials on the same features (``trial_plan`` in benchmark.sfm.mapping gives
    #: each trial's rules and seed). Global mapper: 3 (fewer when the first two coincide,
    #: see ``verification_trials``); the incremental protocol of 2026-12-03: 2.
    num_trials: int = 3
    #: Global mapper only: trial k >= 1 verifies the raw matches again with RANSAC seed
    #: seed + k before mapping (the mapper itself is deterministic given the matches: its
    #: seed changed no model on the calibration clips), and a trial whose verified matches
    #: equal trial 0's ends the trials (docs/protocol.md, "Trials"). False: trials differ
    #: by the mapper's seed only (the protocol of 2026-12-04, whose trials coincided).
    verification_trials: bool = True
    #: "mixed" (the protocol): trials alternate COLMAP's initial-pair rules and the relaxed
    #: ones (seed, seed, seed+1, ...), so the relaxed rules are both the fallback when
    #: COLMAP's find no model and a cross-check of the model they find;
    #: "default-then-relaxed": COLMAP's rules, relaxed ones only when no trial with them
    #: registers enough plausible frames; "relaxed": relaxed rules only (the legacy
    #: protocol); "default": never relax.
    init_rules: Literal["mixed", "default-then-relaxed", "relaxed", "default"] = "mixed"
    #: Per-frame plausibility checks and trial consensus (benchmark.sfm.trials).
    plausibility: bool = True
    #: No SfM model but rotation-dominant pairs: per-frame rotations from homographies.
    rotation_fallback: bool = True
    #: "auto": pycolmap's CUDA SIFT extraction and matching when pycolmap was built with
    #: CUDA (the optional ``gpu`` extra), else the CPU; "cpu" forces the CPU.
    device: Literal["auto", "cpu"] = "auto"

    @classmethod
    def legacy(cls, **overrides: Any) -> PoseRecoveryConfig:
        """The protocol before issue 13: one trial, relaxed rules, no checks, full-size SIFT."""
        base = dict(mapper="incremental", num_trials=1, init_rules="relaxed", plausibility=False,
                    rotation_fallback=False, max_image_size=0, max_num_features=8192,
                    matcher="exhaustive", sift_first_octave=-1, upsample_below=800)
        base.update(overrides)
        return cls(**base)

    @classmethod
    def incremental(cls, **overrides: Any) -> PoseRecoveryConfig:
        """The protocol of 2026-12-03 (issue 13's first calibration): the incremental mapper,
        trials alternating COLMAP's and relaxed initial-pair rules, native-size SIFT; kept
        for comparison."""
        return cls(**{"mapper": "incremental", "max_image_size": 0, "num_trials": 2,
                      **overrides})


#: COLMAP's default initial-pair rules and the relaxed fallback (short clips span <= ~20
#: degrees, often along the optical axis: the defaults can reject every pair of a dolly).
DEFAULT_INIT = {"init_min_tri_angle": 16.0, "init_max_forward_motion": 0.95}
RELAXED_INIT = {"init_min_tri_angle": 4.0, "init_max_forward_motion": 1.0}


@dataclass
class RecoveredPoses:
    """Per-frame world-to-camera poses (None where unregistered) and the verdict.

    ``kind`` is "sfm" (a COLMAP model) or "rotation_only" (no model; rotations from
    homographies, translations set to 0 and undefined). ``trials`` records every mapping
    trial's verdict, ``dropped`` the registered frames the plausibility rules removed (frame
    index -> rule), ``init_rules`` the initial-pair rules of the chosen trial.
    ``timings`` (CPU seconds of this process per stage: extraction, matching, mapping,
    rotation) is measured but not saved, so poses.json stays bit-reproducible."""

    w2c: list[np.ndarray | None]
    status: Literal["ok", "failed"]
    reason: str = ""
    num_models: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    kind: Literal["sfm", "rotation_only"] = "sfm"
    trials: list[dict[str, Any]] = field(default_factory=list)
    dropped: dict[int, str] = field(default_factory=dict)
    init_rules: str = ""
    unstable: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(self.w2c)

    @property
    def num_registered(self) -> int:
        return sum(p is not None for p in self.w2c)

    @property
    def registered_ratio(self) -> float:
        return self.num_registered / max(self.num_frames, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": POSES_FORMAT,
            "status": self.status,
            "reason": self.reason,
            "kind": self.kind,
            "num_frames": self.num_frames,
            "num_registered": self.num_registered,
            "registered_ratio": self.registered_ratio,
            "num_models": self.num_models,
            "init_rules": self.init_rules,
            "unstable": self.unstable,
            "dropped": {str(k): v for k, v in sorted(self.dropped.items())},
            "trials": self.trials,
            "w2c": [None if p is None else p.tolist() for p in self.w2c],
            "config": self.config,
        }

    @classmethod
    def from_dict(cls, data: Any) -> RecoveredPoses:
        """Validate the ``trajbench.poses/1`` structure; ValueError names the bad field.

        Non-finite numbers inside a pose are kept: scoring records them as a failed run.
        Files written before ``kind`` existed are SfM poses."""
        if not isinstance(data, dict) or data.get("format") != POSES_FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"not a poses file (format {found!r}, expected {POSES_FORMAT!r})")
        if data.get("status") not in ("ok", "failed"):
            raise ValueError(f"status: expected 'ok' or 'failed', got {data.get('status')!r}")
        kind = data.get("kind", "sfm")
        if kind not in ("sfm", "rotation_only"):
            raise ValueError(f"kind: expected 'sfm' or 'rotation_only', got {kind!r}")
        poses = data.get("w2c")
        if not isinstance(poses, list):
            raise ValueError(f"w2c: expected a list (one pose or null per frame), got {poses!r}")
        w2c: list[np.ndarray | None] = []
        for i, pose in enumerate(poses):
            if pose is None:
                w2c.append(None)
                continue
            try:
                arr = np.asarray(pose, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"w2c[{i}]: not a numeric 4x4 matrix ({exc})") from exc
            if arr.shape != (4, 4):
                raise ValueError(f"w2c[{i}]: expected shape (4, 4) or null, got {arr.shape}")
            w2c.append(arr)
        if "num_frames" in data and data["num_frames"] != len(w2c):
            raise ValueError(
                f"num_frames: {data['num_frames']} but w2c has {len(w2c)} entries"
            )
        dropped = data.get("dropped", {})
        return cls(
            w2c=w2c,
            status=data["status"],
            reason=data.get("reason", ""),
            num_models=data.get("num_models", 0),
            config=data.get("config", {}),
            kind=kind,
            trials=list(data.get("trials", [])),
            dropped={int(k): str(v) for k, v in dropped.items()} if isinstance(dropped, dict)
            else {},
            init_rules=str(data.get("init_rules", "")),
            unstable=bool(data.get("unstable", False)),
        )


def save_poses(poses: RecoveredPoses, path: str | Path) -> None:
    atomic_write_text(path, json.dumps(poses.to_dict(), indent=1))


def read_json(path: Path) -> Any:
    """JSON content of ``path``; a malformed file is a ValueError naming it."""
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: malformed JSON ({exc})") from exc


def load_poses(path: str | Path) -> RecoveredPoses:
    """Read a poses.json; errors (malformed JSON, wrong structure) name the file."""
    file = Path(path)
    try:
        return RecoveredPoses.from_dict(read_json(file))
    except ValueError as exc:
        if str(file) in str(exc):
            raise
        raise ValueError(f"{file}: {exc}") from exc
