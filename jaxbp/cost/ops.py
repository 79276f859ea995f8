"""Exact per-op counts of one conv slot: parameters, MACs and weight bytes.

Grouped and depthwise convolutions are counted as what they are (a grouped conv has Cin/groups inputs
per output channel; the reference PyTorch NAS library counts it as dense).
"""

from __future__ import annotations

from jaxbp.cost.shapes import LayerShape


def op_params(op: str, layer: LayerShape) -> int:
  """Trainable scalars of `op` at `layer` (weights + bias)."""
  s = layer.spec
  bias = s.features if s.use_bias else 0
  if op == "conv":
    return s.in_features // s.groups * s.features * s.kernel + bias
  if op == "dw":
    return s.in_features * s.kernel + s.in_features * s.features + bias
  if op == "id":
    return 0
  raise ValueError(f"layer {layer.name!r}: unknown op {op!r}")


def op_bias(op: str, layer: LayerShape) -> int:
  return layer.spec.features if (layer.spec.use_bias and op != "id") else 0


def op_macs(op: str, layer: LayerShape) -> int:
  """Multiply-accumulates per example of `op` at `layer`."""
  s, lout = layer.spec, layer.out_length
  if op == "conv":
    return lout * s.features * (s.in_features // s.groups) * s.kernel
  if op == "dw":
    return lout * s.in_features * s.kernel + lout * s.in_features * s.features
  if op == "id":
    return 0
  raise ValueError(f"layer {layer.name!r}: unknown op {op!r}")


def op_weight_bytes(op: str, layer: LayerShape, bits: int = 8, bias_bits: int = 32) -> float:
  """Bytes of weights at `bits` per weight plus biases at `bias_bits`."""
  bias = op_bias(op, layer)
  return ((op_params(op, layer) - bias) * bits + bias * bias_bits) / 8
