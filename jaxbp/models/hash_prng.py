"""A counter-hash PRNG for parameter initialization (and the `lowbias32` mixer dropout uses).

Flax initializers draw ~100 separate small streams. With JAX's Threefry-2x32 every draw is a 20-round block
cipher that XLA's CPU backend unrolls into its own code: compiling the PPGBP ResNet1d supernet's init took
28.7 s (one candidate; 74.9 s for 18 vmapped) on a loaded 2-core machine, against 10.2 s (13.6 s) with this
generator, whose bits are a keyed 32-bit hash of the element index that XLA fuses like any elementwise op.

`HASH_PRNG` is a JAX PRNG implementation (`jax.extend.random.define_prng_impl`): keys are two uint32 words;
`split` and `fold_in` derive new words by hashing; `random_bits` hashes the element counter with the key's
words (Wellons' `lowbias32`, a bijection of uint32, applied twice). Distinct elements of one draw never
collide; different keys give unrelated streams for all practical purposes. It is meant for initial values,
not for cryptography or for long simulations. `init_key` converts any Threefry key (typed or raw uint32[2])
into a key of this implementation with the same words, so a candidate's values still depend only on its key.
"""

from __future__ import annotations

import math

import jax
import jax.extend.random as jex_random
import jax.numpy as jnp


def mix(h: jax.Array) -> jax.Array:
  """lowbias32 (C. Wellons, hash-prospector): a bijective uint32 -> uint32 mixer."""
  h = h ^ (h >> 16)
  h = h * jnp.uint32(0x21F0AAAD)
  h = h ^ (h >> 15)
  h = h * jnp.uint32(0x735A2D97)
  return h ^ (h >> 15)


def _seed(seed: jax.Array) -> jax.Array:
  s = jnp.asarray(seed).astype(jnp.uint32)
  return jnp.stack([mix(s ^ jnp.uint32(0x9E3779B9)), mix(mix(s) ^ jnp.uint32(0x85EBCA6B))])


def _split(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  i = jax.lax.iota(jnp.uint32, math.prod(shape))
  a = mix(mix(i ^ key[0]) + key[1])
  b = mix(mix(i ^ key[1] ^ jnp.uint32(0x68E31DA4)) + key[0])
  return jnp.stack([a, b], -1).reshape(*shape, 2)


def _fold_in(key: jax.Array, data: jax.Array) -> jax.Array:
  d = mix(jnp.asarray(data).astype(jnp.uint32) ^ jnp.uint32(0x1B873593))
  return jnp.stack([mix(key[0] ^ d), mix(key[1] + mix(d))])


def _random_bits(key: jax.Array, bit_width: int, shape: tuple[int, ...]) -> jax.Array:
  i = jax.lax.iota(jnp.uint32, math.prod(shape))
  h = mix(mix(i + key[0]) ^ key[1])
  if bit_width == 64:
    lo = mix(mix(i ^ key[1]) + (key[0] ^ jnp.uint32(0x2545F491)))
    return ((h.astype(jnp.uint64) << 32) | lo.astype(jnp.uint64)).reshape(shape)
  dtype = {8: jnp.uint8, 16: jnp.uint16, 32: jnp.uint32}[bit_width]
  return (h >> (32 - bit_width)).astype(dtype).reshape(shape)


HASH_PRNG = jex_random.define_prng_impl(key_shape=(2,), seed=_seed, split=_split, random_bits=_random_bits,
                                        fold_in=_fold_in, name="jaxbp_hash", tag="jh")


def init_key(key: jax.Array) -> jax.Array:
  """The `HASH_PRNG` key with the words of `key` (a typed key of a two-word implementation or raw uint32[2];
  batched keys keep their batch shape)."""
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    key = jax.random.key_data(key)
  return jax.random.wrap_key_data(key.astype(jnp.uint32), impl=HASH_PRNG)
