"""Activation-range calibration: set every learned quantizer range from a float pass over data."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.quant.twin import QuantTwin


def collect_ranges(tw: QuantTwin, variables: dict[str, Any], inputs: Iterable[np.ndarray]) -> dict[str, float]:
  """{node name: mean over batches of the 99.99th percentile of |x| at its output quantizer (float pass)}."""
  fn = jax.jit(lambda v, x: tw.apply(v, x, train=False, mutable=["calibration"])[1]["calibration"])
  variables = {k: v for k, v in variables.items() if k in ("params", "gates")}
  sums: dict[str, float] = {}
  count = 0
  for x in inputs:
    cal = jax.device_get(fn(variables, jnp.asarray(x)))
    for name, rec in cal.items():
      sums[name] = sums.get(name, 0.0) + float(rec["q"]["range"])
    count += 1
  if not count:
    raise ValueError("calibrate: no calibration batches")
  return {k: v / count for k, v in sums.items()}


def set_ranges(tw: QuantTwin, variables: dict[str, Any], ranges: dict[str, float]) -> dict[str, Any]:
  """Variables with each quantizer's α (PACT) or log2 t (TQT) set to the given range."""
  params = {k: dict(v) for k, v in variables["params"].items()}
  for name, r in ranges.items():
    if name not in params or "q" not in params[name]:
      raise KeyError(f"calibrate: node {name!r} has no learned quantizer range in the twin's params")
    q = dict(params[name]["q"])
    r = max(float(r), 1e-6)
    if "alpha" in q:
      q["alpha"] = jnp.float32(r)
    else:
      q["log2_t"] = jnp.float32(np.log2(r))
    params[name]["q"] = q
  return {**variables, "params": params}


def calibrate(tw: QuantTwin, variables: dict[str, Any], inputs: Iterable[np.ndarray]) -> dict[str, Any]:
  """`set_ranges(collect_ranges(...))`: ranges from a float pass over `inputs` ((B, L, 1) batches)."""
  return set_ranges(tw, variables, collect_ranges(tw, variables, inputs))
