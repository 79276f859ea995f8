"""Minibatches over a split dict of NumPy arrays (see `protocol.make_split`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np


def num_batches(n: int, batch_size: int, drop_remainder: bool = False) -> int:
  """Number of batches `batches` yields for `n` examples."""
  if batch_size <= 0:
    raise ValueError(f"batch_size must be positive, got {batch_size}")
  return n // batch_size if drop_remainder else -(-n // batch_size)


def _is_numeric(v: np.ndarray) -> bool:
  return np.asarray(v).dtype.kind in "biufc"


def batches(split: Mapping[str, np.ndarray], batch_size: int, *, seed: int | None = None,
            drop_remainder: bool = False) -> Iterator[dict[str, np.ndarray]]:
  """Yields dicts of (B, ...) slices of the numeric arrays in `split`.

  Args:
    split: arrays sharing the leading dimension N; str/object arrays (e.g.
      "subject") are skipped.
    batch_size: B; the last batch is smaller unless `drop_remainder`.
    seed: shuffle with `np.random.default_rng(seed)` if not None, else in order.
    drop_remainder: drop the last incomplete batch.
  """
  arrays = {k: np.asarray(v) for k, v in split.items() if _is_numeric(v)}
  if not arrays:
    raise ValueError(f"split has no numeric arrays (keys {sorted(split)})")
  sizes = {k: v.shape[0] for k, v in arrays.items()}
  n = next(iter(sizes.values()))
  if any(s != n for s in sizes.values()):
    raise ValueError(f"arrays differ in leading dimension: {sizes}")
  order = np.random.default_rng(seed).permutation(n) if seed is not None else np.arange(n)
  for b in range(num_batches(n, batch_size, drop_remainder)):
    idx = order[b * batch_size:(b + 1) * batch_size]
    yield {k: v[idx] for k, v in arrays.items()}


def padded_batches(split: Mapping[str, np.ndarray], batch_size: int, *, seed: int | None = None
                   ) -> Iterator[dict[str, np.ndarray]]:
  """As `batches`, but every batch has exactly `batch_size` rows and a "mask" (B,) float32: 1 for real rows,
  0 for the padding that fills the last batch (copies of its first row). One shape -> one compiled program;
  steps weight losses, metrics and BatchNorm statistics by the mask (`jaxbp.train.steps`)."""
  for b in batches(split, batch_size, seed=seed):
    n = len(next(iter(b.values())))
    mask = np.zeros(batch_size, np.float32)
    mask[:n] = 1.0
    if n < batch_size:
      idx = np.concatenate([np.arange(n), np.zeros(batch_size - n, np.int64)])
      b = {k: v[idx] for k, v in b.items()}
    yield {**b, "mask": mask}
