"""Fake-quantizers: levels and clipping at every bit width 2..8, rounding modes, STE/PACT/TQT gradients."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxbp.quant import quantizers as qz

BITS = list(range(2, 9))


def _levels(y, scale):
  return np.unique(np.round(np.asarray(y) / np.asarray(scale)).astype(np.int64))


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("signed", [False, True])
def test_pact_levels_and_clipping(bits, signed):
  alpha = jnp.float32(1.7)
  x = jnp.linspace(-3.0, 3.0, 20_001)
  y = qz.pact(x, alpha, bits, signed)
  s = float(qz.pact_scale(alpha, bits, signed))
  qmin, qmax = qz.int_range(bits, signed)
  # On the grid, every level used, nothing outside.
  codes = np.asarray(y) / s
  np.testing.assert_allclose(codes, np.round(codes), atol=1e-4)
  np.testing.assert_array_equal(_levels(y, s), np.arange(qmin, qmax + 1))
  # Clipping: beyond α (and below 0 / -α) the output is the end level exactly.
  np.testing.assert_allclose(np.asarray(y)[np.asarray(x) >= 1.7], 1.7, rtol=1e-6)
  low = np.asarray(y)[np.asarray(x) <= (-1.7 if signed else 0.0)]
  np.testing.assert_allclose(low, -1.7 if signed else 0.0, rtol=1e-6, atol=0)
  assert qmax == (2 ** (bits - 1) - 1 if signed else 2 ** bits - 1)
  if signed:
    assert qmin == -qmax  # symmetric: zero exactly representable, no lone negative level.


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("signed", [False, True])
def test_tqt_levels_and_clipping(bits, signed):
  log2_t = jnp.float32(0.3)
  t = 2 ** 0.3
  x = jnp.linspace(-3.0, 3.0, 20_001)
  y = qz.tqt(x, log2_t, bits, signed)
  s = float(qz.tqt_scale(log2_t, bits, signed))
  n, p = qz.tqt_range(bits, signed)
  assert s == pytest.approx(t / 2 ** (bits - 1 if signed else bits), rel=1e-6)
  np.testing.assert_array_equal(_levels(y, s), np.arange(n, p + 1))
  np.testing.assert_allclose(np.asarray(y).max(), p * s, rtol=1e-6)
  np.testing.assert_allclose(np.asarray(y).min(), n * s, rtol=1e-6)
  # power-of-two variant: the threshold is rounded up to 2^ceil(log2 t).
  s2 = float(qz.tqt_scale(log2_t, bits, signed, power_of_two=True))
  assert s2 == pytest.approx(2.0 / 2 ** (bits - 1 if signed else bits))


@pytest.mark.parametrize("bits", BITS)
def test_minmax_per_channel_symmetric(bits):
  w = jax.random.normal(jax.random.key(bits), (5, 3, 6)) * jnp.arange(1, 7)
  y = qz.minmax_quantize(w, bits)  # per output channel (last axis)
  codes, scale, zp = qz.minmax_codes(w, bits)
  qmax = 2 ** (bits - 1) - 1
  assert scale.shape == (1, 1, 6) and np.all(np.asarray(zp) == 0)
  np.testing.assert_allclose(np.asarray(scale).ravel(), np.abs(np.asarray(w)).max(axis=(0, 1)) / qmax, rtol=1e-6)
  np.testing.assert_allclose(np.asarray(y), np.asarray(codes) * np.asarray(scale), rtol=1e-6)
  c = np.asarray(codes)
  assert c.min() >= -qmax and c.max() <= qmax
  # The largest |w| of each channel maps to ±qmax exactly; error at most half a step.
  np.testing.assert_array_equal(np.abs(c).max(axis=(0, 1)), qmax)
  assert np.all(np.abs(np.asarray(y) - np.asarray(w)) <= np.asarray(scale) / 2 + 1e-6)


@pytest.mark.parametrize("bits", BITS)
def test_minmax_per_tensor_and_asymmetric(bits):
  w = jax.random.uniform(jax.random.key(0), (40, 4), minval=-0.3, maxval=1.0)
  codes, scale, zp = qz.minmax_codes(w, bits, channel_axis=None, symmetric=False)
  assert scale.shape == (1, 1)
  c = np.asarray(codes)
  assert c.min() == 0 and c.max() == 2 ** bits - 1
  y = qz.minmax_quantize(w, bits, channel_axis=None, symmetric=False)
  np.testing.assert_allclose(np.asarray(y), (c - np.asarray(zp)) * np.asarray(scale), rtol=1e-5, atol=1e-7)
  assert np.all(np.abs(np.asarray(y) - np.asarray(w)) <= np.asarray(scale) * 0.5 + 1e-6)
  # Zero is exactly representable (zero point is an integer code).
  z = qz.fake_quant(jnp.zeros(()), scale[0, 0], 0, 2 ** bits - 1, zp[0, 0])
  assert float(z) == 0.0
  # per-tensor symmetric: one scale for the whole tensor.
  _, s_t, _ = qz.minmax_codes(w, bits, channel_axis=None)
  assert float(s_t[0, 0]) == pytest.approx(float(jnp.abs(w).max()) / (2 ** (bits - 1) - 1), rel=1e-6)


def test_rounding_modes():
  v = jnp.asarray([-1.5, -0.5, 0.5, 1.5, 2.5, 0.49])
  np.testing.assert_array_equal(qz.round_int(v, "half_up"), [-1, 0, 1, 2, 3, 0])
  np.testing.assert_array_equal(qz.round_int(v, "floor"), [-2, -1, 0, 1, 2, 0])
  np.testing.assert_array_equal(qz.round_int(v, "half_even"), [-2, 0, 0, 2, 2, 0])
  with pytest.raises(ValueError, match="rounding"):
    qz.round_int(v, "nearest")
  # floor rounding: PACT output never exceeds the input (inside the range).
  x = jnp.linspace(0, 1, 101)
  assert np.all(np.asarray(qz.pact(x, 1.0, 4, rounding="floor")) <= np.asarray(x) + 1e-7)


def test_bad_bits_named():
  with pytest.raises(ValueError, match="bits"):
    qz.int_range(0, True)


def test_ste_and_pact_gradients_analytic():
  alpha = jnp.float32(1.0)
  x = jnp.asarray([-0.5, 0.2, 0.7, 1.0, 1.4, 3.0])
  gx, ga = jax.jit(jax.grad(lambda x, a: jnp.sum(qz.pact(x, a, 4)), argnums=(0, 1)))(x, alpha)
  np.testing.assert_array_equal(gx, [0, 1, 1, 0, 0, 0])
  assert float(ga) == 3.0  # x >= α: 1.0, 1.4, 3.0
  # signed: -1 for x <= -α.
  xs = jnp.asarray([-2.0, -1.0, -0.3, 0.3, 1.2])
  gx, ga = jax.jit(jax.grad(lambda x, a: jnp.sum(qz.pact(x, a, 4, True)), argnums=(0, 1)))(xs, alpha)
  np.testing.assert_array_equal(gx, [0, 0, 1, 1, 0])
  assert float(ga) == -2.0 + 1.0
  # per-channel α gets per-channel sums.
  xc = jnp.asarray([[0.5, 2.0], [3.0, 0.1]])
  ga = jax.grad(lambda a: jnp.sum(qz.pact(xc, a, 8)))(jnp.asarray([1.0, 1.0]))
  np.testing.assert_array_equal(ga, [1.0, 1.0])
  # min-max weights and bias: straight through (identity).
  w = jax.random.normal(jax.random.key(1), (3, 2, 4))
  np.testing.assert_array_equal(jax.grad(lambda w: jnp.sum(qz.minmax_quantize(w, 4)))(w), np.ones(w.shape))
  g = jax.grad(lambda b: jnp.sum(qz.quantize_bias(b, jnp.float32(1e-3))))(jnp.ones(4))
  np.testing.assert_array_equal(g, np.ones(4))


def test_pact_alpha_gradient_finite_difference():
  """In the clipped region the PACT output is α exactly, a smooth function of α: FD must agree."""
  x = jnp.asarray([2.0, 2.5, 4.0, 0.4])
  f = lambda a: jnp.sum(qz.pact(x, a, 6)[:3])
  a, h = 1.3, 1e-3
  fd = (f(a + h) - f(a - h)) / (2 * h)
  assert float(jax.grad(f)(jnp.float32(a))) == pytest.approx(float(fd), rel=1e-3)


@pytest.mark.parametrize("signed", [True, False])
def test_tqt_gradients(signed):
  bits, log2_t = 4, jnp.float32(0.5)
  s = float(qz.tqt_scale(log2_t, bits, signed))
  n, p = qz.tqt_range(bits, signed)
  x = jnp.asarray([-5.0, -0.33, 0.0, 0.41, 0.77, 5.0])
  gx, gt = jax.grad(lambda x, t: jnp.sum(qz.tqt(x, t, bits, signed)), argnums=(0, 1))(x, log2_t)
  v = np.asarray(x) / s
  r = np.floor(v + 0.5)
  inside = (r >= n) & (r <= p)
  np.testing.assert_array_equal(gx, inside.astype(np.float32))
  expected = s * math.log(2) * np.where(inside, r - v, np.where(r < n, n, p))
  assert float(gt) == pytest.approx(float(expected.sum()), rel=1e-5)
  # Finite differences where the output is smooth in t (clipped values: q = p·s or n·s).
  clipped = ~inside
  f = lambda t: jnp.sum(jnp.where(jnp.asarray(clipped), qz.tqt(x, t, bits, signed), 0.0))
  h = 1e-3
  fd = (f(log2_t + h) - f(log2_t - h)) / (2 * h)
  assert float(jax.grad(f)(log2_t)) == pytest.approx(float(fd), rel=1e-3)


def test_tqt_normed_update_is_bounded_and_scale_free():
  tx = qz.tqt_normed_update(0.01)
  for scale in (1e-3, 1.0, 1e3):
    g = {"log2_t": jnp.asarray([scale, -scale])}
    upd, _ = tx.update(g, tx.init(g))
    np.testing.assert_allclose(upd["log2_t"], [-0.01 * np.tanh(1.0), 0.01 * np.tanh(1.0)], rtol=1e-4)
  assert isinstance(tx, optax.GradientTransformation)


@settings(max_examples=60, deadline=None)
@given(bits=st.integers(2, 8), signed=st.booleans(), rounding=st.sampled_from(["half_up", "floor"]),
       alpha=st.floats(0.05, 10.0), seed=st.integers(0, 2 ** 16))
def test_pact_properties(bits, signed, rounding, alpha, seed):
  x = jax.random.normal(jax.random.key(seed), (64,)) * 3 * alpha
  y = qz.pact(x, alpha, bits, signed, rounding)
  s = float(qz.pact_scale(jnp.float32(alpha), bits, signed))
  clipped = np.clip(np.asarray(x), -alpha if signed else 0.0, alpha)
  err = np.asarray(y) - clipped
  if rounding == "half_up":
    assert np.all(np.abs(err) <= s / 2 + 1e-5 * alpha)
  else:
    assert np.all((err <= 1e-5 * alpha) & (err > -s - 1e-5 * alpha))
  # Idempotent (round-half-up): a quantized tensor is on the grid already.
  if rounding == "half_up":
      np.testing.assert_allclose(qz.pact(y, alpha, bits, signed, rounding), y, atol=1e-5 * alpha)
