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

from jaxbp.models.layers import (
  center_crop,
  conv_impl,
  linear_upsample2,
  torch_bias_init,
  torch_kernel_init,
  zero_pad_maxpool,
)
from jaxbp.quant import bayesian_bits as bb
from jaxbp.quant import quantizers as qz
from jaxbp.quant.graph import GRID_PRESERVING, GridSpec, Node
from jaxbp.quant.policy import QuantConfig

CALIBRATION_PERCENTILE = 99.99


@flax.struct.dataclass
class QTensor:
  """A fake-quantized tensor: `value` (float, on the grid) and its quantum `scale` (scalar)."""

  value: jax.Array
  scale: jax.Array


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
      quant = lambda b: (qz.pact(x, rng, b, g.signed, pol.rounding), qz.pact_scale(rng, b, g.signed))
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
    kernel = self.param("kernel", torch_kernel_init, (s.kernel, s.in_features // s.groups, s.features))
    bias = self.param("bias", torch_bias_init(s.in_features // s.groups * s.kernel), (s.features,)) \
        if has_bias else None
    w, w_scale = self._weights(kernel, z_w)
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
        return QTensor(zero_pad_maxpool(x.value, n.window), x.scale)
      if n.op == "pad_channels":
        return QTensor(jnp.pad(x.value, ((0, 0), (0, 0), n.pad)), x.scale)
      return QTensor(nn.Dropout(n.rate, deterministic=not train)(x.value), x.scale)
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
      y = jnp.mean(x.value, axis=1)
    elif n.op == "add":
      y = x.value + inputs[1].value
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
    value, scale = ActQuant(n.out, self.policy, name="q")(y, z_out)
    return QTensor(value, scale)
