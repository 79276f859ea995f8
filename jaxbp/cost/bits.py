"""Bit-aware differentiable costs: expected BOPs, expected weight bytes, expected latency from a table.

A quantized network is described statically by `BitShapes`: one `BitLayer` per weighted layer (conv or
dense) with its MACs per example, its weight/bias counts and the *support* of its input and weight bit
widths (e.g. (0, 2, 4, 8) for a Bayesian-Bits tensor with a pruning gate, (8,) for a fixed 8-bit one).

The architecture argument of these costs is a dict {layer name: P}, P the joint probability matrix of
(b_in, b_w) over the layer's supports, shape (len(in_bits), len(w_bits)). Independent input/weight gates
give P = outer(p_in, p_w) (`joint`), a "locked" gate set shared by both gives P = diag(p) (`locked_joint`),
and a fixed configuration is one-hot (`one_hot_joints`). Then, per example:

  BOPs     Σ_layers MACs · E[b_in · b_w]                 (= MACs·E[b_in]·E[b_w] for independent gates)
  bytes    Σ_layers (weights · E[b_w] + biases · bias_bits) / 8 + fixed_bytes
  latency  Σ_layers Σ_ij P_ij · table[(layer, b_in_i, b_w_j)] + fixed   (entries with a 0-bit operand: 0)

A 0-bit width means pruned: it costs nothing. These are `jaxbp.cost.Cost` objects, so they compose with
the architecture costs (`0.5 * bops() / 1e6 + relu(weight_bytes() - budget)`), under jit and vmap.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.cost.algebra import Cost


@dataclasses.dataclass(frozen=True)
class BitLayer:
  """One weighted layer of a quantized network.

  Attributes:
    name: layer name (key of the joint-probability dict and of latency tables).
    macs: multiply-accumulates per example.
    weights: number of weights (stored at b_w bits).
    biases: number of biases (stored at the costs' `bias_bits`).
    in_bits: support of the input activation's bit width (0 = pruned).
    w_bits: support of the weights' bit width.
  """

  name: str
  macs: int
  weights: int
  biases: int
  in_bits: tuple[int, ...] = (8,)
  w_bits: tuple[int, ...] = (8,)

  def __post_init__(self):
    for field in ("in_bits", "w_bits"):
      bits = getattr(self, field)
      if not bits or any((not isinstance(b, int)) or b < 0 for b in bits):
        raise ValueError(f"layer {self.name!r}: {field} must be a non-empty tuple of bit widths >= 0, got {bits}")


@dataclasses.dataclass(frozen=True)
class BitShapes:
  """The weighted layers of a quantized network, plus what the costs add as constants.

  Attributes:
    layers: the weighted layers, in network order.
    fixed_bytes: bytes of everything else that is stored (e.g. per-channel requant parameters).
    fixed_bops: BOPs of everything that is not searched.
  """

  layers: tuple[BitLayer, ...]
  fixed_bytes: float = 0.0
  fixed_bops: float = 0.0

  def layer(self, name: str) -> BitLayer:
    for layer in self.layers:
      if layer.name == name:
        return layer
    raise KeyError(f"no weighted layer named {name!r}; layers: {[layer.name for layer in self.layers]}")


def _joint_of(arch: Mapping[str, Any], layer: BitLayer) -> jax.Array:
  try:
    p = jnp.asarray(arch[layer.name], jnp.float32)
  except KeyError:
    raise KeyError(f"no bit-width probabilities for layer {layer.name!r}") from None
  want = (len(layer.in_bits), len(layer.w_bits))
  if p.shape != want:
    raise ValueError(f"layer {layer.name!r}: joint probabilities have shape {p.shape}, expected {want} "
                     f"(in_bits {layer.in_bits} x w_bits {layer.w_bits})")
  return p


def _per_layer(value: Callable[[jax.Array, BitLayer], jax.Array], fixed: Callable[[BitShapes], float],
               name: str) -> Cost:
  def fn(arch, shapes: BitShapes, temperature):
    del temperature
    total = jnp.asarray(fixed(shapes), jnp.float32)
    for layer in shapes.layers:
      total = total + value(_joint_of(arch, layer), layer)
    return total

  return Cost(fn, name)


def bops() -> Cost:
  """Expected bit operations per example: Σ MACs · E[b_in · b_w] (+ `fixed_bops`)."""

  def value(p, layer):
    prod = np.outer(np.asarray(layer.in_bits, np.float32), np.asarray(layer.w_bits, np.float32))
    return layer.macs * jnp.sum(p * prod)

  return _per_layer(value, lambda s: s.fixed_bops, "bops")


def expected_bits(bits: tuple[int, ...], p: jax.Array) -> jax.Array:
  """E[b] of a bit width with probabilities `p` over the support `bits`."""
  return jnp.dot(p, jnp.asarray(bits, jnp.float32))


def weight_bytes(bias_bits: int = 32) -> Cost:
  """Expected stored bytes: Σ (weights·E[b_w] + biases·bias_bits)/8 + `fixed_bytes` (pruned weights: 0)."""

  def value(p, layer):
    p_w = jnp.sum(p, axis=0)
    return (layer.weights * expected_bits(layer.w_bits, p_w) + layer.biases * bias_bits) / 8

  return _per_layer(value, lambda s: s.fixed_bytes, f"weight_bytes(bias {bias_bits}b)")


LatencyTable = Mapping[tuple[str, int, int], float]


def latency(table: LatencyTable | Callable[[BitLayer, int, int], float], fixed: float = 0.0) -> Cost:
  """Expected latency Σ P(b_in, b_w)·table[(layer, b_in, b_w)] from any table (cycles, ms, ...).

  `table` is a mapping {(layer name, b_in, b_w): latency} or a function (layer, b_in, b_w) -> latency.
  Pairs with a 0-bit (pruned) operand cost 0 and need no entry; any other missing entry is an error.
  """

  def lookup(layer: BitLayer, b_in: int, b_w: int) -> float:
    if b_in == 0 or b_w == 0:
      return 0.0
    if callable(table):
      return float(table(layer, b_in, b_w))
    try:
      return float(table[(layer.name, b_in, b_w)])
    except KeyError:
      raise KeyError(f"latency table has no entry for layer {layer.name!r} at (b_in={b_in}, b_w={b_w})") from None

  def value(p, layer):
    grid = np.asarray([[lookup(layer, bi, bw) for bw in layer.w_bits] for bi in layer.in_bits], np.float32)
    return jnp.sum(p * grid)

  return _per_layer(value, lambda s: fixed, "bit_latency")


def joint(p_in: jax.Array, p_w: jax.Array) -> jax.Array:
  """Joint (b_in, b_w) probabilities of independent input and weight bit widths."""
  return jnp.outer(p_in, p_w)


def locked_joint(p: jax.Array) -> jax.Array:
  """Joint probabilities when one gate set decides both widths (b_in == b_w): diag(p)."""
  return jnp.diag(p)


def one_hot_joints(shapes: BitShapes, config: Mapping[str, tuple[int, int]]) -> dict[str, jax.Array]:
  """Joint probabilities of a fixed configuration {layer: (b_in, b_w)} (layers missing: their only widths)."""
  out = {}
  for layer in shapes.layers:
    b_in, b_w = config.get(layer.name, (None, None))
    if b_in is None:
      if len(layer.in_bits) != 1 or len(layer.w_bits) != 1:
        raise KeyError(f"configuration has no bit widths for searchable layer {layer.name!r}")
      b_in, b_w = layer.in_bits[0], layer.w_bits[0]
    if b_in not in layer.in_bits or b_w not in layer.w_bits:
      raise ValueError(f"layer {layer.name!r}: (b_in={b_in}, b_w={b_w}) not in the supports "
                       f"{layer.in_bits} x {layer.w_bits}")
    p = np.zeros((len(layer.in_bits), len(layer.w_bits)), np.float32)
    p[layer.in_bits.index(b_in), layer.w_bits.index(b_w)] = 1.0
    out[layer.name] = jnp.asarray(p)
  return out
