"""The benchmark's evaluation: train one model per fold rotation, pool the test predictions, report metrics.

Resumable: with a `workdir`, each finished rotation is written (`rotation_<k>.json` + `.npz`) and
skipped on the next call, so a killed run loses at most the rotation it was in.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import jax
import numpy as np

from jaxbp import metrics
from jaxbp.data.benchmark_files import Fold
from jaxbp.data.protocol import Scalers, make_rotation, n_rotations
from jaxbp.data.specs import DatasetSpec
from jaxbp.models import ModelConfig, build, count_params, init_variables
from jaxbp.models.configs import TASKS, model_name
from jaxbp.train.fit import FitConfig, FitResult, fit, precompile_fit, predict

InitFn = Callable[[int, Any], dict[str, Any]]  # (rotation, model) -> initial variables


@dataclasses.dataclass
class RotationResult:
  """Test-fold predictions and truths of one rotation (mmHg), plus its training record."""

  rotation: int
  pred_sbp: np.ndarray
  pred_dbp: np.ndarray
  true_sbp: np.ndarray
  true_dbp: np.ndarray
  naive_sbp: np.ndarray
  naive_dbp: np.ndarray
  info: dict[str, Any]

  def save(self, workdir: Path) -> None:
    arrays = {k: v for k, v in dataclasses.asdict(self).items() if isinstance(v, np.ndarray)}
    np.savez(workdir / f"rotation_{self.rotation}.npz", **arrays)
    (workdir / f"rotation_{self.rotation}.json").write_text(json.dumps(self.info, indent=2))

  @classmethod
  def load(cls, workdir: Path, rotation: int) -> "RotationResult | None":
    npz, info = workdir / f"rotation_{rotation}.npz", workdir / f"rotation_{rotation}.json"
    if not (npz.exists() and info.exists()):
      return None
    with np.load(npz) as z:
      arrays = {k: z[k] for k in z.files}
    return cls(rotation=rotation, info=json.loads(info.read_text()), **arrays)


def to_mmhg(pred: np.ndarray, split: dict[str, np.ndarray], scalers: Scalers, task: str
            ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
  """De-normalizes network outputs to (SBP, DBP) in mmHg; sig2sig goes through the ABP peak rule."""
  if task == "regression":
    return np.asarray(scalers.sbp.unscale(pred[:, 0])), np.asarray(scalers.dbp.unscale(pred[:, 1])), {}
  abp = np.asarray(scalers.abp.unscale(pred[..., 0]))
  sbp, dbp = metrics.sbp_dbp_batch(abp)
  extra = {"abp_mae_mmhg": float(np.mean(np.abs(abp - scalers.abp.unscale(split["abp"][..., 0])))),
           "windows_without_beats": int(np.sum(~np.isfinite(sbp) | ~np.isfinite(dbp)))}
  return sbp, dbp, extra


def run_rotation(folds: Sequence[Fold], spec: DatasetSpec, config: ModelConfig, fit_config: FitConfig,
                 rotation: int, scalers: Scalers, *, seed: int, init_fn: InitFn | None = None) -> RotationResult:
  """Trains on rotation `rotation` (test k, val k+1, train rest) and predicts its test fold."""
  task = TASKS[model_name(config)]
  split = make_rotation(folds, spec, rotation, scalers)
  model, variables = _rotation_start(spec, config, rotation, seed, init_fn)
  res = fit(model, variables, split["train"], split["val"], fit_config, task=task, seed=fit_seed(seed, rotation),
            desc=f"rotation {rotation}")
  t0 = time.perf_counter()
  pred = predict(model, res.variables, split["test"], fit_config.batch_size, task)
  return rotation_result(pred, split, scalers, task, rotation, res, predict_seconds=time.perf_counter() - t0)


def fit_seed(seed: int, rotation: int) -> int:
  """The seed of rotation `rotation`'s training run (shuffling, dropout) in a run seeded `seed`."""
  return seed * 10 + rotation


