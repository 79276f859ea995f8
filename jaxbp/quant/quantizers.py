"""Fake-quantizers as pure functions with straight-through gradients, usable inside any Flax module.

Every quantizer maps a float tensor to float values on an integer grid `value = (q - zero_point) * scale`,
q an integer in [qmin, qmax]. The forward pass is exact fake quantization; gradients are:

  minmax (weights)  scale from min/max (not differentiated); identity gradient to the input (STE).
  pact (activations) y = clip(x, lo, α), lo = 0 (unsigned) or -α (signed); STE through rounding,
                    dy/dx = 1 inside the clip range, dy/dα = 1 where x ≥ α (and -1 where x ≤ -α, signed).
  tqt               learned log2 threshold t; grid as the TQT paper (signed: s = t/2^(b-1),
                    [-2^(b-1), 2^(b-1)-1]; unsigned: s = t/2^b, [0, 2^b-1]); "generalized" (default) keeps
                    t = 2^log2_t as is, `power_of_two=True` rounds log2 t up. Gradients (paper, eq. 6):
                    dq/dx = 1 inside; dq/d(log2 t) = s·ln2·(⌊x/s⌉ - x/s) inside, s·ln2·qmin / s·ln2·qmax
                    below / above the range.

Grids (`int_range`): signed "narrow" grids are symmetric, [-(2^(b-1)-1), 2^(b-1)-1] (zero exactly
representable, no lone -2^(b-1) level); signed full grids are [-2^(b-1), 2^(b-1)-1]; unsigned [0, 2^b-1].
Rounding modes (`ROUNDING`): "half_up" = floor(v + 1/2) (what an integer kernel does with the rounding
offset folded into its bias), "floor", "half_even" (IEEE, jnp.round). Bits may be 2..32 (tested 2..8).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import optax

ROUNDING = ("half_up", "floor", "half_even")
_EPS = 1e-8


def check_rounding(rounding: str) -> str:
  if rounding not in ROUNDING:
    raise ValueError(f"unknown rounding mode {rounding!r}; expected one of {ROUNDING}")
  return rounding


def check_bits(bits: int) -> int:
  if not isinstance(bits, int) or not 1 <= bits <= 32:
    raise ValueError(f"bits must be an int in [1, 32], got {bits!r}")
  return bits


def round_int(v: jax.Array, rounding: str = "half_up") -> jax.Array:
  """Rounds `v` to integers (float dtype) with the named mode; no gradient rule (use `round_ste`)."""
  check_rounding(rounding)
  if rounding == "half_up":
    return jnp.floor(v + 0.5)
  if rounding == "floor":
    return jnp.floor(v)
  return jnp.round(v)


def round_ste(v: jax.Array, rounding: str = "half_up") -> jax.Array:
  """Rounding with a straight-through (identity) gradient."""
  return v + jax.lax.stop_gradient(round_int(v, rounding) - v)


def int_range(bits: int, signed: bool, narrow: bool = True) -> tuple[int, int]:
  """(qmin, qmax) of a `bits`-bit grid; signed narrow = symmetric [-(2^(b-1)-1), 2^(b-1)-1]."""
  check_bits(bits)
  if not signed:
    return 0, 2 ** bits - 1
  if narrow and bits < 2:
    raise ValueError("a signed narrow grid needs at least 2 bits")
  half = 2 ** (bits - 1)
  return (-(half - 1) if narrow else -half), half - 1


def _unbroadcast(g: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """Sums `g` down to `shape` (the inverse of broadcasting a parameter of that shape)."""
  extra = g.ndim - len(shape)
  g = jnp.sum(g, axis=tuple(range(extra))) if extra > 0 else g
  axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
  return jnp.sum(g, axis=axes, keepdims=True).reshape(shape) if axes else g.reshape(shape)


# --- generic grid quantization ----------------------------------------------------------------------------


def quantize_int(x: jax.Array, scale: jax.Array, qmin: int, qmax: int, zero_point: jax.Array | int = 0,
                 rounding: str = "half_up") -> jax.Array:
  """Integer codes q = clip(round(x / scale) + zero_point, qmin, qmax) (float dtype, no gradient rule)."""
  return jnp.clip(round_int(x / scale, rounding) + zero_point, qmin, qmax)


def fake_quant(x: jax.Array, scale: jax.Array, qmin: int, qmax: int, zero_point: jax.Array | int = 0,
               rounding: str = "half_up") -> jax.Array:
  """(clip(round(x/scale) + zp, qmin, qmax) - zp)·scale with STE rounding: d/dx = 1 inside the range, 0 outside.

  Gradients also flow to `scale` (LSQ-style) unless the caller stops them.
  """
  q = jnp.clip(round_ste(x / scale, rounding) + zero_point, qmin, qmax)
  return (q - zero_point) * scale


# --- min-max (weights) ---------------------------------------------------------------------------------------


def minmax_scale(w: jax.Array, bits: int, *, channel_axis: int | None = -1, symmetric: bool = True,
                 narrow: bool = True, rounding: str = "half_up") -> tuple[jax.Array, jax.Array]:
  """(scale, zero_point) of min-max quantization, per output channel (`channel_axis`) or per tensor (None).

  symmetric: scale = max|w| / qmax, zero point 0 (signed grid, narrow by default).
  asymmetric: range [min(w, 0), max(w, 0)] on [0, 2^b - 1], zero_point = round(-min/scale) (0 exact).
  Shapes broadcast against `w` (keepdims). All-zero channels get scale 1.
  """
  axes = tuple(range(w.ndim)) if channel_axis is None else tuple(
      i for i in range(w.ndim) if i != channel_axis % w.ndim)
  if symmetric:
    _, qmax = int_range(bits, True, narrow)
    amax = jnp.max(jnp.abs(w), axis=axes, keepdims=True)
    scale = jnp.where(amax > 0, amax / qmax, 1.0)
    return scale, jnp.zeros_like(scale)
  _, qmax = int_range(bits, False)
  lo = jnp.minimum(jnp.min(w, axis=axes, keepdims=True), 0.0)
  hi = jnp.maximum(jnp.max(w, axis=axes, keepdims=True), 0.0)
  scale = jnp.where(hi > lo, (hi - lo) / qmax, 1.0)
  return scale, round_int(-lo / scale, rounding)


def minmax_quantize(w: jax.Array, bits: int, *, channel_axis: int | None = -1, symmetric: bool = True,
                    narrow: bool = True, rounding: str = "half_up") -> jax.Array:
  """Fake-quantized weights (min-max, scale not differentiated), STE gradient to `w`."""
  scale, zp = jax.lax.stop_gradient(
      minmax_scale(w, bits, channel_axis=channel_axis, symmetric=symmetric, narrow=narrow, rounding=rounding))
  qmin, qmax = int_range(bits, symmetric, narrow)
  # The range covers every weight (nothing is clipped): a pure straight-through identity gradient.
  return w + jax.lax.stop_gradient(fake_quant(w, scale, qmin, qmax, zp, rounding) - w)


def minmax_codes(w: jax.Array, bits: int, *, channel_axis: int | None = -1, symmetric: bool = True,
                 narrow: bool = True, rounding: str = "half_up") -> tuple[jax.Array, jax.Array, jax.Array]:
  """(integer codes int32, scale, zero_point) such that minmax_quantize(w) == (codes - zp)·scale."""
  scale, zp = minmax_scale(w, bits, channel_axis=channel_axis, symmetric=symmetric, narrow=narrow,
                           rounding=rounding)
  qmin, qmax = int_range(bits, symmetric, narrow)
  return quantize_int(w, scale, qmin, qmax, zp, rounding).astype(jnp.int32), scale, zp


def quantize_bias(b: jax.Array, scale: jax.Array, bits: int = 32, rounding: str = "half_up") -> jax.Array:
  """Bias on the accumulator grid `scale` (= ε_x·ε_w per channel) as a `bits`-bit signed integer; STE."""
  qmin, qmax = int_range(bits, True, narrow=False)
  return fake_quant(b, scale, qmin, qmax, 0, rounding)


# --- PACT (activations) --------------------------------------------------------------------------------------


def pact_scale(alpha: jax.Array, bits: int, signed: bool = False) -> jax.Array:
  """Quantum of a PACT grid: α/(2^b - 1) unsigned, α/(2^(b-1) - 1) signed (symmetric narrow)."""
  return jnp.maximum(alpha, _EPS) / int_range(bits, signed, narrow=True)[1]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def pact(x: jax.Array, alpha: jax.Array, bits: int, signed: bool = False, rounding: str = "half_up") -> jax.Array:
  """PACT: clip(x, 0, α) (signed: clip(x, -α, α)) quantized to the `bits`-bit grid of `pact_scale`.

  `alpha` is a scalar or broadcasts against `x` (e.g. per channel). STE gradients, see the module docstring.
  """
  return _pact_fwd(x, alpha, bits, signed, rounding)[0]


def _pact_fwd(x, alpha, bits, signed, rounding):
  a = jnp.maximum(alpha, _EPS)
  y = jnp.clip(x, -a if signed else 0.0, a)
  s = pact_scale(alpha, bits, signed)
  out = round_int(y / s, rounding) * s
  return out, (x, alpha)


def _pact_bwd(bits, signed, rounding, res, g):
  del bits, rounding
  x, alpha = res
  a = jnp.maximum(alpha, _EPS)
  lo = -a if signed else 0.0
  inside = (x > lo) & (x < a)
  d_alpha = jnp.where(x >= a, 1.0, 0.0)
  if signed:
    d_alpha = d_alpha - jnp.where(x <= -a, 1.0, 0.0)
  return g * inside, _unbroadcast(g * d_alpha, jnp.shape(alpha)).astype(jnp.result_type(alpha))


pact.defvjp(_pact_fwd, _pact_bwd)


# --- TQT ------------------------------------------------------------------------------------------------------


def tqt_range(bits: int, signed: bool) -> tuple[int, int]:
  """TQT's integer range: [-2^(b-1), 2^(b-1)-1] signed, [0, 2^b - 1] unsigned."""
  return int_range(bits, signed, narrow=False)


