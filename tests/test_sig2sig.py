"""Tests of jaxbp.metrics.sig2sig: AMPD and the benchmark's ABP -> (SBP, DBP) rule."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from jaxbp.metrics import ampd, beat_extrema, sbp_dbp_batch, sbp_dbp_from_abp, select_beats

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MIMIC = DATA / "mimic_sample_dataset" / "signal_fold_0.mat"


def _beat_train(rrs: list[int], s: float = 120.0, d: float = 80.0, dicrotic: float = 0.5,
                length: int = 625, start: int = 20) -> np.ndarray:
  """ABP-like train (mmHg) of beats of `rrs` samples (cycled from `start`), each with its minimum at
  exactly `d` and its top at exactly `s`: a systolic bump 12 samples after the foot and a dicrotic
  bump 40 samples after it."""
  feet = np.cumsum([start - rrs[-1], rrs[-1]] + list(rrs))
  t = np.arange(length)
  out = np.full(length, d)
  for f0, f1 in zip(feet[:-1], feet[1:]):
    ph = np.arange(f1 - f0)
    shape = (np.exp(-0.5 * ((ph - 12) / 5) ** 2) + dicrotic * np.exp(-0.5 * ((ph - 40) / 6) ** 2)
             + 0.3 * np.sin(np.pi * ph / (f1 - f0)))
    shape = (shape - shape.min()) / (shape.max() - shape.min())
    m = (t >= f0) & (t < f1)
    out[m] = d + (s - d) * shape[t[m] - f0]
  return out


# ---------------------------------------------------------------- AMPD


def _interior(idx: np.ndarray, n: int) -> np.ndarray:
  return idx[(idx > 0) & (idx < n - 1)]


@pytest.mark.parametrize("period", [25, 50, 100, 125])
def test_ampd_cosine_exact_peaks(period):
  n = np.arange(1000)
  x = np.cos(2 * np.pi * (n - 10) / period)
  np.testing.assert_array_equal(_interior(ampd(x), n.size), np.arange(10, 1000, period))
  valleys = np.arange(10 + period // 2, 1000, period)
  np.testing.assert_array_equal(_interior(ampd(-x), n.size), valleys)


def test_ampd_edge_sample_can_be_a_peak():
  # As in pyampd, a neighbour outside the window counts as lower: a window that starts just after
  # a crest reports its first sample (the sig2sig rule drops it).
  n = np.arange(625)
  x = np.cos(2 * np.pi * (n + 3) / 100)
  np.testing.assert_array_equal(ampd(x), [0, 97, 197, 297, 397, 497, 597])


def test_ampd_sum_of_harmonics_ignores_secondary_maxima():
  # cos(th) + 0.6 cos(2 th) has a secondary local maximum at th = pi; only th = 0 is a peak.
  n = np.arange(625)
  th = 2 * np.pi * (n - 30) / 100
  x = 3.0 + np.cos(th) + 0.6 * np.cos(2 * th)
  assert x[80] > x[79] and x[80] > x[81]  # the secondary maximum exists
  np.testing.assert_array_equal(_interior(ampd(x), n.size), [30, 130, 230, 330, 430, 530])


def test_ampd_is_invariant_to_linear_trend_and_scale():
  n = np.arange(625)
  x = np.sin(2 * np.pi * n / 80)
  np.testing.assert_array_equal(ampd(5.0 * x + 0.01 * n - 7.0), ampd(x))


def test_ampd_noisy_sine_count_and_positions():
  rng = np.random.default_rng(0)
  n = np.arange(625)
  x = np.cos(2 * np.pi * (n - 20) / 90) + 0.05 * rng.standard_normal(n.size)
  peaks = ampd(x)
  expected = np.arange(20, 625, 90)
  assert peaks.size == expected.size
  assert np.max(np.abs(peaks - expected)) <= 4


def test_ampd_scale_limits_the_scalogram():
  n = np.arange(625)
  x = np.cos(2 * np.pi * (n - 10) / 100)
  np.testing.assert_array_equal(ampd(x, scale=None), ampd(x, scale=125))
  assert ampd(x, scale=300).size == 7  # clipped to L // 2


def test_ampd_degenerate_inputs():
  assert ampd(np.full(625, 3.0)).size == 0
  assert ampd(np.array([1.0])).size == 0
  x = np.sin(np.arange(100.0))
  x[5] = np.nan
  assert ampd(x).size == 0
  assert ampd(np.zeros(0)).dtype == np.int64
  with pytest.raises(ValueError):
    ampd(np.zeros((2, 100)))


# ---------------------------------------------------------------- the rule


def test_sbp_dbp_known_values():
  abp = _beat_train([100] * 8, s=135.0, d=85.0, dicrotic=0.3)
  sbp, dbp = sbp_dbp_from_abp(abp)
  assert sbp == pytest.approx(135.0) and dbp == pytest.approx(85.0)
  peaks, valleys = beat_extrema(abp)
  np.testing.assert_array_equal(peaks, [32, 132, 232, 332, 432, 532])
  np.testing.assert_array_equal(valleys, [19, 119, 219, 319, 419, 519, 619])  # beat minima
  np.testing.assert_allclose(abp[peaks], 135.0)
  np.testing.assert_allclose(abp[valleys], 85.0)
  assert valleys[0] < peaks[0] and peaks[-1] < valleys[-1]


def test_sbp_dbp_median_over_beats():
  n = np.arange(625)
  th = 2 * np.pi * (n - 50) / 100
  beat = np.floor((n - 50 + 50) / 100).astype(int)  # beat of each sample (peak at its middle)
  sbp_beats = np.array([118.0, 126.0, 121.0, 130.0, 119.0, 124.0, 127.0])
  abp = 80.0 + (sbp_beats[np.clip(beat, 0, 6)] - 80.0) * (0.5 + 0.5 * np.cos(th))
  peaks, valleys = beat_extrema(abp)
  sbp, dbp = sbp_dbp_from_abp(abp)
  assert sbp == pytest.approx(np.median(abp[peaks]))
  assert sbp == pytest.approx(np.median(sbp_beats[1:6]))  # first/last beats are trimmed
  assert dbp == pytest.approx(80.0)


def test_select_beats_edges_trimming_and_dicrotic():
  x = np.array([100, 80, 120, 80, 100, 80, 103, 80, 119, 80, 110, 95], dtype=float)
  peaks, valleys = select_beats(x, np.array([0, 2, 4, 6, 8, 10]), np.array([1, 3, 5, 7, 9, 11]))
  np.testing.assert_array_equal(valleys, [1, 3, 5, 7, 9])  # the last-sample valley is dropped
  # Heights above the mean valley (80): 40, 20, 23, 39. Peak 4 (20 < 0.6*40) is dicrotic; so is 6,
  # because it is compared to the previous KEPT peak (2), not to the dropped 4. Peak 0 sits on the
  # edge, peak 10 after the last valley.
  np.testing.assert_array_equal(peaks, [2, 8])
  empty_p, empty_v = select_beats(x, np.array([2]), np.array([1]))
  assert empty_p.size == 0 and empty_v.size == 0
  empty_p, _ = select_beats(x, np.array([10]), np.array([1, 3]))  # no peak between the valleys
  assert empty_p.size == 0


def test_dicrotic_peaks_found_by_ampd_are_rejected():
  # An irregular rhythm makes AMPD pick a small scale, so dicrotic peaks become candidates.
  rrs = [69, 62, 148, 124, 50, 145, 92, 55, 134, 128, 83, 72, 94, 83]
  abp = _beat_train(rrs, s=120.0, d=80.0, dicrotic=0.3)
  valleys = ampd(-abp)
  valleys = valleys[(valleys > 0) & (valleys < abp.size - 1)]
  candidates = ampd(abp)
  inner = candidates[(candidates > valleys[0]) & (candidates < valleys[-1])]
  assert np.sum(abp[inner] < 110.0) >= 3  # dicrotic candidates present
  assert np.median(abp[inner]) < 115.0  # a rule without rejection would be badly off
  peaks, _ = beat_extrema(abp)
  np.testing.assert_allclose(abp[peaks], 120.0)
  sbp, dbp = sbp_dbp_from_abp(abp)
  assert sbp == pytest.approx(120.0)
  assert dbp == pytest.approx(80.0)


@pytest.mark.parametrize("abp", [
    np.full(625, 90.0),  # flat
    np.zeros(625),
    np.linspace(60.0, 140.0, 625),  # monotone: no interior valley
    np.array([80.0, 120.0]),  # too short
    np.array([]),
    np.where(np.arange(625) == 300, np.nan, 100.0 + 20.0 * np.sin(np.arange(625) / 15.0)),
    np.where(np.arange(625) == 3, np.inf, 100.0 + 20.0 * np.sin(np.arange(625) / 15.0)),
])
def test_sbp_dbp_degenerate_returns_nan(abp):
  sbp, dbp = sbp_dbp_from_abp(abp)
  assert math.isnan(sbp) and math.isnan(dbp)


def test_sbp_dbp_single_beat_window_is_nan():
  n = np.arange(125)
  abp = 100.0 + 20.0 * np.cos(2 * np.pi * n / 125)  # peak-valley-peak: one valley only
  assert all(math.isnan(v) for v in sbp_dbp_from_abp(abp))


def test_batch_matches_loop():
  rng = np.random.default_rng(0)
  windows = np.stack([_beat_train(list(rng.integers(70, 110, 10)), s=s, d=d)
                      for s, d in [(120, 80), (150, 90), (100, 60)]] + [np.full(625, 80.0)])
  sbp, dbp = sbp_dbp_batch(windows)
  assert sbp.shape == dbp.shape == (4,) and sbp.dtype == np.float64
  for i, w in enumerate(windows):
    np.testing.assert_equal((sbp[i], dbp[i]), sbp_dbp_from_abp(w))
  assert math.isnan(sbp[3])
  with pytest.raises(ValueError):
    sbp_dbp_batch(np.zeros(625))


def test_mimic_acceptance():
  """The rule reproduces the stored SP/DP of the real MIMIC fixture from its ground-truth ABP."""
  if not MIMIC.is_file():
    pytest.skip(f"MIMIC sample fixture not found at {MIMIC}")
  import scipy.io

  mat = scipy.io.loadmat(MIMIC)
  abp = mat["abp_signal"]
  true_sbp, true_dbp = mat["SP"].reshape(-1), mat["DP"].reshape(-1)
  assert abp.shape == (42, 625)
  sbp, dbp = sbp_dbp_batch(abp)
  err_s, err_d = np.abs(sbp - true_sbp), np.abs(dbp - true_dbp)
  match = (err_s <= 0.5) & (err_d <= 0.5)
  assert match.sum() >= 40, (
      f"{match.sum()}/42 match; max errors {np.nanmax(err_s)}, {np.nanmax(err_d)} mmHg")
