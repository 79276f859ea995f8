"""Hand-made PPG features for the classic baselines (Random Forest, SVR), and the benchmark's feature files.

The benchmark ships `feat_fold_<i>.csv` beside the signal folds (features computed by its own pipeline);
`load_feature_folds` reads them where present. Otherwise `ppg_features` computes this documented set from
each raw PPG window (z-scored first, so gain and offset do not matter), all phase-invariant (no beat
segmentation needed, so they exist for any window):

  hr_bpm          heart rate from the autocorrelation's highest peak at lags of 0.33-1.5 s (40-180 bpm)
  skew, kurt      skewness and excess kurtosis of the window (pulse asymmetry / peakedness)
  vpg_skew, vpg_ratio   first derivative: skewness, max / |min| (upstroke vs downstroke steepness)
  apg_skew, apg_ratio   second derivative: skewness, max / |min|
  up_fraction     fraction of samples with a rising signal (systolic upstroke share of the beat)
  above_fraction  fraction of samples above the window mean (pulse width)
  h2..h5          amplitude of harmonics 2-5 of the heart rate relative to the fundamental (pulse shape)
  cos_p2..cos_p4, sin_p2..sin_p4   cos/sin of the phase of harmonics 2-4 relative to k x the fundamental's
  ac_25, ac_50, ac_75   autocorrelation at 1/4, 1/2 and 3/4 of the beat period (reflected-wave timing)
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from jaxbp.data.specs import FS, DatasetSpec

FEATURE_NAMES: tuple[str, ...] = (
    "hr_bpm", "skew", "kurt", "vpg_skew", "vpg_ratio", "apg_skew", "apg_ratio", "up_fraction", "above_fraction",
    "h2", "h3", "h4", "h5", "cos_p2", "cos_p3", "cos_p4", "sin_p2", "sin_p3", "sin_p4", "ac_25", "ac_50", "ac_75")
# Columns of a benchmark feature file that are labels or identifiers, not features.
NON_FEATURE_COLUMNS = ("patient", "trial", "SP", "DP", "fold", "Unnamed: 0", "")


class FeatureFileError(ValueError):
  """A `feat_fold_<i>.csv` that cannot be used (names the file and the problem)."""


def _zscore(x: np.ndarray) -> np.ndarray:
  return (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-6)


def _skew_kurt(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  z = _zscore(x)
  return (z**3).mean(axis=1), (z**4).mean(axis=1) - 3.0


def _ratio(d: np.ndarray) -> np.ndarray:
  return d.max(axis=1) / (np.abs(d.min(axis=1)) + 1e-9)


def _autocorr(z: np.ndarray) -> np.ndarray:
  """Biased autocorrelation (N, L) of z-scored windows, lag 0..L-1 (lag 0 ~ 1)."""
  n = z.shape[1]
  spec = np.fft.rfft(z, n=2 * n, axis=1)
  return np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :n] / n


def heart_period(z: np.ndarray, fs: int = FS) -> np.ndarray:
  """Beat period in samples (N,) of z-scored windows (N, L): the autocorrelation peak at 0.33-1.5 s."""
  ac = _autocorr(z)
  lo, hi = int(0.33 * fs), min(int(1.5 * fs), z.shape[1] - 2)
  if hi <= lo:
    raise ValueError(f"windows of {z.shape[1]} samples are too short for a heart period at {fs} Hz")
  seg = ac[:, lo:hi + 1]
  # The first local maximum that reaches 80 % of the range's largest one (avoids locking onto 2 beats).
  interior = (seg[:, 1:-1] >= seg[:, :-2]) & (seg[:, 1:-1] >= seg[:, 2:])
  good = interior & (seg[:, 1:-1] >= 0.8 * seg.max(axis=1, keepdims=True))
  first = np.where(good.any(axis=1), np.argmax(good, axis=1) + 1, np.argmax(seg, axis=1))
  return (lo + first).astype(np.float64)


def ppg_features(ppg: np.ndarray, fs: int = FS) -> np.ndarray:
  """The `FEATURE_NAMES` features (N, 22) float64 of raw PPG windows `ppg` (N, L) at `fs` Hz."""
  x = np.asarray(ppg, dtype=np.float64)
  if x.ndim != 2:
    raise ValueError(f"ppg_features expects (N, L) windows, got shape {x.shape}")
  if not np.all(np.isfinite(x)):
    raise ValueError("ppg_features: windows contain NaN/inf")
  z = _zscore(x)
  n, length = z.shape
  period = heart_period(z, fs)
  skew, kurt = _skew_kurt(z)
  vpg, apg = np.diff(z, axis=1), np.diff(z, n=2, axis=1)
  vpg_skew, _ = _skew_kurt(vpg)
  apg_skew, _ = _skew_kurt(apg)
  # Harmonics: project on exp(-i 2π k t / period) with a Hann window (no FFT-bin leakage at odd periods).
  t = np.arange(length)[None, :]
  hann = np.hanning(length)[None, :]
  coef = np.stack([np.sum(z * hann * np.exp(-2j * np.pi * k * t / period[:, None]), axis=1) for k in range(1, 6)],
                  axis=1)  # (N, 5)
  amp = np.abs(coef)
  rel = amp[:, 1:] / (amp[:, :1] + 1e-9)
  phase = np.angle(coef[:, 1:4]) - np.arange(2, 5)[None, :] * np.angle(coef[:, :1])
  ac = _autocorr(z)
  lags = lambda f: np.clip(np.round(f * period).astype(int), 0, length - 1)
  ac_at = np.stack([ac[np.arange(n), lags(f)] for f in (0.25, 0.5, 0.75)], axis=1)
  cols = [60.0 * fs / period, skew, kurt, vpg_skew, _ratio(vpg), apg_skew, _ratio(apg),
          (vpg > 0).mean(axis=1), (z > 0).mean(axis=1)]
  out = np.column_stack(cols + [rel, np.cos(phase), np.sin(phase), ac_at])
  assert out.shape[1] == len(FEATURE_NAMES)
  return out


def _read_csv(path: Path) -> dict[str, np.ndarray]:
  with open(path, newline="") as f:
    rows = list(csv.reader(f))
  if len(rows) < 2:
    raise FeatureFileError(f"{path}: no data rows")
  header, body = rows[0], rows[1:]
  if any(len(r) != len(header) for r in body):
    raise FeatureFileError(f"{path}: rows of unequal length (header has {len(header)} columns)")
  return {h: np.asarray([r[j] for r in body]) for j, h in enumerate(header)}


def load_feature_folds(root: str | Path, spec: DatasetSpec) -> list[dict[str, Any]] | None:
  """The benchmark's `feat_fold_<i>.csv` of `spec` under `root` as folds, or None where any is absent.

  Returns:
    Per fold {"x": (N, F) float64 features, "sbp"/"dbp": (N,) mmHg, "patient": (N,) str, "names": [F]}:
    every numeric column except identifiers and labels (`NON_FEATURE_COLUMNS`); rows with a non-finite
    feature are dropped. Raises `FeatureFileError` naming the file for missing SP/DP or unparsable features.
  """
  folder = Path(root) / spec.folder
  paths = [folder / f"feat_fold_{i}.csv" for i in range(spec.n_folds)]
  if not all(p.is_file() for p in paths):
    return None
  folds, names = [], None
  for p in paths:
    cols = _read_csv(p)
    for need in ("SP", "DP"):
      if need not in cols:
        raise FeatureFileError(f"{p}: no {need!r} column (found {sorted(cols)[:10]}...)")
    feats = [c for c in cols if c not in NON_FEATURE_COLUMNS]
    if names is None:
      names = feats
    elif feats != names:
      raise FeatureFileError(f"{p}: feature columns differ from {paths[0].name}'s")
    try:
      x = np.column_stack([cols[c].astype(np.float64) for c in feats])
      sbp, dbp = cols["SP"].astype(np.float64), cols["DP"].astype(np.float64)
    except ValueError as e:
      raise FeatureFileError(f"{p}: non-numeric value in a feature/label column: {e}") from None
    ok = np.all(np.isfinite(x), axis=1) & np.isfinite(sbp) & np.isfinite(dbp)
    patient = cols["patient"] if "patient" in cols else np.full(len(sbp), "")
    folds.append({"x": x[ok], "sbp": sbp[ok], "dbp": dbp[ok], "patient": patient[ok], "names": list(feats)})
  return folds
