"""The benchmark protocol: fold rotation, normalization, train/val/test splits.

- Fold rotation ("cv"): test = k, validation = (k + 1) % n, train = the rest.
  "holdout" (UCI): fold0 test, fold1 val, fold2 train. "single": fold 0 for all
  three (smoke runs only).
- Each PPG window is z-scored on its own; SBP, DBP and ABP are min-max scaled
  with the min/max over the whole dataset (all folds), as the benchmark does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxbp.data.benchmark_files import Fold
from jaxbp.data.specs import DatasetSpec

ZSCORE_EPS = 1e-6


def n_rotations(spec: DatasetSpec) -> int:
  """Number of train/val/test rotations: `n_folds` for "cv", else 1."""
  if spec.protocol == "cv":
    return spec.n_folds
  if spec.protocol in ("holdout", "single"):
    return 1
  raise ValueError(f"dataset {spec.name!r}: unknown protocol {spec.protocol!r}")


def fold_roles(spec: DatasetSpec, k: int) -> tuple[list[int], int, int]:
  """Returns (train folds, val fold, test fold) of rotation `k`.

  Raises:
    ValueError: if `k` is not in [0, n_rotations(spec)) or the protocol is unknown.
  """
  n = n_rotations(spec)
  if not 0 <= k < n:
    raise ValueError(
        f"dataset {spec.name!r} ({spec.protocol}): rotation k={k} out of range [0, {n})")
  if spec.protocol == "cv":
    if spec.n_folds < 3:
      raise ValueError(f"dataset {spec.name!r}: 'cv' needs at least 3 folds, has {spec.n_folds}")
    test, val = k, (k + 1) % spec.n_folds
    return [i for i in range(spec.n_folds) if i not in (test, val)], val, test
  if spec.protocol == "holdout":
    return [2], 1, 0
  return [0], 0, 0  # "single"


def zscore(ppg: np.ndarray, *, chunk: int = 1 << 16) -> np.ndarray:
  """Per-window z-score over the last axis: (x - mean) / (std + 1e-6), float32.

  Computed in float64, `chunk` windows at a time (bounded memory on UCI).
  """
  ppg = np.asarray(ppg)
  flat = ppg.reshape(-1, ppg.shape[-1])
  out = np.empty(flat.shape, np.float32)
  for start in range(0, flat.shape[0], chunk):
    x = flat[start:start + chunk].astype(np.float64)
    mean = x.mean(axis=-1, keepdims=True)
    std = x.std(axis=-1, keepdims=True)
    out[start:start + chunk] = (x - mean) / (std + ZSCORE_EPS)
  return out.reshape(ppg.shape)


@dataclasses.dataclass(frozen=True)
class MinMax:
  """Min-max scaling to [0, 1]: (x - lo) / (hi - lo); works on NumPy and JAX arrays."""

  lo: float
  hi: float

  def __post_init__(self):
    if not self.hi > self.lo:
      raise ValueError(f"MinMax needs hi > lo, got lo={self.lo}, hi={self.hi}")

  @classmethod
  def fit(cls, values: np.ndarray) -> MinMax:
    """Min/max of `values` (any shape)."""
    values = np.asarray(values)
    return cls(float(values.min()), float(values.max()))

  def scale(self, x: Any) -> Any:
    """Maps [lo, hi] to [0, 1]."""
    return (x - self.lo) / (self.hi - self.lo)

  def unscale(self, x: Any) -> Any:
    """Inverse of `scale`: maps [0, 1] back to [lo, hi]."""
    return x * (self.hi - self.lo) + self.lo


@dataclasses.dataclass(frozen=True)
class Scalers:
  """Dataset-wide label scalers (mmHg <-> [0, 1])."""

  sbp: MinMax
  dbp: MinMax
  abp: MinMax | None = None

  @classmethod
  def fit(cls, folds: Sequence[Fold]) -> Scalers:
    """Min/max over ALL folds; `abp` only if every fold has ABP."""
    sbp = MinMax.fit(np.concatenate([f.sbp for f in folds]))
    dbp = MinMax.fit(np.concatenate([f.dbp for f in folds]))
    abp = None
    if folds and all(f.abp is not None for f in folds):
      abp = MinMax(min(float(f.abp.min()) for f in folds), max(float(f.abp.max()) for f in folds))
    return cls(sbp, dbp, abp)

  def unscale_y(self, y: Any) -> tuple[Any, Any]:
    """(..., 2) scaled [SBP, DBP] -> (SBP, DBP) in mmHg, each (...)."""
    return self.sbp.unscale(y[..., 0]), self.dbp.unscale(y[..., 1])


def make_split(folds: Sequence[Fold], fold_indices: Sequence[int],
               scalers: Scalers) -> dict[str, np.ndarray]:
  """Concatenates folds into model-ready arrays.

  Returns:
    {"x": (N, L, 1) float32 z-scored PPG, "y": (N, 2) float32 scaled [SBP, DBP],
     "abp": (N, L, 1) float32 scaled ABP (only if the folds have ABP and
     `scalers.abp` is set), "sbp", "dbp": (N,) float32 mmHg, "subject": (N,) str}.
  """
  if not fold_indices:
    raise ValueError("make_split needs at least one fold index")
  sel = [folds[i] for i in fold_indices]
  sbp = np.concatenate([f.sbp for f in sel]).astype(np.float32)
  dbp = np.concatenate([f.dbp for f in sel]).astype(np.float32)
  split = {
      "x": zscore(np.concatenate([f.ppg for f in sel]))[..., None],
      "y": np.stack([scalers.sbp.scale(sbp), scalers.dbp.scale(dbp)], axis=-1).astype(np.float32),
  }
  if scalers.abp is not None and all(f.abp is not None for f in sel):
    abp = np.concatenate([f.abp for f in sel])
    split["abp"] = scalers.abp.scale(abp).astype(np.float32)[..., None]
  split["sbp"] = sbp
  split["dbp"] = dbp
  split["subject"] = np.concatenate([f.subject for f in sel])
  return split


def make_rotation(folds: Sequence[Fold], spec: DatasetSpec, k: int,
                  scalers: Scalers) -> dict[str, dict[str, np.ndarray]]:
  """Returns {"train", "val", "test"} splits of rotation `k` (see `fold_roles`)."""
  if len(folds) != spec.n_folds:
    raise ValueError(f"dataset {spec.name!r} has {spec.n_folds} folds, got {len(folds)}")
  train, val, test = fold_roles(spec, k)
  return {
      "train": make_split(folds, train, scalers),
      "val": make_split(folds, [val], scalers),
      "test": make_split(folds, [test], scalers),
  }
