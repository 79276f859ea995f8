"""The quantized graph of a MobileNetV1 / V2 config, one node per layer of its description
(`jaxbp.models.mobilenet.MobileNetConfig.layers`, same names):

  input(signed) → conv0 (BN folded, ReLU, PACT/TQT, unsigned)
  V1: block{i}/depthwise, block{i}/pointwise: conv (BN folded, ReLU, unsigned)
  V2: block{j}/expand, block{j}/depthwise: conv (BN folded, ReLU, unsigned); block{j}/project: conv (BN folded,
      linear, signed); block{j}/add: add(project, residual source) onto a fixed 8-bit signed grid (the paper's
      baselines keep residual-add outputs at 8 bit, so the layers reading them have 8-bit inputs; not searched);
      conv_last: conv (ReLU, unsigned)
  pool: mean over H, W (unsigned) → [dropout] → fc: dense (int32 accumulator output, per-class quantum)

The references' ReLU6 becomes ReLU before the activation quantizer: the quantizer's learned clip (PACT α / TQT
threshold) takes the place of the fixed 6 (as in PACT); calibration of a float network whose activations are at
most 6 gives clips of at most 6, where the two agree.
"""

from __future__ import annotations

from jaxbp.models.layers import SlotSpec
from jaxbp.models.mobilenet import MobileNetConfig
from jaxbp.quant.graph import SIGNED, UNSIGNED, GridSpec, Node, QGraph

ADD_OUT = GridSpec(signed=True, bits=8, searchable=False)


def mobilenet_graph(cfg: MobileNetConfig) -> QGraph:
  """The quantized graph of a MobileNet config (node names = the description's layer names)."""
  nodes = [Node("input", "input", (), SIGNED)]
  for l in cfg.layers():
    if l.kind in ("conv", "dw", "pw"):
      relu = l.act == "relu6"
      spec = SlotSpec(l.cin, l.cout, l.kernel, l.stride, l.groups, False, l.padding)
      nodes.append(Node(l.name, "conv", l.inputs, UNSIGNED if relu else SIGNED, "relu" if relu else "none",
                        spec=spec, src=(l.name,), bn=(l.name, "bn")))
    elif l.kind == "add":
      nodes.append(Node(l.name, "add", l.inputs, ADD_OUT))
    elif l.kind == "pool":
      nodes.append(Node(l.name, "mean", l.inputs, UNSIGNED))
    else:
      src = l.inputs[0]
      if cfg.dropout > 0:
        nodes.append(Node("dropout", "dropout", (src,), rate=cfg.dropout))
        src = "dropout"
      nodes.append(Node(l.name, "dense", (src,), None, features=l.cout, use_bias=True, src=(l.name,)))
  return QGraph(tuple(nodes), f"mobilenet_{cfg.version}")
