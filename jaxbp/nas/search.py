"""Bi-level (DARTS-style) supernet search as pure functions.

Each step: (1) one Adam step (lr 1e-3) of the network weights W on a training batch (task MSE);
(2) one Adam step (lr 1e-2) of the architecture logits α on a validation batch, loss = MSE + λ·cost(α).
λ is an array argument, so one compiled step serves every λ (and vmaps over candidates).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax

from jaxbp.cost import Cost, NetShapes
from jaxbp.models.hash_prng import init_key
from jaxbp.train.steps import batchnorm_mask, masked_mean, target_key


@dataclasses.dataclass(frozen=True)
class SearchConfig:
  """Bi-level search hyper-parameters.

  Attributes:
    weight_lr: Adam learning rate of the weights.
    arch_lr: Adam learning rate of the architecture logits.
    temperature: softmax temperature T at the start; annealed geometrically to `final_temperature`.
    final_temperature: T at the last search epoch (= temperature: no annealing).
    mode: choice mode ("soft", "gumbel", "hard", "hard_gumbel").
    ops: the alternatives offered at every slot (identity only where shapes allow), a subset of
      ("conv", "dw", "id").
  """

  weight_lr: float = 1e-3
  arch_lr: float = 1e-2
  temperature: float = 1.0
  final_temperature: float = 1.0
  mode: str = "soft"
  ops: tuple[str, ...] = ("conv", "dw", "id")

  def temperature_at(self, epoch: int, n_epochs: int) -> float:
    if n_epochs <= 1:
      return self.temperature
    frac = epoch / (n_epochs - 1)
    return self.temperature * (self.final_temperature / self.temperature) ** frac


@flax.struct.dataclass
class SearchState:
  """Weights, architecture logits, their optimizer states, BatchNorm stats and temperatures."""

  step: jax.Array
  params: Any
  arch: Any
  model_state: dict[str, Any]  # e.g. {"batch_stats": ...}
  nas_state: Any  # {"...": {"temperature": ()}} per choice layer
  opt_w: optax.OptState
  opt_a: optax.OptState

  @property
  def variables(self) -> dict[str, Any]:
    """The supernet's variables dict ("params", "arch", "nas_state" and the model state collections)."""
    return {"params": self.params, "arch": self.arch, "nas_state": self.nas_state, **self.model_state}


def optimizers(config: SearchConfig) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
  # Flattened (one fused update instead of one per leaf: fewer kernels to compile and run; same values).
  return optax.flatten(optax.adam(config.weight_lr)), optax.flatten(optax.adam(config.arch_lr))


def init_state(model: nn.Module, key: jax.Array, window: int, config: SearchConfig) -> SearchState:
  """A fresh search state for a supernet (α all zero: every alternative equally likely)."""
  k = init_key(key)  # the counter-hash generator: a fast compile (see `jaxbp.models.hash_prng`)
  variables = dict(model.init({"params": k, "dropout": k, "gumbel": k}, jnp.zeros((2, window, 1)), train=False))
  params, arch = variables.pop("params"), variables.pop("arch")
  nas_state = variables.pop("nas_state")
  tx_w, tx_a = optimizers(config)
  return SearchState(jnp.zeros((), jnp.int32), params, arch, variables, nas_state, tx_w.init(params),
                     tx_a.init(arch))


def set_temperature(state: SearchState, temperature: float | jax.Array) -> SearchState:
  nas_state = jax.tree.map(lambda t: jnp.full_like(t, temperature), state.nas_state)
  return state.replace(nas_state=nas_state)


def _apply(model, state, params, arch, x, key, train: bool, mask=None):
  variables = {"params": params, "arch": arch, "nas_state": state.nas_state, **state.model_state}
  kd, kg = jax.random.split(key)
  mutable = list(state.model_state) if train else False
  rngs = {"dropout": kd, "gumbel": kg}
  if mutable:
    if mask is None:
      return model.apply(variables, x, train=True, rngs=rngs, mutable=mutable)
    with nn.intercept_methods(batchnorm_mask(mask)):
      return model.apply(variables, x, train=True, rngs=rngs, mutable=mutable)
  return model.apply(variables, x, train=train, rngs=rngs), state.model_state


def make_search_step(model: nn.Module, shapes: NetShapes, cost: Cost, config: SearchConfig, task: str
                     ) -> Callable[..., tuple[SearchState, dict[str, jax.Array]]]:
  """`step(state, train_batch, val_batch, lam, key) -> (state, metrics)`; pure, not jitted."""
  target = target_key(task)
  tx_w, tx_a = optimizers(config)

  def step(state: SearchState, train_batch, val_batch, lam: jax.Array, key: jax.Array):
    kw, ka = jax.random.split(jax.random.fold_in(key, state.step))

    def weight_loss(params):
      out, model_state = _apply(model, state, params, state.arch, train_batch["x"], kw, True,
                                train_batch.get("mask"))
      return masked_mean(jnp.square(out - train_batch[target]), train_batch.get("mask")), model_state

    (w_loss, model_state), gw = jax.value_and_grad(weight_loss, has_aux=True)(state.params)
    upd, opt_w = tx_w.update(gw, state.opt_w, state.params)
    params = optax.apply_updates(state.params, upd)

    temperature = jax.tree.leaves(state.nas_state)[0] if jax.tree.leaves(state.nas_state) else 1.0

    def arch_loss(arch):
      out, _ = _apply(model, state.replace(model_state=model_state), params, arch, val_batch["x"], ka, True,
                      val_batch.get("mask"))
      task_loss = masked_mean(jnp.square(out - val_batch[target]), val_batch.get("mask"))
      c = cost(arch, shapes, temperature)
      return task_loss + lam * c, (task_loss, c)

    (_, (a_task, a_cost)), ga = jax.value_and_grad(arch_loss, has_aux=True)(state.arch)
    upd, opt_a = tx_a.update(ga, state.opt_a, state.arch)
    arch = optax.apply_updates(state.arch, upd)
    new = state.replace(step=state.step + 1, params=params, arch=arch, model_state=model_state,
                        opt_w=opt_w, opt_a=opt_a)
    return new, {"train_mse": w_loss, "val_mse": a_task, "cost": a_cost}

  return step
