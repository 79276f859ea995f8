"""Bayesian-Bits mixed-precision search as a pure step, run for many λ at once by `jaxbp.train.engine`.

Loss = task MSE + λ · E[cost] / cost(all 8 bit) (dimensionless, so λ is comparable across networks); the cost
is any `jaxbp.cost.bits` `Cost` of the joint bit probabilities: expected BOPs by default, or e.g. the expected
latency from a simulator's latency table (`jaxbp.freebits.latency_cost.bb_latency_cost`).
Weights and quantizer ranges ("params") and gate logits ("gates") are trained jointly on the training
batch (as in the Bayesian-Bits paper), each with its own Adam. λ and the PRNG key are per-candidate
arguments, so one compiled step serves every λ.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxbp.cost import bits as cost_bits
from jaxbp.cost.algebra import Cost
from jaxbp.data.batching import batches
from jaxbp.quant.convert import twin_shapes
from jaxbp.quant.readoff import bit_joints
from jaxbp.quant.twin import QuantTwin
from jaxbp.train.engine import Engine, EngineConfig
from jaxbp.train.steps import target_key
from jaxbp.train.steps import task_loss as loss_of


@dataclasses.dataclass(frozen=True)
class BBSearchConfig:
  """Search hyper-parameters.

  Attributes:
    weight_lr: Adam learning rate of weights and quantizer ranges.
    gate_lr: Adam learning rate of the gate logits.
    epochs: passes over the training split.
    batch_size: training batch size.
  """

  weight_lr: float = 1e-4
  gate_lr: float = 0.05
  epochs: int = 20
  batch_size: int = 32


@flax.struct.dataclass
class BBState:
  step: jax.Array
  params: Any
  gates: Any
  opt_w: optax.OptState
  opt_g: optax.OptState


def _optimizers(config: BBSearchConfig):
  return optax.adam(config.weight_lr), optax.adam(config.gate_lr)


def init_state(variables: dict[str, Any], config: BBSearchConfig) -> BBState:
  """Search state from twin variables ({"params", "gates"})."""
  tx_w, tx_g = _optimizers(config)
  params, gates = variables["params"], variables["gates"]
  return BBState(jnp.zeros((), jnp.int32), params, gates, tx_w.init(params), tx_g.init(gates))


def reference_cost(cost: Cost, shapes: cost_bits.BitShapes) -> float:
  """`cost` with every layer at its widest widths (the normalizer of the regularizer)."""
  return float(cost(cost_bits.one_hot_joints(shapes, {l.name: (max(l.in_bits), max(l.w_bits))
                                                      for l in shapes.layers}), shapes))


def make_step(tw: QuantTwin, shapes: cost_bits.BitShapes, config: BBSearchConfig, task: str = "regression",
              cost: Cost | None = None) -> Callable[..., tuple[BBState, dict[str, jax.Array]]]:
  """`step(state, batch, lam, key) -> (state, metrics)`; pure, not jitted. `cost` defaults to expected BOPs."""
  target = target_key(task)
  tx_w, tx_g = _optimizers(config)
  cost = cost if cost is not None else cost_bits.bops()
  ref = reference_cost(cost, shapes)
  if not ref > 0:
    raise ValueError(f"Bayesian-Bits cost {cost.name!r} is {ref} at full precision; expected > 0")

  def step(state: BBState, batch, lam: jax.Array, key: jax.Array):
    kd, kg = jax.random.split(jax.random.fold_in(key, state.step))

    def loss_fn(params, gates):
      out = tw.apply({"params": params, "gates": gates}, batch["x"], train=True, rngs={"dropout": kd, "gates": kg})
      task_loss = loss_of(task, out, batch[target])  # MSE, or cross-entropy for classification
      rel = cost(bit_joints(tw, gates), shapes) / ref
      return task_loss + lam * rel, (task_loss, rel)

    (_, (task_loss, rel)), (gw, gg) = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)(
        state.params, state.gates)
    uw, opt_w = tx_w.update(gw, state.opt_w, state.params)
    ug, opt_g = tx_g.update(gg, state.opt_g, state.gates)
    new = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, uw),
                        gates=optax.apply_updates(state.gates, ug), opt_w=opt_w, opt_g=opt_g)
    return new, {"mse": task_loss, "rel_cost": rel}

  return step


def search(tw: QuantTwin, variables: dict[str, Any], train: dict[str, np.ndarray], lambdas: tuple[float, ...],
           shapes: cost_bits.BitShapes, config: BBSearchConfig, *, engine: EngineConfig = EngineConfig(),
           seed: int = 0, task: str = "regression", progress: Callable[[dict[str, Any]], None] | None = None,
           cost: Cost | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
  """Searches one candidate per λ from the same start; returns (final variables per λ, history per epoch).

  `cost`: the regularizer (default expected BOPs), normalized by its full-precision value."""
  n = len(lambdas)
  if len(train["x"]) < config.batch_size:
    raise ValueError(f"training split has {len(train['x'])} windows, fewer than one batch of {config.batch_size}")
  final, history = run_lambdas(Engine(make_step(tw, shapes, config, task, cost), n, engine, n_shared=1),
                               init_state(variables, config), lambdas, train, epochs=config.epochs,
                               batch_size=config.batch_size, seed=seed, progress=progress)
  take = lambda tree, i: jax.tree.map(lambda x: x[i], tree)
  return [{"params": take(final.params, i), "gates": take(final.gates, i)} for i in range(n)], history


def start_variables(tw: QuantTwin, params: dict[str, Any], window: int) -> dict[str, Any]:
  """Bayesian-Bits twin variables from (e.g. int8-QAT) twin params: the same params, gates at their init."""
  shapes = twin_shapes(tw, window)
  init = tw.policy.bayesian_bits.init_log_alpha
  gates = {name: {"log_alpha": jnp.full(sub["log_alpha"].shape, init, jnp.float32)}
           for name, sub in shapes.get("gates", {}).items()}
  want = jax.tree.map(lambda s: s.shape, shapes["params"])
  have = jax.tree.map(np.shape, params)
  if want != have:
    raise ValueError("start_variables: params do not match the twin's structure (a different config or policy?)")
  return {"params": jax.tree.map(jnp.asarray, params), "gates": gates}


def _cycle_batches(split: Mapping[str, np.ndarray], batch_size: int, seed: int):
  """Full batches of `split` forever (reshuffled each pass)."""
  if len(next(iter(split.values()))) < batch_size:
    raise ValueError(f"validation split has {len(next(iter(split.values())))} windows, fewer than one batch of "
                     f"{batch_size}")
  while True:
    yield from batches(split, batch_size, seed=seed, drop_remainder=True)
    seed += 1


def run_lambdas(engine: Engine, state: Any, lambdas: Sequence[float], train: Mapping[str, np.ndarray], *,
                epochs: int, batch_size: int, seed: int, progress: Callable[[dict[str, Any]], None] | None = None,
                val: Mapping[str, np.ndarray] | None = None) -> tuple[Any, list[dict[str, Any]]]:
  """One candidate per λ from the same start `state`, all at once on `engine` (a step(state, batch, λ, key), or
  with `val` a bilevel step(state, batch, val_batch, λ, key): each training batch paired with the next batch of
  the cycled validation split); full batches only (one compiled step shape). Candidate i's key is
  fold_in(key(seed), i). Returns (the final stacked states as host arrays, one record of mean metrics per epoch)."""
  n = len(lambdas)
  stacked = jax.tree.map(lambda x: np.broadcast_to(np.asarray(x), (n,) + np.shape(x)).copy(), state)
  groups = engine.groups(stacked)
  keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(seed), i))(np.arange(n))
  lams = np.asarray(lambdas, np.float32)
  history = []
  for epoch in range(epochs):
    metrics = []
    vals = None if val is None else _cycle_batches(val, batch_size, seed * 100_003 + epoch + 50_000)
    for batch in batches(train, batch_size, seed=seed * 100_003 + epoch, drop_remainder=True):
      groups, m = engine.step(groups, (batch,) if vals is None else (batch, next(vals)), (lams, keys))
      metrics.append(m)
    m = jax.device_get(jax.tree.map(lambda *xs: np.mean(np.stack(xs), axis=0), *metrics))
    record = {"epoch": epoch + 1, **{k: np.asarray(v).tolist() for k, v in m.items()}}
    history.append(record)
    if progress is not None:
      progress(record)
  return engine.stacked(groups), history
