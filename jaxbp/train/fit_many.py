"""The benchmark's protocol for N candidates at once, on the engine: one program for all of them.

`fit_many` is `fit` for a stack of candidates that share a module (e.g. exported architectures as the supernet
with frozen one-hot choices, `jaxbp.nas.choice` mode "frozen"): the same batches (seeded by (seed, epoch)),
the same dropout keys `fold_in(key(seed), step)`, validation every `val_every` epochs, early stopping after
`patience` validations without improvement and the best weights restored, per candidate. A stopped candidate
is masked (the loop skips it, a vmapped chunk keeps its state), never retraced. Each candidate's result equals
`fit` of that candidate alone, to float rounding.
"""

from __future__ import annotations

import time
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from jaxbp.data.batching import num_batches, padded_batches
from jaxbp.train import programs
from jaxbp.train.engine import Engine, EngineConfig, resolve_auto, step_chunks, valid_steps
from jaxbp.train.fit import FitConfig, FitResult, optimizer, train_batches
from jaxbp.train.recalibrate import precompile_recalibration, recalibrate_batch_stats
from jaxbp.train.state import TrainState, create_state
from jaxbp.train.steps import make_eval_step, make_train_step


def _train_fn(model: nn.Module, tx: optax.GradientTransformation, tx_key: Any, task: str):
  """`step(state, batch, key)`: every candidate gets the same batch and dropout key (shared arguments), as in
  `fit` with the same seed."""
  return programs.cached_function(("train_fn", model, tx_key, task), lambda: make_train_step(model, tx, task))


def _eval_fn(model: nn.Module, task: str, with_pred: bool):
  """An engine step over a TrainState that leaves it unchanged: metrics (sse, n) (and pred)."""

  def build():
    ev = make_eval_step(model, task)

    def step(state: TrainState, batch):
      pred, sse, n = ev(state.variables, batch)
      return state, ((pred, sse, n) if with_pred else (sse, n))

    return step

  return programs.cached_function(("eval_fn", model, task, with_pred), build)


def init_states(stacked_variables: dict[str, Any], tx: optax.GradientTransformation) -> TrainState:
  """Stacked (N, ...) TrainStates from stacked variables (host arrays)."""
  # One program per optimizer (eagerly, every leaf's zeros/broadcasts compiled a small program of its own).
  init = programs.cached_jit(("init_states", tx), lambda: jax.vmap(lambda v: create_state(v, tx)))
  return jax.device_get(init(stacked_variables))


def step_keys(key: jax.Array, start: int, k: int) -> jax.Array:
  """The dropout keys fold_in(key, step) of steps start … start+k-1, (k,), in one compiled program."""
  fold = programs.cached_jit(("step_keys", k), lambda: lambda key, start: jax.vmap(
      lambda i: jax.random.fold_in(key, i))(start + jnp.arange(k, dtype=jnp.uint32)))
  return fold(key, np.uint32(start))


def eval_steps(config: EngineConfig, split: dict[str, np.ndarray], batch_size: int) -> int:
  """Steps per `Engine.run` call when evaluating `split` (its padded batches)."""
  return config.steps_for(num_batches(len(split["x"]), batch_size))


def _eval_outputs(engine: Engine, groups, split: dict[str, np.ndarray], batch_size: int, k: int,
                  active: np.ndarray | None = None):
  """(pred, sse, n), each (N, batches, ...) on the host, over `split`'s padded batches, `k` per call."""
  outs, valids = [], []
  for valid, batches in step_chunks(((b,) for b in padded_batches(split, batch_size)), k):
    outs.append(engine.run(groups, (valid, batches), (), active)[1])
    valids.append(valid)
  return valid_steps(outs, valids)


def evaluate_many(engine: Engine, groups, split: dict[str, np.ndarray], batch_size: int,
                  active: np.ndarray | None = None, k: int = 1) -> np.ndarray:
  """Per-candidate mean squared error (N,) over `split` (NaN for inactive candidates); `k` batches per call."""
  _, sse, count = _eval_outputs(engine, groups, split, batch_size, k, active)
  return np.sum(sse.astype(np.float64), axis=1) / np.sum(count.astype(np.float64), axis=1)


