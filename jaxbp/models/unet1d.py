"""The benchmark's UNet1d (PPG window -> ABP window), exact to the parameter.

Reference: bp-benchmark `unet1d`, see shared/docs/bp-benchmark.md.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxbp.models.layers import (PReLU, SlotFactory, SlotSpec, center_crop, linear_upsample2, plain_slot,
                                 resolve_ops)


@dataclasses.dataclass(frozen=True)
class UNet1dConfig:
  """UNet1d hyper-parameters.

  Attributes:
    base_filters: channels C of level 0; doubled at every level.
    layers: convs per level, e.g. (2, 2, 2, 2): first = level 0, last = bottom.
    kernel: kernel of the "modern" convs; edge_kernel: of conv_first / conv_final.
    ops: per conv slot op ("conv" | "dw" | "id"), in `slot_specs()` order; None = the seed.
  """

  base_filters: int = 8
  layers: tuple[int, ...] = (2, 2, 2, 2)
  kernel: int = 3
  edge_kernel: int = 5
  ops: tuple[str, ...] | None = None

  def slot_specs(self) -> dict[str, SlotSpec]:
    """Every conv slot in network order (encoder, bottom, decoder)."""
    c, k, p = self.base_filters, self.kernel, self.kernel // 2
    mk = lambda cin, cout, stride=1: SlotSpec(cin, cout, k, stride, 1, False, p)
    specs = {"conv_first": SlotSpec(1, c, self.edge_kernel, 1, 1, False, self.edge_kernel // 2)}
    for j in range(self.layers[0] - 1):
      specs[f"enc0/conv{j}"] = mk(c, c)
    specs["enc0/down"] = mk(c, c, 2)
    ch = c
    for lvl, n in enumerate(self.layers[1:-1], start=1):
      specs[f"enc{lvl}/conv0"] = mk(ch, 2 * ch)
      for j in range(1, n - 1):
        specs[f"enc{lvl}/conv{j}"] = mk(2 * ch, 2 * ch)
      specs[f"enc{lvl}/down"] = mk(2 * ch, 2 * ch, 2)
      ch *= 2
    specs["bottom/conv0"] = mk(ch, 2 * ch)
    for j in range(1, self.layers[-1] - 1):
      specs[f"bottom/conv{j}"] = mk(2 * ch, 2 * ch)
    specs["bottom/up"] = mk(2 * ch, ch)
    for lvl in reversed(range(1, len(self.layers) - 1)):
      n = self.layers[lvl]
      specs[f"dec{lvl}/conv0"] = mk(2 * ch, ch)
      for j in range(1, n - 1):
        specs[f"dec{lvl}/conv{j}"] = mk(ch, ch)
      specs[f"dec{lvl}/up"] = mk(ch, ch // 2)
      ch //= 2
    specs["dec0/conv0"] = mk(2 * c, c)
    specs["dec0/conv1"] = mk(c, c)
    specs["conv_final"] = SlotSpec(c, 1, self.edge_kernel, 1, 1, True, self.edge_kernel // 2)
    return specs

  def steps(self) -> tuple[UNetStep, ...]:
    """The forward pass as an ordered program; the network, its quantized graph and its deployment graph
    all walk this one description."""
    out = [UNetStep("slot", "conv_first")]
    out += [UNetStep("modern", f"enc0/conv{j}") for j in range(self.layers[0] - 1)]
    out += [UNetStep("save"), UNetStep("modern", "enc0/down")]
    for lvl, n in enumerate(self.layers[1:-1], start=1):
      out += [UNetStep("modern", f"enc{lvl}/conv{j}") for j in range(n - 1)]
      out += [UNetStep("save"), UNetStep("modern", f"enc{lvl}/down")]
    out += [UNetStep("modern", f"bottom/conv{j}") for j in range(max(self.layers[-1] - 1, 1))]
    out.append(UNetStep("modern", "bottom/up", upsample=True))
    for lvl in reversed(range(1, len(self.layers) - 1)):
      out.append(UNetStep("join", f"dec{lvl}/concat", skip=lvl))
      out += [UNetStep("modern", f"dec{lvl}/conv{j}") for j in range(self.layers[lvl] - 1)]
      out.append(UNetStep("modern", f"dec{lvl}/up", upsample=True))
    out += [UNetStep("join", "dec0/concat", skip=0), UNetStep("modern", "dec0/conv0"),
            UNetStep("modern", "dec0/conv1"), UNetStep("slot", "conv_final")]
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class UNetStep:
  """One step of UNet1d's forward pass.

  kind: "slot" (a plain conv slot `name`), "modern" (norm + PReLU [+ ×2 upsample first] + conv slot `name`),
    "save" (keep the current tensor as the next skip connection), "join" (centre-crop the current tensor and
    skip number `skip` to the shorter length and concatenate channels: [current, skip]; `name` names the join).
  """

  kind: str
  name: str = ""
  upsample: bool = False
  skip: int = -1


class ModernConv(nn.Module):
  """Pre-activation conv: InstanceNorm(affine) -> PReLU -> slot conv (no bias). Optional x2 upsampling first."""

  spec: SlotSpec
  op: str
  upsample: bool = False
  slot: SlotFactory = plain_slot

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.upsample:
      x = linear_upsample2(x)
    x = nn.InstanceNorm(epsilon=1e-5, name="norm")(x)
    x = PReLU(name="prelu")(x)
    return self.slot(self.spec, self.op, "conv")(x)


class UNet1d(nn.Module):
  """UNet1d: PPG (B, L, 1) -> normalized ABP (B, L, 1)."""

  config: UNet1dConfig
  slot: SlotFactory = plain_slot

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    del train  # no dropout / batch statistics in this network.
    cfg = self.config
    specs = cfg.slot_specs()
    ops = dict(zip(specs, resolve_ops(cfg.ops, list(specs), "UNet1d")))

    def modern(name: str, h: jax.Array, upsample: bool = False) -> jax.Array:
      return ModernConv(specs[name], ops[name], upsample, self.slot, name=name.replace("/", "_"))(h)

    def join(h: jax.Array, skip: jax.Array) -> jax.Array:
      n = min(h.shape[1], skip.shape[1])
      return jnp.concatenate([center_crop(h, n), center_crop(skip, n)], axis=-1)

    skips = []
    for step in cfg.steps():
      if step.kind == "slot":
        x = self.slot(specs[step.name], ops[step.name], step.name)(x)
      elif step.kind == "modern":
        x = modern(step.name, x, step.upsample)
      elif step.kind == "save":
        skips.append(x)
      else:
        x = join(x, skips[step.skip])
    return x
