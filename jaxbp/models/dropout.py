"""Dropout whose mask comes from a counter hash instead of a Threefry stream.

`flax.linen.Dropout` draws its mask with `jax.random.bernoulli`, i.e. one Threefry-2x32 evaluation per element.
On the CPU backend that lowers to a rolled `while` loop over a materialized counter array, outside every fusion:
in the PPGBP ResNet1d search step it was ~20 % of the step time and a third of its compile time. Here each layer
still draws its own key from the "dropout" collection (`make_rng`, so keys per layer, per step and per candidate
stay independent and vmap-safe), and the mask bits are a keyed 32-bit hash of the element index, which XLA fuses
into the elementwise multiply: Wellons' `lowbias32` mixer (a bijection of uint32, avalanche bias ~0.17 %) applied
twice around the key words. The statistics of the mask are those of dropout (each element kept with probability
1 - rate, independently for all practical purposes); the bits differ from `nn.Dropout`'s.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxbp.models.hash_prng import mix as _mix


def _key_words(key: jax.Array) -> jax.Array:
  """The raw uint32 words of a typed or legacy (uint32[2]) PRNG key, flattened."""
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    key = jax.random.key_data(key)
  return key.reshape(-1).astype(jnp.uint32)


def hashed_bits(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """uint32 bits of `shape`, a keyed hash of the element index (distinct elements never collide for one key)."""
  size = math.prod(shape)
  if size >= 2**32:
    raise ValueError(f"hashed_bits: {size} elements exceed the 2^32 counter space (shape {shape})")
  words = _key_words(key)
  index = jax.lax.iota(jnp.uint32, size).reshape(shape)
  return _mix(_mix(index + words[0]) ^ words[-1])


def dropout(x: jax.Array, rate: float, key: jax.Array) -> jax.Array:
  """Inverted dropout: zero each element with probability `rate`, scale the rest by 1 / (1 - rate)."""
  if rate <= 0.0:
    return x
  if rate >= 1.0:
    return jnp.zeros_like(x)
  threshold = jnp.uint32(min(round(rate * 2.0**32), 2**32 - 1))
  keep = hashed_bits(key, x.shape) >= threshold
  return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


class Dropout(nn.Module):
  """Drop-in for `nn.Dropout(rate, deterministic=...)` with hashed mask bits (see module docstring).

  Needs the "dropout" rng collection when not deterministic. (B, ...) -> same shape.
  """

  rate: float
  deterministic: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.deterministic or self.rate == 0.0:
      return x
    return dropout(x, self.rate, self.make_rng("dropout"))
