"""Metrics: error statistics / MASE (mmHg) and the benchmark's sig2sig ABP -> (SBP, DBP) rule."""

from __future__ import annotations

from jaxbp.metrics.regression import bp_report, error_stats, mase
from jaxbp.metrics.sig2sig import ampd, beat_extrema, sbp_dbp_batch, sbp_dbp_from_abp, select_beats

__all__ = [
    "ampd",
    "beat_extrema",
    "bp_report",
    "error_stats",
    "mase",
    "sbp_dbp_batch",
    "sbp_dbp_from_abp",
    "select_beats",
]
