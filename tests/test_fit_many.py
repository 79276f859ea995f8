"""Compile once per program, one batch shape, and N candidates fine-tuned together equal to one by one."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tests.conftest import TINY_RESNET, TINY_WINDOW
from jaxbp import cost
from jaxbp.data.batching import batches, padded_batches
from jaxbp.models import build, init_variables
from jaxbp.nas.supernet import export, supernet
from jaxbp.train import programs
from jaxbp.train.engine import EngineConfig, stack
from jaxbp.train.fit import FitConfig, eval_program, fit, optimizer, predict, train_program
from jaxbp.train.fit_many import fit_many, predict_many
from jaxbp.train.memory import MemoryBudgetError, parse_size
from jaxbp.train.state import create_state

L = TINY_WINDOW


@pytest.fixture(scope="module")
def data(tiny_regression_data):
  return tiny_regression_data


def test_padded_batches_have_one_shape_and_a_mask():
  split = {"x": np.arange(10, dtype=np.float32)[:, None], "name": np.array(["a"] * 10)}
  out = list(padded_batches(split, 4, seed=1))
  assert [b["x"].shape for b in out] == [(4, 1)] * 3
  assert [b["mask"].sum() for b in out] == [4, 4, 2]
  plain = np.concatenate([b["x"] for b in batches(split, 4, seed=1)])
  np.testing.assert_array_equal(np.concatenate([b["x"][b["mask"] > 0] for b in out]), plain)


def test_padded_last_batch_gives_the_unpadded_loss_gradient_and_batch_stats(data):
  train, _ = data
  model = build(TINY_RESNET)
  variables = init_variables(model, jax.random.key(0), L)
  tx = optax.sgd(1.0)  # params move by the gradient itself (Adam's first step is ~sign(g): ill-conditioned)
  step = train_program(model, tx, ("sgd", 1.0), "regression")
  small = {k: v[:5] for k, v in train.items()}
  padded = next(padded_batches(small, 16))
  k = jax.random.key(3)
  fresh = lambda: create_state(jax.tree.map(jnp.array, variables), tx)  # steps donate their state
  s1, loss1 = step(fresh(), small, k)
  s2, loss2 = step(fresh(), padded, k)
  np.testing.assert_allclose(loss1, loss2, rtol=1e-5)
  for a, b in zip(jax.tree.leaves(s1.params), jax.tree.leaves(s2.params)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  for a, b in zip(jax.tree.leaves(s1.model_state), jax.tree.leaves(s2.model_state)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  ev = eval_program(model, "regression")
  _, sse1, n1 = ev(variables, small)
  _, sse2, n2 = ev(variables, padded)
  np.testing.assert_allclose([sse1, n1], [sse2, n2], rtol=1e-5)


def test_a_second_fit_of_the_same_architecture_compiles_nothing(data):
  train, val = data
  cfg = FitConfig(max_epochs=2, val_every=1, batch_size=15, progress=False)  # 45 = 3 x 15; val 20 = 15 + 5
  tx, key = optimizer(cfg)
  sizes = lambda m: (train_program(m, tx, key, "regression")._cache_size(), eval_program(m, "regression")._cache_size())
  before = sizes(build(TINY_RESNET))
  fit(build(TINY_RESNET), init_variables(build(TINY_RESNET), jax.random.key(0), L), train, val, cfg,
      task="regression", seed=0)
  model = build(TINY_RESNET)  # a new, equal module
  first = sizes(model)
  assert first[0] - before[0] <= 1 and first[1] - before[1] <= 1  # the 5-row last val batch is padded
  n_programs = programs.size()
  fit(model, init_variables(model, jax.random.key(1), L), train, val, cfg, task="regression", seed=1)
  predict(model, init_variables(model, jax.random.key(1), L), val, 15)
  assert programs.size() == n_programs
  assert sizes(model) == first


def _candidates(n):
  rng = np.random.default_rng(1)
  net = supernet(TINY_RESNET, "soft")
  out = []
  for i in range(n):
    v = dict(init_variables(net, jax.random.key(i), L))
    v["arch"] = jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape), a.dtype), v["arch"])
    out.append(v)
  return out, cost.trace(net, L)


@pytest.mark.parametrize("strategy,recalibrate", [("loop", False), ("vmap", False), ("loop", True)])
def test_fit_many_equals_fitting_the_exported_networks_one_by_one(data, strategy, recalibrate):
  train, val = data
  cands, shapes = _candidates(3)
  cfg = FitConfig(max_epochs=12, val_every=2, patience=1, batch_size=16, progress=False, recalibrate_bn=recalibrate)
  frozen = supernet(TINY_RESNET, "frozen")
  many, why = fit_many(frozen, stack(cands), train, val, cfg, task="regression", seed=3,
                       engine=EngineConfig(strategy))
  assert why["strategy"] == strategy
  stopped = 0
  preds = predict_many(frozen, stack([r.variables for r in many]), val, 16, "regression")
  for i, v in enumerate(cands):
    exp_cfg, exp_vars, _ = export(TINY_RESNET, v, shapes)
    one = fit(build(exp_cfg), exp_vars, train, val, cfg, task="regression", seed=3)
    assert (many[i].best_epoch, many[i].epochs_run) == (one.best_epoch, one.epochs_run)
    np.testing.assert_allclose(many[i].best_val_mse, one.best_val_mse, rtol=2e-2)
    stopped += one.epochs_run < cfg.max_epochs
    # The saved network is the real exported one: its predictions equal the frozen supernet's.
    _, _, choice = export(TINY_RESNET, many[i].variables, shapes)
    from jaxbp.nas.supernet import inherit  # pylint: disable=import-outside-toplevel
    real = predict(build(exp_cfg), inherit(many[i].variables, shapes, choice), val, 16)
    np.testing.assert_allclose(preds[i], real, rtol=1e-4, atol=1e-5)
  assert stopped >= 1 or recalibrate  # early stopping is exercised (the recalibrated variant runs longer here)


def test_memory_budget_refuses_a_step_that_cannot_fit(data):
  train, _ = data
  cands, _ = _candidates(2)
  cfg = FitConfig(max_epochs=1, batch_size=16, progress=False)
  with pytest.raises(MemoryBudgetError, match="one candidate needs"):
    fit_many(supernet(TINY_RESNET, "frozen"), stack(cands), train, train, cfg, task="regression", seed=0,
             engine=EngineConfig("vmap", memory_limit=1000))
  res, why = fit_many(supernet(TINY_RESNET, "frozen"), stack(cands), train, train, cfg, task="regression",
                      seed=0, engine=EngineConfig("vmap", memory_limit=parse_size("64G")))
  assert why["memory"]["chunk_size"] == 2 and why["memory"]["bytes_per_candidate"] > 0
  assert parse_size("1.5K") == 1536
  with pytest.raises(ValueError, match="memory size"):
    parse_size("lots")