def tqt_scale(log2_t: jax.Array, bits: int, signed: bool, power_of_two: bool = False) -> jax.Array:
  """s = 2^log2_t / 2^(b-1) (signed) or 2^log2_t / 2^b (unsigned); log2 t rounded up if `power_of_two`."""
  e = jnp.ceil(log2_t) if power_of_two else log2_t
  return jnp.exp2(e - (bits - 1 if signed else bits))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def tqt(x: jax.Array, log2_t: jax.Array, bits: int, signed: bool = True, rounding: str = "half_up",
        power_of_two: bool = False) -> jax.Array:
  """TQT fake quantization with a learned log2 threshold; gradients as in the TQT paper (module docstring)."""
  return _tqt_fwd(x, log2_t, bits, signed, rounding, power_of_two)[0]


def _tqt_fwd(x, log2_t, bits, signed, rounding, power_of_two):
  s = tqt_scale(log2_t, bits, signed, power_of_two)
  n, p = tqt_range(bits, signed)
  q = jnp.clip(round_int(x / s, rounding), n, p)
  return q * s, (x, log2_t)


def _tqt_bwd(bits, signed, rounding, power_of_two, res, g):
  x, log2_t = res
  s = tqt_scale(log2_t, bits, signed, power_of_two)
  n, p = tqt_range(bits, signed)
  v = x / s
  r = round_int(v, rounding)
  inside = (r >= n) & (r <= p)
  d_log2_t = s * math.log(2.0) * jnp.where(inside, r - v, jnp.where(r < n, n, p))
  return g * inside, _unbroadcast(g * d_log2_t, jnp.shape(log2_t)).astype(jnp.result_type(log2_t))


tqt.defvjp(_tqt_fwd, _tqt_bwd)


def tqt_normed_update(learning_rate: float, decay: float = 0.999, eps: float = 1e-8
                      ) -> optax.GradientTransformation:
  """TQT's normalized log-threshold update: v ← decay·v + (1-decay)·g², step = -lr·tanh(g / (√v̂ + eps)).

  The normalization makes the step independent of the gradient's scale (Adam-like; v̂ bias-corrected) and
  tanh bounds it to `learning_rate` in log2 units. Use it for the `log2_t` parameters only
  (e.g. with `optax.multi_transform`).
  """
  scale = optax.scale_by_rms(decay=decay, eps=eps, eps_in_sqrt=False, bias_correction=True)

  def init(params):
    return scale.init(params)

  def update(grads, state, params=None):
    normed, state = scale.update(grads, state, params)
    return jax.tree.map(lambda u: -learning_rate * jnp.tanh(u), normed), state

  return optax.GradientTransformation(init, update)
