"""One fold rotation of the QAT flow, built on `jaxbp.train.fit`: float training → BN folding/conversion →
calibration (post-training quantization) → quantization-aware fine-tuning → predictions in mmHg.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import flax.serialization
import jax
import numpy as np
import optax

from jaxbp.data.batching import batches
from jaxbp.data.protocol import Scalers
from jaxbp.models import ModelConfig, build, init_variables
from jaxbp.models.configs import TASKS, model_name
from jaxbp.quant.calibrate import calibrate
from jaxbp.quant.convert import from_float
from jaxbp.quant.policy import QuantConfig
from jaxbp.quant.quantizers import tqt_normed_update
from jaxbp.quant.twin import QuantTwin, twin
from jaxbp.train.crossval import RotationResult, to_mmhg
from jaxbp.train.fit import FitConfig, FitResult, fit, predict


def task_of(config: ModelConfig) -> str:
  return TASKS[model_name(config)]


def train_float(config: ModelConfig, split: dict[str, Any], fit_config: FitConfig, *, seed: int, rotation: int
                ) -> tuple[dict[str, Any], FitResult]:
  """The float network trained under the benchmark's protocol on one rotation (best-val variables)."""
  model = build(config)
  key = jax.random.fold_in(jax.random.key(seed), rotation)
  window = split["train"]["x"].shape[1]
  variables = jax.jit(lambda k: init_variables(model, k, window))(key)
  res = fit(model, variables, split["train"], split["val"], fit_config, task=task_of(config),
            seed=seed * 10 + rotation, desc=f"float rotation {rotation}")
  return res.variables, res


def quantize(config: ModelConfig, float_variables: dict[str, Any], train: dict[str, np.ndarray],
             policy: QuantConfig = QuantConfig(), *, calibration_batches: int = 8, batch_size: int = 32,
             seed: int = 0) -> tuple[QuantTwin, dict[str, Any]]:
  """The twin with folded float weights and activation ranges calibrated on training batches."""
  tw = twin(config, policy)
  variables = from_float(tw, float_variables, train["x"].shape[1])
  xs = [b["x"] for _, b in zip(range(calibration_batches), batches(train, batch_size, seed=seed))]
  return tw, floor_ranges(calibrate(tw, variables, xs))


# Activations are O(1) here (z-scored inputs, min-max scaled targets): a smaller calibrated range is a dead
# ReLU, whose grid would make the integer requant multiplier overflow int32 (and PACT can push α below 0).
MIN_RANGE = 1e-2


def floor_ranges(variables: dict[str, Any], floor: float = MIN_RANGE) -> dict[str, Any]:
  """Every quantizer's PACT α (or TQT 2^log2_t) raised to at least `floor`; unchanged elsewhere."""
  def fix(path, x):
    if len(path) < 2 or getattr(path[-2], "key", None) != "q":
      return x
    key = getattr(path[-1], "key", None)
    if key == "alpha":
      return jax.numpy.maximum(x, floor)
    if key == "log2_t":
      return jax.numpy.maximum(x, np.log2(floor))
    return x
  return {**variables, "params": jax.tree_util.tree_map_with_path(fix, variables["params"])}


def qat_optimizer(params: dict[str, Any], learning_rate: float, threshold_lr: float | None = None
                  ) -> optax.GradientTransformation:
  """Adam for everything; with `threshold_lr`, TQT log2 thresholds get TQT's normalized update instead."""
  if threshold_lr is None:
    return optax.adam(learning_rate)
  labels = jax.tree_util.tree_map_with_path(lambda p, _: "tqt" if p[-1].key == "log2_t" else "adam", params)
  return optax.multi_transform({"adam": optax.adam(learning_rate), "tqt": tqt_normed_update(threshold_lr)}, labels)


def qat(tw: QuantTwin, variables: dict[str, Any], split: dict[str, Any], fit_config: FitConfig, *, task: str,
        seed: int, rotation: int, threshold_lr: float | None = None) -> tuple[dict[str, Any], FitResult]:
  """Quantization-aware fine-tuning of the twin under the protocol (validation, early stopping, best restored).

  With `threshold_lr` (TQT policies), log2 thresholds are trained with `tqt_normed_update(threshold_lr)`.
  """
  tx = qat_optimizer(variables["params"], fit_config.learning_rate, threshold_lr)
  res = fit(tw, variables, split["train"], split["val"], fit_config, task=task, seed=seed * 10 + rotation + 7,
            desc=f"QAT rotation {rotation}", tx=tx, tx_key=("qat", fit_config.learning_rate, threshold_lr))
  return floor_ranges(res.variables), res


def rotation_result(model, variables: dict[str, Any], split: dict[str, Any], scalers: Scalers, *, task: str,
                    rotation: int, batch_size: int, info: dict[str, Any]) -> RotationResult:
  """Test-fold predictions (mmHg) of `model` as a `RotationResult` (pooled by `crossval.pooled_report`)."""
  t0 = time.perf_counter()
  pred = predict(model, variables, split["test"], batch_size, task)
  sbp, dbp, extra = to_mmhg(pred, split["test"], scalers, task)
  n = len(sbp)
  info = {**info, "rotation": rotation, "n_test": n, "predict_seconds": time.perf_counter() - t0, **extra}
  return RotationResult(rotation, sbp, dbp, split["test"]["sbp"], split["test"]["dbp"],
                        np.full(n, split["train"]["sbp"].mean()), np.full(n, split["train"]["dbp"].mean()), info)


def save_variables(path: str | Path, variables: dict[str, Any]) -> None:
  Path(path).write_bytes(flax.serialization.msgpack_serialize(jax.device_get(variables)))


def load_variables(path: str | Path) -> dict[str, Any]:
  return flax.serialization.msgpack_restore(Path(path).read_bytes())
