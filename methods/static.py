"""``static``: repeats the conditioning image for every frame (a negative control).

Its poses cannot be recovered (no parallax), so it must show up as a failure or a large error:
if a metric ever rewards it, the metric is broken. On editing suites it repeats the edited
first frame: the edit persists but the video's motion is lost (large track EPE).
"""

from __future__ import annotations

import numpy as np

from methods.base import GenerationRequest, GenerationResult, Method


class Static(Method):
    name = "static"
    default_conf: dict = {}

    def generate(self, request: GenerationRequest) -> GenerationResult:
        frames = np.repeat(request.image[None], request.num_frames, axis=0)
        return GenerationResult(frames=frames, K=request.camera.K.copy())
