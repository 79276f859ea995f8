"""The benchmark's sig2sig rule: an ABP window (mmHg) -> (SBP, DBP) scalars.

The bp-benchmark labels its ground truth, and scores sig2sig models, by finding the systolic peaks
and diastolic valleys of an ABP window with an AMPD peak detector (the `pyampd` implementation,
scale = fs), then taking medians (see `shared/docs/bp-benchmark.md`). This module reproduces that
rule in NumPy; on the MIMIC sample fixture it reproduces the stored SP/DP labels exactly.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from jaxbp.data.specs import FS

DICROTIC_RATIO = 0.6  # A peak below this fraction of the previous kept peak is dicrotic.


def _detrend(x: np.ndarray) -> np.ndarray:
  """Removes the least-squares line from `x` (L,) (as `scipy.signal.detrend`)."""
  t = np.arange(x.shape[-1], dtype=np.float64)
  t -= t.mean()
  xc = x - x.mean()
  slope = np.dot(t, xc) / np.dot(t, t) if x.shape[-1] > 1 else 0.0
  return xc - slope * t


def ampd(x: np.ndarray, scale: int | None = None) -> np.ndarray:
  """Peak indices of `x` (L,) with AMPD (Scholkmann et al. 2012), as in `pyampd.find_peaks`.

  The signal is linearly detrended; the local-maxima scalogram LSM[k, i] = x[i] > x[i-k] and
  x[i] > x[i+k] is built for k = 1..min(scale, L//2) (a neighbour outside the window counts as
  lower, so samples at the edges can be peaks); the row counts are weighted by (L//2 - k + 1) and
  the best row index l (0-based) chosen; peaks are the samples that are maxima on all rows
  before l. Valleys are `ampd(-x)`.

  Args:
    x: 1-D signal, any unit.
    scale: the largest scale in samples; None means `FS` (125, i.e. one second).

  Returns:
    Sorted int64 indices of the peaks; empty for a flat, linear or non-finite signal.
  """
  x = np.asarray(x, dtype=np.float64)
  if x.ndim != 1:
    raise ValueError(f"ampd expects a 1-D signal, got shape {x.shape}")
  n = x.shape[0]
  n_scales = min(FS if scale is None else int(scale), n // 2)
  if n_scales < 1 or not np.all(np.isfinite(x)) or np.ptp(x) == 0:
    return np.zeros((0,), dtype=np.int64)
  scale_x = np.max(np.abs(x))
  x = _detrend(x)
  if np.ptp(x) <= 1e-10 * scale_x:  # a line: only rounding noise is left after detrending.
    return np.zeros((0,), dtype=np.int64)
  pad = np.full((n_scales,), -np.inf)
  win = sliding_window_view(np.concatenate([pad, x, pad]), 2 * n_scales + 1)  # (n, 2S+1)
  left = win[:, n_scales - 1::-1]  # x[i-k], k = 1..S
  right = win[:, n_scales + 1:]  # x[i+k]
  lsm = (x[:, None] > left) & (x[:, None] > right)  # (n, S)
  counts = lsm.sum(axis=0) * np.arange(n // 2, n // 2 - n_scales, -1)
  best = int(np.argmax(counts))
  if best == 0:  # pyampd would take the minimum over zero rows (and raise).
    return np.zeros((0,), dtype=np.int64)
  return np.flatnonzero(lsm[:, :best].all(axis=1)).astype(np.int64)


def select_beats(
    x: np.ndarray, peaks: np.ndarray, valleys: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
  """The benchmark's clean-up of candidate extrema of one ABP window `x` (L,).

  Extrema on the first/last sample are dropped; only the peaks strictly between the first and the
  last valley are kept; going left to right, a peak whose height above the mean valley is below
  0.6x that of the previous kept peak is dropped as dicrotic (the first one is always kept).

  Args:
    x: the window (L,), mmHg.
    peaks, valleys: sorted candidate indices (e.g. from `ampd`).

  Returns:
    (kept peak indices, kept valley indices), int64; both empty when there is no
    valley-peak-valley beat.
  """
  n = x.shape[0]
  empty = np.zeros((0,), dtype=np.int64)
  peaks = np.asarray(peaks, dtype=np.int64)
  valleys = np.asarray(valleys, dtype=np.int64)
  peaks = peaks[(peaks > 0) & (peaks < n - 1)]
  valleys = valleys[(valleys > 0) & (valleys < n - 1)]
  if valleys.size < 2:
    return empty, empty
  peaks = peaks[(peaks > valleys[0]) & (peaks < valleys[-1])]
  if peaks.size == 0:
    return empty, empty
  floor = x[valleys].mean()
  kept = [int(peaks[0])]
  for p in peaks[1:]:
    if x[p] - floor >= DICROTIC_RATIO * (x[kept[-1]] - floor):
      kept.append(int(p))
  return np.asarray(kept, dtype=np.int64), valleys


def beat_extrema(abp: np.ndarray, fs: int = FS) -> tuple[np.ndarray, np.ndarray]:
  """Systolic peak and diastolic valley indices of an ABP window `abp` (L,) by the benchmark's rule.

  AMPD at scale `fs` gives the candidates (valleys = AMPD of -abp), `select_beats` cleans them.
  Returns two empty int64 arrays for flat, too short or non-finite windows.
  """
  a = np.asarray(abp, dtype=np.float64).reshape(-1)
  if a.shape[0] < 3 or not np.all(np.isfinite(a)) or np.ptp(a) == 0:
    empty = np.zeros((0,), dtype=np.int64)
    return empty, empty
  return select_beats(a, ampd(a, scale=fs), ampd(-a, scale=fs))


def sbp_dbp_from_abp(abp: np.ndarray, fs: int = FS) -> tuple[float, float]:
  """(SBP, DBP) in mmHg of one ABP window `abp` (L,) in mmHg, by the benchmark's rule.

  SBP = median of the kept systolic peaks, DBP = median of the kept valleys (`beat_extrema`:
  AMPD at scale `fs`, edge extrema dropped, trimmed to start and end in valleys, dicrotic peaks
  below 0.6x the previous kept peak's height above the mean valley dropped).

  Returns:
    (sbp, dbp) as floats, or (nan, nan) when there is no valley-peak-valley beat (flat, too short
    or non-finite windows included); never raises on such inputs.
  """
  a = np.asarray(abp, dtype=np.float64).reshape(-1)
  peaks, valleys = beat_extrema(a, fs)
  if peaks.size == 0:
    return float("nan"), float("nan")
  return float(np.median(a[peaks])), float(np.median(a[valleys]))


def sbp_dbp_batch(abp: np.ndarray, fs: int = FS) -> tuple[np.ndarray, np.ndarray]:
  """`sbp_dbp_from_abp` on each row of `abp` (N, L), mmHg.

  Returns:
    (sbp (N,), dbp (N,)) float64 in mmHg, nan where a window has no beat.
  """
  abp = np.asarray(abp, dtype=np.float64)
  if abp.ndim != 2:
    raise ValueError(f"sbp_dbp_batch expects (N, L) windows, got shape {abp.shape}")
  out = np.array([sbp_dbp_from_abp(w, fs) for w in abp], dtype=np.float64).reshape(-1, 2)
  return out[:, 0], out[:, 1]
