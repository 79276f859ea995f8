"""Tests of jaxbp.data.synthetic: determinism, on-disk format, labels and learnability."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from jaxbp.data.specs import SPECS
from jaxbp.data.synthetic import (
    SyntheticConfig,
    ensure_synthetic_dataset,
    generate,
    write_synthetic_dataset,
)
from jaxbp.metrics import sbp_dbp_batch

SMALL = SyntheticConfig(n_subjects=10, windows_per_subject=2)
COLUMNS = {"patient", "trial", "SP", "DP", "signal", "abp_signal", "Age(year)", "Heart Rate(b/m)"}


def _load(path: Path) -> dict[str, np.ndarray]:
  """Loads a fold as the benchmark's users do: drop the header keys, squeeze (N, 1) columns."""
  mat = scipy.io.loadmat(path)
  out = {}
  for k, v in mat.items():
    if k.startswith("__"):
      continue
    out[k] = v.reshape(-1) if v.ndim == 2 and v.shape[1] == 1 else v
  out["trial"] = np.char.strip(out["trial"])
  return out


def _fold_names(path: Path) -> list[str]:
  return sorted(p.name for p in path.glob("signal_fold_*.mat"))


@pytest.fixture(scope="module")
def default_dataset(tmp_path_factory) -> tuple[Path, float]:
  root = tmp_path_factory.mktemp("data")
  start = time.perf_counter()
  path = write_synthetic_dataset(root)
  return path, time.perf_counter() - start


@pytest.fixture(scope="module")
def folds(default_dataset) -> list[dict[str, np.ndarray]]:
  path, _ = default_dataset
  return [_load(path / f"signal_fold_{i}.mat") for i in range(SyntheticConfig().n_folds)]


def test_default_config_matches_spec():
  cfg = SyntheticConfig()
  spec = SPECS["synthetic"]
  assert (cfg.window, cfg.n_folds) == (spec.window, spec.n_folds)
  assert (cfg.n_subjects, cfg.windows_per_subject) == (120, 3)
  with pytest.raises(dataclasses.FrozenInstanceError):
    cfg.seed = 1  # type: ignore[misc]


@pytest.mark.parametrize("kwargs", [
    dict(n_subjects=3, n_folds=5), dict(windows_per_subject=0), dict(window=100), dict(n_folds=0)])
def test_config_validation(kwargs):
  with pytest.raises(ValueError):
    SyntheticConfig(**kwargs)


def test_generation_is_deterministic():
  a, b = generate(SMALL), generate(SMALL)
  assert a.keys() == b.keys()
  for k in a:
    assert a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes(), k
  c = generate(dataclasses.replace(SMALL, seed=1))
  assert not np.array_equal(a["signal"], c["signal"])


def test_subjects_do_not_depend_on_dataset_size():
  # Each subject has its own random stream: growing the dataset keeps the first subjects.
  small, bigger = generate(SMALL), generate(dataclasses.replace(SMALL, n_subjects=12))
  keep = bigger["patient"] <= SMALL.n_subjects
  np.testing.assert_array_equal(small["abp_signal"], bigger["abp_signal"][keep])


def test_default_generation_is_fast(default_dataset):
  _, seconds = default_dataset
  assert seconds < 5.0


def test_file_format(default_dataset, folds):
  path, _ = default_dataset
  cfg = SyntheticConfig()
  assert _fold_names(path) == [f"signal_fold_{i}.mat" for i in range(5)]
  for i in range(cfg.n_folds):
    raw = scipy.io.loadmat(path / f"signal_fold_{i}.mat")
    assert {k for k in raw if not k.startswith("__")} == COLUMNS
    n = raw["SP"].shape[0]
    for k in COLUMNS - {"signal", "abp_signal"}:
      assert raw[k].shape == (n, 1), k
    assert raw["signal"].shape == raw["abp_signal"].shape == (n, cfg.window)
    for k in ("SP", "DP", "signal", "abp_signal"):
      assert raw[k].dtype == np.float64, k
    for k in ("patient", "Age(year)", "Heart Rate(b/m)"):
      assert np.issubdtype(raw[k].dtype, np.integer), k
    assert raw["trial"].dtype.kind == "U"
  config = json.loads((path / "config.json").read_text())
  assert config["seed"] == cfg.seed and config["window"] == cfg.window
  assert (path / "README.txt").is_file()


def test_folds_are_subject_disjoint_and_complete(folds):
  cfg = SyntheticConfig()
  subjects = [set(f["patient"].tolist()) for f in folds]
  for i in range(len(folds)):
    for j in range(i + 1, len(folds)):
      assert not subjects[i] & subjects[j]
  assert set.union(*subjects) == set(range(1, cfg.n_subjects + 1))
  assert sorted(len(s) for s in subjects) == [24] * 5
  n = sum(f["SP"].size for f in folds)
  assert n == cfg.n_subjects * cfg.windows_per_subject
  trials = np.concatenate([f["trial"] for f in folds])
  assert len(set(trials.tolist())) == n
  for f in folds:
    for p, t in zip(f["patient"], f["trial"]):
      assert t.split("_")[0] == str(p) and 1 <= int(t.split("_")[1]) <= cfg.windows_per_subject


def test_labels_follow_the_sig2sig_rule(folds):
  for f in folds:
    sbp, dbp = sbp_dbp_batch(f["abp_signal"])
    np.testing.assert_array_equal(sbp, f["SP"])
    np.testing.assert_array_equal(dbp, f["DP"])
    assert np.all(f["SP"] > f["DP"] + 15.0)
    assert np.all(f["SP"] <= f["abp_signal"].max(axis=1))
    assert np.all(f["DP"] >= f["abp_signal"].min(axis=1))


