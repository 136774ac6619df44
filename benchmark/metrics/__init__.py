r"""Camera-control and fidelity metrics: pure functions over numpy arrays (no file I/O).

Conventions (the same as ``benchmark.cameras``): cameras are world-to-camera 4x4 float64
matrices per frame (``w2c``), OpenCV axes; frames are uint8 RGB ``(F, H, W, 3)``. An estimated
trajectory (from SfM on a generated clip) is a sequence with one ``(4, 4)`` w2c or ``None``
(not registered) per frame, in an arbitrary world frame and scale.

Three families:

1. :func:`camera_pose_errors`: ATE and RPE exactly as ParticleSfM evaluates them, through evo's
   own Python API (``evo.main_ape.ape`` / ``evo.main_rpe.rpe`` with Sim(3) Umeyama alignment,
   ``align=True, correct_scale=True``). Failures are recorded in the result, never raised.
2. :func:`cami2v_errors`: RotErr / TransErr / CamMC as CamI2V's ``glomap_evaluation.py``
   computes them (poses relative to frame 0, translations normalised by each trajectory's
   farthest camera). No library provides these, so they are written here by hand.
3. :func:`frame_fidelity` / :func:`masked_psnr`: PSNR and SSIM against a ground-truth render
   (synthetic scenes), computed as torchmetrics computes them (tested equal bit for bit; the
   package's import alone cost each score job 9 s, see ``fidelity``).

Modules: ``poses`` (1), ``cami2v`` (2), ``fidelity`` (3), ``checks`` (their shared pose checks),
``tracks`` (point-track scores), ``fid`` / ``inception`` (FID math and feature extractors,
imported on their own: they load torch lazily) and ``specs`` (the one registry of metric
labels, units, decimals and directions that aggregation, tables and plots read).
"""

from __future__ import annotations

from benchmark.metrics.cami2v import cami2v_errors
from benchmark.metrics.checks import COLLINEAR_RTOL, ROTATION_ATOL, STATIC_ATOL, EstPoses
from benchmark.metrics.fidelity import frame_fidelity, masked_psnr
from benchmark.metrics.poses import (
    PoseErrors,
    aligned_centres,
    camera_pose_errors,
    rotation_only_errors,
)
from benchmark.metrics.specs import METRIC_SPECS, MetricSpec

__all__ = [
    "COLLINEAR_RTOL",
    "METRIC_SPECS",
    "ROTATION_ATOL",
    "STATIC_ATOL",
    "EstPoses",
    "MetricSpec",
    "PoseErrors",
    "aligned_centres",
    "camera_pose_errors",
    "cami2v_errors",
    "frame_fidelity",
    "masked_psnr",
    "rotation_only_errors",
]
