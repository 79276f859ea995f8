"""The export's packing rule applied to bit configurations (the rule of `jaxbp.export.constraints`).

Sub-byte tensors and weights are packed 8/b per byte along channels, so a b-bit tensor needs a channel count that is
a multiple of 8/b, and b-bit weights [Cout][K..][Cin/g] need Cout and the input channels per group to be multiples
of 8/b (a depthwise kernel: Cout only). A configuration a search or a homogeneous baseline proposes may break that
(e.g. the 4-bit baseline's stem conv: one input channel), so the flow raises such a layer's width to the smallest
packable one before fine-tuning -- more bits, never less accurate -- and reports it. The exporters keep refusing
what they cannot pack.
"""

from __future__ import annotations

from collections.abc import Mapping

from jaxbp.deploy.layers import BITS, Layer, Network

BitPair = tuple[int, int]


def _fits(n: int, bits: int) -> bool:
  return bits >= 8 or n % (8 // bits) == 0


def packable_bits(layer: Layer, pair: BitPair) -> BitPair:
  """The smallest (b_in, b_w) >= `pair` the exporters can pack for `layer` (a weighted deploy layer)."""
  (_, _, cin), (_, _, cout) = layer.in_shape, layer.out_shape
  depthwise = layer.op == "depthwise" or (layer.op == "conv" and layer.groups == cin == cout and cin > 1)
  cin_g = cin // max(layer.groups, 1)
  b_in = min(b for b in BITS if b >= pair[0] and _fits(cin, b))
  b_w = min(b for b in BITS if b >= pair[1] and _fits(cout, b) and (depthwise or _fits(cin_g, b)))
  return b_in, b_w


def packable(config: Mapping[str, BitPair], net: Network) -> tuple[dict[str, BitPair], dict[str, tuple[BitPair, BitPair]]]:
  """(`config` with every weighted layer at `packable_bits`, {layer: (old, new)} for the layers raised)."""
  out, raised = {}, {}
  for name, pair in config.items():
    pair = tuple(pair)
    new = packable_bits(net.layer(name), pair)
    out[name] = new
    if new != pair:
      raised[name] = (pair, new)
  return out, raised
