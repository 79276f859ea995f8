"""Initialising a network and counting its parameters."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def init_variables(model: nn.Module, key: jax.Array, window: int, batch: int = 2) -> dict[str, Any]:
  """Variables {"params", maybe "batch_stats", ...} of `model` for (batch, window, 1) inputs."""
  return model.init({"params": key, "dropout": key}, jnp.zeros((batch, window, 1), jnp.float32), train=False)


def count_params(params: Any) -> int:
  """Number of trainable scalars in a params pytree (PyTorch's `sum(p.numel())`)."""
  return int(sum(np.prod(np.shape(p)) for p in jax.tree.leaves(params)))
