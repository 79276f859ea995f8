"""The standard-ONNX form of an integer graph that onnxruntime runs bit-exactly.

Integer ops where ONNX has them: ConvInteger (int8/uint8 × int8 -> int32; also the window sums of average
pooling, with an all-ones depthwise kernel), MatMulInteger, int32 Add for the bias, MaxPool/Pad on
int8/uint8, ReduceSum on int32, Gather for lookup tables. Requantization runs on integer-valued float64
tensors: Cast -> Mul(k) -> Add(λ) -> Div(2^d) -> Floor -> Clip -> Cast. Every value there is an integer
below 2^53 (the int32 bound is checked before export), and division by a power of two and floor are exact,
so this equals the kernels' `clip((k·ACC + λ) >> d)` bit for bit. (ONNX's `BitShift` is unsigned only and
integer `Div` truncates toward zero, hence float64.)

Graph inputs are integer-valued float32 tensors (exact for 2–8-bit values), outputs integer-valued float64
(exact for int32 accumulators), both in the layout of `common.onnx_shape` (NCHW; a 1-D net has H = 1).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper

from jaxbp.export.constraints import check_exportable
from jaxbp.export.onnx.common import (GraphAccumulator, channel_shape, conv_geometry, elem_type, from_onnx_layout,
                                      np_type, onnx_shape, pool_geometry, to_onnx_layout)
from jaxbp.integerize.graph import Graph, GraphError, Node, TensorSpec
from jaxbp.integerize.interpreter import check_input
from jaxbp.integerize.ops import has_requant, requant_arrays

F64 = TensorProto.DOUBLE


def to_runtime_onnx(graph: Graph, *, name: str = "jaxbp_integer") -> onnx.ModelProto:
  """The onnxruntime-executable standard ONNX model of `graph` (checked with `onnx.checker`, full check)."""
  check_exportable(graph)
  g = GraphAccumulator()
  specs = graph.tensors
  inputs, outputs = [], []
  for t in graph.inputs:
    inputs.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, onnx_shape(specs[t])))
    g.node("Cast", [t], [_int(t)], f"input:{t}", to=elem_type(specs[t]))
  for node in graph.nodes:
    _lower(g, node, [specs[t] for t in node.inputs], specs[node.output])
  for t in graph.outputs:
    outputs.append(helper.make_tensor_value_info(t, F64, onnx_shape(specs[t])))
    g.node("Cast", [_int(t)], [t], f"output:{t}", to=F64)
  model = g.model(name, inputs, outputs, doc="jaxbp integer graph, standard ONNX (bit-exact in onnxruntime)")
  onnx.checker.check_model(model, full_check=True)
  return model


def _int(t: str) -> str:
  return f"{t}:int"  # name of the integer-typed version of IR tensor t


def _requant(g: GraphAccumulator, node: Node, acc: str, out: TensorSpec, *, k=None, lam=None, d=None) -> None:
  """ACC (int32 tensor `acc`) -> clip(floor((k·ACC + λ) / 2^d)) cast to the output's integer type."""
  n, y = node.name, _int(node.output)
  if k is None:
    k, lam, d = requant_arrays(node, out.channels)
  cs = channel_shape(out)
  g.node("Cast", [acc], [f"{n}/acc_f"], f"{n}/acc_f", to=F64)
  g.node("Mul", [f"{n}/acc_f", g.const(f"{n}/k", np.asarray(k, np.float64).reshape(cs))], [f"{n}/kacc"],
         f"{n}/mul")
  g.node("Add", [f"{n}/kacc", g.const(f"{n}/lam", np.asarray(lam, np.float64).reshape(cs))], [f"{n}/v"], f"{n}/add")
  _shift_clip(g, n, f"{n}/v", d, out, y)


def _shift_clip(g: GraphAccumulator, n: str, v: str, d: int, out: TensorSpec, y: str) -> None:
  lo, hi = out.range
  g.node("Div", [v, g.const(f"{n}/pow2d", np.array(float(2 ** d)))], [f"{n}/div"], f"{n}/div")
  g.node("Floor", [f"{n}/div"], [f"{n}/floor"], f"{n}/floor")
  g.node("Clip", [f"{n}/floor", g.const(f"{n}/lo", np.array(float(lo))), g.const(f"{n}/hi", np.array(float(hi)))],
         [f"{n}/clip"], f"{n}/clip")
  g.node("Cast", [f"{n}/clip"], [y], f"{n}/cast", to=elem_type(out))


