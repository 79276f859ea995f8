"""Quantized layer modules: the activation quantizer (`ActQuant`) and one module per graph node (`QNode`).

Tensors between nodes are `QTensor`s: fake-quantized values on a grid and the grid's quantum ε (scalar).
Variables of a node named N (see `jaxbp.quant.graph` for the ops):

  params[N]["kernel"], ["bias"]      conv (K, Cin/groups, Cout) / dense (Cin, Cout) weights, BN folded; bias
                                     (Cout,) whenever the float conv had one or a BN was folded into it.
  params[N]["scale"], ["shift"]      affine (a BatchNorm with no conv before it), per channel.
  params[N]["norm_scale"], ["norm_bias"], ["prelu"]   norm_prelu (InstanceNorm affine + PReLU slope).
  params[N]["q"]["alpha"]            PACT clip α of N's output grid (policy act_method="pact").
  params[N]["q"]["log2_t"]           TQT log2 threshold of N's output grid (act_method="tqt").

Two extra, optional variable collections are written when they are mutable in `apply`:
  "calibration"  float pass (nothing quantized); every learned-range quantizer records the percentile of
                 |x| it sees (`jaxbp.quant.calibrate` turns it into α / log2 t).
  "readoff"      eval pass; every node records the numbers an integerizer needs (`jaxbp.quant.readoff`).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from jaxbp.models.dropout import Dropout
from jaxbp.models.layers import (
  center_crop,
  conv_impl,
  linear_upsample2,
  torch_bias_init,
  torch_kernel_init,
  zero_pad_maxpool,
)
from jaxbp.models.mobilenet import conv2d
from jaxbp.quant import bayesian_bits as bb
from jaxbp.quant import quantizers as qz
from jaxbp.quant.graph import GRID_PRESERVING, GridSpec, Node
from jaxbp.quant.policy import QuantConfig

CALIBRATION_PERCENTILE = 99.99


@flax.struct.dataclass
class QTensor:
  """A fake-quantized tensor: `value` (float, on the grid), its quantum `scale` (scalar), its grid's bit width
  `bits` (int scalar; Bayesian-Bits gated: traced) and signedness."""

  value: jax.Array
  scale: jax.Array
  bits: jax.Array | None = None
  signed: bool = flax.struct.field(pytree_node=False, default=True)


# The add's intermediate quantum is the output quantum times 2^-t with t = floor(log2(ε_y / need) + ADD_T_TOL):
# the tolerance keeps twin (float32) and integer graph (float64) on the same t where the ratio is a power of two.
ADD_T_TOL = 1e-5
ADD_MAX_T = 30


def add_clip_ratio(bits, signed: bool):
  """max|X|·ε / 8-bit clip bound per unit ε of an input grid (the add clips each requantized input to the 8-bit
  grid of its signedness: [0, 255] or [-128, 127]): (2^b - 1)/255 unsigned, 2^(b-1)/128 signed."""
  bits = jnp.asarray(bits, jnp.float32)
  return jnp.exp2(bits - 1) / 128 if signed else (jnp.exp2(bits) - 1) / 255


def pulp_add(a: QTensor, b: QTensor, out_scale: jax.Array, rounding: str) -> jax.Array:
  """The residual add as PULP-NN computes it (see `jaxbp.integerize.ops`), in real units before the output
  quantizer: each input onto the intermediate quantum ε_m = ε_y·2^-t (the finest on which neither input clips;
  `jaxbp.integerize.requant.add_mid_scale`), clipped to its 8-bit grid, then summed."""
  need = jnp.maximum(a.scale * add_clip_ratio(a.bits, a.signed), b.scale * add_clip_ratio(b.bits, b.signed))
  t = jax.lax.stop_gradient(jnp.minimum(jnp.floor(jnp.log2(out_scale / need) + ADD_T_TOL), ADD_MAX_T))
  mid = jnp.where(t >= 0, out_scale * jnp.exp2(-t), need)  # an output finer than an input: ε_m = need
  parts = [qz.fake_quant(x.value, mid, *((-128, 127) if x.signed else (0, 255)), 0, rounding) for x in (a, b)]
  # The sum S·ε_m sits on the integer shift's rounding boundaries (S·2^-t output quanta); float32's S·ε_m / ε_y
  # can land just below one. A constant nudge of a quarter step (half an intermediate step for t >= 1, a
  # quarter output quantum otherwise) moves it off them without changing the integer rounding's result.
  nudge = jax.lax.stop_gradient(jnp.where(t >= 0, 0.25 * jnp.minimum(jnp.exp2(1 - t), 1.0), 0.0) * out_scale)
  return parts[0] + parts[1] + nudge


def _calibrating(module: nn.Module) -> bool:
  return module.is_mutable_collection("calibration") and not module.is_initializing()


def _record(module: nn.Module, name: str, value) -> None:
  if module.is_mutable_collection("readoff") and not module.is_initializing():
    module.variable("readoff", name, lambda: value)


class ActQuant(nn.Module):
  """Quantizes an activation onto the grid `grid` (bits from the policy unless the grid fixes them).

  `z` (Bayesian-Bits gate values) makes the grid's width a gated mix of `policy.bayesian_bits.bits`.
  Returns (values, quantum).
  """

  grid: GridSpec
  policy: QuantConfig

  def _fixed(self, x, bits):
    qmin, qmax = qz.int_range(bits, self.grid.signed)
    s = jnp.float32(self.grid.scale)
    return qz.fake_quant(x, s, qmin, qmax, 0, self.policy.rounding), s

  @nn.compact
  def __call__(self, x: jax.Array, z: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    g, pol = self.grid, self.policy
    bits = g.bits or pol.act_bits
    if g.scale is not None:
      if _calibrating(self):
        return x, jnp.float32(g.scale)
      y, s = self._fixed(x, bits)
      _record(self, "bits", jnp.int32(bits))
      _record(self, "scale", s)
      return y, s
    if pol.act_method == "pact":
      rng = self.param("alpha", nn.initializers.constant(1.0), ())
      quant = lambda b: (pact_full(x, rng, b, g.signed, pol.rounding), qz.pact_scale(rng, b, g.signed))
    else:
      rng = self.param("log2_t", nn.initializers.zeros, ())
      quant = lambda b: (qz.tqt(x, rng, b, g.signed, pol.rounding, pol.power_of_two),
                         qz.tqt_scale(rng, b, g.signed, pol.power_of_two))
    if _calibrating(self):
      self.sow("calibration", "range", jnp.percentile(jnp.abs(x), CALIBRATION_PERCENTILE),
               reduce_fn=lambda _, v: v, init_fn=lambda: jnp.zeros(()))
      return x, jnp.ones((), x.dtype)
    y, s, b = _fixed_or_gated(quant, bits, z, pol.bayesian_bits)
    _record(self, "bits", b)
    _record(self, "scale", s)
    return y, s


def pact_full(x: jax.Array, alpha: jax.Array, bits: int, signed: bool, rounding: str) -> jax.Array:
  """PACT onto the kernels' full signed grid: `qz.pact` (symmetric, [-(2^(b-1)-1), 2^(b-1)-1]·ε) plus the level
  -2^(b-1)·ε, which the integer kernels' clip reaches (PULP-NN clips signed values to [-2^(b-1), 2^(b-1)-1])."""
  y = qz.pact(x, alpha, bits, signed, rounding)
  if not signed:
    return y
  qmax = 2 ** (bits - 1) - 1
  s = qz.pact_scale(alpha, bits, True)
  below = x < -(qmax + (0.5 if rounding == "half_up" else 0.0)) * s  # rounds to -(qmax + 1) or lower
  return jnp.where(below, -(qmax + 1) * s, y)


