"""Initialising a network and counting its parameters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.models.hash_prng import init_key


def example_shape(window: int | Sequence[int]) -> tuple[int, ...]:
  """One example's input shape: an int `window` is a 1-D signal (window, 1); a sequence is the shape itself
  (e.g. (H, W, 3) images)."""
  return (int(window), 1) if isinstance(window, (int, np.integer)) else tuple(int(d) for d in window)


def init_variables(model: nn.Module, key: jax.Array, window: int | Sequence[int], batch: int = 2) -> dict[str, Any]:
  """Variables {"params", maybe "batch_stats", ...} of `model` for (batch, *example_shape(window)) inputs.

  The initializers draw from `key`'s words through the counter-hash generator (`jaxbp.models.hash_prng`):
  Threefry made this program several times slower to compile; the values are as random, just different."""
  x = jnp.zeros((batch, *example_shape(window)), jnp.float32)
  k = init_key(key)
  return model.init({"params": k, "dropout": k}, x, train=False)


def count_params(params: Any) -> int:
  """Number of trainable scalars in a params pytree (PyTorch's `sum(p.numel())`)."""
  return int(sum(np.prod(np.shape(p)) for p in jax.tree.leaves(params)))
