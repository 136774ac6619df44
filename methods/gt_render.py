"""``gt_render``: renders the synthetic scene along the path (the harness's noise floor).

Its frames are the exact truth, so its pose errors are what pose recovery and the metrics
themselves cost. It only works on synthetic scenes; anywhere else it says so. On editing
suites the harness hands it the *edited* scene (:mod:`benchmark.sources.editing`), so it renders the
exact edited video along the original video's cameras: the editing task's upper bound.
"""

from __future__ import annotations

from methods.base import GenerationRequest, GenerationResult, Method, MethodUnavailable


class GroundTruthRender(Method):
    name = "gt_render"
    default_conf: dict = {}
    needs_scene = True

    def generate(self, request: GenerationRequest) -> GenerationResult:
        if request.scene is None:
            raise MethodUnavailable(
                "gt_render needs a synthetic scene (suites of kind 'synthetic', "
                "'synthetic-video' or 'synthetic-editing'); this clip "
                "comes from a real image, whose other views cannot be rendered"
            )
        # heavy: the synthetic renderer imports torch; loaded only when a clip is rendered
        from benchmark.sources.synthetic import render_frames

        cam = request.camera
        frames, _ = render_frames(request.scene, cam.K, cam.w2c, cam.width, cam.height)
        return GenerationResult(frames=frames, K=cam.K.copy())