def _rotation_start(spec: DatasetSpec, config: ModelConfig, rotation: int, seed: int,
                    init_fn: InitFn | None = None) -> tuple[Any, dict[str, Any]]:
  """(module, initial variables) of `config` for rotation `rotation` of a run seeded `seed`."""
  model = build(config)
  key = jax.random.fold_in(jax.random.key(seed), rotation)
  return model, (init_fn(rotation, model) if init_fn else init_variables(model, key, spec.window))


def precompile_rotation(split: dict[str, dict[str, np.ndarray]], spec: DatasetSpec, config: ModelConfig,
                        fit_config: FitConfig, rotation: int, *, seed: int) -> None:
  """Compiles the programs `run_rotation` with these arguments will run (for `jaxbp.train.precompile.ahead`)."""
  model, variables = _rotation_start(spec, config, rotation, seed)
  precompile_fit(model, variables, split["train"], split["val"], fit_config, task=TASKS[model_name(config)],
                 seed=fit_seed(seed, rotation))


def rotation_result(pred: np.ndarray, split: dict[str, dict[str, np.ndarray]], scalers: Scalers, task: str,
                    rotation: int, res: FitResult, **info: Any) -> RotationResult:
  """The `RotationResult` of test-fold network outputs `pred` (normalized) after training record `res`."""
  sbp, dbp, extra = to_mmhg(pred, split["test"], scalers, task)
  test = split["test"]
  n = len(sbp)
  info = {"rotation": rotation, "n_train": len(split["train"]["x"]), "n_val": len(split["val"]["x"]),
          "n_test": n, "best_epoch": res.best_epoch, "epochs_run": res.epochs_run,
          "best_val_mse": res.best_val_mse, "train_seconds": res.seconds, **info, "history": res.history, **extra}
  return RotationResult(rotation, sbp, dbp, test["sbp"], test["dbp"],
                        np.full(n, split["train"]["sbp"].mean()), np.full(n, split["train"]["dbp"].mean()), info)


def pooled_report(results: Sequence[RotationResult]) -> dict[str, Any]:
  """Benchmark metrics on the concatenation of every rotation's test predictions (mmHg)."""
  cat = lambda name: np.concatenate([getattr(r, name) for r in results])
  ok = np.isfinite(cat("pred_sbp")) & np.isfinite(cat("pred_dbp"))
  report = metrics.bp_report(*(cat(n)[ok] for n in
                               ("pred_sbp", "pred_dbp", "true_sbp", "true_dbp", "naive_sbp", "naive_dbp")))
  report["n_windows"] = int(ok.size)
  report["n_excluded_no_beats"] = int((~ok).sum())
  return report


def run_crossval(folds: Sequence[Fold], spec: DatasetSpec, config: ModelConfig, fit_config: FitConfig, *,
                 seed: int = 0, rotations: Sequence[int] | None = None, workdir: str | Path | None = None,
                 init_fn: InitFn | None = None) -> dict[str, Any]:
  """Every rotation of the protocol (or `rotations`), pooled metrics and per-rotation ones. Resumable."""
  scalers = Scalers.fit(folds)
  rotations = list(range(n_rotations(spec))) if rotations is None else list(rotations)
  workdir = Path(workdir) if workdir is not None else None
  if workdir is not None:
    workdir.mkdir(parents=True, exist_ok=True)
  results = []
  for k in rotations:
    res = RotationResult.load(workdir, k) if workdir is not None else None
    if res is None:
      res = run_rotation(folds, spec, config, fit_config, k, scalers, seed=seed, init_fn=init_fn)
      if workdir is not None:
        res.save(workdir)
    results.append(res)
  model = build(config)
  params = jax.eval_shape(lambda: init_variables(model, jax.random.key(0), spec.window))["params"]
  return {
      "pooled": pooled_report(results),
      "per_rotation": [{**{k: v for k, v in r.info.items() if k != "history"},
                        "metrics": pooled_report([r])} for r in results],
      "params": count_params(params),
      "scalers": scalers_to_dict(scalers),
  }


def scalers_to_dict(scalers: Scalers) -> dict[str, Any]:
  return {name: (None if s is None else {"lo": float(s.lo), "hi": float(s.hi)})
          for name, s in (("sbp", scalers.sbp), ("dbp", scalers.dbp), ("abp", scalers.abp))}
