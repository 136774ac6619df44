"""The Fig. 2-style figure: per block, temporal | trajectory attention, each min-max
normalised, one shared colour bar; and the card written instead when a model cannot run."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from benchmark.io import atomic_write
from benchmark.stages.attention.capture import KINDS, AttentionMaps, resolve_blocks

KIND_TITLES = {"temporal": "temporal attention", "trajectory": "trajectory attention"}


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
    block_maps = maps.at(step) if isinstance(maps, AttentionMaps) else maps
    chosen = resolve_blocks(blocks, list(block_maps))
    if title is None:
        if isinstance(maps, AttentionMaps):
            shown = [step] if step is not None else maps.steps
            title = (
                f"Temporal vs trajectory attention, step(s) {steps_text(shown)} of "
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


def steps_text(steps: Sequence[int]) -> str:
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



def unavailable_card(out_png: Path, title: str, reason: str) -> list[Path]:
    """A figure that only states why there are no maps (PNG + PDF): the workflow's report keeps
    its place for the figure without ever showing maps that were not computed."""
    fig = Figure(figsize=(6, 2.5))
    fig.text(0.03, 0.85, title, fontsize=12, weight="bold", va="top")
    fig.text(0.03, 0.65, textwrap.fill(reason, 90), fontsize=7, va="top", family="monospace")
    out_png.parent.mkdir(parents=True, exist_ok=True)
    paths = [out_png, out_png.with_suffix(".pdf")]
    for path in paths:
        fig.savefig(path)
    return paths