def test_label_statistics_are_realistic(folds):
  sp = np.concatenate([f["SP"] for f in folds])
  dp = np.concatenate([f["DP"] for f in folds])
  assert 118.0 < sp.mean() < 132.0 and 13.0 < sp.std() < 23.0
  assert 66.0 < dp.mean() < 78.0 and 7.0 < dp.std() < 14.0
  assert 0.3 < np.corrcoef(sp, dp)[0, 1] < 0.9
  assert sp.min() > 60.0 and sp.max() < 220.0 and dp.min() > 30.0 and dp.max() < 130.0


def test_ppg_is_raw_and_pulsatile(folds):
  ppg = np.concatenate([f["signal"] for f in folds])
  assert np.all(np.isfinite(ppg))
  assert np.abs(ppg.mean(axis=1)).min() > 100.0  # offset kept: not z-scored
  assert ppg.std(axis=1).min() > 5.0
  # Quasi-periodic: each window correlates strongly with itself shifted by one beat (40-150 bpm).
  for w in ppg[::7]:
    assert max(np.corrcoef(w[:-lag], w[lag:])[0, 1] for lag in range(50, 150)) > 0.6


def test_demographics_are_plausible(folds):
  age = np.concatenate([f["Age(year)"] for f in folds])
  hr = np.concatenate([f["Heart Rate(b/m)"] for f in folds])
  assert 18 <= age.min() and age.max() <= 90 and 50 <= hr.min() and hr.max() <= 115
  for f in folds:  # one value per subject
    for p in np.unique(f["patient"]):
      assert np.unique(f["Age(year)"][f["patient"] == p]).size == 1


def _autocorr_features(ppg: np.ndarray, lags: int = 125) -> np.ndarray:
  """Autocorrelation (lags 1..`lags`) of each z-scored window: phase-invariant shape features."""
  z = (ppg - ppg.mean(axis=1, keepdims=True)) / (ppg.std(axis=1, keepdims=True) + 1e-6)
  spec = np.fft.rfft(z, n=2 * z.shape[1], axis=1)
  return np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, 1:lags + 1] / z.shape[1]


def _ridge_cv(
    x: np.ndarray, y: np.ndarray, fold: np.ndarray, alpha: float = 10.0
) -> tuple[float, float]:
  """Pooled held-out MAE (mmHg) of ridge and of the naive training mean (test k, train rest)."""
  pred, naive = np.empty_like(y), np.empty_like(y)
  for k in np.unique(fold):
    tr, te = fold != k, fold == k
    mu, sd = x[tr].mean(axis=0), x[tr].std(axis=0) + 1e-9
    a = np.c_[(x[tr] - mu) / sd, np.ones(tr.sum())]
    reg = alpha * np.eye(a.shape[1])
    reg[-1, -1] = 0.0
    w = np.linalg.solve(a.T @ a + reg, a.T @ y[tr])
    pred[te] = np.c_[(x[te] - mu) / sd, np.ones(te.sum())] @ w
    naive[te] = y[tr].mean()
  return float(np.abs(pred - y).mean()), float(np.abs(naive - y).mean())


def test_bp_is_learnable_from_ppg_shape(folds):
  x = _autocorr_features(np.concatenate([f["signal"] for f in folds]))
  fold = np.concatenate([np.full(f["SP"].size, i) for i, f in enumerate(folds)])
  for key in ("SP", "DP"):
    y = np.concatenate([f[key] for f in folds])
    mae, mae_naive = _ridge_cv(x, y, fold)
    assert mae <= 0.9 * mae_naive, f"{key}: ridge {mae:.2f} vs naive {mae_naive:.2f} mmHg"


def test_ensure_writes_only_when_needed(tmp_path):
  path = ensure_synthetic_dataset(tmp_path, SMALL)
  assert path == tmp_path / "synthetic_dataset"
  fold0 = path / "signal_fold_0.mat"
  stamp = fold0.stat().st_mtime_ns
  first = _load(fold0)

  assert ensure_synthetic_dataset(tmp_path, SMALL) == path
  assert fold0.stat().st_mtime_ns == stamp  # untouched

  other = dataclasses.replace(SMALL, seed=3)
  ensure_synthetic_dataset(tmp_path, other)
  assert json.loads((path / "config.json").read_text())["seed"] == 3
  assert not np.array_equal(_load(fold0)["signal"], first["signal"])

  (path / "signal_fold_2.mat").unlink()  # incomplete -> rewritten
  ensure_synthetic_dataset(tmp_path, other)
  assert (path / "signal_fold_2.mat").is_file()

  fewer = dataclasses.replace(other, n_folds=3)  # stale folds are removed
  ensure_synthetic_dataset(tmp_path, fewer)
  assert _fold_names(path) == [f"signal_fold_{i}.mat" for i in range(3)]


def test_written_arrays_equal_generated(tmp_path):
  path = write_synthetic_dataset(tmp_path, SMALL)
  data = generate(SMALL)
  for i in range(SMALL.n_folds):
    f = _load(path / f"signal_fold_{i}.mat")
    sel = data["fold"] == i
    np.testing.assert_array_equal(f["signal"], data["signal"][sel])
    np.testing.assert_array_equal(f["SP"], data["SP"][sel])
    np.testing.assert_array_equal(f["trial"], data["trial"][sel])
