"""Capture: run one generation and keep the temporal and trajectory attention maps of the
chosen blocks at the chosen denoising steps (:class:`StepwiseCapture`,
:func:`collect_attention_maps`), in an :class:`AttentionMaps`.

trajattn and torch load only inside the functions that run a model, so reading and plotting
saved maps needs neither.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from methods.base import Method
from methods.framing import fit_to_resolution
from methods.presets import method_from_preset
from trajattn.settings import PAPER_DEFAULTS

KINDS = ("temporal", "trajectory")
#: block path -> {"temporal": (F, F), "trajectory": (F, F)}
BlockMaps = dict[str, dict[str, np.ndarray]]


@dataclass
class AttentionMaps:
    r"""Captured attention maps of one generation.

    Attributes:
        maps: block path (forward order) -> kind -> (F, F) float32 probabilities (rows: query
            frames, columns: key frames), the mean of :attr:`per_step` over the captured steps.
        per_step: step index -> block path -> kind -> (F, F), each averaged over that step's
            UNet calls (both CFG halves are one call).
        steps: the captured step indices (0 = first, noisiest step), ascending.
        num_inference_steps: denoising steps of the generation.
        frames: (F, H, W, 3) uint8 generated frames (None when loaded from a file).
        info: JSON-able notes (preset, scene, camera, seed, generation info).
    """

    maps: BlockMaps
    per_step: dict[int, BlockMaps]
    steps: list[int]
    num_inference_steps: int
    frames: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def blocks(self) -> list[str]:
        """Block paths, in forward order unless chosen otherwise."""
        return list(self.maps)

    def at(self, step: int | None = None) -> BlockMaps:
        """The maps of one captured step, or (None) the mean over the captured steps."""
        if step is None:
            return self.maps
        if step not in self.per_step:
            raise KeyError(f"step {step} was not captured; captured: {self.steps}")
        return self.per_step[step]



def resolve_steps(steps: Sequence[int] | None, num_inference_steps: int) -> list[int] | None:
    r"""Step indices in ``[0, num_inference_steps)``; negative ones count from the end.

    Returns:
        Sorted unique indices, or None (every step) when ``steps`` is None.

    Raises:
        ValueError: an index outside the run, or an empty selection.
    """
    if steps is None:
        return None
    n = int(num_inference_steps)
    out = set()
    for step in steps:
        s = int(step)
        if not -n <= s < n:
            raise ValueError(f"step {s} is outside the run's {n} denoising steps")
        out.add(s % n)
    if not out:
        raise ValueError("no step chosen: give at least one step index (or None for all)")
    return sorted(out)


def forward_order(names: Sequence[str]) -> list[str]:
    r"""Block paths in the order a UNet forward runs them: ``down_blocks``, ``mid_block``,
    ``up_blocks`` (module order within each; ``named_modules`` lists ``up_blocks`` before
    ``mid_block``)."""
    rank = {"down_blocks": 0, "mid_block": 1, "up_blocks": 2}
    position = {name: i for i, name in enumerate(names)}
    return sorted(names, key=lambda n: (rank.get(n.split(".", 1)[0], 3), position[n]))


def resolve_blocks(blocks: Sequence[str | int] | None, available: Sequence[str]) -> list[str]:
    r"""Block paths from paths or indices into ``available`` (``"3"`` counts as 3).

    Raises:
        ValueError: a block that is not among ``available`` (the message lists them).
    """
    available = list(available)
    if blocks is None:
        return available
    out = []
    for block in blocks:
        text = str(block)
        if text.lstrip("-").isdigit():
            index = int(text)
            if not -len(available) <= index < len(available):
                raise ValueError(f"block index {index} outside 0..{len(available) - 1}")
            name = available[index]
        elif text in available:
            name = text
        else:
            raise ValueError(f"unknown block {text!r}; blocks: {', '.join(available)}")
        if name not in out:
            out.append(name)
    if not out:
        raise ValueError("no block chosen")
    return out


class StepwiseCapture:
    r"""Capture attention maps per denoising step, only for the chosen steps.

    A forward pre-hook on ``pipe.unet`` reads ``pipe.scheduler.step_index`` (looked up at each
    call, so a scheduler swapped during the run, e.g. by NVS-Solver guidance, is followed) and
    keeps one :func:`trajattn.attention.capture_attention_maps` context open per chosen step.

    Args:
        pipe: a pipeline whose UNet carries trajectory attention.
        steps: step indices to capture (already resolved, non-negative), or None for all.
    """

    def __init__(self, pipe: Any, steps: Sequence[int] | None = None):
        self.pipe = pipe
        self.steps = None if steps is None else set(int(s) for s in steps)
        self.per_step: dict[int, BlockMaps] = {}
        self._open: tuple[int, Any, BlockMaps] | None = None
        self._handle = None

    def __enter__(self) -> StepwiseCapture:
        from trajattn.attention import get_config  # torch: loaded only to capture

        get_config(self.pipe.unet)  # raises when trajectory attention is not applied
        self._handle = self.pipe.unet.register_forward_pre_hook(self._before_unet)
        return self

    def _before_unet(self, module: Any, args: tuple) -> None:
        step = getattr(self.pipe.scheduler, "step_index", None)
        if step is None:
            raise RuntimeError(
                "the scheduler has no step_index at the UNet call: cannot tell which "
                "denoising step this is (expected diffusers' SVD loop with an Euler scheduler)"
            )
        step = int(step)
        if self._open is not None and self._open[0] == step:
            return
        self._close()
        if self.steps is None or step in self.steps:
            from trajattn.attention import capture_attention_maps  # torch, as above

            context = capture_attention_maps(self.pipe.unet)
            self._open = (step, context, context.__enter__())

    def _close(self, exc: BaseException | None = None) -> None:
        if self._open is None:
            return
        step, context, maps = self._open
        self._open = None
        if exc is not None:
            context.__exit__(type(exc), exc, exc.__traceback__)
            return
        context.__exit__(None, None, None)
        if step in self.per_step:
            raise RuntimeError(
                f"denoising step {step} was captured twice: run one generation per capture"
            )
        self.per_step[step] = {name: dict(entry) for name, entry in maps.items()}

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        try:
            self._close(exc)
        finally:
            if self._handle is not None:
                self._handle.remove()
                self._handle = None


def mean_over_steps(per_step: Mapping[int, BlockMaps]) -> BlockMaps:
    """Block -> kind -> the mean of that map over the steps that have it (block order kept)."""
    gathered: dict[str, dict[str, list[np.ndarray]]] = {}
    for step_maps in per_step.values():
        for block, entry in step_maps.items():
            for kind, probs in entry.items():
                gathered.setdefault(block, {}).setdefault(kind, []).append(probs)
    return {
        block: {
            kind: np.mean(np.stack(arrays), axis=0).astype(np.float32)
            for kind, arrays in entry.items()
        }
        for block, entry in gathered.items()
    }


def _make_method(source: Any, options: Mapping[str, Any] | None) -> Any:
    """A method adapter from a preset name / path, a ``{adapter, args}`` dict or an adapter."""
    if isinstance(source, Method):
        if options:
            raise ValueError("options apply to presets and pipelines, not to a built adapter")
        return source
    return method_from_preset(source, options)


def _run_pipeline(pipe: Any, request: Any, options: Mapping[str, Any]) -> tuple[np.ndarray, dict]:
    """One image-task generation with a :class:`trajattn.pipeline.TrajectoryAttentionPipeline`,
    prepared as the ``trajattn`` adapter prepares it (fit to the resolution, Alg. 3)."""
    import torch  # heavy: only runs that generate need it

    if request.depth is None:
        raise ValueError("trajectories from depth (paper Alg. 3) need request.depth")
    kwargs = dict(options)
    width = int(kwargs.pop("width", request.camera.width))
    height = int(kwargs.pop("height", request.camera.height))
    cam = request.camera
    image, depth, K, crop = fit_to_resolution(request.image, request.depth, cam.K, width, height)
    frames = pipe(
        image, depth=depth, K=K, w2c=cam.w2c, width=width, height=height,
        num_frames=request.num_frames, generator=torch.Generator().manual_seed(request.seed),
        **kwargs,
    )
    info = {"resolution": [width, height], "crop_box_xywh": list(crop)}
    return frames, info


def collect_attention_maps(
    source: Any,
    request: Any,
    blocks: Sequence[str | int] | None = None,
    steps: Sequence[int] | None = None,
    options: Mapping[str, Any] | None = None,
) -> AttentionMaps:
    r"""Run one generation and capture temporal and trajectory attention maps.

    Args:
        source: a method preset (name as in ``configs/methods``, a .yaml path, or a dict
            ``{adapter, args}``) or an adapter instance whose ``pipeline()`` returns a
            trajectory-attention pipeline (the ``trajattn`` adapter); or such a pipeline itself
            (e.g. :func:`trajattn.tiny.build_tiny_pipeline`).
        request: a :class:`methods.base.GenerationRequest` of the image task (image, depth,
            camera path, seed).
        blocks: block paths or indices (in forward order, :func:`forward_order`) to keep;
            None keeps every temporal block.
        steps: denoising step indices to capture (0 = first; negative from the end); None
            captures every step.
        options: preset args overriding the preset's (preset source), or keyword arguments of
            the pipeline call (pipeline source: ``width``, ``height``,
            ``num_inference_steps`` (default the paper's 25), ``track_stride``...).

    Returns:
        The maps, per captured step and averaged over them, with the generated frames.

    Raises:
        methods.base.MethodUnavailable: the preset's model or weights are missing.
        ValueError: unknown blocks, steps outside the run, or a source without trajectory
            attention.
    """
    from trajattn.attention import temporal_blocks  # torch: loaded only when a model runs

    options = dict(options or {})
    if hasattr(source, "unet") and callable(source):
        pipe, method = source, None
        options.setdefault("num_inference_steps", PAPER_DEFAULTS["num_inference_steps"])
        num_steps = int(options["num_inference_steps"])
    else:
        method = _make_method(source, options)
        if not callable(getattr(method, "pipeline", None)):
            raise ValueError(
                f"method {method.name!r} has no trajectory-attention pipeline to capture from"
            )
        pipe = method.pipeline()
        num_steps = int(method.conf["num_inference_steps"])
    chosen_steps = resolve_steps(steps, num_steps)
    chosen_blocks = resolve_blocks(blocks, forward_order(list(temporal_blocks(pipe.unet))))
    with StepwiseCapture(pipe, chosen_steps) as capture:
        if method is None:
            frames, info = _run_pipeline(pipe, request, options)
        else:
            result = method.generate(request)
            frames, info = result.frames, dict(result.info)
    expected = chosen_steps if chosen_steps is not None else list(range(num_steps))
    if sorted(capture.per_step) != expected:
        raise RuntimeError(
            f"captured steps {sorted(capture.per_step)}, expected {expected}: the pipeline ran "
            "a different number of denoising steps than configured"
        )
    per_step = {
        step: {b: capture.per_step[step][b] for b in chosen_blocks if b in capture.per_step[step]}
        for step in expected
    }
    return AttentionMaps(
        maps=mean_over_steps(per_step),
        per_step=per_step,
        steps=expected,
        num_inference_steps=num_steps,
        frames=frames,
        info=info,
    )


