"""Pure, jit-able train and eval steps for the two tasks (scalar regression and sig2sig).

A batch is a dict of arrays: "x" (B, L, 1) z-scored PPG, and the target: "y" (B, 2) min-max scaled
[SBP, DBP] for regression, "abp" (B, L, 1) scaled ABP for sig2sig. Losses are MSE on normalized targets.
Classification: "x" (B, H, W, C) images, "y" (B,) integer labels, softmax cross-entropy on the logits.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxbp.train.state import TrainState

TARGETS = {"regression": "y", "sig2sig": "abp", "classification": "y"}


def target_key(task: str) -> str:
  if task not in TARGETS:
    raise ValueError(f"unknown task {task!r}; expected one of {sorted(TARGETS)}")
  return TARGETS[task]


def batchnorm_mask(mask: jax.Array):
  """A method interceptor passing the (B,) row mask to every `nn.BatchNorm` call (statistics of real rows)."""

  def interceptor(next_fun, args, kwargs, context):
    if isinstance(context.module, nn.BatchNorm) and context.method_name == "__call__" and args:
      x = args[0]
      kwargs = {**kwargs, "mask": mask.astype(bool).reshape(mask.shape + (1,) * (x.ndim - 1))}
    return next_fun(*args, **kwargs)

  return interceptor


def apply_model(model: nn.Module, variables: dict[str, Any], x: jax.Array, *, train: bool,
                key: jax.Array | None = None, mask: jax.Array | None = None) -> tuple[jax.Array, dict[str, Any]]:
  """Runs `model`; returns (output, updated non-param collections). Explicit dropout key when training (and a
  "gates" key derived from it, for Bayesian-Bits twins trained at their current gates, e.g. hand-set bits).
  With a (B,) `mask` in training, BatchNorm statistics are those of the rows where mask is 1 (padding ignored)."""
  mutable = [k for k in variables if k != "params"] if train else False
  rngs = {"dropout": key, "gates": jax.random.fold_in(key, 1)} if key is not None else {}
  if mutable:
    if mask is not None:
      with nn.intercept_methods(batchnorm_mask(mask)):
        out, new_state = model.apply(variables, x, train=train, rngs=rngs, mutable=mutable)
    else:
      out, new_state = model.apply(variables, x, train=train, rngs=rngs, mutable=mutable)
    return out, dict(new_state)
  out = model.apply(variables, x, train=train, rngs=rngs)
  return out, {k: v for k, v in variables.items() if k != "params"}


def masked_mean(values: jax.Array, mask: jax.Array | None) -> jax.Array:
  """Mean of `values` (B, ...) over the rows where `mask` (B,) is 1 (all rows if mask is None)."""
  if mask is None:
    return jnp.mean(values)
  w = mask.reshape(mask.shape + (1,) * (values.ndim - 1)).astype(values.dtype)
  per_row = values[0].size if values.ndim > 1 else 1
  return jnp.sum(values * w) / (jnp.sum(w) * per_row)


def mse(pred: jax.Array, target: jax.Array) -> jax.Array:
  return jnp.mean(jnp.square(pred - target))


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Per-example softmax cross-entropy: logits (B, K), integer labels (B,) -> (B,)."""
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels.astype(jnp.int32))


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Fraction of examples whose argmax logit is the label."""
  return jnp.mean(jnp.argmax(logits, axis=-1) == labels)


def task_loss(task: str, out: jax.Array, target: jax.Array, mask: jax.Array | None = None) -> jax.Array:
  """The task's training loss over the real rows: MSE, or mean cross-entropy for "classification"."""
  if task == "classification":
    return masked_mean(cross_entropy(out, target), mask)
  return masked_mean(jnp.square(out - target), mask)


def make_train_step(model: nn.Module, tx: optax.GradientTransformation, task: str
                    ) -> Callable[[TrainState, dict[str, jax.Array], jax.Array], tuple[TrainState, jax.Array]]:
  """`step(state, batch, key) -> (state, loss)`: one Adam step on MSE, BatchNorm stats updated. Not jitted."""
  target = target_key(task)

  def step(state: TrainState, batch: dict[str, jax.Array], key: jax.Array):
    def loss_fn(params):
      out, model_state = apply_model(model, {"params": params, **state.model_state}, batch["x"],
                                     train=True, key=key, mask=batch.get("mask"))
      return task_loss(task, out, batch[target], batch.get("mask")), model_state

    (loss, model_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return state.replace(step=state.step + 1, params=params, model_state=model_state,
                         opt_state=opt_state), loss

  return step


def make_eval_step(model: nn.Module, task: str) -> Callable[[dict[str, Any], dict[str, jax.Array]], jax.Array]:
  """`eval_step(variables, batch) -> (pred, sum of squared errors, number of target elements)`. Not jitted.
  Classification: (logits, sum of cross-entropies, number of examples). Rows where a batch's "mask" is 0
  (padding) count nowhere."""
  target = target_key(task)

  def eval_step(variables, batch):
    out, _ = apply_model(model, variables, batch["x"], train=False)
    mask = batch.get("mask")
    rows = jnp.asarray(out.shape[0], jnp.float32) if mask is None else jnp.sum(mask)
    if task == "classification":
      err = cross_entropy(out, batch[target])
      return out, jnp.sum(err if mask is None else err * mask), rows
    err = jnp.square(out - batch[target])
    if mask is not None:
      err = err * mask.reshape(mask.shape + (1,) * (err.ndim - 1))
    return out, jnp.sum(err), rows * (batch[target][0].size)

  return eval_step
