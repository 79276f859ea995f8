"""Tests of jaxbp.data.protocol (rotation, normalization, splits) and jaxbp.data.batching."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxbp.data import (
    Fold,
    MinMax,
    Scalers,
    batches,
    fold_roles,
    get_spec,
    load_dataset,
    make_rotation,
    make_split,
    n_rotations,
    num_batches,
    zscore,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _fold(n: int, window: int, *, seed: int, abp: bool = True, subject0: int = 0) -> Fold:
  rng = np.random.default_rng(seed)
  return Fold(
      ppg=rng.normal(2000.0, 50.0, (n, window)).astype(np.float32),
      sbp=rng.uniform(90, 180, n).astype(np.float32),
      dbp=rng.uniform(50, 100, n).astype(np.float32),
      abp=rng.uniform(40, 200, (n, window)).astype(np.float32) if abp else None,
      subject=np.array([str(subject0 + i % 2) for i in range(n)]),
      trial=np.array([f"{subject0}_{i}" for i in range(n)]),
      meta={},
      source=f"fold{seed}.mat",
  )


def _folds(sizes=(4, 3, 5, 2, 3), window=8, abp=True) -> list[Fold]:
  return [_fold(n, window, seed=i, abp=abp, subject0=10 * i) for i, n in enumerate(sizes)]


# ----------------------------------------------------------------------------- rotation


@pytest.mark.parametrize("k, expected", [
    (0, ([2, 3, 4], 1, 0)),
    (1, ([0, 3, 4], 2, 1)),
    (2, ([0, 1, 4], 3, 2)),
    (3, ([0, 1, 2], 4, 3)),
    (4, ([1, 2, 3], 0, 4)),
])
def test_fold_roles_cv(k, expected):
  assert fold_roles(get_spec("ppgbp"), k) == expected


def test_fold_roles_cv_every_fold_tested_once():
  spec = get_spec("sensors")
  roles = [fold_roles(spec, k) for k in range(n_rotations(spec))]
  assert sorted(test for _, _, test in roles) == list(range(5))
  for train, val, test in roles:
    assert sorted(train + [val, test]) == list(range(5))


def test_fold_roles_holdout_and_single():
  assert n_rotations(get_spec("uci")) == 1
  assert fold_roles(get_spec("uci"), 0) == ([2], 1, 0)
  assert n_rotations(get_spec("mimic_sample")) == 1
  assert fold_roles(get_spec("mimic_sample"), 0) == ([0], 0, 0)
  assert n_rotations(get_spec("ppgbp")) == 5


@pytest.mark.parametrize("name, k", [("ppgbp", 5), ("ppgbp", -1), ("uci", 1), ("mimic_sample", 1)])
def test_fold_roles_out_of_range(name, k):
  with pytest.raises(ValueError, match=f"rotation k={k} out of range"):
    fold_roles(get_spec(name), k)


def test_unknown_protocol():
  spec = dataclasses.replace(get_spec("ppgbp"), protocol="loso")
  with pytest.raises(ValueError, match="unknown protocol 'loso'"):
    fold_roles(spec, 0)


# ----------------------------------------------------------------------------- normalization


def test_zscore_per_window():
  rng = np.random.default_rng(0)
  x = rng.normal(0, 1, (6, 262)) * rng.uniform(1, 100, (6, 1)) + rng.uniform(-1e3, 1e3, (6, 1))
  z = zscore(x)
  assert z.shape == x.shape and z.dtype == np.float32
  np.testing.assert_allclose(z.mean(axis=-1), 0, atol=1e-5)
  np.testing.assert_allclose(z.std(axis=-1), 1, atol=1e-5)
  expected = (x - x.mean(-1, keepdims=True)) / (x.std(-1, keepdims=True) + 1e-6)
  np.testing.assert_allclose(z, expected, rtol=1e-6, atol=1e-6)


def test_zscore_constant_window_is_finite_and_chunks_agree():
  x = np.ones((5, 10), np.float32)
  x[2] = np.arange(10)
  z = zscore(x)
  assert np.isfinite(z).all() and (z[0] == 0).all()
  np.testing.assert_array_equal(zscore(x, chunk=2), z)


@settings(max_examples=50, deadline=None)
@given(lo=st.floats(-500, 500), span=st.floats(1e-2, 1e3),
       x=st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=20))
def test_minmax_round_trip(lo, span, x):
  mm = MinMax(lo, lo + span)
  x = np.asarray(x)
  np.testing.assert_allclose(mm.unscale(mm.scale(x)), x, rtol=1e-9, atol=1e-9)


def test_minmax_maps_range_and_works_on_jax():
  mm = MinMax.fit(np.array([80.0, 120.0, 182.0]))
  assert (mm.lo, mm.hi) == (80.0, 182.0)
  np.testing.assert_allclose(mm.scale(np.array([80.0, 182.0])), [0.0, 1.0])
  xj = jnp.array([80.0, 131.0, 182.0], jnp.float32)
  sj = mm.scale(xj)
  assert isinstance(sj, jnp.ndarray) and sj.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(sj), [0.0, 0.5, 1.0], atol=1e-6)
  np.testing.assert_allclose(np.asarray(mm.unscale(sj)), np.asarray(xj), atol=1e-4)
  x32 = np.array([100.0], np.float32)
  assert mm.scale(x32).dtype == np.float32


def test_minmax_rejects_empty_range():
  with pytest.raises(ValueError, match="hi > lo"):
    MinMax.fit(np.array([5.0, 5.0]))


def test_scalers_fit_over_all_folds():
  folds = _folds()
  s = Scalers.fit(folds)
  all_sbp = np.concatenate([f.sbp for f in folds])
  all_abp = np.concatenate([f.abp.ravel() for f in folds])
  assert (s.sbp.lo, s.sbp.hi) == (all_sbp.min(), all_sbp.max())
  assert (s.abp.lo, s.abp.hi) == (all_abp.min(), all_abp.max())
  assert Scalers.fit(_folds(abp=False)).abp is None


# ----------------------------------------------------------------------------- splits


def test_make_split_arrays():
  folds = _folds()
  scalers = Scalers.fit(folds)
  split = make_split(folds, [0, 2], scalers)
  n = 4 + 5
  assert split["x"].shape == (n, 8, 1) and split["x"].dtype == np.float32
  assert split["y"].shape == (n, 2) and split["y"].dtype == np.float32
  assert split["abp"].shape == (n, 8, 1) and split["abp"].dtype == np.float32
  assert split["sbp"].shape == split["dbp"].shape == split["subject"].shape == (n,)
  assert split["subject"].tolist() == ["0", "1", "0", "1", "20", "21", "20", "21", "20"]
  assert 0.0 <= split["y"].min() and split["y"].max() <= 1.0
  assert 0.0 <= split["abp"].min() and split["abp"].max() <= 1.0
  np.testing.assert_array_equal(split["sbp"], np.concatenate([folds[0].sbp, folds[2].sbp]))
  np.testing.assert_allclose(split["x"][..., 0].mean(-1), 0, atol=1e-5)
  sbp, dbp = scalers.unscale_y(split["y"])
  np.testing.assert_allclose(sbp, split["sbp"], rtol=1e-5)
  np.testing.assert_allclose(dbp, split["dbp"], rtol=1e-5)
  np.testing.assert_allclose(scalers.abp.unscale(split["abp"][..., 0]),
                             np.concatenate([folds[0].abp, folds[2].abp]), rtol=1e-5)


def test_make_split_without_abp():
  folds = _folds(abp=False)
  split = make_split(folds, [1], Scalers.fit(folds))
  assert "abp" not in split and split["x"].shape == (3, 8, 1)


def test_make_rotation_partitions_subjects():
  folds = _folds()
  spec = get_spec("ppgbp")
  scalers = Scalers.fit(folds)
  tested = []
  for k in range(n_rotations(spec)):
    rot = make_rotation(folds, spec, k, scalers)
    assert set(rot) == {"train", "val", "test"}
    subj = {name: set(rot[name]["subject"]) for name in rot}
    assert not subj["train"] & subj["val"]
    assert not subj["train"] & subj["test"]
    assert not subj["val"] & subj["test"]
    assert sum(len(rot[name]["sbp"]) for name in rot) == sum(f.n for f in folds)
    np.testing.assert_array_equal(rot["test"]["sbp"], folds[k].sbp)
    np.testing.assert_array_equal(rot["val"]["sbp"], folds[(k + 1) % 5].sbp)
    tested.append(rot["test"]["sbp"])
  assert len(np.concatenate(tested)) == sum(f.n for f in folds)


def test_make_rotation_checks_fold_count():
  with pytest.raises(ValueError, match="has 5 folds, got 2"):
    make_rotation(_folds()[:2], get_spec("ppgbp"), 0, Scalers.fit(_folds()))


# ----------------------------------------------------------------------------- batching


def _split(n: int) -> dict[str, np.ndarray]:
  return {"x": np.arange(n * 3, dtype=np.float32).reshape(n, 3), "idx": np.arange(n),
          "subject": np.array([f"s{i}" for i in range(n)])}


@pytest.mark.parametrize("seed", [None, 0, 7])
@pytest.mark.parametrize("n, bs", [(10, 3), (9, 3), (1, 4), (619, 32)])
def test_batches_cover_every_index_once(n, bs, seed):
  out = list(batches(_split(n), bs, seed=seed))
  assert len(out) == num_batches(n, bs)
  assert all(set(b) == {"x", "idx"} for b in out)  # str arrays skipped.
  idx = np.concatenate([b["idx"] for b in out])
  assert sorted(idx.tolist()) == list(range(n))
  for b in out:
    np.testing.assert_array_equal(b["x"][:, 0], 3 * b["idx"])
  if seed is None:
    np.testing.assert_array_equal(idx, np.arange(n))


def test_batches_deterministic_per_seed():
  a = [b["idx"] for b in batches(_split(50), 8, seed=3)]
  b = [b["idx"] for b in batches(_split(50), 8, seed=3)]
  c = [b["idx"] for b in batches(_split(50), 8, seed=4)]
  for u, v in zip(a, b):
    np.testing.assert_array_equal(u, v)
  assert not np.array_equal(np.concatenate(a), np.concatenate(c))
  np.testing.assert_array_equal(np.concatenate(a), np.random.default_rng(3).permutation(50))


def test_batches_drop_remainder():
  out = list(batches(_split(10), 3, seed=1, drop_remainder=True))
  assert len(out) == num_batches(10, 3, True) == 3
  assert all(len(b["idx"]) == 3 for b in out)
  assert num_batches(9, 3, True) == num_batches(9, 3) == 3
  assert num_batches(0, 3) == 0


def test_batches_errors():
  with pytest.raises(ValueError, match="leading dimension"):
    next(batches({"x": np.zeros(3), "y": np.zeros(4)}, 2))
  with pytest.raises(ValueError, match="batch_size must be positive"):
    num_batches(3, 0)


# ----------------------------------------------------------------------------- real data


def test_real_ppgbp_naive_baseline():
  """Predicting the mean of the 3 TRAIN folds (val excluded) gives the published 16.38 / 8.85."""
  spec = get_spec("ppgbp")
  if not (DATA / spec.folder).is_dir():
    pytest.skip(f"real data {DATA / spec.folder} not present (shared/data next to the repo)")
  folds = load_dataset(DATA, spec)
  scalers = Scalers.fit(folds)
  err = {"train": [], "train+val": []}
  for k in range(n_rotations(spec)):
    rot = make_rotation(folds, spec, k, scalers)
    for name, ref in (("train", [rot["train"]]), ("train+val", [rot["train"], rot["val"]])):
      mean = np.concatenate([np.stack([r["sbp"], r["dbp"]], -1) for r in ref]).mean(0)
      truth = np.stack([rot["test"]["sbp"], rot["test"]["dbp"]], -1)
      err[name].append(np.abs(truth - mean))
  mae = np.concatenate(err["train"]).mean(0)  # Pooled over the 5 test folds.
  np.testing.assert_allclose(mae, [16.38, 8.85], atol=0.01)
  # Including the val fold in the mean gives 16.38 / 8.84: DBP does not match.
  assert abs(np.concatenate(err["train+val"]).mean(0)[1] - 8.85) > 0.005
