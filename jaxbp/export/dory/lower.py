"""What DORY (Quantlab frontend, PULP targets) can deploy, and exact rewrites into layers it has kernels for.

DORY's layers are PULP-NN / PULP-NN-mixed kernel calls: conv (groups 1), depthwise conv (groups = Cin = Cout),
linear, residual add, average and max pooling, each with its requant. `lower(graph)` rewrites every node DORY
lacks a layer for but that has an exact equivalent in DORY layers (same integers out, checked by the tests):

  grouped conv (1 < groups, not depthwise)  -> one plain conv with block-diagonal weights (groups x the MACs)
  pad_channels (zeros around the channels)  -> a 1x1 conv with 0/1 weights, requant k = 1, lam = 0, d = 0
  affine (BatchNorm + ReLU, no conv before) -> a depthwise 1x1 conv with unit weights and the affine's k, lam, d
  maxpool with zero padding, signed input   -> a depthwise 1x1 unit conv that zero-pads (PULP-NN's max pool skips
                                               padded positions; the seeds' pool counts them as 0), then an
                                               unpadded max pool

and refuses, before anything is written, every node with no exact DORY form (`DoryUnsupportedError`, one line per
node: layer, op, why, and what would make the network deployable): the squeeze-excitation gate (`mul`, `lut`),
InstanceNorm + PReLU, upsampling (Resize), the centre-cropped concat, several graph inputs or outputs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from jaxbp.export.constraints import UnsupportedError, check_exportable
from jaxbp.integerize.graph import Graph, Node, TensorSpec

# op -> (what DORY lacks, what makes the network deployable)
_NO_DORY_FORM = {
    "mul": ("a product of two activation tensors (the squeeze-excitation gate) has no PULP-NN kernel",
            "drop the gate (ResNet1dConfig(se=False), or ResNet1dConfig.deployable())"),
    "lut": ("a look-up table (the squeeze-excitation sigmoid) has no DORY layer; DORY's Quantlab frontend drops "
            "Gather nodes silently", "drop the gate (ResNet1dConfig(se=False), or ResNet1dConfig.deployable())"),
    "norm_prelu": ("InstanceNorm + PReLU normalizes with per-example statistics; DORY has no such layer",
                   "use BatchNorm (folded into the conv's requant) + ReLU"),
    "upsample2": ("upsampling (ONNX Resize) has no DORY layer",
                  "downsample-only architectures (conv, depthwise, pointwise, linear, add, avg/max pool)"),
    "concat": ("a (centre-cropped) channel concat has no DORY layer; the Quantlab frontend drops Concat silently",
               "replace skip concatenations by residual adds of equal shapes"),
}


class DoryUnsupportedError(UnsupportedError):
  """The graph has layers DORY cannot deploy; `problems` lists them (layer, op, reason, fix)."""

  def __init__(self, problems: list[dict[str, str]]):
    self.problems = problems
    lines = [f"layer {p['layer']!r} ({p['op']}): {p['reason']}; to deploy: {p['fix']}" for p in problems]
    super().__init__(f"DORY cannot deploy this network ({len(problems)} layer(s)):\n  " + "\n  ".join(lines))


def problems(graph: Graph) -> list[dict[str, str]]:
  """Every node (and graph-level property) DORY cannot deploy even after `lower`: [{layer, op, reason, fix}]."""
  out = []
  if len(graph.inputs) != 1:
    out.append({"layer": ",".join(graph.inputs), "op": "inputs", "reason": "DORY networks take one input tensor",
                "fix": "a single-input network"})
  if len(graph.outputs) != 1 or graph.nodes[-1].output != graph.outputs[0]:
    out.append({"layer": ",".join(graph.outputs), "op": "outputs",
                "reason": "DORY networks return the output of their last layer only", "fix": "one output, last"})
  for node in graph.nodes:
    if node.op in _NO_DORY_FORM:
      reason, fix = _NO_DORY_FORM[node.op]
      out.append({"layer": node.name, "op": node.op, "reason": reason, "fix": fix})
  return out


def check_deployable(graph: Graph) -> None:
  """Raises DoryUnsupportedError listing every layer DORY cannot deploy, or the kernels' UnsupportedError (bit
  widths, channel packing) for the rewritten graph."""
  lower(graph)


def is_depthwise(node: Node, graph: Graph) -> bool:
  cin = graph.tensors[node.inputs[0]].channels
  return node.op == "conv" and node.attrs["groups"] == cin == node.arrays["weight"].shape[0] and cin > 1


def conv_macs(node: Node, graph: Graph) -> int:
  """MACs per example of a conv/linear node: output positions x Cout x kernel x Cin/groups."""
  w, out = node.arrays["weight"], graph.tensors[node.output]
  return int(np.prod(out.shape[:-1])) * int(np.prod(w.shape))


def lower(graph: Graph) -> tuple[Graph, list[dict[str, Any]]]:
  """(graph with every node in a DORY layer form, the rewrites made: [{layer, op, lowering, macs, macs_before}]).

  Raises DoryUnsupportedError first if any node has no DORY form (see `problems`), then the kernels'
  UnsupportedError if the rewritten graph breaks a bit-width or channel-packing rule. The lowered graph computes
  the same integers in every tensor of the original graph (new tensors are named "<layer>/pad").
  """
  graph.validate()
  found = problems(graph)
  if found:
    raise DoryUnsupportedError(found)
  tensors: dict[str, TensorSpec] = dict(graph.tensors)
  nodes: list[Node] = []
  notes: list[dict[str, Any]] = []
  staged = Graph(tensors, (), graph.inputs, graph.outputs, graph.meta)  # for conv_macs on specs
  for node in graph.nodes:
    x = tensors[node.inputs[0]]
    if node.op == "conv" and node.attrs["groups"] > 1 and not is_depthwise(node, graph):
      new = _block_diagonal(node, x)
      nodes.append(new)
      notes.append(_note(node, "grouped conv -> plain conv, block-diagonal weights", conv_macs(new, staged),
                         conv_macs(node, staged)))
    elif node.op == "pad_channels":
      new = _pad_as_conv(node, x)
      nodes.append(new)
      notes.append(_note(node, "channel zero-padding -> 1x1 conv with 0/1 weights", conv_macs(new, staged), 0))
    elif node.op == "affine":
      new = _unit_depthwise(node.name, node.inputs[0], node.output, x, node.arrays["k"],
                            node.arrays.get("lam", np.zeros(x.channels, np.int32)), node.attrs["d"], None)
      nodes.append(new)
      notes.append(_note(node, "BatchNorm+ReLU -> depthwise 1x1 conv, unit weights", conv_macs(new, staged), 0))
    elif node.op == "maxpool" and x.signed and any(p != (0, 0) for p in node.attrs["padding"]):
      pad_name = f"{node.name}/pad"
      padding = tuple(tuple(p) for p in node.attrs["padding"])
      spatial = tuple(s + lo + hi for s, (lo, hi) in zip(x.shape[:-1], padding))
      tensors[pad_name] = dataclasses.replace(x, shape=spatial + (x.channels,))
      ones = np.ones(x.channels, np.int32)
      pad = _unit_depthwise(pad_name, node.inputs[0], pad_name, x, ones, 0 * ones, 0, padding)
      nodes.append(pad)
      zero = tuple((0, 0) for _ in padding)
      nodes.append(dataclasses.replace(node, inputs=(pad_name,), attrs={**node.attrs, "padding": zero}))
      notes.append(_note(node, "zero-padded max pool on a signed input -> depthwise 1x1 unit conv (zero padding) "
                         "+ unpadded max pool", conv_macs(pad, staged), 0))
    else:
      nodes.append(node)
  lowered = Graph(tensors, tuple(nodes), graph.inputs, graph.outputs, graph.meta)
  check_exportable(lowered)  # validates, checks int32 bounds, bit widths and channel packing
  return lowered, notes


def _note(node: Node, what: str, macs: int, before: int) -> dict[str, Any]:
  return {"layer": node.name, "op": node.op, "lowering": what, "macs": macs, "macs_before": before}


def _block_diagonal(node: Node, x: TensorSpec) -> Node:
  w = node.arrays["weight"]
  groups, co = node.attrs["groups"], w.shape[0] // node.attrs["groups"]
  ci = w.shape[-1]
  dense = np.zeros(w.shape[:-1] + (ci * groups,), w.dtype)
  for g in range(groups):
    dense[g * co:(g + 1) * co, ..., g * ci:(g + 1) * ci] = w[g * co:(g + 1) * co]
  return dataclasses.replace(node, attrs={**node.attrs, "groups": 1}, arrays={**node.arrays, "weight": dense})


def _pad_as_conv(node: Node, x: TensorSpec) -> Node:
  front, back = node.attrs["front"], node.attrs["back"]
  cin, cout = x.channels, x.channels + front + back
  w = np.zeros((cout,) + (1,) * (len(x.shape) - 1) + (cin,), np.int8)
  w[np.arange(cin) + front, ..., np.arange(cin)] = 1
  nd = len(x.shape) - 1
  return Node(node.name, "conv", node.inputs, node.output,
              {"stride": (1,) * nd, "padding": ((0, 0),) * nd, "groups": 1, "w_bits": 8, "d": 0},
              {"weight": w, "k": np.ones(cout, np.int32), "lam": np.zeros(cout, np.int32)})


def _unit_depthwise(name: str, src: str, dst: str, x: TensorSpec, k, lam, d: int, padding) -> Node:
  nd = len(x.shape) - 1
  c = x.channels
  return Node(name, "conv", (src,), dst,
              {"stride": (1,) * nd, "padding": padding or ((0, 0),) * nd, "groups": c, "w_bits": 8, "d": int(d)},
              {"weight": np.ones((c,) + (1,) * nd + (1,), np.int8), "k": np.asarray(k, np.int32),
               "lam": np.asarray(lam, np.int32)})
