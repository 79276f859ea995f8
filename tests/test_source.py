"""From command-line flags to folds: the synthetic default and the errors a user sees."""

import pytest

from jaxbp.data.source import load_folds


def test_default_is_synthetic_through_the_real_reader(tmp_path):
  spec, folds = load_folds(None, None, cache_dir=tmp_path)
  assert spec.name == "synthetic" and len(folds) == 5
  assert (tmp_path / "synthetic" / "synthetic_dataset" / "signal_fold_0.mat").exists()
  assert all(f.abp is not None and f.ppg.shape[1] == spec.window for f in folds)
  spec2, folds2 = load_folds("synthetic", None, cache_dir=tmp_path)  # reused, same data
  assert [f.n for f in folds2] == [f.n for f in folds]


def test_real_dataset_without_data_dir_is_an_error(tmp_path):
  with pytest.raises(ValueError, match="needs --data-dir.*ppgbp_dataset"):
    load_folds("ppgbp", None, cache_dir=tmp_path)


def test_unknown_loader_and_dataset(tmp_path):
  with pytest.raises(ValueError, match="unknown loader"):
    load_folds(None, None, loader="csv", cache_dir=tmp_path)
  with pytest.raises(ValueError, match="unknown dataset"):
    load_folds("mimic", tmp_path, cache_dir=tmp_path)
