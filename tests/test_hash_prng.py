"""The counter-hash PRNG used for initial values: JAX-compatible keys, the right distributions, vmap = loop."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.models.hash_prng import init_key


def test_uniform_and_normal_draws_have_their_distributions():
  k = init_key(jax.random.key(3))
  u = np.asarray(jax.random.uniform(k, (200_000,)))
  assert 0.0 <= u.min() and u.max() < 1.0
  assert abs(u.mean() - 0.5) < 3e-3 and abs(u.std() - (1 / 12) ** 0.5) < 3e-3
  z = np.asarray(jax.random.normal(jax.random.fold_in(k, 1), (200_000,)))
  assert abs(z.mean()) < 1e-2 and abs(z.std() - 1.0) < 1e-2
  hist = np.histogram(u, bins=64, range=(0, 1))[0]
  assert hist.min() > 0.9 * hist.mean() and hist.max() < 1.1 * hist.mean()


def test_derived_keys_give_unrelated_streams():
  k = init_key(jax.random.key(0))
  a, b = jax.random.split(k)
  streams = [jax.random.normal(x, (50_000,)) for x in (a, b, jax.random.fold_in(k, 7), jax.random.fold_in(k, 8))]
  c = np.corrcoef(np.stack([np.asarray(s) for s in streams]))
  assert np.all(np.abs(c[~np.eye(4, dtype=bool)]) < 0.02)
  assert not np.array_equal(np.asarray(jax.random.key_data(a)), np.asarray(jax.random.key_data(b)))


def test_vmap_equals_loop_and_depends_only_on_the_key():
  keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(1), i))(jnp.arange(4))
  draw = lambda k: jax.random.normal(init_key(k), (3, 5))
  batched = jax.jit(jax.vmap(draw))(keys)
  for i in range(4):
    np.testing.assert_array_equal(batched[i], draw(keys[i]))
  assert not np.allclose(batched[0], batched[1])