def predict_many(model: nn.Module, stacked_variables: dict[str, Any], split: dict[str, np.ndarray],
                 batch_size: int, task: str, engine: EngineConfig = EngineConfig(strategy="vmap")) -> np.ndarray:
  """Eval-mode outputs (N_candidates, N_windows, ...) of every candidate for every window of `split`."""
  n = jax.tree.leaves(stacked_variables)[0].shape[0]
  # States shaped as `fit_many`'s (Adam's state included), so the eval program compiled for validation is reused.
  states = init_states(stacked_variables, optimizer(FitConfig())[0])
  if engine.strategy == "auto":
    engine = EngineConfig("vmap", engine.chunk_size, engine.devices, engine.memory_limit)
  eng = Engine(_eval_fn(model, task, True), n, engine, n_shared=1, donate=False)
  pred, _, _ = _eval_outputs(eng, eng.groups(states), split, batch_size, eval_steps(engine, split, batch_size))
  mask = np.concatenate([b["mask"] for b in padded_batches(split, batch_size)]) > 0
  return pred.reshape(n, -1, *pred.shape[3:])[:, mask]  # (N, batches, B, ...) -> real windows


def _recalibrated(model: nn.Module, host: TrainState, active: np.ndarray, train: dict[str, np.ndarray],
                  batch_size: int) -> TrainState:
  """Host states whose active candidates' BatchNorm statistics are re-estimated on `train` with dropout off
  (`recalibrate_batch_stats`, as `fit` does before each validation); training continues from the originals."""
  cands = [jax.tree.map(lambda x, i=i: x[i], host.variables) for i in range(len(active))]
  if "batch_stats" not in host.model_state:
    return host
  cands = [recalibrate_batch_stats(model, v, train, batch_size=batch_size) if a else v
           for v, a in zip(cands, active)]
  stats = jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *[v["batch_stats"] for v in cands])
  return host.replace(model_state={**host.model_state, "batch_stats": stats})


def _engines(model: nn.Module, stacked_variables: dict[str, Any], train: dict[str, np.ndarray], config: FitConfig,
             task: str, seed: int, engine: EngineConfig) -> tuple[Engine, Engine, TrainState, jax.Array, tuple, dict]:
  """(train engine, eval engine, stacked initial states, the dropout base key, the probe step's shared arguments
  (first batch, key), the engine record) of `fit_many`."""
  n = jax.tree.leaves(stacked_variables)[0].shape[0]
  tx, tx_key = optimizer(config)
  train_fn = _train_fn(model, tx, tx_key, task)
  states = init_states(stacked_variables, tx)
  key = jax.random.key(seed)
  probe = next(iter(train_batches(train, config.batch_size, seed * 100_003 + 1, stacked_variables)))
  probe_key = jax.random.fold_in(key, 0)
  k = engine.steps_for(num_batches(len(train["x"]), config.batch_size))
  engine_config, why = resolve_auto(train_fn, n, states, (probe, probe_key), (), engine, n_shared=2, scan_steps=k)
  eng = Engine(train_fn, n, engine_config, n_shared=2)
  # One eval program (with predictions) serves validation and the test predictions (`predict_many`).
  ev = Engine(_eval_fn(model, task, True), n, engine_config, n_shared=1, donate=False)
  return eng, ev, states, key, (probe, probe_key), {**why, "strategy": engine_config.strategy, "steps_per_call": k}


def precompile_many(model: nn.Module, stacked_variables: dict[str, Any], train: dict[str, np.ndarray],
                    val: dict[str, np.ndarray], config: FitConfig, *, task: str, seed: int,
                    engine: EngineConfig = EngineConfig()) -> None:
  """Compiles the programs `fit_many` (and `predict_many`) will run for these arguments, without training:
  call it ahead (e.g. `jaxbp.train.precompile.ahead`) with variables of the right structure and shapes (values
  are irrelevant); the later call then finds them compiled. Memory planning and strategy choice run as there."""
  eng, ev, states, key, probe, why = _engines(model, stacked_variables, train, config, task, seed, engine)
  eng.lower(states, probe, (), why["steps_per_call"]).compile()
  step_keys(key, 0, why["steps_per_call"])
  ev.lower(states, (next(iter(padded_batches(val, config.batch_size))),), (),
           eval_steps(engine, val, config.batch_size)).compile()
  if config.recalibrate_bn and "batch_stats" in states.model_state:
    precompile_recalibration(model, jax.tree.map(lambda x: x[0], states.variables), train, config.batch_size)


