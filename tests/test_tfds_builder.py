"""Tests of jaxbp.data.tfds_builder: build in a temp dir, read back without TensorFlow."""

from __future__ import annotations

import dataclasses
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io

tfds = pytest.importorskip("tensorflow_datasets")

from jaxbp.data import SPECS, DataFormatError, Fold, get_spec, load_dataset  # noqa: E402
from jaxbp.data import tfds_builder  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

tfds.disable_progress_bar()


def _write(root: Path, name: str, sizes, *, nan_fold: int | None = None) -> None:
  """Writes a small dataset of spec `name` in the benchmark's .mat format."""
  spec = get_spec(name)
  rng = np.random.default_rng(0)
  for i, n in enumerate(sizes):
    cols = {
        "patient": [f"P{i}_{j % 2}" if name == "mimic_sample" else 10 * i + j % 2
                    for j in range(n)],
        "trial": [f"{i}_{j}" for j in range(n)],
        "SP": list(rng.uniform(90, 180, n)),
        "DP": list(rng.uniform(50, 100, n)),
        "Sex(M/F)": ["Female" if j % 2 else "Male" for j in range(n)],
        "Age(year)": list(rng.integers(20, 80, n)),
        "BMI": list(rng.uniform(18, 30, n)),
        "signal": list(rng.normal(2000, 50, (n, spec.window))),
    }
    if spec.has_abp:
      cols["abp_signal"] = list(rng.uniform(40, 200, (n, spec.window)))
    if i == nan_fold:
      cols["SP"][0] = np.nan
    (root / spec.folder).mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(root / spec.folder / f"signal_fold_{i}.mat",
                     {k: np.vstack(v) for k, v in cols.items()})


def _assert_same(got: list[Fold], want: list[Fold]) -> None:
  assert len(got) == len(want)
  for a, b in zip(got, want):
    for name in ("ppg", "sbp", "dbp", "subject", "trial"):
      x, y = getattr(a, name), getattr(b, name)
      assert x.dtype == y.dtype, name
      np.testing.assert_array_equal(x, y, err_msg=name)
    assert (a.abp is None) == (b.abp is None)
    if b.abp is not None:
      np.testing.assert_array_equal(a.abp, b.abp)
    assert a.meta.keys() == b.meta.keys()
    for k in b.meta:
      assert a.meta[k].dtype == b.meta[k].dtype, k
      np.testing.assert_array_equal(a.meta[k], b.meta[k], err_msg=k)
    assert a.source.endswith(".array_record-00000-of-00001")


def test_round_trip_and_cache(tmp_path):
  root, data_dir = tmp_path / "raw", tmp_path / "tfds"
  _write(root, "ppgbp", (3, 2, 4, 1, 2))
  want = load_dataset(root, "ppgbp")
  got = tfds_builder.load_dataset_tfds(root, "ppgbp", data_dir)
  _assert_same(got, want)
  files = sorted(p for p in data_dir.rglob("*") if p.is_file())
  stamps = [p.stat().st_mtime_ns for p in files]
  assert any(p.name.startswith("bp_benchmark-fold4.array_record") for p in files)

  shutil.rmtree(root)  # The second call must read the cache only.
  again = tfds_builder.load_dataset_tfds(root, get_spec("ppgbp"), data_dir)
  _assert_same(again, want)
  assert sorted(p for p in data_dir.rglob("*") if p.is_file()) == files
  assert [p.stat().st_mtime_ns for p in files] == stamps
  assert "tensorflow" not in sys.modules


def test_data_source_features(tmp_path):
  _write(tmp_path / "raw", "mimic_sample", (5,))
  builder = tfds_builder.prepare(tmp_path / "raw" / "mimic_sample_dataset", "mimic_sample",
                                 tmp_path / "tfds")
  assert builder.name == "bp_benchmark" and builder.builder_config.name == "mimic_sample"
  source = builder.as_data_source()["fold0"]
  assert len(source) == 5
  ex = source[0]
  assert ex["ppg"].shape == ex["abp"].shape == (625,) and ex["ppg"].dtype == np.float32
  assert ex["subject"] == b"P0_0" and ex["trial"] == b"0_0"  # str features come back as bytes.
  assert [source[i]["index"] for i in range(5)] == list(range(5))
  got = tfds_builder.load_dataset_tfds(tmp_path / "elsewhere", "mimic_sample", tmp_path / "tfds")
  _assert_same(got, load_dataset(tmp_path / "raw", "mimic_sample"))


def test_configs_cover_specs():
  assert {c.name for c in tfds_builder.BpBenchmark.BUILDER_CONFIGS} == set(SPECS)


def test_errors_come_from_load_dataset(tmp_path):
  with pytest.raises(DataFormatError, match="does not exist"):
    tfds_builder.load_dataset_tfds(tmp_path / "missing", "ppgbp", tmp_path / "tfds")
  _write(tmp_path / "raw", "ppgbp", (2, 2, 2, 2, 2), nan_fold=3)
  expected = r"signal_fold_3\.mat: NaN/inf values in 1 window\(s\) in column 'SP'"
  with pytest.raises(DataFormatError, match=expected):
    tfds_builder.load_dataset_tfds(tmp_path / "raw", "ppgbp", tmp_path / "tfds")
  # A failed build leaves no cache behind: fixed data builds in the same data_dir.
  _write(tmp_path / "raw", "ppgbp", (2, 2, 2, 2, 2))
  folds = tfds_builder.load_dataset_tfds(tmp_path / "raw", "ppgbp", tmp_path / "tfds")
  assert [f.n for f in folds] == [2] * 5


def test_rejects_spec_outside_specs(tmp_path):
  spec = dataclasses.replace(get_spec("ppgbp"), window=100)
  with pytest.raises(ValueError, match="only for the specs in SPECS"):
    tfds_builder.prepare(tmp_path, spec, tmp_path / "tfds")


def test_real_ppgbp_round_trip(tmp_path):
  if not (DATA / "ppgbp_dataset").is_dir():
    pytest.skip(f"real data {DATA / 'ppgbp_dataset'} not present (shared/data next to the repo)")
  got = tfds_builder.load_dataset_tfds(DATA, "ppgbp", tmp_path / "tfds")
  _assert_same(got, load_dataset(DATA, "ppgbp"))
  assert [f.n for f in got] == [128, 120, 129, 124, 118]
