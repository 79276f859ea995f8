"""Training state as a plain pytree."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import optax


@flax.struct.dataclass
class TrainState:
  """Everything a pure train step reads and returns.

  Attributes:
    step: number of optimizer steps taken (int32 scalar).
    params: trainable parameters.
    model_state: the other variable collections (e.g. {"batch_stats": ...}); {} if none.
    opt_state: optax state of `params`.
  """

  step: jax.Array
  params: Any
  model_state: dict[str, Any]
  opt_state: optax.OptState

  @property
  def variables(self) -> dict[str, Any]:
    """The variables dict `model.apply` takes."""
    return {"params": self.params, **self.model_state}


def create_state(variables: dict[str, Any], tx: optax.GradientTransformation) -> TrainState:
  """A fresh state from initialised `variables` and an optimizer."""
  variables = dict(variables)
  params = variables.pop("params")
  return TrainState(step=jax.numpy.zeros((), jax.numpy.int32), params=params, model_state=variables,
                    opt_state=tx.init(params))
