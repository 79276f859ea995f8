"""Bit-aware costs: exact values at fixed configurations, expectations, gradients, composition, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp import cost
from jaxbp.cost import bits as cb

SHAPES = cb.BitShapes((
    cb.BitLayer("a", macs=1000, weights=90, biases=10, in_bits=(2, 4, 8), w_bits=(2, 4, 8)),
    cb.BitLayer("b", macs=300, weights=40, biases=0, in_bits=(0, 2, 4, 8), w_bits=(2, 4, 8)),
    cb.BitLayer("c", macs=50, weights=25, biases=2),  # fixed 8/8
), fixed_bytes=7.0, fixed_bops=11.0)


def _table(layer, b_in, b_w):
  return layer.macs / (b_in * b_w)  # any numbers; the simulator provides the real table later.


def test_fixed_configuration_exact():
  config = {"a": (4, 2), "b": (8, 4)}
  arch = cb.one_hot_joints(SHAPES, config)
  assert float(cb.bops()(arch, SHAPES)) == 1000 * 8 + 300 * 32 + 50 * 64 + 11
  assert float(cb.weight_bytes()(arch, SHAPES)) == pytest.approx((90 * 2 + 10 * 32) / 8 + 40 * 4 / 8
                                                                 + (25 * 8 + 2 * 32) / 8 + 7)
  table = {(layer.name, i, w): _table(layer, i, w) for layer in SHAPES.layers
           for i in layer.in_bits if i for w in layer.w_bits}
  assert float(cb.latency(table, fixed=3.0)(arch, SHAPES)) == pytest.approx(1000 / 8 + 300 / 32 + 50 / 64 + 3)
  assert float(cb.latency(_table)(arch, SHAPES)) == pytest.approx(1000 / 8 + 300 / 32 + 50 / 64)


def test_expectations_independent_and_locked():
  p_in, p_w = jnp.asarray([0.2, 0.3, 0.5]), jnp.asarray([0.1, 0.6, 0.3])
  b = np.asarray([2.0, 4.0, 8.0])
  e_in, e_w = float(p_in @ b), float(p_w @ b)
  fixed = cb.one_hot_joints(SHAPES, {"a": (8, 8), "b": (8, 8)})
  arch = {**fixed, "a": cb.joint(p_in, p_w)}
  base = float(cb.bops()(fixed, SHAPES)) - 1000 * 64
  assert float(cb.bops()(arch, SHAPES)) == pytest.approx(base + 1000 * e_in * e_w, rel=1e-6)
  locked = {**fixed, "a": cb.locked_joint(p_in)}
  assert float(cb.bops()(locked, SHAPES)) == pytest.approx(base + 1000 * float(p_in @ b ** 2), rel=1e-6)
  # Pruned (0-bit) inputs cost nothing: all mass on b_in = 0.
  pruned = {**fixed, "b": jnp.zeros((4, 3)).at[0, 2].set(1.0)}
  assert float(cb.bops()(pruned, SHAPES)) == pytest.approx(float(cb.bops()(fixed, SHAPES)) - 300 * 64)
  # Missing latency entries with a 0-bit operand are fine, others are errors naming the layer.
  table = {(layer.name, i, w): 1.0 for layer in SHAPES.layers for i in layer.in_bits if i for w in layer.w_bits}
  assert float(cb.latency(table)(pruned, SHAPES)) == pytest.approx(2.0)
  del table[("a", 8, 8)]
  with pytest.raises(KeyError, match="layer 'a' at \\(b_in=8, b_w=8\\)"):
    cb.latency(table)(fixed, SHAPES)


def _probs(logits):
  return {"a": cb.joint(jax.nn.softmax(logits["a_in"]), jax.nn.softmax(logits["a_w"])),
          "b": cb.joint(jax.nn.softmax(logits["b_in"]), jax.nn.softmax(logits["b_w"])),
          "c": jnp.ones((1, 1))}


def test_gradients_and_composition_under_jit_vmap():
  logits = {"a_in": jnp.zeros(3), "a_w": jnp.zeros(3), "b_in": jnp.zeros(4), "b_w": jnp.zeros(3)}
  c = 0.5 * cb.bops() / 1e3 + cost.relu(cb.weight_bytes() - 50.0)
  g = jax.jit(jax.grad(lambda lg: c(_probs(lg), SHAPES)))(logits)
  # More mass on 8 bits costs more; on 2 bits less.
  assert float(g["a_w"][2]) > 0 > float(g["a_w"][0])
  assert float(g["b_in"][0]) < 0  # pruning lowers the cost.
  batch = jax.tree.map(lambda x: jnp.stack([x, x + jnp.arange(x.shape[0], dtype=x.dtype)]), logits)
  vals = jax.jit(jax.vmap(lambda lg: c(_probs(lg), SHAPES)))(batch)
  assert vals.shape == (2,) and float(vals[1]) > float(vals[0])
  np.testing.assert_allclose(vals[0], jax.jit(lambda lg: c(_probs(lg), SHAPES))(logits), rtol=1e-6)


def test_errors_name_layer():
  arch = cb.one_hot_joints(SHAPES, {"a": (8, 8), "b": (8, 8)})
  with pytest.raises(ValueError, match="layer 'a'.*shape"):
    cb.bops()({**arch, "a": jnp.ones((2, 3))}, SHAPES)
  with pytest.raises(KeyError, match="'b'"):
    cb.bops()({k: v for k, v in arch.items() if k != "b"}, SHAPES)
  with pytest.raises(ValueError, match="not in the supports"):
    cb.one_hot_joints(SHAPES, {"a": (3, 8), "b": (8, 8)})
  with pytest.raises(KeyError, match="searchable layer 'b'"):
    cb.one_hot_joints(SHAPES, {"a": (8, 8)})
  with pytest.raises(ValueError, match="in_bits"):
    cb.BitLayer("x", 1, 1, 0, in_bits=())
