"""Programs compiled ahead (in the background thread) are the ones `fit` / `fit_many` then run: no recompile."""

import dataclasses

import jax
import numpy as np
import pytest

from tests.conftest import TINY_RESNET, TINY_WINDOW
from jaxbp.models import build, init_variables
from jaxbp.nas.supernet import supernet
from jaxbp.train import precompile
from jaxbp.train.engine import EngineConfig, stack
from jaxbp.train.fit import FitConfig, fit, precompile_fit
from jaxbp.train.fit_many import fit_many, precompile_many

L = TINY_WINDOW
# Architectures no other test compiles (programs are cached per process): the one under test, and one that
# compiles the eager helpers first.
NET = dataclasses.replace(TINY_RESNET, base_filters=6)
WARM = dataclasses.replace(TINY_RESNET, base_filters=12)
_COMPILES = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, duration, **_: _COMPILES.append(event) if event.endswith("backend_compile_duration") else None)


@pytest.fixture(scope="module")
def data(tiny_regression_data):
  return tiny_regression_data


def _compiles(fn):
  before = len(_COMPILES)
  fn()
  return len(_COMPILES) - before


@pytest.mark.parametrize("recalibrate", [False, True])
def test_fit_after_precompile_fit_compiles_nothing(data, recalibrate):
  train, val = data
  cfg = FitConfig(max_epochs=2, val_every=1, batch_size=16, progress=False, recalibrate_bn=recalibrate)
  warm = build(WARM)  # eager helpers
  fit(warm, init_variables(warm, jax.random.key(0), L), train, val, cfg, task="regression", seed=0)
  model = build(NET)
  variables = init_variables(model, jax.random.key(1), L)
  assert _compiles(lambda: precompile.ahead("test", lambda: precompile_fit(
      model, variables, train, val, cfg, task="regression", seed=1)).result()) >= 1
  assert _compiles(lambda: fit(model, variables, train, val, cfg, task="regression", seed=1)) == 0


def test_fit_many_after_precompile_many_compiles_nothing(data):
  train, val = data
  cfg = FitConfig(max_epochs=2, val_every=1, batch_size=16, progress=False)
  frozen = supernet(NET, "frozen")
  cands = stack([init_variables(supernet(NET, "soft"), jax.random.key(i), L) for i in range(2)])
  like = jax.tree.map(np.zeros_like, cands)  # values are irrelevant
  engine = EngineConfig("loop")
  warm = supernet(WARM, "frozen")
  warm_cands = stack([init_variables(supernet(warm.config, "soft"), jax.random.key(i), L) for i in range(2)])
  fit_many(warm, warm_cands, train, val, cfg, task="regression", seed=0, engine=engine)
  assert _compiles(lambda: precompile_many(frozen, like, train, val, cfg, task="regression", seed=3,
                                           engine=engine)) >= 2
  assert _compiles(lambda: fit_many(frozen, cands, train, val, cfg, task="regression", seed=3, engine=engine)) == 0


def test_a_failed_precompile_is_logged_not_raised(caplog):
  def boom():
    raise ValueError("no such program")
  precompile.ahead("a broken program", boom).result()
  assert "precompiling a broken program failed" in caplog.text
