"""Differentiable cost functions of architecture pytrees: params, MACs, bytes, table latency.

Example:
  shapes = cost.trace(supernet, window=262)
  c = 0.5 * cost.params() + cost.latency(table)
  value = c(variables["arch"], shapes)          # scalar, differentiable w.r.t. arch
  hinge = cost.relu(cost.weight_bytes(8) - 32_000)

Bit-aware costs of quantized networks (expected BOPs / bytes / latency over bit widths) are in
`cost.bits` (`cost.bits.bops()`, ...), described by a `BitShapes`.
"""

from jaxbp.cost import bits
from jaxbp.cost.algebra import Cost, as_cost, log, maximum, minimum, relu
from jaxbp.cost.bits import BitLayer, BitShapes
from jaxbp.cost.expected import (alpha_at, exact_counts, expected, latency, layer_theta, macs, one_hot_arch,
                                 params, weight_bytes)
from jaxbp.cost.ops import op_macs, op_params, op_weight_bytes
from jaxbp.cost.shapes import LayerShape, NetShapes, trace

COSTS = {"params": params, "macs": macs, "bytes": weight_bytes}
