"""The quantized graph of a UNet1d config (seed or exported candidate), mirroring `jaxbp.models.unet1d`.

Every tensor is signed (no ReLU in this network). A "modern" conv is
`[<name>/up: upsample2] → <name>/norm: norm_prelu → <name>: conv`; decoder joins are `concat` nodes
(centre crop to the shorter input, both requantized to one grid); `conv_final`'s int32 accumulator is the
output. InstanceNorm cannot be folded (its statistics are per example): `norm_prelu` needs an integer
mean/variance kernel in the integerizer.
"""

from __future__ import annotations

import dataclasses

from jaxbp.models.layers import resolve_ops
from jaxbp.models.unet1d import UNet1dConfig
from jaxbp.quant.graph import SIGNED, Node, QGraph
from jaxbp.quant.graph_resnet1d import _Builder


def unet1d_graph(cfg: UNet1dConfig) -> QGraph:
  """The quantized graph of a UNet1d config."""
  specs = cfg.slot_specs()
  ops = dict(zip(specs, resolve_ops(cfg.ops, list(specs), "UNet1d")))
  b = _Builder()

  def modern(name: str, h: str, upsample: bool = False) -> str:
    mod = name.replace("/", "_")
    if upsample:
      h = b.add(Node(f"{name}/up", "upsample2", (h,), SIGNED))
    h = b.add(Node(f"{name}/norm", "norm_prelu", (h,), SIGNED, src=(mod, "norm"), prelu=(mod, "prelu")))
    return b.slot(name, specs[name], ops[name], h, src=(mod, "conv"), bn=(), act="none", out=SIGNED)

  def join(name: str, h: str, skip: str) -> str:
    return b.add(Node(name, "concat", (h, skip), SIGNED))

  x = b.add(Node("input", "input", (), SIGNED))
  skips: list[str] = []
  for step in cfg.steps():
    if step.kind == "slot" and step.name == "conv_final":
      break  # the output layer, below.
    if step.kind == "slot":
      x = b.slot(step.name, specs[step.name], ops[step.name], x, src=(step.name,), bn=(), act="none", out=SIGNED)
    elif step.kind == "modern":
      x = modern(step.name, x, step.upsample)
    elif step.kind == "save":
      skips.append(x)
    else:
      x = join(step.name, x, skips[step.skip])
  spec = specs["conv_final"]
  if ops["conv_final"] != "conv":
    x = b.slot("conv_final", spec, ops["conv_final"], x, src=("conv_final",), bn=(), act="none", out=SIGNED)
    # The output must come from a weighted layer's accumulator: a dw slot ends in its pointwise conv.
    b.nodes[-1] = dataclasses.replace(b.nodes[-1], out=None)
  else:
    b.add(Node("conv_final", "conv", (x,), None, spec=spec, src=("conv_final", "conv")))
  return QGraph(tuple(b.nodes), "unet1d")
