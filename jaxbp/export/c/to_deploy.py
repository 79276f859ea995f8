"""Integer graph -> deployment `Network` (the tiler's input), one `Layer` per node, named as the node.

Layout conventions are the deploy ones: HWC, a 1-D (L, C) tensor is (1, L, C). A 32-bit accumulator
output (a raw conv/linear ACC) is planned as an 8-bit tensor: the tiler has no 32-bit activations, and
the tiled exporter keeps such tensors out of the modelled L2 (see `tiled.py`).
"""

from __future__ import annotations

import numpy as np

from jaxbp.deploy.layers import NETWORK_INPUT, Layer, Network
from jaxbp.integerize.graph import ACC_BITS, Graph, Node, TensorSpec
from jaxbp.integerize.ops import window_fields


def hwc(shape: tuple[int, ...]) -> tuple[int, int, int]:
  """(H, W, C) of a graph tensor shape (C,), (L, C) or (H, W, C)."""
  if len(shape) == 1:
    return 1, 1, shape[0]
  if len(shape) == 2:
    return 1, shape[0], shape[1]
  if len(shape) == 3:
    return shape
  raise ValueError(f"tensor shape {shape} is not (C,), (L, C) or (H, W, C)")


def _bits(spec: TensorSpec) -> int:
  return 8 if spec.bits == ACC_BITS else spec.bits


def _window2d(node: Node, nd: int, kernel: tuple[int, ...] | None):
  kernel, stride, pads = window_fields(node, nd, kernel)
  if nd == 1:
    return (1, kernel[0]), (1, stride[0]), (0, 0, pads[0][0], pads[0][1])
  return tuple(kernel), tuple(stride), (pads[0][0], pads[0][1], pads[1][0], pads[1][1])


# Integer op -> (deploy element-wise mode, reads a second tensor). The UNet1d layers (norm_prelu, upsample2,
# concat) as `jaxbp.deploy.zoo.unet1d` describes them.
ELEMENTWISE_MODES = {"affine": ("requant", False), "lut": ("lut", False), "mul": ("mul", True),
                     "norm_prelu": ("norm", False), "upsample2": ("resize", False), "concat": ("concat", True)}


def layer_of(graph: Graph, node: Node, producer: dict[str, str], padded: dict[str, str] | None = None) -> Layer:
  """The deploy `Layer` of one node; `producer` maps tensor names to layer names (or "input"), `padded` a
  channel-zero-padded tensor to the tensor it pads (the add reads the unpadded one, as `jaxbp.deploy.zoo`)."""
  x, out = graph.tensors[node.inputs[0]], graph.tensors[node.output]
  common = {"name": node.name, "inputs": tuple(producer[t] for t in node.inputs), "in_shape": hwc(x.shape),
            "out_shape": hwc(out.shape), "bits_in": _bits(x), "bits_out": _bits(out)}
  op = node.op
  nd = len(x.shape) - 1
  if op == "conv":
    w = node.arrays["weight"]
    kernel, stride, pad = _window2d(node, nd, tuple(w.shape[1:-1]))
    groups, cin, cout = node.attrs["groups"], x.channels, out.channels
    kind = ("depthwise" if groups == cin == cout and groups > 1 else
            "pointwise" if kernel == (1, 1) and groups == 1 else "conv")
    return Layer(op=kind, kernel=kernel, stride=stride, padding=pad, groups=groups, bits_w=node.attrs["w_bits"],
                 **common)
  if op == "linear":
    return Layer(op="linear", bits_w=node.attrs["w_bits"], **common)
  if op == "add":
    y = graph.tensors[(padded or {}).get(node.inputs[1], node.inputs[1])]  # a zero-padded identity: its own shape
    return Layer(op="add", in2_shape=hwc(y.shape), bits_in2=_bits(y), **common)
  if op in ("maxpool", "avgpool"):
    kernel, stride, pad = _window2d(node, nd, None)
    return Layer(op="pool", mode=op[:3], kernel=kernel, stride=stride, padding=pad, **common)
  if op == "global_avgpool":
    h, w, _ = hwc(x.shape)
    return Layer(op="pool", mode="avg", kernel=(h, w), stride=(h, w), **common)
  if op in ELEMENTWISE_MODES:
    mode, binary = ELEMENTWISE_MODES[op]
    if binary:
      s = graph.tensors[node.inputs[1]]
      return Layer(op="elementwise", mode=mode, in2_shape=hwc(s.shape), bits_in2=_bits(s), **common)
    return Layer(op="elementwise", mode=mode, **common)
  raise ValueError(f"node {node.name!r} ({op}): no deploy layer kind for this op (the tiler knows conv, "
                   f"pointwise, depthwise, linear, add, pool and elementwise requant/lut/mul/norm/resize/concat)")


def to_network(graph: Graph, name: str | None = None) -> Network:
  """The deploy `Network` of a single-input integer graph; layer i is node i, with the node's name."""
  if len(graph.inputs) != 1:
    raise ValueError(f"graph has inputs {list(graph.inputs)}; a deploy network has exactly one input")
  producer = {graph.inputs[0]: NETWORK_INPUT}
  padded: dict[str, str] = {}
  layers = []
  for node in graph.nodes:
    if node.name == NETWORK_INPUT:
      raise ValueError(f"node {node.name!r}: the name {NETWORK_INPUT!r} is reserved for the network input")
    if node.op == "pad_channels":  # no layer: the add zero-pads its second input's channels (ResNet1d's skip).
      consumers = [n for n in graph.nodes if node.output in n.inputs]
      if any(n.op != "add" or n.inputs[1] != node.output for n in consumers):
        raise ValueError(f"node {node.name!r} (pad_channels): a deploy network pads channels only as the second "
                         f"input of an add; it feeds {[n.name for n in consumers]}")
      producer[node.output] = producer[node.inputs[0]]
      padded[node.output] = padded.get(node.inputs[0], node.inputs[0])
      continue
    layers.append(layer_of(graph, node, producer, padded))
    producer[node.output] = node.name
  x = graph.tensors[graph.inputs[0]]
  return Network(name or str(graph.meta.get("name", "integer_graph")), hwc(x.shape), tuple(layers), _bits(x))


def weight_rows(node: Node) -> np.ndarray:
  """Weights as [Cout][per-channel values] (the deploy per-output-channel layout)."""
  w = np.asarray(node.arrays["weight"])
  return w.reshape(w.shape[0], -1)
