"""Layers shared by the seed networks, and the *conv slot*: the one place a network creates a convolution.

Every convolution of a seed network is built through a slot factory
`slot(spec: SlotSpec, op: str, name: str) -> nn.Module`. The default factory,
`plain_slot`, builds the op named in the network config ("conv", "dw" or "id");
`jaxbp.nas` passes a factory that builds a differentiable choice over all of
them. This is what turns any network built from these layers into a supernet
without a hand-written copy of it.

Activations are NWC: (batch, length, channels).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

OPS = ("conv", "dw", "id")  # standard conv, depthwise-separable, identity.


@dataclasses.dataclass(frozen=True)
class SlotSpec:
  """Static description of one convolution slot of a seed network.

  Attributes:
    in_features: input channels.
    features: output channels.
    kernel: kernel size (samples).
    stride: stride (samples).
    groups: feature groups of the seed's standard conv.
    use_bias: whether the seed's conv has a bias.
    padding: "SAME" (TF-style, as the seeds' PyTorch `PadSame`) or a symmetric
      int padding on each side (PyTorch `padding=p`).
  """

  in_features: int
  features: int
  kernel: int
  stride: int = 1
  groups: int = 1
  use_bias: bool = True
  padding: str | int = "SAME"

  @property
  def allows_identity(self) -> bool:
    return self.in_features == self.features and self.stride == 1

  def allowed_ops(self) -> tuple[str, ...]:
    return OPS if self.allows_identity else OPS[:2]


# PyTorch's default init (what the benchmark's reference networks start from): kernels and biases
# uniform in ±1/sqrt(fan_in), fan_in = Cin/groups · K. Flax's lecun_normal starts 3x wider and
# measurably hurts the seeds under the benchmark's protocol (PPGBP ResNet1d: 16.0 vs 14.0 mmHg SBP).
torch_kernel_init = nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")


def torch_bias_init(fan_in: int):
  """Uniform(±1/sqrt(fan_in)) bias init, as PyTorch's Conv1d/Linear."""
  bound = 1.0 / max(fan_in, 1) ** 0.5

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


def conv_padding(padding: str | int):
  """A `SlotSpec.padding` as lax/nn.Conv take it: "SAME", or [(p, p)] for an explicit symmetric padding."""
  return padding if isinstance(padding, str) else [(padding, padding)]


def block_diagonal(kernel: jax.Array, groups: int) -> jax.Array:
  """A grouped kernel (K, Cin/g, Cout) as the dense (K, Cin, Cout) one with zero off-diagonal blocks."""
  if groups == 1:
    return kernel
  k, cg, cout = kernel.shape
  blocks = kernel.reshape(k, cg, groups, cout // groups)
  return jnp.einsum("kcgo,hg->khcgo", blocks, jnp.eye(groups, dtype=kernel.dtype)).reshape(k, cg * groups, cout)


def im2col_conv(lhs: jax.Array, rhs: jax.Array, window_strides, padding, *args, feature_group_count: int = 1,
                **kwargs) -> jax.Array:
  """1-D NWC/WIO convolution from strided slices and one matmul (drop-in for `lax.conv_general_dilated`).

  XLA's CPU backend runs grouped and depthwise convolutions (and vmapped convs, which become grouped
  convs) several times slower than a matmul. Here a depthwise conv is K shifted multiply-adds, a grouped
  conv multiplies by its block-diagonal dense kernel (zero blocks cost FLOPs, not accuracy), and a dense
  conv is im2col (L', K·Cin) @ (K·Cin, Cout). lhs (B, L, Cin), rhs (K, Cin/groups, Cout) -> (B, L', Cout).
  """
  del args, kwargs  # no dilation in these networks.
  length, cin = lhs.shape[1], lhs.shape[2]
  k, cg, cout = rhs.shape
  s, g = window_strides[0], feature_group_count
  if isinstance(padding, str):
    if padding != "SAME":
      raise ValueError(f"im2col_conv supports SAME or explicit padding, got {padding!r}")
    lout = -(-length // s)
    total = max((lout - 1) * s + k - length, 0)
    pad = (total // 2, total - total // 2)
  else:
    pad = tuple(padding[0])
  x = jnp.pad(lhs, ((0, 0), pad, (0, 0)))
  lout = (x.shape[1] - k) // s + 1
  taps = [x[:, i:i + s * (lout - 1) + 1:s, :] for i in range(k)]  # K x (B, L', Cin)
  if g > 1 and cg == 1 and cout == cin:  # depthwise
    return sum(t * rhs[i, 0] for i, t in enumerate(taps))
  rhs = block_diagonal(rhs, g)  # grouped -> block-diagonal dense kernel (K, Cin, Cout)
  cols = jnp.concatenate(taps, axis=-1) if k > 1 else taps[0]  # (B, L', K*Cin)
  return jnp.einsum("blc,co->blo", cols, rhs.reshape(k * cin, cout))


def conv_impl(impl: str = "auto"):
  """The conv function for `impl`: "xla" (lax), "im2col", or "auto" (im2col on CPU, xla elsewhere)."""
  if impl == "auto":
    impl = "im2col" if jax.default_backend() == "cpu" else "xla"
  if impl == "im2col":
    return im2col_conv
  if impl == "xla":
    return jax.lax.conv_general_dilated
  raise ValueError(f"unknown conv impl {impl!r}; expected auto, xla or im2col")


def _conv(features: int, kernel: int, *, in_features: int, stride: int = 1, padding: str | int = "SAME",
          groups: int = 1, use_bias: bool = True, impl: str = "auto", name: str) -> nn.Conv:
  """An nn.Conv with PyTorch's default init and the backend's conv formulation."""
  return nn.Conv(features, (kernel,), strides=(stride,), padding=conv_padding(padding), feature_group_count=groups,
                 use_bias=use_bias, conv_general_dilated=conv_impl(impl), kernel_init=torch_kernel_init,
                 bias_init=torch_bias_init(in_features // groups * kernel), name=name)


class _SlotOp(nn.Module):
  """A fixed op in a conv slot: its static `spec` and the conv formulation `impl` (see `conv_impl`)."""

  is_conv_slot = True  # marks a conv slot for `jaxbp.cost.trace`.
  spec: SlotSpec
  impl: str = "auto"


class Conv1d(_SlotOp):
  """Standard (optionally grouped) 1-D convolution. (B, L, Cin) -> (B, L', features)."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    s = self.spec
    return _conv(s.features, s.kernel, in_features=s.in_features, stride=s.stride, padding=s.padding,
                 groups=s.groups, use_bias=s.use_bias, impl=self.impl, name="conv")(x)


class DepthwiseSeparable1d(_SlotOp):
  """Depthwise conv (same kernel/stride as the seed conv, no bias) then pointwise conv (seed's bias)."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    s = self.spec
    x = _conv(s.in_features, s.kernel, in_features=s.in_features, stride=s.stride, padding=s.padding,
              groups=s.in_features, use_bias=False, impl=self.impl, name="depthwise")(x)
    return _conv(s.features, 1, in_features=s.in_features, use_bias=s.use_bias, impl=self.impl,
                 name="pointwise")(x)


class Identity(_SlotOp):
  """Identity; only valid where the slot's input and output shapes are equal."""

  def __call__(self, x: jax.Array) -> jax.Array:
    if not self.spec.allows_identity:
      raise ValueError(f"layer {self.name!r}: identity needs in==out channels and stride 1, got {self.spec}")
    return x


OP_MODULES: dict[str, type[nn.Module]] = {"conv": Conv1d, "dw": DepthwiseSeparable1d, "id": Identity}

SlotFactory = Callable[..., nn.Module]


def plain_slot(spec: SlotSpec, op: str, name: str) -> nn.Module:
  """Builds the fixed op `op` ("conv" | "dw" | "id") for slot `name`."""
  if op not in OP_MODULES:
    raise ValueError(f"layer {name!r}: unknown op {op!r}, expected one of {OPS}")
  if op == "id" and not spec.allows_identity:
    raise ValueError(f"layer {name!r}: identity is not allowed here ({spec.in_features}->{spec.features} "
                     f"channels, stride {spec.stride})")
  return OP_MODULES[op](spec, name=name)


def resolve_ops(ops: Sequence[str] | None, names: Sequence[str], model: str) -> tuple[str, ...]:
  """Per-slot ops of a network config: None means every slot is a standard conv."""
  if ops is None:
    return ("conv",) * len(names)
  if len(ops) != len(names):
    raise ValueError(f"{model}: config has {len(ops)} ops but the network has {len(names)} conv slots "
                     f"({', '.join(names)})")
  return tuple(ops)


def zero_pad_maxpool(x: jax.Array, window: int) -> jax.Array:
  """The seeds' `MaxPool1dPadSame`: zero-pad (w-1)//2 left, rest right, then max-pool w/w. (B,L,C)->(B,ceil(L/w),C)."""
  if window == 1:
    return x
  total = window - 1
  lout = -(-x.shape[1] // window)
  x = jnp.pad(x, ((0, 0), (total // 2, total - total // 2), (0, 0)))[:, :lout * window]
  # Window == stride: a reshape and a max (XLA's CPU reduce-window and its select-and-scatter gradient are
  # several times slower). Same values; on ties the gradient is shared instead of going to the first maximum.
  return jnp.max(x.reshape(x.shape[0], lout, window, x.shape[2]), axis=2)


class PReLU(nn.Module):
  """Per-channel PReLU (PyTorch `nn.PReLU(C)`, init 0.25)."""

  init_value: float = 0.25

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    a = self.param("alpha", nn.initializers.constant(self.init_value), (x.shape[-1],))
    return jnp.where(x >= 0, x, a * x)


def linear_upsample2(x: jax.Array) -> jax.Array:
  """x2 linear interpolation with align_corners=True along time. (B, L, C) -> (B, 2L, C)."""
  lin = x.shape[1]
  lout = 2 * lin
  pos = jnp.arange(lout) * ((lin - 1) / (lout - 1)) if lout > 1 else jnp.zeros((lout,))
  lo = jnp.clip(jnp.floor(pos).astype(jnp.int32), 0, lin - 1)
  hi = jnp.clip(lo + 1, 0, lin - 1)
  w = (pos - lo)[None, :, None].astype(x.dtype)
  return x[:, lo] * (1 - w) + x[:, hi] * w


def center_crop(x: jax.Array, length: int) -> jax.Array:
  """Centre-crops (B, L, C) to (B, length, C)."""
  start = (x.shape[1] - length) // 2
  return x[:, start:start + length]
