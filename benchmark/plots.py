"""Plots (matplotlib, no display): metric bars per method and camera trajectories."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmark.metrics import EstPoses, aligned_centres  # noqa: E402

LABELS = {"ate": "ATE", "rpe_trans": "RPE trans", "rpe_rot_deg": "RPE rot (deg)"}


def plot_metric_bars(summary: pd.DataFrame, metrics: list[str], path: str | Path) -> Path:
    """One panel per metric: mean +- 95% CI per method, grouped by frame count; the failure
    rate is written above each bar."""
    frame_counts = sorted(summary["num_frames"].unique())
    methods = sorted(summary["method"].unique())
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    width = 0.8 / max(len(frame_counts), 1)
    x = np.arange(len(methods))
    for ax, metric in zip(axes[0], metrics, strict=True):
        for k, frames in enumerate(frame_counts):
            rows = summary[summary["num_frames"] == frames].set_index("method").reindex(methods)
            means = pd.to_numeric(rows[metric], errors="coerce").to_numpy(dtype=float)
            errs = pd.to_numeric(rows[f"{metric}_ci95"], errors="coerce").to_numpy(dtype=float)
            pos = x + (k - (len(frame_counts) - 1) / 2) * width
            ax.bar(pos, np.nan_to_num(means), width, yerr=np.nan_to_num(errs), capsize=3,
                   label=f"{frames} frames")
            for p, m, rate in zip(pos, means, rows["failure_rate"].to_numpy(), strict=True):
                text = "n/a" if np.isnan(m) else f"fail {rate:.0%}"
                ax.annotate(text, (p, 0 if np.isnan(m) else m), ha="center", va="bottom",
                            fontsize=7, xytext=(0, 2), textcoords="offset points")
        ax.set_xticks(x, methods, rotation=30, ha="right")
        ax.set_title(LABELS.get(metric, metric))
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_trajectories(
    gt_w2c: np.ndarray, estimates: dict[str, EstPoses], path: str | Path, title: str = ""
) -> Path:
    """Top view (x-z) and side view (z-y) of GT camera centres and each method's Sim(3)-aligned
    estimate, in the frame-0 camera's axes; methods whose poses cannot be aligned are listed
    as such in the legend instead of being drawn."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    gt = np.linalg.inv(gt_w2c)[:, :3, 3] @ gt_w2c[0, :3, :3].T + gt_w2c[0, :3, 3]
    for ax, (a, b, la, lb) in zip(axes, [(0, 2, "x", "z"), (2, 1, "z", "y")], strict=True):
        ax.plot(gt[:, a], gt[:, b], "k-o", ms=3, label="ground truth")
        for name, est in estimates.items():
            aligned = aligned_centres(gt_w2c, est)
            if aligned is None:
                ax.plot([], [], " ", label=f"{name}: no poses")
                continue
            _, _, centres = aligned
            ax.plot(centres[:, a], centres[:, b], "-x", ms=4, label=name)
        ax.set_xlabel(la)
        ax.set_ylabel(lb)
        ax.set_aspect("equal", adjustable="datalim")
        if lb == "y":
            ax.invert_yaxis()  # y points down in camera axes
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
