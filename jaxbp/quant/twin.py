"""The quantized twin of a network config: its `QGraph` interpreted with fake-quantized `QNode`s.

    tw = twin(models.RESNET1D["ppgbp"])                   # or an exported NAS config (ops with "dw"/"id")
    variables = from_float(tw, float_variables, window)   # BN folded, standalone BNs -> affine
    variables = calibrate(tw, variables, batches)         # activation ranges from data
    y = tw.apply(variables, x)                            # (B, L, 1) -> (B, 2), int8 fake-quantized

Variables: "params" (every node's weights and quantizer ranges, keyed by node name, see
`jaxbp.quant.qlayers`) and, with Bayesian Bits, "gates": {"<layer>/gates_act" | "<layer>/gates_w" |
"<layer>/gates" (locked): {"log_alpha": (n_gates,)}} per weighted layer (see `gate_layout`).
Training needs a "dropout" rng and, with Bayesian Bits, a "gates" rng.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax

from jaxbp.models import MobileNetConfig, ModelConfig, ResNet1dConfig, UNet1dConfig
from jaxbp.quant.bayesian_bits import BBGates
from jaxbp.quant.graph import QGraph
from jaxbp.quant.graph_mobilenet import mobilenet_graph
from jaxbp.quant.graph_resnet1d import resnet1d_graph
from jaxbp.quant.graph_unet1d import unet1d_graph
from jaxbp.quant.policy import QuantConfig
from jaxbp.quant.qlayers import QNode, QTensor


def graph_of(config: ModelConfig) -> QGraph:
  """The quantized graph of a ResNet1d / UNet1d / MobileNet config."""
  if isinstance(config, ResNet1dConfig):
    return resnet1d_graph(config)
  if isinstance(config, UNet1dConfig):
    return unet1d_graph(config)
  if isinstance(config, MobileNetConfig):
    return mobilenet_graph(config)
  raise TypeError(f"no quantized graph for {type(config).__name__}")


def gate_layout(graph: QGraph, policy: QuantConfig) -> dict[str, dict[str, str]]:
  """Which gate set drives what: {weighted layer: {"act": gate module | "", "weight": gate module | ""}}.

  Independent gates: "<layer>/gates_act" on the layer's input quantizer (when searchable, see
  `QGraph.gated_inputs`) and "<layer>/gates_w" on its weights. Locked: one "<layer>/gates" for both, and
  a layer whose input is not searchable keeps both at their fixed widths (so b_in == b_w holds).
  """
  cfg = policy.bayesian_bits
  gated = graph.gated_inputs()
  out = {}
  for n in graph.weighted():
    if cfg is None:
      out[n.name] = {"act": "", "weight": ""}
    elif cfg.locked:
      name = f"{n.name}/gates" if n.name in gated else ""
      out[n.name] = {"act": name, "weight": name}
    else:
      out[n.name] = {"act": f"{n.name}/gates_act" if n.name in gated else "", "weight": f"{n.name}/gates_w"}
  return out


class QuantTwin(nn.Module):
  """A fake-quantized network from a `QGraph`: (B, L, 1) float input -> output of the last node.

  Attributes:
    graph: the quantized graph (`graph_of(config)`).
    policy: bit widths, methods, rounding, optional Bayesian Bits.
  """

  graph: QGraph
  policy: QuantConfig = QuantConfig()

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    layout = gate_layout(self.graph, self.policy)
    gated = self.graph.gated_inputs()
    z: dict[str, jax.Array] = {}
    for gates in layout.values():
      for name in gates.values():
        if name and name not in z:
          z[name] = BBGates(self.policy.bayesian_bits, name=name)(train)
    z_out = {gated[layer]: z[g["act"]] for layer, g in layout.items() if g["act"]}
    z_w = {layer: z[g["weight"]] for layer, g in layout.items() if g["weight"]}
    values: dict[str, Any] = {}
    for node in self.graph.nodes:
      inputs = [values[i] for i in node.inputs] if node.inputs else [x]
      values[node.name] = QNode(node, self.policy, name=node.name)(
          inputs, train=train, z_out=z_out.get(node.name), z_w=z_w.get(node.name))
    out = values[self.graph.output.name]
    return out.value if isinstance(out, QTensor) else out


def twin(config: ModelConfig, policy: QuantConfig = QuantConfig()) -> QuantTwin:
  """The quantized twin of a seed / exported network config."""
  return QuantTwin(graph_of(config), policy)
