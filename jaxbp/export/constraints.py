"""What the PULP kernels (and therefore both exporters) can take: bit widths and whole-byte channel counts.

Sub-byte tensors are packed along the channel axis (HWC), so a tensor of b < 8 bits needs its channel count
to be a multiple of 8/b; sub-byte weights [Cout][K..][Cin/g] need Cout and the per-group input channels to
be multiples of 8/b as well (a depthwise kernel: its channel count). Errors name the layer and the rule.
"""

from __future__ import annotations

from jaxbp.integerize.graph import ACC_BITS, ACT_BITS, Graph, GraphError
from jaxbp.integerize.ranges import check_int32


class UnsupportedError(GraphError):
  """A graph (layer) the kernels cannot run: the message names the layer and the constraint."""


def check_exportable(graph: Graph) -> None:
  """Validates the graph, its int32 bounds, and the kernels' bit-width and channel-count constraints."""
  graph.validate()
  check_int32(graph)
  for name in graph.inputs:
    _check_channels(f"graph input {name!r}", graph.tensors[name].channels, graph.tensors[name].bits)
  for node in graph.nodes:
    out = graph.tensors[node.output]
    where = f"layer {node.name!r} ({node.op})"
    if out.bits == ACC_BITS and node.output not in graph.outputs:
      raise UnsupportedError(f"{where}: an int32 accumulator output must be a graph output")
    if out.bits != ACC_BITS:
      _check_channels(f"{where} output", out.channels, out.bits)
    if node.op in ("conv", "linear"):
      wb = node.attrs["w_bits"]
      if wb not in ACT_BITS:
        raise UnsupportedError(f"{where}: weight bits {wb} not in {ACT_BITS}")
      if wb < 8:
        w = node.arrays["weight"]
        per = 8 // wb
        cout, cg = w.shape[0], w.shape[-1]
        depthwise = node.op == "conv" and cg == 1 and node.attrs["groups"] == cout
        for label, n in (("output channels", cout),) + (() if depthwise else (("input channels per group", cg),)):
          if n % per:
            raise UnsupportedError(f"{where}: {wb}-bit weights need {label} to be a multiple of {per} (packed "
                                   f"{per} per byte), got {n}")


def _check_channels(where: str, channels: int, bits: int) -> None:
  if bits < 8 and channels % (8 // bits):
    raise UnsupportedError(f"{where}: a {bits}-bit tensor needs a channel count that is a multiple of {8 // bits} "
                           f"(packed {8 // bits} per byte along channels), got {channels}")
