"""The standard-ONNX form of an integer graph that onnxruntime runs bit-exactly.

Integer ops where ONNX has them: ConvInteger (int8/uint8 × int8 -> int32; also the window sums of average
pooling, with an all-ones depthwise kernel), int32 MatMul for linear layers (not MatMulInteger: onnxruntime's
uint8 x int8 MatMulInteger on AVX2 CPUs adds pairs of products in saturating int16, e.g. 255·127 + 255·127 >
32767, so a full-range uint8 input gave wrong sums), int32 Add for the bias, MaxPool/Pad on
int8/uint8, ReduceSum on int32, Gather for lookup tables. Requantization runs on integer-valued float64
tensors: Cast -> Mul(k) -> Add(λ) -> Div(2^d) -> Floor -> Clip -> Cast (the add: that chain per input, with
the input's 8-bit clip, then Add and the chain once more with out_mul/out_add/out_shift). Every value there is an integer
below 2^53 (the int32 bound is checked before export), and division by a power of two and floor are exact,
so this equals the kernels' `clip((k·ACC + λ) >> d)` bit for bit. (ONNX's `BitShift` is unsigned only and
integer `Div` truncates toward zero, hence float64.)

The 1-D UNet ops (tensors [N, C, 1, L]): upsample2 gathers the lo/hi taps along L (Gather with the constant
index vectors of `interpreter.upsample2_taps`) and forms ACC = (2L-1-r)·X[lo] + r·X[hi] with int32 Mul/Add;
concat casts both inputs to int32 (they may differ in bits and signedness), centre-crops them with Slice and
joins them with Concat on channels. Both then run the requant chain above.

norm_prelu's intermediates reach 2^62, beyond float64's exact integers, so it runs on int64 tensors
(onnxruntime's CPU int64 Add/Sub/Mul/Div/Mod/ReduceSum/Less/Greater/Where are exact; its int64 Clip/Max/Min
are not: in 1.31, on tensors of 8 or more elements (the vectorized path; one element comes out right), operands
with equal upper 32-bit halves are ordered by their lower halves read as signed, e.g. Clip(2401791450, 0, 255) = 0,
so the final clip is Where(Less(v, lo), lo, v), then Where(Greater(., hi), hi, .)):
  * a floor shift v >> c of a signed value is (v - Mod(v, 2^c)) / 2^c with Mod(fmod=0), whose remainder takes
    the divisor's sign, i.e. lies in [0, 2^c): v - rem is an exact multiple of 2^c, so the truncating integer
    Div is exact and the quotient is floor(v / 2^c) for either sign of v;
  * m = sgn(g)·((|g|·2^a + σ/2) / σ): the numerator is >= 0 and σ >= 1, where truncation is floor;
  * σ = isqrt(V·4^s) for 0 <= v = V·4^s <= 2^62: Cast(double) -> Sqrt -> Floor -> Cast(int64) gives r. Both the
    conversion of v and the correctly rounded Sqrt have relative error <= 2^-53, so r's error before Floor is
    below 2^31·2^-52 < 1 and r is within one of isqrt(v); one correction each way, r - 1 where r·r > v, then
    r + 1 where (r+1)·(r+1) <= v, makes it exact (every product stays below 2^63).

Graph inputs are integer-valued float32 tensors (exact for 2–8-bit values), outputs integer-valued float64
(exact for int32 accumulators), both in the layout of `common.onnx_shape` (NCHW; a 1-D net has H = 1).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper

from jaxbp.export.constraints import check_exportable
from jaxbp.export.onnx.common import (LENGTH_AXIS, GraphAccumulator, channel_shape, conv_geometry,
                                      elem_type, from_onnx_layout, np_type, onnx_shape, pool_geometry, to_onnx_layout)
from jaxbp.integerize.graph import Graph, GraphError, Node, TensorSpec
from jaxbp.integerize.interpreter import check_input, crop_starts, upsample2_taps
from jaxbp.integerize.ops import add_fields, clip8_range, has_requant, requant_arrays

F64 = TensorProto.DOUBLE
I32, I64 = TensorProto.INT32, TensorProto.INT64


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


def _add_stage(g: GraphAccumulator, n: str, v: str, stage: tuple[int, int, int], clip: tuple[int, int], y: str
               ) -> None:
  """One stage of the add on an integer-valued float64 tensor: y = clip(floor((v·mul + add) / 2^shift))."""
  mul, add, shift = stage
  g.node("Mul", [v, g.const(f"{n}/mul", np.array(float(mul)))], [f"{n}/m"], f"{n}/mul")
  g.node("Add", [f"{n}/m", g.const(f"{n}/add", np.array(float(add)))], [f"{n}/a"], f"{n}/add")
  g.node("Div", [f"{n}/a", g.const(f"{n}/pow2", np.array(float(2 ** shift)))], [f"{n}/div"], f"{n}/div")
  g.node("Floor", [f"{n}/div"], [f"{n}/floor"], f"{n}/floor")
  g.node("Clip", [f"{n}/floor", g.const(f"{n}/lo", np.array(float(clip[0]))), g.const(f"{n}/hi",
         np.array(float(clip[1])))], [y], f"{n}/clip")


def _lower(g: GraphAccumulator, node: Node, ins: list[TensorSpec], out: TensorSpec) -> None:
  n, op = node.name, node.op
  x = _int(node.inputs[0])
  if op in ("conv", "linear"):
    if op == "conv":
      w, strides, pads = conv_geometry(node, ins[0])
      g.node("ConvInteger", [x, g.const(f"{n}/weight", w.astype(np.int8))], [f"{n}/conv"], f"{n}/conv",
             group=node.attrs["groups"], strides=strides, pads=pads, kernel_shape=list(w.shape[2:]))
    else:
      # int32 MatMul, not MatMulInteger: onnxruntime's uint8 x int8 MatMulInteger (MLAS U8S8 on AVX2) sums
      # pairs of products in saturating int16, so full-range uint8 inputs (e.g. after a residual add) came
      # out wrong (module docstring).
      w = node.arrays["weight"].T
      g.node("Cast", [x], [f"{n}/x32"], f"{n}/x32", to=TensorProto.INT32)
      g.node("MatMul", [f"{n}/x32", g.const(f"{n}/weight", np.ascontiguousarray(w, np.int32))], [f"{n}/conv"],
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
    stages = add_fields(node)
    for i, (t, spec) in enumerate(zip(node.inputs, ins), 1):
      g.node("Cast", [_int(t)], [f"{n}/in{i}_f"], f"{n}/in{i}_f", to=F64)
      _add_stage(g, f"{n}/in{i}", f"{n}/in{i}_f", stages[i - 1], clip8_range(spec.signed), f"{n}/r{i}")
    g.node("Add", [f"{n}/r1", f"{n}/r2"], [f"{n}/sum"], f"{n}/sum")
    _add_stage(g, f"{n}/out", f"{n}/sum", stages[2], out.range, f"{n}/y")
    g.node("Cast", [f"{n}/y"], [_int(node.output)], f"{n}/cast", to=elem_type(out))
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
  elif op == "upsample2":
    _upsample2(g, node, ins[0], out)
  elif op == "concat":
    _concat(g, node, ins, out)
  elif op == "norm_prelu":
    _norm_prelu(g, node, ins[0], out)
  else:
    raise GraphError(f"layer {n!r}: op {op!r} has no ONNX lowering")


def _upsample2(g: GraphAccumulator, node: Node, x_spec: TensorSpec, out: TensorSpec) -> None:
  """ACC = (2L-1-r)·X[lo] + r·X[hi] along L in int32 (|ACC| <= (2L-1)·2^8, far inside int32), then requant."""
  n = node.name
  length = x_spec.shape[0]
  lo, hi, r = upsample2_taps(length)
  g.node("Cast", [_int(node.inputs[0])], [f"{n}/x32"], f"{n}/x32", to=I32)
  for tap, idx, weight in (("lo", lo, 2 * length - 1 - r), ("hi", hi, r)):
    g.node("Gather", [f"{n}/x32", g.const(f"{n}/{tap}_index", idx.astype(np.int64))], [f"{n}/x_{tap}"],
           f"{n}/gather_{tap}", axis=LENGTH_AXIS)
    g.node("Mul", [f"{n}/x_{tap}", g.const(f"{n}/{tap}_weight", weight.astype(np.int32))], [f"{n}/{tap}_term"],
           f"{n}/weight_{tap}")
  g.node("Add", [f"{n}/lo_term", f"{n}/hi_term"], [f"{n}/acc"], f"{n}/taps")
  _requant(g, node, f"{n}/acc", out)


def _concat(g: GraphAccumulator, node: Node, ins: list[TensorSpec], out: TensorSpec) -> None:
  """Both inputs cast to int32, centre-cropped along L (Slice), concatenated on channels, then requant."""
  n = node.name
  length, starts = crop_starts([s.shape[0] for s in ins])
  parts = []
  for i, (t, start) in enumerate(zip(node.inputs, starts)):
    g.node("Cast", [_int(t)], [f"{n}/in{i}_32"], f"{n}/in{i}_32", to=I32)
    g.node("Slice", [f"{n}/in{i}_32", g.const(f"{n}/start{i}", np.array([start], np.int64)),
                     g.const(f"{n}/end{i}", np.array([start + length], np.int64)),
                     g.const(f"{n}/axes", np.array([LENGTH_AXIS], np.int64))], [f"{n}/in{i}_crop"], f"{n}/crop{i}")
    parts.append(f"{n}/in{i}_crop")
  g.node("Concat", parts, [f"{n}/acc"], f"{n}/concat", axis=1)
  _requant(g, node, f"{n}/acc", out)


def floor_shift(g: GraphAccumulator, n: str, v: str, c: int, y: str) -> None:
  """y = v >> c (floor division by 2^c, 0 <= c <= 62) of an int64 tensor v of either sign (module docstring)."""
  p = g.const(f"{n}/pow2_{c}", np.array(1 << c, np.int64))
  g.node("Mod", [v, p], [f"{y}/rem"], f"{y}/rem", fmod=0)
  g.node("Sub", [v, f"{y}/rem"], [f"{y}/multiple"], f"{y}/multiple")
  g.node("Div", [f"{y}/multiple", p], [y], f"{y}/div")


def clip_int64(g: GraphAccumulator, n: str, v: str, lo: int, hi: int, y: str) -> None:
  """y = clip(v, lo, hi) of an int64 tensor with Less/Greater + Where (not Clip/Max/Min: module docstring)."""
  lo_c, hi_c = g.const(f"{n}/clip_lo", np.array(lo, np.int64)), g.const(f"{n}/clip_hi", np.array(hi, np.int64))
  g.node("Less", [v, lo_c], [f"{y}/below"], f"{y}/below")
  g.node("Where", [f"{y}/below", lo_c, v], [f"{y}/at_least_lo"], f"{y}/at_least_lo")
  g.node("Greater", [f"{y}/at_least_lo", hi_c], [f"{y}/above"], f"{y}/above")
  g.node("Where", [f"{y}/above", hi_c, f"{y}/at_least_lo"], [y], f"{y}/at_most_hi")


def isqrt(g: GraphAccumulator, n: str, v: str, y: str) -> None:
  """y = floor(sqrt(v)) of an int64 tensor v with values in [0, 2^62] (module docstring)."""
  one = g.const(f"{n}/one", np.array(1, np.int64))
  g.node("Cast", [v], [f"{y}/v_f"], f"{y}/v_f", to=F64)
  g.node("Sqrt", [f"{y}/v_f"], [f"{y}/sqrt"], f"{y}/sqrt")
  g.node("Floor", [f"{y}/sqrt"], [f"{y}/floor"], f"{y}/floor")
  g.node("Cast", [f"{y}/floor"], [f"{y}/r0"], f"{y}/r0", to=I64)
  g.node("Mul", [f"{y}/r0", f"{y}/r0"], [f"{y}/r0_sq"], f"{y}/r0_sq")
  g.node("Greater", [f"{y}/r0_sq", v], [f"{y}/too_big"], f"{y}/too_big")
  g.node("Sub", [f"{y}/r0", one], [f"{y}/r0_dec"], f"{y}/r0_dec")
  g.node("Where", [f"{y}/too_big", f"{y}/r0_dec", f"{y}/r0"], [f"{y}/r1"], f"{y}/r1")
  g.node("Add", [f"{y}/r1", one], [f"{y}/r1_inc"], f"{y}/r1_inc")
  g.node("Mul", [f"{y}/r1_inc", f"{y}/r1_inc"], [f"{y}/r1_inc_sq"], f"{y}/r1_inc_sq")
  g.node("Less", [v, f"{y}/r1_inc_sq"], [f"{y}/r1_ok"], f"{y}/r1_ok")
  g.node("Where", [f"{y}/r1_ok", f"{y}/r1", f"{y}/r1_inc"], [y], f"{y}/r")


def _norm_prelu(g: GraphAccumulator, node: Node, x_spec: TensorSpec, out: TensorSpec) -> None:
  """InstanceNorm + PReLU in int64 (`jaxbp.integerize.instnorm`): statistics per example and channel over L."""
  n, at = node.name, node.attrs
  length = x_spec.shape[0]
  cs = channel_shape(out)

  def c(name: str, value) -> str:
    return g.const(f"{n}/{name}", np.asarray(value, np.int64))

  def op(kind: str, inputs: list[str], y: str, **attrs) -> str:
    g.node(kind, inputs, [f"{n}/{y}"], f"{n}/{y}", **attrs)
    return f"{n}/{y}"

  scale = [int(v) for v in node.arrays["scale"]]
  x = op("Cast", [_int(node.inputs[0])], "x64", to=I64)
  axes = c("axes", [LENGTH_AXIS])
  s1 = op("ReduceSum", [x, axes], "s1", keepdims=1)  # (N, C, 1, 1)
  s2 = op("ReduceSum", [op("Mul", [x, x], "x_sq"), axes], "s2", keepdims=1)
  dev = op("Sub", [op("Mul", [s2, c("length", length)], "l_s2"), op("Mul", [s1, s1], "s1_sq")], "l_s2_minus_s1_sq")
  v = op("Mul", [op("Add", [dev, c("eps", at["eps"])], "var"), c("pow4s", 1 << (2 * at["s"]))], "var_4s")
  isqrt(g, n, v, f"{n}/sigma")
  sigma = f"{n}/sigma"
  num = op("Add", [c("scale_2a", np.array([abs(k) << at["a"] for k in scale], np.int64).reshape(cs)),
                   op("Div", [sigma, c("two", 2)], "half_sigma")], "m_num")
  m = op("Mul", [op("Div", [num, sigma], "m_abs"), c("sign", np.sign(scale).reshape(cs))], "m")
  z = op("Sub", [op("Mul", [x, c("length", length)], "l_x"), s1], "z")
  u = op("Add", [op("Mul", [m, z], "m_z"), c("offset", node.arrays["offset"].reshape(cs))], "u")
  au = op("Mul", [u, c("alpha", node.arrays["alpha"].reshape(cs))], "alpha_u")
  floor_shift(g, n, au, at["alpha_shift"], f"{n}/alpha_u_shift")
  p = op("Where", [op("Less", [u, c("zero", 0)], "u_neg"), f"{n}/alpha_u_shift", u], "prelu")
  floor_shift(g, n, op("Add", [p, c("rnd", at["rnd"])], "prelu_rnd"), at["d"], f"{n}/shifted")
  clip_int64(g, n, f"{n}/shifted", *out.range, f"{n}/clip")
  g.node("Cast", [f"{n}/clip"], [_int(node.output)], f"{n}/cast", to=elem_type(out))


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
