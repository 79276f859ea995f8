"""jaxbp.models.dropout: the hashed-mask dropout keeps 1 - rate of the elements, independently per key."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp.models.dropout import Dropout, dropout, hashed_bits


def test_bits_are_distinct_per_element_and_differ_between_keys():
  a = np.asarray(hashed_bits(jax.random.key(0), (16, 33, 8)))
  b = np.asarray(hashed_bits(jax.random.key(1), (16, 33, 8)))
  assert len(np.unique(a)) == a.size  # a bijection of the index for one key
  assert np.mean(a == b) < 1e-3


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_keep_fraction_and_scale(rate):
  y = np.asarray(dropout(jnp.ones((200_000,)), rate, jax.random.key(3)))
  assert abs(np.mean(y == 0) - rate) < 0.005
  np.testing.assert_allclose(y[y != 0], 1 / (1 - rate), rtol=1e-6)


def test_masks_of_two_keys_are_uncorrelated():
  x = jnp.ones((100_000,))
  m1 = np.asarray(dropout(x, 0.5, jax.random.key(10)) == 0)
  m2 = np.asarray(dropout(x, 0.5, jax.random.key(11)) == 0)
  assert abs(np.corrcoef(m1, m2)[0, 1]) < 0.02


def test_vmap_over_keys_equals_a_loop():
  keys = jax.random.split(jax.random.key(0), 4)
  x = jnp.arange(1.0, 301.0).reshape(3, 100)
  batched = jax.vmap(lambda k: dropout(x, 0.3, k))(keys)
  for i in range(4):
    np.testing.assert_array_equal(batched[i], dropout(x, 0.3, keys[i]))


def test_module_deterministic_and_legacy_keys():
  x = jnp.ones((4, 7, 3))
  assert Dropout(0.5, deterministic=True).apply({}, x) is x
  y = Dropout(0.5).apply({}, x, rngs={"dropout": jax.random.PRNGKey(0)})  # raw uint32[2] key
  z = Dropout(0.5).apply({}, x, rngs={"dropout": jax.random.key(0)})
  assert y.shape == x.shape and 0 < float(jnp.mean(y == 0)) < 1
  np.testing.assert_array_equal(y, z)
