"""Tests of jaxbp.metrics.regression: error statistics, naive baseline and MASE."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from jaxbp.metrics import bp_report, error_stats, mase


def test_error_stats_hand_computed():
  # err = pred - true = [-1, 0, 1, 2].
  stats = error_stats([1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 2.0])
  assert stats == pytest.approx({"mae": 1.0, "me": 0.5, "sd": math.sqrt(1.25)})


def test_error_stats_sd_is_population_std():
  rng = np.random.default_rng(0)
  pred, true = rng.normal(size=50), rng.normal(size=50)
  stats = error_stats(pred, true)
  assert stats["sd"] == pytest.approx(np.std(pred - true, ddof=0))
  assert stats["sd"] != pytest.approx(np.std(pred - true, ddof=1))


def test_error_stats_perfect_and_constant_offset():
  true = np.array([120.0, 130.0, 110.0])
  assert error_stats(true, true) == {"mae": 0.0, "me": 0.0, "sd": 0.0}
  stats = error_stats(true - 5.0, true)
  assert stats == pytest.approx({"mae": 5.0, "me": -5.0, "sd": 0.0})


def test_error_stats_accepts_column_vectors_and_returns_floats():
  stats = error_stats(np.array([[1.0], [3.0]]), np.array([2.0, 2.0]))
  assert stats == pytest.approx({"mae": 1.0, "me": 0.0, "sd": 1.0})
  assert all(type(v) is float for v in stats.values())


def test_error_stats_rejects_bad_shapes():
  with pytest.raises(ValueError):
    error_stats([1.0, 2.0], [1.0, 2.0, 3.0])
  with pytest.raises(ValueError):
    error_stats([], [])


def test_mase():
  assert mase(5.0, 10.0) == pytest.approx(50.0)
  assert mase(12.0, 10.0) == pytest.approx(120.0)
  assert math.isnan(mase(1.0, 0.0))


def test_bp_report_values_and_json():
  true_sbp = np.array([120.0, 140.0, 100.0, 130.0])
  true_dbp = np.array([80.0, 90.0, 60.0, 70.0])
  pred_sbp = true_sbp + np.array([2.0, -2.0, 4.0, 0.0])
  pred_dbp = true_dbp + np.array([1.0, 1.0, -1.0, -1.0])
  naive_sbp = np.array([125.0, 125.0, 122.0, 122.0])  # two test folds, two training means
  report = bp_report(pred_sbp, pred_dbp, true_sbp, true_dbp, naive_sbp, 75.0)

  assert set(report) == {"sbp", "dbp"}
  for target in report.values():
    assert set(target) == {"mae", "me", "sd", "mae_naive", "mase"}
  sbp, dbp = report["sbp"], report["dbp"]
  assert sbp["mae"] == pytest.approx(2.0)
  assert sbp["me"] == pytest.approx(1.0)
  assert sbp["sd"] == pytest.approx(np.std([2.0, -2.0, 4.0, 0.0]))
  assert sbp["mae_naive"] == pytest.approx((5.0 + 15.0 + 22.0 + 8.0) / 4.0)  # 12.5
  assert sbp["mase"] == pytest.approx(100.0 * 2.0 / 12.5)
  assert dbp["mae"] == pytest.approx(1.0)
  assert dbp["me"] == pytest.approx(0.0)
  assert dbp["mae_naive"] == pytest.approx((5.0 + 15.0 + 15.0 + 5.0) / 4.0)
  assert dbp["mase"] == pytest.approx(10.0)
  assert json.loads(json.dumps(report)) == report


def test_bp_report_naive_predictor_has_mase_100():
  rng = np.random.default_rng(1)
  sbp, dbp = rng.normal(125, 18, 100), rng.normal(72, 10, 100)
  report = bp_report(np.full(100, 120.0), np.full(100, 70.0), sbp, dbp, 120.0, 70.0)
  assert report["sbp"]["mase"] == pytest.approx(100.0)
  assert report["dbp"]["mase"] == pytest.approx(100.0)
