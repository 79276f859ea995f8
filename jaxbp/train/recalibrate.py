"""BatchNorm re-estimation with dropout off (fixes the train/eval "variance shift" of dropout before BN).

Training with dropout makes every BatchNorm that follows a dropout layer learn running statistics of
dropout-scaled activations; at eval (dropout off) those statistics are wrong and the outputs are biased.
`recalibrate_batch_stats` replaces the running statistics by the exact population statistics of the
training windows, computed with dropout disabled and the parameters unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.data.batching import padded_batches
from jaxbp.train.steps import batchnorm_mask

# flax BatchNorm: ra <- momentum * ra + (1 - momentum) * batch statistic.
_BN_STATS = ("mean", "var")


def without_dropout(model: nn.Module) -> nn.Module:
  """The same network (same variables) with dropout rate 0, for models whose config has `dropout`."""
  config = getattr(model, "config", None)
  if config is None or not hasattr(config, "dropout"):
    return model
  return model.clone(config=dataclasses.replace(config, dropout=0.0))


@functools.lru_cache(maxsize=32)
def _momenta(model: nn.Module, x_shape: tuple[int, ...]) -> dict[tuple[str, ...], float]:
  """Momentum of every BatchNorm module, by its path in the "batch_stats" collection (traced once per
  model and input shape)."""
  found: dict[tuple[str, ...], float] = {}

  def interceptor(next_fun, args, kwargs, context):
    if isinstance(context.module, nn.BatchNorm) and context.method_name == "__call__":
      found[tuple(context.module.path)] = float(context.module.momentum)
    return next_fun(*args, **kwargs)

  def init(x):
    rngs = {"params": jax.random.key(0), "dropout": jax.random.key(0)}
    return model.init(rngs, x, train=True)

  with nn.intercept_methods(interceptor):
    jax.eval_shape(init, jax.ShapeDtypeStruct(x_shape, jnp.float32))
  return found


@functools.partial(jax.jit, static_argnums=0)
def _batch_stats(model: nn.Module, variables: dict[str, Any], x: jax.Array, mask: jax.Array) -> Any:
  """Running statistics after one train-mode step on the rows of `x` where `mask` is 1 (parameters untouched)."""
  with nn.intercept_methods(batchnorm_mask(mask)):
    _, new = model.apply(variables, x, train=True, mutable=["batch_stats"])
  return new["batch_stats"]


def recalibrate_batch_stats(model: nn.Module, variables: dict[str, Any], split: dict[str, np.ndarray], *,
                            batch_size: int = 256) -> dict[str, Any]:
  """Exact BatchNorm statistics over `split["x"]` with dropout off; parameters unchanged.

  Each BatchNorm normalizes with its batch statistics in train mode, so the recovered per-batch means and
  variances do not depend on the old running averages; they are averaged over batches weighted by size
  (the variance as E[var_batch], flax's biased convention). Returns new variables (same structure).
  """
  if "batch_stats" not in variables:
    return variables
  if len(split["x"]) == 0:
    raise ValueError("recalibrate_batch_stats: the split has no windows")
  model = without_dropout(model)
  momenta = _momenta(model, (1, *split["x"].shape[1:]))
  if not momenta:
    return variables
  # The averaging is host-side NumPy in float64 (eager jnp ops would compile a small program per shape).
  old = jax.tree.map(lambda x: np.asarray(x, np.float64), variables["batch_stats"])
  total = jax.tree.map(np.zeros_like, old)
  count = 0
  for batch in padded_batches(split, batch_size):  # one shape: the padding is masked out of the statistics
    n = int(batch["mask"].sum())
    new = jax.tree.map(lambda x: np.asarray(x, np.float64), _batch_stats(model, variables, batch["x"], batch["mask"]))

    def recover(path, o, nw):
      names = tuple(k.key for k in path)
      m = momenta[names[:-1]]
      return (nw - m * o) / (1.0 - m)

    stat = jax.tree_util.tree_map_with_path(recover, old, new)
    total = jax.tree.map(lambda t, s, n=n: t + n * s, total, stat)
    count += n
  return {**variables, "batch_stats": jax.tree.map(lambda t, o: (t / count).astype(o.dtype), total,
                                                   variables["batch_stats"])}


def precompile_recalibration(model: nn.Module, variables: dict[str, Any], split: dict[str, np.ndarray],
                             batch_size: int = 256) -> None:
  """Compiles what `recalibrate_batch_stats(model, variables, split, batch_size=...)` runs, without running it
  (for `jaxbp.train.precompile.ahead`)."""
  model = without_dropout(model)
  _momenta(model, (1, *split["x"].shape[1:]))
  batch = next(iter(padded_batches(split, batch_size)))
  _batch_stats.lower(model, variables, batch["x"], batch["mask"]).compile()