def fit_many(model: nn.Module, stacked_variables: dict[str, Any], train: dict[str, np.ndarray],
             val: dict[str, np.ndarray], config: FitConfig, *, task: str, seed: int,
             engine: EngineConfig = EngineConfig(), desc: str = "train") -> tuple[list[FitResult], dict[str, Any]]:
  """Trains N stacked candidates (leading axis of every leaf of `stacked_variables`) under the protocol.

  Returns (one `FitResult` per candidate with its best variables as host arrays, the engine record: strategy,
  why, memory plan). "auto" is `jaxbp.train.engine.auto_strategy` (loop on CPU), "measure" times both.
  """
  n = jax.tree.leaves(stacked_variables)[0].shape[0]
  eng, ev, states, key, _, why = _engines(model, stacked_variables, train, config, task, seed, engine)
  k, k_val = why["steps_per_call"], eval_steps(engine, val, config.batch_size)
  groups = eng.groups(states)
  active = np.ones(n, bool)
  best_mse, best_epoch, bad = np.full(n, np.inf), np.zeros(n, int), np.zeros(n, int)
  best_vars: list[Any] = [None] * n
  history: list[list[dict[str, float]]] = [[] for _ in range(n)]
  epochs_run = np.zeros(n, int)
  start, step = time.perf_counter(), 0
  bar = tqdm(range(1, config.max_epochs + 1), desc=desc, disable=not config.progress, leave=False)
  for epoch in bar:
    losses, valids = [], []
    for valid, batches in step_chunks(((b,) for b in train_batches(
        train, config.batch_size, seed * 100_003 + epoch, stacked_variables)), k):
      groups, loss = eng.run(groups, (valid, batches, step_keys(key, step, k)), (), active)
      losses.append(loss)
      valids.append(valid)
      step += int(valid.sum())
    losses = np.mean(valid_steps(losses, valids), axis=1)
    epochs_run[active] = epoch
    records = [{"epoch": epoch, "train_mse": float(losses[i])} for i in range(n)]
    if epoch % config.val_every == 0 or epoch == config.max_epochs:
      if config.recalibrate_bn:  # validate (and keep) each active candidate with exact dropout-off BN statistics
        host = _recalibrated(model, eng.stacked(groups), active, train, config.batch_size)
        val_mse = evaluate_many(ev, ev.groups(host), val, config.batch_size, active, k_val)
      else:
        host = None
        val_mse = evaluate_many(ev, groups, val, config.batch_size, active, k_val)
      improved = active & (val_mse < best_mse)
      better = np.flatnonzero(improved)
      if host is not None:  # recalibrated statistics: the host copy holds the weights that were validated
        for i in better:
          best_vars[i] = jax.tree.map(lambda x, i=i: x[i], host.variables)
      else:  # only the improved candidates' variables leave the device (not their optimizer states)
        for i, v in zip(better, eng.fetch(groups, list(better), lambda s: s.variables)):
          best_vars[i] = v
      best_mse = np.where(improved, val_mse, best_mse)
      best_epoch = np.where(improved, epoch, best_epoch)
      bad = np.where(improved, 0, np.where(active, bad + 1, bad))
      for i in np.flatnonzero(active):
        records[i]["val_mse"] = float(val_mse[i])
      bar.set_postfix(active=int(active.sum()), val=f"{np.nanmin(val_mse):.4f}")
    for i in np.flatnonzero(active):
      history[i].append(records[i])
    active = active & (bad < config.patience)
    if not active.any():
      break
  bar.close()
  seconds = time.perf_counter() - start
  if any(v is None for v in best_vars):  # never validated (max_epochs 0): the initial variables.
    best_vars = [v if v is not None else jax.tree.map(lambda x, i=i: np.asarray(x[i]), stacked_variables)
                 for i, v in enumerate(best_vars)]
  results = [FitResult(variables=best_vars[i], best_epoch=int(best_epoch[i]), best_val_mse=float(best_mse[i]),
                       epochs_run=int(epochs_run[i]), history=history[i], seconds=seconds) for i in range(n)]
  return results, why
