"""Plots (matplotlib, no display): metric bars per method and camera trajectories."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmark.metrics.checks import EstPoses  # noqa: E402
from benchmark.metrics.poses import aligned_centres  # noqa: E402
from benchmark.metrics.specs import METRIC_SPECS  # noqa: E402

#: Panel titles: label and unit from the metric registry.
LABELS = {key: spec.title for key, spec in METRIC_SPECS.items()}


def _save(fig: plt.Figure, path: str | Path, dpi: int = 120) -> Path:
    """Save ``fig`` as ``path`` (.png) and beside it as .pdf; close it."""
    path = Path(path).with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    fig.savefig(path.with_suffix(".pdf"))
    plt.close(fig)
    return path


def plot_metric_bars(summary: pd.DataFrame, metrics: list[str], path: str | Path) -> Path:
    """One panel per metric: mean and 95% CI per method, grouped by frame count; the failure
    rate is written above each bar. Saved as PNG and PDF."""
    frame_counts = sorted(summary["num_frames"].unique())
    methods = sorted(summary["method"].unique())
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    width = 0.8 / max(len(frame_counts), 1)
    x = np.arange(len(methods))
    for ax, metric in zip(axes[0], metrics, strict=True):
        for k, frames in enumerate(frame_counts):
            rows = summary[summary["num_frames"] == frames].set_index("method").reindex(methods)
            means = pd.to_numeric(rows[metric], errors="coerce").to_numpy(dtype=float)
            lo = pd.to_numeric(rows[f"{metric}_lo"], errors="coerce").to_numpy(dtype=float)
            hi = pd.to_numeric(rows[f"{metric}_hi"], errors="coerce").to_numpy(dtype=float)
            errs = np.nan_to_num(np.stack([means - lo, hi - means]))
            pos = x + (k - (len(frame_counts) - 1) / 2) * width
            ax.bar(pos, np.nan_to_num(means), width, yerr=errs, capsize=3,
                   label=f"{frames} frames")
            for p, m, rate in zip(pos, means, rows["failure_rate"].to_numpy(), strict=True):
                text = "n/a" if np.isnan(m) else f"fail {rate:.0%}"
                ax.annotate(text, (p, 0 if np.isnan(m) else m), ha="center", va="bottom",
                            fontsize=7, xytext=(0, 2), textcoords="offset points")
        ax.set_xticks(x, methods, rotation=30, ha="right")
        ax.set_title(LABELS.get(metric, metric))
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_trajectories(
    gt_w2c: np.ndarray, estimates: dict[str, EstPoses], path: str | Path, title: str = ""
) -> Path:
    """Top view (x-z), side view (z-y) and 3-D view of GT camera centres and each method's
    Sim(3)-aligned estimate, in the frame-0 camera's axes (PNG and PDF). Methods whose poses
    cannot be aligned are listed as such in the legend instead of being drawn."""
    fig = plt.figure(figsize=(13, 4))
    top, side = fig.add_subplot(1, 3, 1), fig.add_subplot(1, 3, 2)
    view3d = fig.add_subplot(1, 3, 3, projection="3d")
    gt = np.linalg.inv(gt_w2c)[:, :3, 3] @ gt_w2c[0, :3, :3].T + gt_w2c[0, :3, 3]
    curves = {"ground truth": gt}
    missing = []
    for name, est in estimates.items():
        aligned = aligned_centres(gt_w2c, est)
        if aligned is None:
            missing.append(name)
        else:
            curves[name] = aligned[2]
    for name, pts in curves.items():
        style = "k-o" if name == "ground truth" else "-x"
        top.plot(pts[:, 0], pts[:, 2], style, ms=3, label=name)
        side.plot(pts[:, 2], pts[:, 1], style, ms=3, label=name)
        view3d.plot(pts[:, 0], pts[:, 2], -pts[:, 1], style, ms=3, label=name)
    for name in missing:
        top.plot([], [], " ", label=f"{name}: no poses")
    top.set(xlabel="x (right)", ylabel="z (forward)", title="top view")
    side.set(xlabel="z (forward)", ylabel="y (down)", title="side view")
    side.invert_yaxis()
    view3d.set(xlabel="x", ylabel="z", zlabel="-y (up)")
    for ax in (top, side):
        ax.set_aspect("equal", adjustable="datalim")
    top.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path, dpi=110)
