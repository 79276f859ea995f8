"""Shared pieces of both ONNX graphs: layout (NCHW, a 1-D net is H = 1), a node/initializer accumulator."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from jaxbp.integerize.graph import TensorSpec

OPSET = 17
IR_VERSION = 9  # what onnxruntime >= 1.16 loads; the onnx package alone would write a newer one
LENGTH_AXIS = 3  # the time axis L of a 1-D tensor (L, C) in the ONNX layout [N, C, 1, L]


def onnx_shape(spec: TensorSpec, batch: str | int = "N") -> list[str | int]:
  """ONNX shape of an IR tensor: (C,) -> [N, C]; (L, C) -> [N, C, 1, L]; (H, W, C) -> [N, C, H, W]."""
  s = spec.shape
  if len(s) == 1:
    return [batch, s[0]]
  if len(s) == 2:
    return [batch, s[1], 1, s[0]]
  return [batch, s[2], s[0], s[1]]


def to_onnx_layout(x: np.ndarray) -> np.ndarray:
  """(N, *S, C) channels-last batch -> the ONNX layout of `onnx_shape`."""
  if x.ndim == 2:
    return x
  if x.ndim == 3:
    return x.transpose(0, 2, 1)[:, :, None, :]
  return x.transpose(0, 3, 1, 2)


def from_onnx_layout(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
  """Inverse of `to_onnx_layout` for tensor `spec`."""
  if len(spec.shape) == 1:
    return x
  if len(spec.shape) == 2:
    return x[:, :, 0, :].transpose(0, 2, 1)
  return x.transpose(0, 2, 3, 1)


def channel_shape(spec: TensorSpec) -> tuple[int, ...]:
  """Broadcast shape of a per-channel constant for tensor `spec` in ONNX layout."""
  return (1, spec.channels) if len(spec.shape) == 1 else (1, spec.channels, 1, 1)


def conv_geometry(node, in_spec: TensorSpec):
  """(weight OIHW, strides [sh, sw], pads [pt, pl, pb, pr]) of an IR conv (1-D convs as H = 1)."""
  w = node.arrays["weight"]
  stride = tuple(node.attrs["stride"])
  pads = tuple(tuple(p) for p in node.attrs["padding"])
  if w.ndim == 3:  # [Cout][K][Cin/g] -> (Cout, Cin/g, 1, K)
    return w.transpose(0, 2, 1)[:, :, None, :], [1, stride[0]], [0, pads[0][0], 0, pads[0][1]]
  return (w.transpose(0, 3, 1, 2), list(stride), [pads[0][0], pads[1][0], pads[0][1], pads[1][1]])


def pool_geometry(node, in_spec: TensorSpec):
  """(kernel [kh, kw], strides, pads [pt, pl, pb, pr]) of an IR pool."""
  k, s = tuple(node.attrs["kernel"]), tuple(node.attrs["stride"])
  p = tuple(tuple(q) for q in node.attrs["padding"])
  if len(k) == 1:
    return [1, k[0]], [1, s[0]], [0, p[0][0], 0, p[0][1]]
  return list(k), list(s), [p[0][0], p[1][0], p[0][1], p[1][1]]


class GraphAccumulator:
  """Collects nodes, initializers and value infos of one ONNX graph."""

  def __init__(self):
    self.nodes: list[onnx.NodeProto] = []
    self.inits: list[onnx.TensorProto] = []
    self.value_info: list[onnx.ValueInfoProto] = []
    self._names: set[str] = set()

  def const(self, name: str, value: np.ndarray) -> str:
    if name not in self._names:
      self._names.add(name)
      self.inits.append(numpy_helper.from_array(np.asarray(value), name))
    return name

  def node(self, op: str, inputs: list[str], outputs: list[str], name: str, domain: str = "", **attrs) -> None:
    self.nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=domain or None, **attrs))

  def info(self, name: str, elem: int, shape: list[str | int]) -> None:
    self.value_info.append(helper.make_tensor_value_info(name, elem, shape))

  def model(self, name: str, inputs, outputs, *, domains: dict[str, int] | None = None, doc: str = "",
            metadata: dict[str, str] | None = None) -> onnx.ModelProto:
    graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits, doc_string=doc,
                              value_info=self.value_info)
    opsets = [helper.make_opsetid("", OPSET)] + [helper.make_opsetid(d, v) for d, v in (domains or {}).items()]
    m = helper.make_model(graph, opset_imports=opsets, producer_name="jaxbp", ir_version=IR_VERSION)
    for k, v in (metadata or {}).items():
      m.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
    return m


def elem_type(spec: TensorSpec) -> int:
  """ONNX element type holding an IR tensor's integers in the runtime graph."""
  if spec.bits == 32:
    return TensorProto.INT32
  return TensorProto.INT8 if spec.signed else TensorProto.UINT8


def np_type(spec: TensorSpec):
  """NumPy dtype of `elem_type`."""
  if spec.bits == 32:
    return np.int32
  return np.int8 if spec.signed else np.uint8