def _fixed_or_gated(quant, bits: int, z: jax.Array | None, cfg) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(quantized tensor, quantum, bit width) at fixed `bits` (z None) or Bayesian-Bits gated by `z`.

  `quant(b) -> (tensor, quantum)` quantizes at b bits; gated, the tensor is the residual sum over `cfg.bits`.
  """
  if z is None:
    y, s = quant(bits)
    return y, s, jnp.int32(bits)
  ys, ss = zip(*[quant(b) for b in cfg.bits])
  return bb.residual_quantize(ys, z, cfg), bb.effective_scale(ss, z, cfg), bb.bits_from_gates(z, cfg)


def _weight_scale_vector(scale: jax.Array, cout: int) -> jax.Array:
  return jnp.broadcast_to(jnp.reshape(scale, (-1,)), (cout,)) if scale.size == 1 else jnp.reshape(scale, (cout,))


class QNode(nn.Module):
  """One node of a quantized graph (see `jaxbp.quant.graph`): (inputs) -> QTensor, or the accumulator."""

  node: Node
  policy: QuantConfig

  # --- weights ----------------------------------------------------------------------------------------------

  def _weights(self, kernel: jax.Array, z: jax.Array | None) -> tuple[jax.Array, jax.Array]:
    """(fake-quantized kernel, per-output-channel quantum (Cout,))."""
    pol, cout = self.policy, kernel.shape[-1]
    if _calibrating(self):
      return kernel, jnp.ones((cout,), kernel.dtype)
    axis = -1 if pol.per_channel else None
    quant = lambda b: (qz.minmax_quantize(kernel, b, channel_axis=axis, rounding=pol.rounding),
                       _weight_scale_vector(jax.lax.stop_gradient(
                           qz.minmax_scale(kernel, b, channel_axis=axis, rounding=pol.rounding)[0]), cout))
    w, s, b = _fixed_or_gated(quant, pol.weight_bits, z, pol.bayesian_bits)
    _record(self, "w_bits", b)
    _record(self, "w_q", w)
    _record(self, "w_scale", s)
    return w, s

  def _bias(self, bias: jax.Array | None, x: QTensor, w_scale: jax.Array) -> jax.Array:
    if bias is None:
      return 0.0
    if _calibrating(self):
      return bias
    acc = x.scale * w_scale  # ε_x·ε_w per output channel
    b = qz.quantize_bias(bias, acc, self.policy.bias_bits, self.policy.rounding)
    _record(self, "b_q", b)
    _record(self, "acc_scale", acc)
    return b

  def _conv(self, x: QTensor, z_w) -> jax.Array:
    n, s = self.node, self.node.spec
    has_bias = s.use_bias or bool(n.bn)
    nd = x.value.ndim - 2  # 1: NWC signals, kernel (K, Cin/g, Cout); 2: NHWC images, kernel (K, K, Cin/g, Cout)
    kernel = self.param("kernel", torch_kernel_init, (s.kernel,) * nd + (s.in_features // s.groups, s.features))
    bias = self.param("bias", torch_bias_init(s.in_features // s.groups * s.kernel ** nd), (s.features,)) \
        if has_bias else None
    w, w_scale = self._weights(kernel, z_w)
    if nd == 2:  # MobileNets: square kernel, symmetric int padding
      y = conv2d(x.value, w, s.stride, s.padding, s.groups)
      return y + self._bias(bias, x, w_scale)
    padding = s.padding if isinstance(s.padding, str) else [(s.padding, s.padding)]
    y = conv_impl("auto")(x.value, w, (s.stride,), padding, dimension_numbers=("NWC", "WIO", "NWC"),
                          feature_group_count=s.groups)
    return y + self._bias(bias, x, w_scale)

  def _dense(self, x: QTensor, z_w) -> jax.Array:
    n = self.node
    cin = x.value.shape[-1]
    kernel = self.param("kernel", torch_kernel_init, (cin, n.features))
    bias = self.param("bias", torch_bias_init(cin), (n.features,)) if n.use_bias else None
    w, w_scale = self._weights(kernel, z_w)
    return x.value @ w + self._bias(bias, x, w_scale)

  # --- the node -------------------------------------------------------------------------------------------

  @nn.compact
  def __call__(self, inputs: Sequence[QTensor | jax.Array], *, train: bool = False, z_out: jax.Array | None = None,
               z_w: jax.Array | None = None) -> QTensor | jax.Array:
    n = self.node
    x = inputs[0]
    if n.op in GRID_PRESERVING:
      if n.op == "maxpool":
        return x.replace(value=zero_pad_maxpool(x.value, n.window))
      if n.op == "pad_channels":
        return x.replace(value=jnp.pad(x.value, ((0, 0), (0, 0), n.pad)))
      return x.replace(value=Dropout(n.rate, deterministic=not train)(x.value))
    q = None if n.out is None else ActQuant(n.out, self.policy, name="q")
    if n.op == "input":
      y = x
    elif n.op == "conv":
      _record(self, "in_scale", x.scale)
      y = self._conv(x, z_w)
    elif n.op == "dense":
      _record(self, "in_scale", x.scale)
      y = self._dense(x, z_w)
    elif n.op == "affine":
      c = x.value.shape[-1]
      y = x.value * self.param("scale", nn.initializers.ones, (c,)) + self.param("shift", nn.initializers.zeros, (c,))
    elif n.op == "mean":
      y = jnp.mean(x.value, axis=tuple(range(1, x.value.ndim - 1)))  # over time, or H and W
    elif n.op == "add":
      y = x.value + inputs[1].value
      if q is not None and not _calibrating(self):
        y = pulp_add(x, inputs[1], q(y, z_out)[1], self.policy.rounding)
    elif n.op == "mul":
      y = x.value * inputs[1].value[:, None, :]
    elif n.op == "sigmoid":
      y = jax.nn.sigmoid(x.value)
    elif n.op == "upsample2":
      y = linear_upsample2(x.value)
    elif n.op == "concat":
      length = min(x.value.shape[1], inputs[1].value.shape[1])
      y = jnp.concatenate([center_crop(x.value, length), center_crop(inputs[1].value, length)], axis=-1)
    elif n.op == "norm_prelu":
      c = x.value.shape[-1]
      mu = jnp.mean(x.value, axis=1, keepdims=True)
      var = jnp.mean(jnp.square(x.value - mu), axis=1, keepdims=True)
      y = (x.value - mu) * jax.lax.rsqrt(var + 1e-5) * self.param("norm_scale", nn.initializers.ones, (c,)) \
          + self.param("norm_bias", nn.initializers.zeros, (c,))
      y = jnp.where(y >= 0, y, self.param("prelu", nn.initializers.constant(0.25), (c,)) * y)
    else:
      raise ValueError(f"node {n.name!r}: unknown op {n.op!r}")
    if n.act == "relu":
      y = jax.nn.relu(y)
    if n.out is None:
      return y
    value, scale = q(y, z_out)
    return QTensor(value, scale, self._out_bits(z_out), n.out.signed)

  def _out_bits(self, z: jax.Array | None) -> jax.Array:
    """Bit width of this node's output grid (as `ActQuant` picks it)."""
    g, pol = self.node.out, self.policy
    if z is None or g.scale is not None:
      return jnp.int32(g.bits or pol.act_bits)
    return bb.bits_from_gates(z, pol.bayesian_bits)
