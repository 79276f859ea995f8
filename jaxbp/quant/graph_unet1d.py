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
  x = b.slot("conv_first", specs["conv_first"], ops["conv_first"], x, src=("conv_first",), bn=(), act="none",
             out=SIGNED)
  for j in range(cfg.layers[0] - 1):
    x = modern(f"enc0/conv{j}", x)
  skips = [x]
  x = modern("enc0/down", x)
  for lvl, n in enumerate(cfg.layers[1:-1], start=1):
    for j in range(n - 1):
      x = modern(f"enc{lvl}/conv{j}", x)
    skips.append(x)
    x = modern(f"enc{lvl}/down", x)
  for j in range(max(cfg.layers[-1] - 1, 1)):
    x = modern(f"bottom/conv{j}", x)
  x = modern("bottom/up", x, upsample=True)
  for lvl in reversed(range(1, len(cfg.layers) - 1)):
    x = join(f"dec{lvl}/concat", x, skips[lvl])
    for j in range(cfg.layers[lvl] - 1):
      x = modern(f"dec{lvl}/conv{j}", x)
    x = modern(f"dec{lvl}/up", x, upsample=True)
  x = join("dec0/concat", x, skips[0])
  x = modern("dec0/conv0", x)
  x = modern("dec0/conv1", x)
  spec = specs["conv_final"]
  if ops["conv_final"] != "conv":
    x = b.slot("conv_final", spec, ops["conv_final"], x, src=("conv_final",), bn=(), act="none", out=SIGNED)
    # The output must come from a weighted layer's accumulator: a dw slot ends in its pointwise conv.
    b.nodes[-1] = dataclasses.replace(b.nodes[-1], out=None)
  else:
    b.add(Node("conv_final", "conv", (x,), None, spec=spec, src=("conv_final", "conv")))
  return QGraph(tuple(b.nodes), "unet1d")
