"""Tests of jaxbp.data.benchmark_files: the .mat fold reader and its validation."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from jaxbp.data import DataFormatError, Fold, get_spec, load_dataset, load_fold

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
PPGBP = get_spec("ppgbp")
# A small 5-fold cv spec with ABP, to keep fixtures tiny.
TINY = dataclasses.replace(PPGBP, name="tiny", folder="tiny_dataset", window=16, has_abp=True)


def _columns(n: int, window: int, subjects, *, abp: bool, seed: int = 0) -> dict[str, np.ndarray]:
  """One fold's columns, as the benchmark's DataFrame would hold them (lists per row)."""
  rng = np.random.default_rng(seed)
  cols = {
      "patient": [subjects[i % len(subjects)] for i in range(n)],
      "trial": [f"{subjects[i % len(subjects)]}_{i}" for i in range(n)],  # Ragged: padded on save.
      "SP": list(rng.integers(90, 180, n)),
      "DP": list(rng.integers(50, 100, n)),
      "Sex(M/F)": ["Female" if i % 2 else "Male" for i in range(n)],
      "Age(year)": list(rng.integers(20, 80, n)),
      "signal": list(rng.normal(2000.0, 50.0, (n, window))),
  }
  if abp:
    cols["abp_signal"] = list(rng.uniform(60.0, 160.0, (n, window)))
  return cols


def _save(path: Path, cols: dict) -> Path:
  """Writes exactly like the benchmark: {col: np.vstack(df[col].values)}."""
  path.parent.mkdir(parents=True, exist_ok=True)
  scipy.io.savemat(path, {k: np.vstack(v) if len(v) else np.zeros((0, 1)) for k, v in cols.items()})
  return path


def _write_dataset(root: Path, spec, sizes=(4, 3, 5, 2, 3), **overrides) -> Path:
  """Writes `spec.n_folds` folds; `overrides[i]` edits the columns of fold i."""
  folder = root / spec.folder
  for i in range(spec.n_folds):
    subjects = [100 * i + s for s in range(2)]  # Disjoint per fold.
    cols = _columns(sizes[i], spec.window, subjects, abp=spec.has_abp, seed=i)
    if f"fold{i}" in overrides:
      overrides[f"fold{i}"](cols)
    _save(folder / f"signal_fold_{i}.mat", cols)
  return folder


def _error(excinfo) -> str:
  return str(excinfo.value)


# ----------------------------------------------------------------------------- good input


def test_load_dataset_types_and_shapes(tmp_path):
  folder = _write_dataset(tmp_path, TINY)
  folds = load_dataset(tmp_path, TINY)
  assert [f.n for f in folds] == [4, 3, 5, 2, 3]
  f = folds[0]
  assert isinstance(f, Fold)
  assert f.ppg.shape == (4, 16) and f.ppg.dtype == np.float32
  assert f.abp.shape == (4, 16) and f.abp.dtype == np.float32
  assert f.sbp.shape == (4,) and f.sbp.dtype == np.float32
  assert f.dbp.shape == (4,) and f.dbp.dtype == np.float32
  assert f.subject.tolist() == ["0", "1", "0", "1"]  # Ints converted to str.
  assert f.trial.tolist() == ["0_0", "1_1", "0_2", "1_3"]  # Padding stripped.
  assert f.meta["Sex(M/F)"].tolist() == ["Male", "Female", "Male", "Female"]
  assert f.meta["Age(year)"].shape == (4,)
  assert set(f.meta) == {"Sex(M/F)", "Age(year)"}
  assert f.source == str(folder / "signal_fold_0.mat")
  raw = scipy.io.loadmat(folder / "signal_fold_0.mat")
  np.testing.assert_array_equal(f.ppg, raw["signal"].astype(np.float32))
  np.testing.assert_array_equal(f.sbp, raw["SP"][:, 0].astype(np.float32))


def test_accepts_dataset_folder_and_name(tmp_path):
  folder = _write_dataset(tmp_path, PPGBP)
  by_root = load_dataset(tmp_path, "ppgbp")
  by_folder = load_dataset(folder, PPGBP)
  assert by_root[0].abp is None
  for a, b in zip(by_root, by_folder):
    np.testing.assert_array_equal(a.ppg, b.ppg)
    assert a.source == b.source


def test_string_subjects_kept(tmp_path):
  cols = _columns(3, 16, ["subj_a", "b"], abp=True)
  path = _save(tmp_path / "f.mat", cols)
  fold = load_fold(path, TINY)
  assert fold.subject.tolist() == ["subj_a", "b", "subj_a"]


def test_unknown_dataset_name(tmp_path):
  with pytest.raises(ValueError, match="unknown dataset"):
    load_dataset(tmp_path, "nope")


def test_importing_jaxbp_data_does_not_import_tfds_or_tensorflow():
  code = ("import sys, jaxbp.data; "
          "assert 'tensorflow_datasets' not in sys.modules; assert 'tensorflow' not in sys.modules")
  subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


# ----------------------------------------------------------------------------- bad input


def test_missing_data_directory(tmp_path):
  missing = tmp_path / "nowhere"
  with pytest.raises(DataFormatError) as e:
    load_dataset(missing, PPGBP)
  assert str(missing) in _error(e) and "does not exist" in _error(e)


def test_missing_dataset_folder(tmp_path):
  with pytest.raises(DataFormatError) as e:
    load_dataset(tmp_path, PPGBP)
  assert str(tmp_path / "ppgbp_dataset") in _error(e) and "does not exist" in _error(e)


def test_missing_fold_file(tmp_path):
  folder = _write_dataset(tmp_path, TINY)
  (folder / "signal_fold_3.mat").unlink()
  with pytest.raises(DataFormatError) as e:
    load_dataset(tmp_path, TINY)
  assert "missing fold file signal_fold_3.mat" in _error(e) and str(folder) in _error(e)


def test_unreadable_mat(tmp_path):
  folder = _write_dataset(tmp_path, TINY)
  bad = folder / "signal_fold_2.mat"
  bad.write_bytes(b"this is not a MATLAB file" * 10)
  with pytest.raises(DataFormatError) as e:
    load_dataset(tmp_path, TINY)
  assert str(bad) in _error(e) and "unreadable .mat" in _error(e)


def test_truncated_mat(tmp_path):
  folder = _write_dataset(tmp_path, TINY)
  bad = folder / "signal_fold_1.mat"
  bad.write_bytes(b"")
  with pytest.raises(DataFormatError, match="unreadable .mat") as e:
    load_dataset(tmp_path, TINY)
  assert str(bad) in _error(e)


@pytest.mark.parametrize("column", ["patient", "trial", "SP", "DP", "signal", "abp_signal"])
def test_missing_required_column(tmp_path, column):
  cols = _columns(3, 16, [1], abp=True)
  del cols[column]
  path = _save(tmp_path / "signal_fold_0.mat", cols)
  with pytest.raises(DataFormatError) as e:
    load_fold(path, TINY)
  msg = _error(e)
  assert str(path) in msg and f"missing required column(s) ['{column}']" in msg
  assert "columns found:" in msg and "'Age(year)'" in msg


def test_abp_not_required_without_abp(tmp_path):
  path = _save(tmp_path / "f.mat", _columns(3, 262, [1], abp=False))
  assert load_fold(path, PPGBP).abp is None


@pytest.mark.parametrize("column", ["signal", "abp_signal"])
def test_wrong_window_length(tmp_path, column):
  cols = _columns(3, 16, [1], abp=True)
  cols[column] = list(np.zeros((3, 20)))
  path = _save(tmp_path / "f.mat", cols)
  with pytest.raises(DataFormatError) as e:
    load_fold(path, TINY)
  msg = _error(e)
  assert str(path) in msg and f"wrong window length in column '{column}'" in msg
  assert "expected 16" in msg and "got 20" in msg


def test_ppgbp_window_length_is_262(tmp_path):
  path = _save(tmp_path / "f.mat", _columns(2, 625, [1], abp=False))
  with pytest.raises(DataFormatError, match="expected 262 samples .* got 625"):
    load_fold(path, PPGBP)


@pytest.mark.parametrize("column", ["SP", "trial", "Age(year)", "abp_signal"])
def test_row_count_mismatch(tmp_path, column):
  cols = _columns(4, 16, [1], abp=True)
  cols[column] = cols[column][:3]
  path = _save(tmp_path / "f.mat", cols)
  with pytest.raises(DataFormatError) as e:
    load_fold(path, TINY)
  msg = _error(e)
  assert str(path) in msg and "row-count mismatch" in msg and f"'{column}': 3" in msg


def test_empty_fold(tmp_path):
  cols = {k: [] for k in _columns(1, 16, [1], abp=True)}
  path = _save(tmp_path / "f.mat", cols)
  with pytest.raises(DataFormatError) as e:
    load_fold(path, TINY)
  assert str(path) in _error(e) and "empty fold" in _error(e)


def test_non_numeric_label(tmp_path):
  cols = _columns(3, 16, [1], abp=True)
  cols["SP"] = ["high", "low", "mid"]
  path = _save(tmp_path / "f.mat", cols)
  with pytest.raises(DataFormatError, match="column 'SP' is not numeric") as e:
    load_fold(path, TINY)
  assert str(path) in _error(e)


def _poison(cols: dict, column: str, rows, value=np.nan) -> None:
  for r in rows:
    if column in ("signal", "abp_signal"):
      cols[column][r] = cols[column][r].copy()
      cols[column][r][3] = value
    else:
      cols[column][r] = value


@pytest.mark.parametrize("column", ["signal", "abp_signal", "SP", "DP"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nonfinite_raises(tmp_path, column, value):
  cols = _columns(5, 16, [1], abp=True)
  _poison(cols, column, [1, 3], value)
  path = _save(tmp_path / "f.mat", cols)
  with pytest.raises(DataFormatError) as e:
    load_fold(path, TINY)
  msg = _error(e)
  assert str(path) in msg and "NaN/inf" in msg and f"NaN/inf values in 2 window(s) in column '{column}'" in msg
  assert "drop_nan=True" in msg


def test_drop_nan_warns_and_drops(tmp_path):
  folder = _write_dataset(tmp_path, TINY, fold2=lambda c: (_poison(c, "signal", [0, 1]),
                                                         _poison(c, "DP", [1, 4])))
  with pytest.warns(UserWarning) as record:
    folds = load_dataset(tmp_path, TINY, drop_nan=True)
  msgs = [str(w.message) for w in record]
  assert len(msgs) == 1
  assert str(folder / "signal_fold_2.mat") in msgs[0] and "dropped 3 of 5 window(s)" in msgs[0]
  assert "2 window(s) in column 'signal', 2 window(s) in column 'DP'" in msgs[0]
  assert [f.n for f in folds] == [4, 3, 2, 2, 3]
  kept = folds[2]
  assert kept.trial.tolist() == ["200_2", "201_3"]
  for arr in (kept.ppg, kept.abp, kept.sbp, kept.dbp):
    assert arr.shape[0] == 2 and np.isfinite(arr).all()
  assert kept.subject.shape == kept.trial.shape == kept.meta["Age(year)"].shape == (2,)


def test_drop_nan_all_windows_is_empty(tmp_path):
  cols = _columns(2, 16, [1], abp=True)
  _poison(cols, "SP", [0, 1])
  path = _save(tmp_path / "f.mat", cols)
  with pytest.warns(UserWarning, match="dropped 2 of 2"):
    with pytest.raises(DataFormatError, match="empty fold"):
      load_fold(path, TINY, drop_nan=True)


def test_subject_in_two_folds(tmp_path):
  def leak(cols):
    cols["patient"][0] = 301  # Subject of fold 3.
  folder = _write_dataset(tmp_path, TINY, fold1=leak)
  with pytest.raises(DataFormatError) as e:
    load_dataset(tmp_path, TINY)
  msg = _error(e)
  assert "subject '301' appears in two folds" in msg
  assert str(folder / "signal_fold_1.mat") in msg and str(folder / "signal_fold_3.mat") in msg


def test_subject_overlap_allowed_for_holdout(tmp_path):
  spec = dataclasses.replace(TINY, name="tiny_uci", n_folds=3, protocol="holdout")
  def same(cols):
    cols["patient"] = ["Part_1_0"] * len(cols["patient"])
  _write_dataset(tmp_path, spec, fold0=same, fold1=same, fold2=same)
  folds = load_dataset(tmp_path, spec)
  assert [f.subject[0] for f in folds] == ["Part_1_0"] * 3


# ----------------------------------------------------------------------------- real data


def _real(name: str) -> Path:
  spec = get_spec(name)
  if not (DATA / spec.folder).is_dir():
    pytest.skip(f"real data {DATA / spec.folder} not present (shared/data next to the repo)")
  return DATA


def test_real_ppgbp_fingerprint():
  folds = load_dataset(_real("ppgbp"), "ppgbp")
  assert [f.n for f in folds] == [128, 120, 129, 124, 118]
  assert sum(f.n for f in folds) == 619
  subjects = np.concatenate([f.subject for f in folds])
  assert len(np.unique(subjects)) == 218
  sp = np.concatenate([f.sbp for f in folds]).astype(np.float64)
  dp = np.concatenate([f.dbp for f in folds]).astype(np.float64)
  # The published ±std is the sample std (ddof=1): 20.50 / 11.20 (ddof=0 gives 20.48 / 11.19).
  assert (round(sp.mean(), 2), round(sp.std(ddof=1), 2)) == (128.02, 20.50)
  assert (round(dp.mean(), 2), round(dp.std(ddof=1), 2)) == (71.91, 11.20)
  assert (sp.min(), sp.max(), dp.min(), dp.max()) == (80, 182, 42, 107)
  assert all(f.abp is None and f.ppg.shape[1] == 262 for f in folds)
  assert "Age(year)" in folds[0].meta and folds[0].meta["Age(year)"].shape == (128,)


def test_real_mimic_sample():
  (fold,) = load_dataset(_real("mimic_sample"), "mimic_sample")
  assert fold.n == 42 and fold.ppg.shape == fold.abp.shape == (42, 625)
  assert np.isfinite(fold.abp).all() and 20 < fold.abp.mean() < 200
  assert fold.trial[0] == "mixedsignals_1"
