"""The one registry of metric specs: label, unit, decimals and whether higher is better.

Aggregation (which metrics to summarise, and over which runs), the tables (column headers and
decimals), the paper comparison tables and the plots all read it, so a metric is described
once. The order of :data:`METRIC_SPECS` is the column order of the per-method summary.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    """How one metric column of ``metrics.json`` is summarised and shown.

    Args:
        key: the column name in ``metrics.json`` / ``metrics.csv``.
        label: short display name ("RPE rot").
        unit: display unit ("deg", "px", "dB", "%"); "" for scene units or unitless.
        digits: decimals in tables.
        higher_is_better: direction of the metric.
        per_frame: a score of the generated frames themselves, averaged over every run that
            has it (needs no recovered poses), unlike pose errors (runs that registered).
        percent: a fraction in [0, 1] shown as a percentage.
        unit_in_table: whether the results table's header carries the unit (Table 1 prints
            "RPE rot", as the paper does; plots and paper tables say "RPE rot (deg)").
    """

    key: str
    label: str
    unit: str
    digits: int
    higher_is_better: bool
    per_frame: bool = False
    percent: bool = False
    unit_in_table: bool = True

    @property
    def title(self) -> str:
        """Label with its unit, e.g. "RPE rot (deg)" (plots, paper tables)."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    @property
    def column(self) -> str:
        """Header of the metric's column in the results tables."""
        return self.title if self.unit_in_table else self.label


def _specs(*specs: MetricSpec) -> dict[str, MetricSpec]:
    return {s.key: s for s in specs}


#: Every metric column, in summary order (pose errors, CamI2V, FID, fidelity, track scores).
METRIC_SPECS: dict[str, MetricSpec] = _specs(
    # ParticleSfM / evo pose errors; translations in units of the frame-0 median scene depth
    MetricSpec("ate", "ATE", "", 4, False),
    MetricSpec("rpe_trans", "RPE trans", "", 4, False),
    MetricSpec("rpe_rot_deg", "RPE rot", "deg", 4, False, unit_in_table=False),
    # CamI2V errors, summed over registered frames (benchmark.metrics.cami2v)
    MetricSpec("rot_err", "RotErr", "rad", 3, False),
    MetricSpec("trans_err", "TransErr", "", 3, False),
    MetricSpec("cam_mc", "CamMC", "", 3, False),
    MetricSpec("fid", "FID", "", 1, False, per_frame=True),
    MetricSpec("psnr", "PSNR", "dB", 2, True, per_frame=True),
    MetricSpec("ssim", "SSIM", "", 3, True, per_frame=True),
    # point-track scores (benchmark.metrics.tracks), px or 0-255 colour difference
    MetricSpec("traj_epe", "traj EPE", "px", 2, False, per_frame=True),
    # of the conditioning-valid points, those the tracker kept
    MetricSpec("traj_epe_fraction", "traj tracked", "%", 0, True, per_frame=True, percent=True),
    MetricSpec("track_epe", "track EPE", "px", 2, False, per_frame=True),
    MetricSpec("track_epe_fraction", "tracked", "%", 0, True, per_frame=True, percent=True),
    MetricSpec(
        "edit_persistence",
        "edit persistence",
        "0-255",
        1,
        False,
        per_frame=True,
        unit_in_table=False,
    ),  # fmt: skip
    MetricSpec(
        "edit_persistence_region",
        "edit persistence (region)",
        "0-255",
        1,
        False,
        per_frame=True,
        unit_in_table=False,
    ),  # fmt: skip
)
