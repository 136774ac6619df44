r"""Attention-map figures in the style of the paper's Fig. 2: temporal vs trajectory attention.

One generation (image task, paper Alg. 3 trajectories from depth + camera path) runs inside
:func:`trajattn.attention.capture_attention_maps`; every temporal block then holds the
frame x frame softmax probabilities of its temporal attention (``attn1``) and of its
trajectory attention, averaged over latent cells, heads and UNet calls. Rows are query frames,
columns key frames, so each row of a captured map sums to 1.

Chosen denoising steps: a forward pre-hook on the UNet reads the scheduler's ``step_index``
(set by ``scale_model_input`` before each UNet call of diffusers' SVD loop) and opens one
capture context per chosen step, closing it when the step changes. This uses only the public
capture API, works unchanged inside :meth:`methods.trajattn.TrajectoryAttentionMethod.generate`
(also with NVS-Solver guidance, whose extra UNet call of a step counts to that step), and
gives per-step maps; the map of several steps is the mean of their per-step maps.

While capturing, ``attn1`` computes its softmax explicitly instead of through
``scaled_dot_product_attention``, so the generated frames may differ from an uncaptured run by
float rounding.

The figure (:func:`attention_figure`) shows, for each chosen block, the temporal and the
trajectory map side by side, each min-max normalised to [0, 1] as in Fig. 2, one shared colour
bar. CLI (writes ``attention.png``, ``attention.pdf`` and ``maps.npz`` into ``--out``)::

    python -m benchmark.stages.attention_maps --preset trajattn_tiny --suite smoke --scene room00 \
        --camera orbit_left_15deg --frames 8 --out results/smoke/attention/trajattn_tiny
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.io import atomic_write

log = logging.getLogger(__name__)

KINDS = ("temporal", "trajectory")
KIND_TITLES = {"temporal": "temporal attention", "trajectory": "trajectory attention"}
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


# --------------------------------------------------------------------------- capture


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
        from trajattn.attention import get_config

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
            from trajattn.attention import capture_attention_maps

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
    from methods import create_method
    from methods.base import Method

    if isinstance(source, Method):
        if options:
            raise ValueError("options apply to presets and pipelines, not to a built adapter")
        return source
    if isinstance(source, (str, Path)):
        from benchmark.stages.generate import load_preset

        preset = load_preset(str(source))
    elif isinstance(source, Mapping):
        preset = {"adapter": source["adapter"], "args": dict(source.get("args") or {})}
    else:
        raise TypeError(f"cannot make a method from {type(source).__name__}")
    return create_method(preset["adapter"], {**preset["args"], **dict(options or {})})


def _run_pipeline(pipe: Any, request: Any, options: Mapping[str, Any]) -> tuple[np.ndarray, dict]:
    """One image-task generation with a :class:`trajattn.pipeline.TrajectoryAttentionPipeline`,
    prepared as the ``trajattn`` adapter prepares it (fit to the resolution, Alg. 3)."""
    import torch

    from methods.framing import fit_to_resolution

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
    from trajattn.attention import temporal_blocks
    from trajattn.settings import PAPER_DEFAULTS

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


# --------------------------------------------------------------------------- files


def save_maps(maps: AttentionMaps, path: str | Path) -> Path:
    r"""Write ``maps`` to an ``.npz``: ``mean/{block}/{kind}``, ``step{k}/{block}/{kind}``
    arrays and a JSON ``meta`` string (steps, step count, blocks, info). Atomic."""
    arrays: dict[str, np.ndarray] = {}
    for block, entry in maps.maps.items():
        for kind, probs in entry.items():
            arrays[f"mean/{block}/{kind}"] = probs
    for step, step_maps in maps.per_step.items():
        for block, entry in step_maps.items():
            for kind, probs in entry.items():
                arrays[f"step{step}/{block}/{kind}"] = probs
    meta = {
        "steps": maps.steps,
        "num_inference_steps": maps.num_inference_steps,
        "blocks": maps.blocks,
        "info": maps.info,
        "rows": "query frame",
        "columns": "key frame",
    }
    arrays["meta"] = np.array(json.dumps(meta, default=str))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)

    return atomic_write(path, write)


def load_maps(path: str | Path) -> AttentionMaps:
    """Read a file written by :func:`save_maps` (frames are not stored)."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        mean: BlockMaps = {}
        steps: dict[int, BlockMaps] = {int(s): {} for s in meta["steps"]}
        for key in data.files:
            if key == "meta":
                continue
            group, rest = key.split("/", 1)
            block, kind = rest.rsplit("/", 1)
            target = mean if group == "mean" else steps[int(group[len("step"):])]
            target.setdefault(block, {})[kind] = data[key]

    def ordered(block_maps: BlockMaps) -> BlockMaps:
        return {b: block_maps[b] for b in meta["blocks"] if b in block_maps}

    maps = ordered(mean)
    per_step = {step: ordered(step_maps) for step, step_maps in steps.items()}
    return AttentionMaps(
        maps=maps,
        per_step=per_step,
        steps=[int(s) for s in meta["steps"]],
        num_inference_steps=int(meta["num_inference_steps"]),
        info=meta.get("info", {}),
    )


