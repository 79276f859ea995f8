"""Regression metrics of the benchmark: MAE, ME, SD of the error, naive baseline and MASE (mmHg)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _as_1d(x: ArrayLike, name: str) -> np.ndarray:
  """`x` as a flat float64 array."""
  arr = np.asarray(x, dtype=np.float64).reshape(-1)
  if arr.size == 0:
    raise ValueError(f"{name} is empty")
  return arr


def error_stats(pred: ArrayLike, true: ArrayLike) -> dict[str, float]:
  """Error statistics of `pred` against `true`, both (N,) in mmHg.

  Returns:
    {"mae": mean |pred - true|, "me": mean (pred - true), "sd": population standard deviation
    (ddof=0) of (pred - true)}, as plain floats in mmHg. NaNs propagate (filter them first).
  """
  p, t = _as_1d(pred, "pred"), _as_1d(true, "true")
  if p.shape != t.shape:
    raise ValueError(f"pred and true differ in size: {p.size} vs {t.size}")
  err = p - t
  return {"mae": float(np.mean(np.abs(err))), "me": float(np.mean(err)), "sd": float(np.std(err))}


def mase(mae: float, mae_naive: float) -> float:
  """Mean absolute scaled error in percent: 100 * mae / mae_naive (nan when mae_naive is 0)."""
  return float(100.0 * mae / mae_naive) if mae_naive != 0 else float("nan")


def _one_report(pred: ArrayLike, true: ArrayLike, naive: ArrayLike) -> dict[str, float]:
  """error_stats plus the naive MAE and MASE for one target."""
  t = _as_1d(true, "true")
  naive = np.broadcast_to(np.asarray(naive, dtype=np.float64).reshape(-1), t.shape)
  stats = error_stats(pred, t)
  stats["mae_naive"] = error_stats(naive, t)["mae"]
  stats["mase"] = mase(stats["mae"], stats["mae_naive"])
  return stats


def bp_report(
    pred_sbp: ArrayLike,
    pred_dbp: ArrayLike,
    true_sbp: ArrayLike,
    true_dbp: ArrayLike,
    naive_sbp: ArrayLike,
    naive_dbp: ArrayLike,
) -> dict[str, dict[str, float]]:
  """The benchmark's report for pooled test predictions, all (N,) in mmHg.

  Args:
    pred_sbp, pred_dbp: model predictions.
    true_sbp, true_dbp: labels.
    naive_sbp, naive_dbp: naive predictions, i.e. the mean of the training fold each test window
      was held out from (an array (N,), or a scalar broadcast to all windows).

  Returns:
    {"sbp": {"mae", "me", "sd", "mae_naive", "mase"}, "dbp": {...}} of plain floats (JSON-ready);
    mase = 100 * mae / mae_naive (percent; below 100 beats the naive baseline). With no window at all
    (e.g. a sig2sig model whose every predicted window has no beat, all excluded by the caller, who
    reports how many) every statistic is nan instead of an error.
  """
  if np.asarray(true_sbp).size == 0 and np.asarray(pred_sbp).size == 0:
    nan = float("nan")
    return {t: {"mae": nan, "me": nan, "sd": nan, "mae_naive": nan, "mase": nan} for t in ("sbp", "dbp")}
  return {
      "sbp": _one_report(pred_sbp, true_sbp, naive_sbp),
      "dbp": _one_report(pred_dbp, true_dbp, naive_dbp),
  }
