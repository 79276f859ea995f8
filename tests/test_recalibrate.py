"""BatchNorm re-estimation with dropout off."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp.models.configs import build
from jaxbp.models.params import init_variables
from jaxbp.train.recalibrate import recalibrate_batch_stats, without_dropout
from tests.conftest import TINY_RESNET


class _BnNet(nn.Module):
  """Dense(3) -> BN: the BN statistics are those of x @ W + b."""

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    h = nn.Dense(3, name="dense")(x.reshape(x.shape[0], -1))
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, name="bn")(h)


def test_recalibrated_stats_are_the_population_stats():
  model = _BnNet()
  x = np.random.default_rng(0).normal(2.0, 3.0, size=(50, 4, 1)).astype(np.float32)
  v = model.init(jax.random.key(0), x[:2])
  # Garbage running statistics must not matter.
  v = {**v, "batch_stats": jax.tree.map(lambda a: a + 7.0, v["batch_stats"])}
  out = recalibrate_batch_stats(model, v, {"x": x}, batch_size=10)
  dense = v["params"]["dense"]
  h = x.reshape(50, -1) @ np.asarray(dense["kernel"]) + np.asarray(dense["bias"])
  np.testing.assert_allclose(out["batch_stats"]["bn"]["mean"], h.mean(0), rtol=1e-4, atol=1e-4)
  # Equal batch sizes: the mean of per-batch (biased) variances.
  per_batch_var = h.reshape(5, 10, 3).var(axis=1).mean(0)
  np.testing.assert_allclose(out["batch_stats"]["bn"]["var"], per_batch_var, rtol=1e-4, atol=1e-4)
  np.testing.assert_array_equal(jax.tree.leaves(out["params"])[0], jax.tree.leaves(v["params"])[0])


def test_resnet_recalibration_turns_dropout_off_and_keeps_structure():
  model = build(TINY_RESNET)
  assert without_dropout(model).config.dropout == 0.0
  assert model.config.dropout == TINY_RESNET.dropout  # the input model is unchanged
  x = np.random.default_rng(1).normal(size=(16, 64, 1)).astype(np.float32)
  v = init_variables(model, jax.random.key(0), 64)
  out = recalibrate_batch_stats(model, v, {"x": x}, batch_size=16)
  assert jax.tree.structure(out) == jax.tree.structure(v)
  # One batch covering everything: each BN's running stats equal that batch's statistics with dropout off.
  _, direct = without_dropout(model).apply(v, jnp.asarray(x), train=True, mutable=["batch_stats"])
  expected = jax.tree.map(lambda new, old: (new - 0.9 * old) / 0.1, direct["batch_stats"], v["batch_stats"])
  for a, b in zip(jax.tree.leaves(out["batch_stats"]), jax.tree.leaves(expected)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_recalibration_rejects_an_empty_split():
  model = _BnNet()
  v = model.init(jax.random.key(0), jnp.zeros((2, 4, 1)))
  with pytest.raises(ValueError, match="no windows"):
    recalibrate_batch_stats(model, v, {"x": np.zeros((0, 4, 1), np.float32)})


def test_models_without_batch_norm_are_returned_unchanged():
  model = nn.Dense(2)
  v = model.init(jax.random.key(0), jnp.zeros((1, 3)))
  assert recalibrate_batch_stats(model, v, {"x": np.zeros((4, 3), np.float32)}) is v