# --------------------------------------------------------------------------- figure


def normalise_map(probs: np.ndarray) -> np.ndarray:
    r"""Min-max normalisation of one map to [0, 1] (paper Fig. 2); a constant map gives 0.

    Returns:
        float64 array of the same shape, min 0 and max 1 unless ``probs`` is constant.
    """
    values = np.asarray(probs, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("attention map has non-finite values")
    low, high = float(values.min()), float(values.max())
    if high - low <= 0:
        return np.zeros_like(values)
    return (values - low) / (high - low)


def short_block_name(path: str) -> str:
    """``down_blocks.0.attentions.1.temporal_transformer_blocks.0`` -> ``down0.attn1.t0``."""
    text = path
    for long, short in (
        ("down_blocks.", "down"),
        ("up_blocks.", "up"),
        ("mid_block", "mid"),
        ("attentions.", "attn"),
        ("temporal_transformer_blocks.", "t"),
    ):
        text = text.replace(long, short)
    return text


def _frame_ticks(n: int) -> np.ndarray:
    step = max(1, int(np.ceil(n / 8)))
    return np.arange(0, n, step)


def attention_figure(
    maps: AttentionMaps | Mapping[str, Mapping[str, np.ndarray]],
    blocks: Sequence[str | int] | None = None,
    title: str | None = None,
    step: int | None = None,
    pairs_per_row: int = 2,
    cmap: str = "viridis",
) -> Any:
    r"""Fig. 2-style figure: per block, temporal | trajectory attention, each normalised.

    Args:
        maps: :class:`AttentionMaps` or block -> kind -> (F, F).
        blocks: block paths or indices to show (default all, in the order of ``maps``).
        title: figure title (default names the steps shown).
        step: with :class:`AttentionMaps`, show this captured step instead of the mean.
        pairs_per_row: block pairs per row of panels.

    Returns:
        A ``matplotlib.figure.Figure`` with ``2 * len(blocks)`` panel axes (a panel whose map
        was not captured says so) followed by one shared colour-bar axis.
    """
    from matplotlib.figure import Figure

    block_maps = maps.at(step) if isinstance(maps, AttentionMaps) else maps
    chosen = resolve_blocks(blocks, list(block_maps))
    if title is None:
        if isinstance(maps, AttentionMaps):
            shown = [step] if step is not None else maps.steps
            title = (
                f"Temporal vs trajectory attention, step(s) {_steps_text(shown)} of "
                f"{maps.num_inference_steps} (each map min-max normalised)"
            )
        else:
            title = "Temporal vs trajectory attention (each map min-max normalised)"
    pairs = max(1, min(int(pairs_per_row), len(chosen)))
    rows = int(np.ceil(len(chosen) / pairs))
    fig = Figure(figsize=(3.0 * 2 * pairs + 1.0, 2.9 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, 2 * pairs, squeeze=False)
    image = None
    panels = []
    for i, block in enumerate(chosen):
        for j, kind in enumerate(KINDS):
            ax = axes[i // pairs, 2 * (i % pairs) + j]
            panels.append(ax)
            ax.set_title(f"{short_block_name(block)}\n{KIND_TITLES[kind]}", fontsize=9)
            probs = block_maps[block].get(kind)
            if probs is None:
                ax.text(0.5, 0.5, "not captured", ha="center", va="center", transform=ax.transAxes)
                ax.set_xticks([])
                ax.set_yticks([])
                continue
            image = ax.imshow(
                normalise_map(probs), vmin=0.0, vmax=1.0, cmap=cmap, interpolation="nearest"
            )
            ax.set_xticks(_frame_ticks(probs.shape[1]))
            ax.set_yticks(_frame_ticks(probs.shape[0]))
            ax.tick_params(labelsize=7)
            ax.set_xlabel("key frame", fontsize=8)
            ax.set_ylabel("query frame", fontsize=8)
    for ax in axes.flat[2 * len(chosen):]:
        fig.delaxes(ax)
    if image is None:
        raise ValueError("no map to plot for the chosen blocks")
    bar = fig.colorbar(image, ax=panels, shrink=0.9)
    bar.set_label("normalised attention weight")
    fig.suptitle(title, fontsize=10)
    return fig


def _steps_text(steps: Sequence[int]) -> str:
    steps = list(steps)
    if len(steps) > 2 and steps == list(range(steps[0], steps[-1] + 1)):
        return f"{steps[0]}-{steps[-1]}"
    return ",".join(str(s) for s in steps)


def plot_attention_maps(
    maps: AttentionMaps | Mapping[str, Mapping[str, np.ndarray]],
    out_png: str | Path,
    blocks: Sequence[str | int] | None = None,
    title: str | None = None,
    step: int | None = None,
    dpi: int = 150,
) -> tuple[Path, Path]:
    r"""Save :func:`attention_figure` as ``out_png`` and beside it as ``.pdf`` (atomic writes).

    Returns:
        The PNG and PDF paths.
    """
    fig = attention_figure(maps, blocks=blocks, title=title, step=step)
    png = Path(out_png).with_suffix(".png")
    atomic_write(png, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
    pdf = atomic_write(png.with_suffix(".pdf"), lambda tmp: fig.savefig(tmp, format="pdf"))
    return png, pdf


# --------------------------------------------------------------------------- CLI


@contextlib.contextmanager
def scene_request(
    suite: str,
    scene: str | None,
    camera: str,
    num_frames: int | None = None,
    scene_dir: str | Path | None = None,
    seed: int = 0,
) -> Iterator[Any]:
    r"""The image-task request of a suite scene and camera path.

    Synthetic scenes are prepared in a temporary folder unless ``scene_dir`` (a prepared
    ``results/{suite}/scenes/{scene}`` folder) is given; real suites need ``scene_dir``.
    ``camera`` is a parametric path name (scaled by the scene's median depth) or a camera
    JSON file. ``num_frames`` defaults to the suite's first frame count.
    """
    from benchmark.cameras import load_camera_path
    from benchmark.config.suites import load_suite
    from benchmark.sources.scenes import load_scene_view, make_scene_camera, prepare_synthetic_scene
    from methods.base import GenerationRequest

    loaded = load_suite(suite)
    frames = int(num_frames or loaded.frame_counts[0])
    with tempfile.TemporaryDirectory() as tmp:
        if scene_dir is None:
            if scene is None:
                raise ValueError("give --scene (a suite scene name) or --scene-dir")
            if not loaded.is_synthetic:
                raise ValueError(
                    f"suite {loaded.name!r} is not synthetic: prepare the scene with `trajbench "
                    f"prepare-scene --suite {suite} --scene {scene} --out "
                    f"results/{loaded.name}/scenes/{scene}` and give that folder as --scene-dir"
                )
            scene_dir = prepare_synthetic_scene(loaded, scene, Path(tmp) / "scene")
        view = load_scene_view(scene_dir)
        if str(camera).endswith(".json"):
            path = load_camera_path(camera)
            if path.num_frames != frames and num_frames is not None:
                raise ValueError(f"{camera} has {path.num_frames} frames, asked for {frames}")
        else:
            path = make_scene_camera(view, camera, frames)
        yield GenerationRequest(
            image=view.image, camera=path, seed=int(seed), depth=view.depth
        )


def run_attention_figure(
    preset: str,
    out_dir: str | Path,
    suite: str = "smoke",
    scene: str | None = None,
    camera: str = "orbit_left_15deg",
    num_frames: int | None = None,
    scene_dir: str | Path | None = None,
    seed: int = 0,
    blocks: Sequence[str | int] | None = None,
    steps: Sequence[int] | None = None,
    title: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    r"""Capture the maps of ``preset`` on a suite scene and write ``maps.npz``,
    ``attention.png`` and ``attention.pdf`` into ``out_dir`` (the stage function the CLI and
    the Snakefile call).

    Args:
        preset: method preset name or .yaml path (a ``trajattn`` preset).
        out_dir: output folder.
        suite, scene, camera, num_frames, scene_dir, seed: the request (see
            :func:`scene_request`).
        blocks, steps, options: see :func:`collect_attention_maps`; ``blocks`` also limits the
            figure (maps.npz keeps the same blocks).
        title: figure title (default names the preset, scene, camera and steps).

    Returns:
        ``{"png": ..., "pdf": ..., "npz": ...}``.

    Raises:
        methods.base.MethodUnavailable: the preset's model or weights are missing.
    """
    out = Path(out_dir)
    with scene_request(suite, scene, camera, num_frames, scene_dir, seed) as request:
        maps = collect_attention_maps(preset, request, blocks=blocks, steps=steps, options=options)
    maps.info = {
        "preset": preset,
        "suite": suite,
        "scene": scene if scene_dir is None else str(scene_dir),
        "camera": camera,
        "num_frames": int(request.num_frames),
        "seed": int(seed),
        "generation": maps.info,
    }
    npz = save_maps(maps, out / "maps.npz")
    if title is None:
        title = (
            f"{preset}: {maps.info['scene']} / {Path(camera).stem}, {request.num_frames} frames, "
            f"step(s) {_steps_text(maps.steps)} of {maps.num_inference_steps}\n"
            "temporal vs trajectory attention (each map min-max normalised)"
        )
    png, pdf = plot_attention_maps(maps, out / "attention.png", title=title)
    return {"png": png, "pdf": pdf, "npz": npz}


def _parse_option(text: str) -> tuple[str, Any]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, yaml.safe_load(value)


def unavailable_card(out_png: Path, title: str, reason: str) -> list[Path]:
    """A figure that only states why there are no maps (PNG + PDF): the workflow's report keeps
    its place for the figure without ever showing maps that were not computed."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(6, 2.5))
    fig.text(0.03, 0.85, title, fontsize=12, weight="bold", va="top")
    fig.text(0.03, 0.65, textwrap.fill(reason, 90), fontsize=7, va="top", family="monospace")
    out_png.parent.mkdir(parents=True, exist_ok=True)
    paths = [out_png, out_png.with_suffix(".pdf")]
    for path in paths:
        fig.savefig(path)
    plt.close(fig)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry; returns the exit status (2 when the method cannot run here)."""
    from benchmark.cameras import CameraFileError
    from methods.base import MethodUnavailable

    parser = argparse.ArgumentParser(
        prog="python -m benchmark.stages.attention_maps",
        description="Fig. 2-style temporal vs trajectory attention maps of a trajattn preset.",
    )
    parser.add_argument("--preset", required=True, help="method preset (e.g. trajattn_tiny)")
    parser.add_argument("--suite", default="smoke", help="suite name or YAML path")
    parser.add_argument("--scene", default=None, help="scene name of the suite")
    parser.add_argument("--scene-dir", type=Path, default=None,
                        help="prepared scene folder (results/{suite}/scenes/{scene})")
    parser.add_argument("--camera", default="orbit_left_15deg",
                        help="camera path name or camera JSON file")
    parser.add_argument("--frames", type=int, default=None, help="frames (default: suite's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--blocks", nargs="+", default=None,
                        help="block paths or indices in forward order (default: all)")
    parser.add_argument("--steps", nargs="+", type=int, default=None,
                        help="denoising steps to capture, 0 first, negative from the end "
                             "(default: all)")
    parser.add_argument("--set", dest="options", action="append", type=_parse_option,
                        default=[], metavar="KEY=VALUE", help="override a preset arg (YAML)")
    parser.add_argument("--title", default=None)
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--card-if-unavailable", action="store_true",
                        help="workflow use: when the model cannot run, write attention.png/pdf "
                        "as a card stating why (no maps) and exit 0")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        paths = run_attention_figure(
            args.preset, args.out, suite=args.suite, scene=args.scene, camera=args.camera,
            num_frames=args.frames, scene_dir=args.scene_dir, seed=args.seed,
            blocks=args.blocks, steps=args.steps, title=args.title, options=dict(args.options),
        )
    except (MethodUnavailable, CameraFileError) as exc:
        print(f"{args.preset} cannot run here: {exc}", file=sys.stderr)
        if args.card_if_unavailable:
            unavailable_card(args.out / "attention.png", f"{args.preset}: no attention maps",
                             str(exc))
            return 0
        return 2
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
