"""A choice slot's alternatives as one convolution: every op is linear in its input with the slot's window.

A standard conv (K, Cin/g, Cout) is the dense conv with its block-diagonal kernel; a depthwise-separable
one (depthwise (K, 1, Cin), no bias, then pointwise (1, Cin, Cout)) is the dense conv with kernel
dw[k, c] · pw[c, o]; the identity is the dense conv whose kernel is 1 at the tap that reads x[l] itself. So
Σ_i θ_i · op_i(x) = conv(x, Σ_i θ_i K_i) + Σ_i θ_i b_i, exactly in real arithmetic (a "superkernel", as in
Single-Path NAS): one matmul per slot and per step instead of every branch's, the gradients of α and of every
branch's weights unchanged by the chain rule, and at one-hot θ (fine-tuning an exported choice) the same
program for every architecture. Values differ from running the branches only by float rounding.

The parameters keep the branch modules' paths and initializers (`<slot>/conv/conv/{kernel,bias}`,
`<slot>/dw/depthwise/kernel`, `<slot>/dw/pointwise/{kernel,bias}`), so a supernet's variables, its exported
networks and their initial values are those of `jaxbp.models.layers` ops.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxbp.models.layers import (SlotSpec, block_diagonal, conv_impl, conv_padding, torch_bias_init,
                                 torch_kernel_init)


class ConvParams(nn.Module):
  """The parameters `nn.Conv` would create (same names, shapes, initializers, creation order), not applied.

  Returns (kernel (K, Cin/groups, Cout), bias (Cout,) or None)."""

  features: int
  kernel: int
  in_features: int
  groups: int = 1
  use_bias: bool = True

  @nn.compact
  def __call__(self) -> tuple[jax.Array, jax.Array | None]:
    kernel = self.param("kernel", torch_kernel_init, (self.kernel, self.in_features // self.groups, self.features),
                        jnp.float32)
    bias = None
    if self.use_bias:
      fan_in = self.in_features // self.groups * self.kernel
      bias = self.param("bias", torch_bias_init(fan_in), (self.features,), jnp.float32)
    return kernel, bias


def identity_tap(spec: SlotSpec) -> int:
  """The kernel tap that reads x[l] at output l of a stride-1 slot: the zeros padded before the first sample."""
  return (spec.kernel - 1) // 2 if isinstance(spec.padding, str) else spec.padding


class OpKernel(nn.Module):
  """One alternative of a slot as (dense kernel (K, Cin, Cout), bias (Cout,) or None); see the module doc."""

  spec: SlotSpec
  op: str

  @nn.compact
  def __call__(self) -> tuple[jax.Array, jax.Array | None]:
    s = self.spec
    if self.op == "conv":
      kernel, bias = ConvParams(s.features, s.kernel, s.in_features, s.groups, s.use_bias, name="conv")()
      return block_diagonal(kernel, s.groups), bias
    if self.op == "dw":
      dw, _ = ConvParams(s.in_features, s.kernel, s.in_features, s.in_features, False, name="depthwise")()
      pw, bias = ConvParams(s.features, 1, s.in_features, 1, s.use_bias, name="pointwise")()
      return dw[:, 0, :, None] * pw[0][None], bias  # (K, Cin, 1) * (1, Cin, Cout)
    if self.op == "id":  # the caller (`ChoiceConv`) has checked that identity fits the slot
      eye = jnp.eye(s.in_features, dtype=jnp.float32)
      return jnp.zeros((s.kernel, s.in_features, s.features), jnp.float32).at[identity_tap(s)].set(eye), None
    raise ValueError(f"layer {'/'.join(self.path[:-1])!r}: unknown op {self.op!r}")


def dense_conv(x: jax.Array, kernel: jax.Array, bias: jax.Array | None, spec: SlotSpec) -> jax.Array:
  """The slot's conv with a dense kernel: x (B, L, Cin), kernel (K, Cin, Cout) -> (B, L', Cout)."""
  y = conv_impl("auto")(x, kernel, (spec.stride,), conv_padding(spec.padding),
                        dimension_numbers=("NWC", "WIO", "NWC"))
  return y if bias is None else y + bias
