"""Classic baselines of the study: Random Forest and SVR on hand-made features, with their model size.

  model = fit_classic("rf", x_train, y_train, x_val, y_val)    # y: (N, 2) SBP, DBP in mmHg
  pred = model.predict(x_test)                                  # (N, 2) mmHg
  model.size                                                    # {"params": ..., "bytes": ...}

Hyper-parameters are chosen on the validation fold from a small grid (the protocol's test k / val k+1 / train
rest), then the chosen model is the one fit on the training folds. Size, counted as a deployed model would
store it (float32 numbers, int16 indices):
  RF   per tree node: internal = feature index (int16) + threshold (float32) + 2 child indices (int16);
       leaf = 2 outputs (float32). params = internal nodes x 2 + leaves x 2.
  SVR  per target: support vectors x features + dual coefficients + intercept (float32), plus the feature
       standardizer (2 x features). params = their count, bytes = 4 x params.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

CLASSIC_MODELS = ("rf", "svr")
RF_GRID = ({"max_depth": None, "min_samples_leaf": 1}, {"max_depth": 8, "min_samples_leaf": 2},
           {"max_depth": 4, "min_samples_leaf": 5})
SVR_GRID = ({"C": 1.0}, {"C": 10.0}, {"C": 100.0})


@dataclasses.dataclass
class ClassicModel:
  """A fitted baseline: `predict(x) -> (N, 2)` mmHg, its hyper-parameters and size."""

  kind: str
  hyper: dict[str, Any]
  estimators: Any  # RF: one multi-output forest; SVR: (scaler, svr_sbp, svr_dbp)
  n_features: int

  def predict(self, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if self.kind == "rf":
      return np.asarray(self.estimators.predict(x), dtype=np.float64).reshape(-1, 2)
    scaler, *svrs = self.estimators
    xs = scaler.transform(x)
    return np.column_stack([s.predict(xs) for s in svrs])

  @property
  def size(self) -> dict[str, int]:
    """{"params", "bytes"} as documented in the module docstring."""
    if self.kind == "rf":
      internal = leaves = 0
      for tree in self.estimators.estimators_:
        is_leaf = tree.tree_.children_left == -1
        leaves += int(is_leaf.sum())
        internal += int((~is_leaf).sum())
      return {"params": 2 * internal + 2 * leaves, "bytes": internal * (2 + 4 + 2 * 2) + leaves * 2 * 4}
    _, *svrs = self.estimators
    params = 2 * self.n_features + sum(s.support_vectors_.size + s.dual_coef_.size + 1 for s in svrs)
    return {"params": int(params), "bytes": 4 * int(params)}


def _make(kind: str, hyper: dict[str, Any], seed: int, x: np.ndarray, y: np.ndarray) -> ClassicModel:
  from sklearn.ensemble import RandomForestRegressor  # pylint: disable=import-outside-toplevel
  from sklearn.preprocessing import StandardScaler  # pylint: disable=import-outside-toplevel
  from sklearn.svm import SVR  # pylint: disable=import-outside-toplevel

  if kind == "rf":
    est = RandomForestRegressor(n_estimators=100, random_state=seed, n_jobs=1, **hyper).fit(x, y)
    return ClassicModel(kind, dict(hyper), est, x.shape[1])
  scaler = StandardScaler().fit(x)
  xs = scaler.transform(x)
  # Targets in mmHg: epsilon of 1 mmHg, gamma "scale" (1 / (features x var)) on standardized features.
  svrs = [SVR(kernel="rbf", epsilon=1.0, **hyper).fit(xs, y[:, j]) for j in range(2)]
  return ClassicModel(kind, dict(hyper), (scaler, *svrs), x.shape[1])


def fit_classic(kind: str, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, *,
                seed: int = 0) -> ClassicModel:
  """Fits `kind` ("rf" | "svr") on the training set with the grid point of lowest validation MAE.

  Args:
    x_train, x_val: (N, F) features.
    y_train, y_val: (N, 2) SBP, DBP in mmHg.
  """
  if kind not in CLASSIC_MODELS:
    raise ValueError(f"unknown classic model {kind!r}; expected one of {CLASSIC_MODELS}")
  x_train, y_train = np.asarray(x_train, np.float64), np.asarray(y_train, np.float64)
  if x_train.ndim != 2 or y_train.shape != (x_train.shape[0], 2):
    raise ValueError(f"expected x (N, F) and y (N, 2), got {x_train.shape} and {y_train.shape}")
  best, best_mae = None, np.inf
  for hyper in (RF_GRID if kind == "rf" else SVR_GRID):
    m = _make(kind, hyper, seed, x_train, y_train)
    mae = float(np.mean(np.abs(m.predict(x_val) - y_val)))
    if mae < best_mae:
      best, best_mae = m, mae
  assert best is not None
  return best