def _lower(g: GraphAccumulator, node: Node, ins: list[TensorSpec], out: TensorSpec) -> None:
  n, op = node.name, node.op
  x = _int(node.inputs[0])
  if op in ("conv", "linear"):
    if op == "conv":
      w, strides, pads = conv_geometry(node, ins[0])
      g.node("ConvInteger", [x, g.const(f"{n}/weight", w.astype(np.int8))], [f"{n}/conv"], f"{n}/conv",
             group=node.attrs["groups"], strides=strides, pads=pads, kernel_shape=list(w.shape[2:]))
    else:
      w = node.arrays["weight"].T
      g.node("MatMulInteger", [x, g.const(f"{n}/weight", np.ascontiguousarray(w, np.int8))], [f"{n}/conv"],
             f"{n}/matmul")
    acc = f"{n}/conv"
    if "bias" in node.arrays:
      b = node.arrays["bias"].astype(np.int32).reshape(channel_shape(out))
      g.node("Add", [acc, g.const(f"{n}/bias", b)], [f"{n}/acc"], f"{n}/bias")
      acc = f"{n}/acc"
    if has_requant(node, out):
      _requant(g, node, acc, out)
    else:
      g.node("Identity", [acc], [_int(node.output)], f"{n}/out")
  elif op == "add":
    a, b = node.inputs
    for i, (t, m) in enumerate(((a, node.attrs["mul_a"]), (b, node.attrs["mul_b"]))):
      g.node("Cast", [_int(t)], [f"{n}/in{i}_f"], f"{n}/in{i}_f", to=F64)
      g.node("Mul", [f"{n}/in{i}_f", g.const(f"{n}/mul{i}", np.array(float(m)))], [f"{n}/in{i}_m"], f"{n}/mul{i}")
    g.node("Add", [f"{n}/in0_m", f"{n}/in1_m"], [f"{n}/sum"], f"{n}/sum")
    g.node("Add", [f"{n}/sum", g.const(f"{n}/lam", np.array(float(node.attrs["add"])))], [f"{n}/v"], f"{n}/add")
    _shift_clip(g, n, f"{n}/v", node.attrs["d"], out, _int(node.output))
  elif op == "mul":
    s = _int(node.inputs[1])
    g.node("Cast", [x], [f"{n}/x32"], f"{n}/x32", to=TensorProto.INT32)
    g.node("Cast", [s], [f"{n}/s32"], f"{n}/s32", to=TensorProto.INT32)
    if len(ins[0].shape) > 1:
      g.node("Unsqueeze", [f"{n}/s32", g.const(f"{n}/axes", np.array([2, 3], np.int64))], [f"{n}/s4"], f"{n}/unsq")
      s32 = f"{n}/s4"
    else:
      s32 = f"{n}/s32"
    g.node("Mul", [f"{n}/x32", s32], [f"{n}/acc"], f"{n}/prod")
    _requant(g, node, f"{n}/acc", out)
  elif op == "maxpool":
    kernel, strides, pads = pool_geometry(node, ins[0])
    g.node("Pad", [x, g.const(f"{n}/pads", np.array([0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]], np.int64)),
                   g.const(f"{n}/zero", np.zeros((), np_type(ins[0])))], [f"{n}/padded"], f"{n}/pad")
    g.node("MaxPool", [f"{n}/padded"], [_int(node.output)], f"{n}/maxpool", kernel_shape=kernel, strides=strides)
  elif op == "avgpool":
    kernel, strides, pads = pool_geometry(node, ins[0])
    ones = np.ones((ins[0].channels, 1, *kernel), np.uint8)
    g.node("ConvInteger", [x, g.const(f"{n}/ones", ones)], [f"{n}/acc"], f"{n}/sum", group=ins[0].channels,
           strides=strides, pads=pads, kernel_shape=kernel)
    _requant(g, node, f"{n}/acc", out)
  elif op == "global_avgpool":
    g.node("Cast", [x], [f"{n}/x32"], f"{n}/x32", to=TensorProto.INT32)
    g.node("ReduceSum", [f"{n}/x32", g.const(f"{n}/axes", np.array([2, 3], np.int64))], [f"{n}/acc"], f"{n}/sum",
           keepdims=0)
    _requant(g, node, f"{n}/acc", out)
  elif op == "affine":
    g.node("Cast", [x], [f"{n}/acc"], f"{n}/acc", to=TensorProto.INT32)
    _requant(g, node, f"{n}/acc", out)
  elif op == "pad_channels":
    rank = 2 if len(ins[0].shape) == 1 else 4
    pads = np.zeros(2 * rank, np.int64)
    pads[1], pads[rank + 1] = node.attrs["front"], node.attrs["back"]
    g.node("Pad", [x, g.const(f"{n}/pads", pads), g.const(f"{n}/zero", np.zeros((), np_type(ins[0])))],
           [_int(node.output)], f"{n}/pad")
  elif op == "lut":
    g.node("Cast", [x], [f"{n}/x64"], f"{n}/x64", to=TensorProto.INT64)
    g.node("Sub", [f"{n}/x64", g.const(f"{n}/lo", np.array(ins[0].range[0], np.int64))], [f"{n}/idx"], f"{n}/idx")
    g.node("Gather", [g.const(f"{n}/table", node.arrays["table"].astype(np_type(out))), f"{n}/idx"],
           [_int(node.output)], f"{n}/gather", axis=0)
  else:
    raise GraphError(f"layer {n!r}: op {op!r} has no ONNX lowering")


def run_onnx(model: onnx.ModelProto, graph: Graph, inputs: np.ndarray | Mapping[str, np.ndarray]
             ) -> dict[str, np.ndarray]:
  """Runs the runtime model of `graph` in onnxruntime on IR-layout integer inputs: {output: (N, *shape) int64}."""
  import onnxruntime as ort  # pylint: disable=import-outside-toplevel
  if not isinstance(inputs, Mapping):
    if len(graph.inputs) != 1:
      raise GraphError(f"graph has inputs {list(graph.inputs)}; pass a dict {{name: array}}")
    inputs = {graph.inputs[0]: inputs}
  feeds = {t: to_onnx_layout(check_input(t, graph.tensors[t], inputs[t])).astype(np.float32) for t in graph.inputs}
  opts = ort.SessionOptions()
  opts.log_severity_level = 3
  # No graph rewrites: e.g. ORT's Pad->MaxPool fusion turns the explicit zero padding into MaxPool pads
  # (which ignore padded values and must be smaller than the kernel): the graph must run as written.
  opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
  sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
  res = sess.run(list(graph.outputs), feeds)
  out = {}
  for t, r in zip(graph.outputs, res):
    v = np.asarray(r)
    if not np.array_equal(v, np.round(v)):
      raise AssertionError(f"output {t!r}: onnxruntime returned non-integer values")
    out[t] = from_onnx_layout(v, graph.tensors[t]).astype(np.int64)
  return out
