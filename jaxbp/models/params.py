"""Initialising a network and counting its parameters."""

from __future__ import annotations

import functools
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
  Threefry made this program several times slower to compile; the values are as random, just different.
  One compiled program per (model, input shape): run eagerly, its hundreds of small ops compiled one by one
  (~10 s for the ResNet1d seed)."""
  return _init(model, key, (batch, *example_shape(window)))


@functools.partial(jax.jit, static_argnums=(0, 2))
def _init(model: nn.Module, key: jax.Array, shape: tuple[int, ...]) -> dict[str, Any]:
  k = init_key(key)
  return model.init({"params": k, "dropout": k}, jnp.zeros(shape, jnp.float32), train=False)


def count_params(params: Any) -> int:
  """Number of trainable scalars in a params pytree (PyTorch's `sum(p.numel())`)."""
  return int(sum(np.prod(np.shape(p)) for p in jax.tree.leaves(params)))
