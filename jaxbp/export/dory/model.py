"""The ONNX that DORY's Quantlab frontend compiles as is, its `dory_config.json`, and an evaluator of that ONNX.

Rules (each learned from DORY's parser, see `../shared/docs/dory-interop.md`): integer values as float64
tensors, NCHW (a 1-D net is H = 1), integer tensor names increasing along the graph (DORY re-wires the nodes it
drops -- Floor, Flatten -- by comparing `int(name)`), one DORY layer per node of the lowered graph (`lower.lower`),
in graph order, so DORY's layer i is node i and `out_layer<i>.txt` is that node's output:

  conv / linear   Conv | Gemm {weight_bits} [-> Mul(k, per channel) -> Add(λ', per channel) -> Div(2^d) -> Floor
                  -> Clip {min, max, out_bits}]   (DORY: Convolution/FullyConnected + BNRelu). The int32 bias folds
                  exactly into λ' = λ + k·b (DORY's layer template has no bias next to a BN requant); a layer
                  without requant (int32 output) keeps its bias. Gemm weights are written [Cin][Cout]: DORY
                  decides the layout from the first axis (= Cin), which stays unambiguous when Cin = Cout.
  avgpool         (Global)AveragePool -> Mul(k·window, scalar) -> Add(λ, scalar) -> Div(2^d) -> Floor -> Clip
                  (DORY: Pooling + Requant; the kernels divide the multiplier by the window). A global pool's
                  Clip output is 4-D; a Flatten follows it when a linear layer or the graph output needs (N, C).
  maxpool         MaxPool {pads} (zero padding and skipped padding agree here: `lower` only leaves unsigned or
                  unpadded inputs)
  add             Add(newer input, older input) {in1_mul, in1_add, in1_shift, in1_n_levels, in1_rq, in2_..., out_mul,
                  out_add, out_shift, out_n_levels, out_rq, add_bits, out_signed, in1_signed, in2_signed}:
                  PULP-NN-mixed's add (in1_* belong to ONNX input 0; DORY swaps them to its lower-named input and
                  passes the newer tensor, the previous layer's output, as the kernel's first input)
Clip, Conv, Gemm and Add nodes carry attributes the standard schemas lack: they live in the `org.pulp.dory`
domain (DORY matches op types and attribute names, not domains), so `onnx.checker` (full check) passes.

`evaluate` runs that ONNX with each op's standard meaning (and the annotated Add's PULP-NN meaning) in float64,
checking that every integer tensor is integer-valued: the proof that what DORY reads is what the interpreter runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from jaxbp.export.dory.lower import lower
from jaxbp.export.onnx.common import GraphAccumulator, conv_geometry, from_onnx_layout, pool_geometry, to_onnx_layout
from jaxbp.export.onnx.dory import pulp_add
from jaxbp.integerize.graph import Graph, GraphError, Node, TensorSpec
from jaxbp.integerize.interpreter import check_input
from jaxbp.integerize.ops import INT32_MAX, INT32_MIN, add_fields, has_requant, requant_arrays

DOMAIN = "org.pulp.dory"
F64 = TensorProto.DOUBLE
BNRELU_BITS = 32  # DORY's BNRelu_bits: k and λ are int32
ONNX_FILE = "network.onnx"


def _shape4(spec: TensorSpec) -> list:
  """NCHW shape of an IR tensor: (C,) -> [N, C, 1, 1]; (L, C) -> [N, C, 1, L]; (H, W, C) -> [N, C, H, W]."""
  s = spec.shape
  if len(s) == 1:
    return ["N", s[0], 1, 1]
  if len(s) == 2:
    return ["N", s[1], 1, s[0]]
  return ["N", s[2], s[0], s[1]]


class _Builder:
  """Integer-named tensors (creation order = graph order) and the ONNX nodes."""

  def __init__(self):
    self.g = GraphAccumulator()
    self.count = 0
    self.name_of: dict[str, str] = {}  # IR tensor -> ONNX name
    self.flat: dict[str, str] = {}  # IR tensor -> its (N, C) Flatten, for 4-D pooled outputs

  def new(self, shape: list) -> str:
    name = str(self.count)
    self.count += 1
    self.g.info(name, F64, shape)
    return name

  def const(self, name: str, value) -> str:
    return self.g.const(name, np.asarray(value, np.float64))

  def flattened(self, t: str, spec: TensorSpec) -> str:
    """(N, C) form of IR tensor t (a pooled (C,) tensor is 4-D in this graph)."""
    if t not in self.flat:
      f = self.new(["N", spec.channels])
      self.g.node("Flatten", [self.name_of[t]], [f], f"{t}.flatten", axis=1)
      self.flat[t] = f
    return self.flat[t]


def to_dory_model(graph: Graph, *, name: str = "jaxbp") -> tuple[onnx.ModelProto, dict[str, Any], Graph]:
  """(ONNX model, dory_config.json dict, the lowered graph whose node i is DORY layer i) for `graph`.

  Raises DoryUnsupportedError (naming every layer DORY cannot deploy) or UnsupportedError before building.
  """
  lowered, lowerings = lower(graph)
  b = _Builder()
  specs = lowered.tensors
  x0 = specs[lowered.inputs[0]]
  b.name_of[lowered.inputs[0]] = b.new(_shape4(x0))
  inputs = [helper.make_tensor_value_info(b.name_of[lowered.inputs[0]], F64, _shape4(x0))]
  b.g.value_info.pop()  # the input is declared as a graph input, not a value_info
  layers = []
  for i, node in enumerate(lowered.nodes):
    ins, out = [specs[t] for t in node.inputs], specs[node.output]
    layers.append({"index": i, "name": node.name, "op": node.op, **_emit(b, node, ins, out)})
  y = lowered.outputs[0]
  out_name = b.flattened(y, specs[y]) if len(specs[y].shape) == 1 else b.name_of[y]
  out_shape = ["N", specs[y].channels] if len(specs[y].shape) == 1 else _shape4(specs[y])
  outputs = [helper.make_tensor_value_info(out_name, F64, out_shape)]
  b.g.value_info = [v for v in b.g.value_info if v.name != out_name]
  model = b.g.model(name, inputs, outputs, domains={DOMAIN: 1}, doc="jaxbp integer graph for DORY (Quantlab)",
                    metadata={"jaxbp.layers": json.dumps(layers), "jaxbp.input": lowered.inputs[0],
                              "jaxbp.output": y})
  onnx.checker.check_model(model, full_check=True)
  config = {
      "onnx_file": ONNX_FILE,
      "code reserved space": 132000,  # bytes of L2 for code and runtime (DORY's GAP8 examples: 120-132 kB)
      "BNRelu_bits": BNRELU_BITS,
      "n_inputs": 1,  # test inputs (input.txt)
      "input_bits": x0.bits,
      "input_signed": x0.signed,
      "input_scale": x0.scale,
      "input_shape": _shape4(x0)[1:],
      "output": {"name": y, "bits": specs[y].bits, "signed": specs[y].signed, "scale": specs[y].scale},
      "layers": layers,
      "lowerings": lowerings,
  }
  return model, config, lowered


def _emit(b: _Builder, node: Node, ins: list[TensorSpec], out: TensorSpec) -> dict[str, Any]:
  """Appends the ONNX nodes of one IR node; returns its layer summary."""
  n, op, g = node.name, node.op, b.g
  x = b.name_of[node.inputs[0]]
  info: dict[str, Any] = {"in_bits": [s.bits for s in ins], "in_signed": [s.signed for s in ins],
                          "out_bits": out.bits, "out_signed": out.signed}
  if op in ("conv", "linear"):
    rq = has_requant(node, out)
    wb = node.attrs["w_bits"]
    bias = node.arrays.get("bias")
    if op == "conv":
      w, strides, pads = conv_geometry(node, ins[0])
      args = [x, b.const(f"{n}.weight", w)]
    else:
      args = [b.flattened(node.inputs[0], ins[0]), b.const(f"{n}.weight", node.arrays["weight"].T)]  # [Cin][Cout]
    if bias is not None and not rq:
      args.append(b.const(f"{n}.bias", bias))
    if op == "conv":
      acc = b.new(_shape4(out))
      g.node("Conv", args, [acc], f"{n}.conv", DOMAIN, group=node.attrs["groups"], strides=strides, pads=pads,
             kernel_shape=list(w.shape[2:]), dilations=[1, 1], weight_bits=wb)
      info.update(groups=node.attrs["groups"], kernel=list(w.shape[2:]), strides=strides, pads=pads)
    else:
      acc = b.new(["N", out.channels])
      g.node("Gemm", args, [acc], f"{n}.gemm", DOMAIN, transB=0, weight_bits=wb)
    info["weight_bits"] = wb
    if not rq:
      b.name_of[node.output] = acc
      return info
    k, lam, d = requant_arrays(node, out.channels)
    lam = lam + (k * bias.astype(np.int64) if bias is not None else 0)
    if lam.min(initial=0) < INT32_MIN or lam.max(initial=0) > INT32_MAX:
      raise GraphError(f"layer {n!r} ({op}): the bias folded into the requant, λ + k·b, leaves int32 "
                       f"([{lam.min()}, {lam.max()}]); DORY's BNRelu constants are {BNRELU_BITS}-bit")
    shape = (1, out.channels, 1, 1) if op == "conv" else (1, out.channels)
    cshape = _shape4(out) if op == "conv" else ["N", out.channels]
    _requant(b, n, acc, k.reshape(shape), lam.reshape(shape), d, out, cshape, node.output)
    info.update(k=k.tolist(), lam=lam.tolist(), d=d, bias_folded=bias is not None)
  elif op in ("avgpool", "global_avgpool"):
    mean = b.new(_shape4(out))
    if op == "avgpool":
      kernel, strides, pads = pool_geometry(node, ins[0])
      g.node("AveragePool", [x], [mean], f"{n}.avgpool", kernel_shape=kernel, strides=strides, pads=pads,
             count_include_pad=1)
      window = int(np.prod(kernel))
      info.update(kernel=kernel, strides=strides, pads=pads)
    else:
      g.node("GlobalAveragePool", [x], [mean], f"{n}.gap")
      window = int(np.prod(ins[0].shape[:-1]))
    k, lam, d = requant_arrays(node, out.channels)
    _requant(b, n, mean, np.asarray(k[0] * window), np.asarray(lam[0]), d, out, _shape4(out), node.output)
    info.update(window=window, mul=int(k[0] * window), add=int(lam[0]), d=d)
  elif op == "maxpool":
    kernel, strides, pads = pool_geometry(node, ins[0])
    y = b.name_of[node.output] = b.new(_shape4(out))
    g.node("MaxPool", [x], [y], f"{n}.maxpool", kernel_shape=kernel, strides=strides, pads=pads)
    info.update(kernel=kernel, strides=strides, pads=pads)
  elif op == "add":
    (m1, a1, s1), (m2, a2, s2), (mo, ao, so) = add_fields(node)
    fields = [(node.inputs[0], ins[0], m1, a1, s1), (node.inputs[1], ins[1], m2, a2, s2)]
    if int(b.name_of[node.inputs[0]]) < int(b.name_of[node.inputs[1]]):
      fields.reverse()  # the newer tensor first: DORY's kernel call takes it as its first input
    y = b.name_of[node.output] = b.new(_shape4(out))
    attrs = {"add_bits": 32, "out_mul": mo, "out_add": ao, "out_shift": so, "out_n_levels": 2 ** out.bits,
             "out_rq": 1, "out_signed": int(out.signed)}
    for j, (_, spec, m, a, s) in enumerate(fields, start=1):
      attrs.update({f"in{j}_mul": m, f"in{j}_add": a, f"in{j}_shift": s, f"in{j}_n_levels": 2 ** spec.bits,
                    f"in{j}_rq": 1, f"in{j}_signed": int(spec.signed)})
    g.node("Add", [b.name_of[t] for t, *_ in fields], [y], f"{n}.add", DOMAIN, **attrs)
    info.update({k: v for k, v in attrs.items() if not k.endswith(("_rq", "_levels"))},
                inputs=[t for t, *_ in fields])
  else:
    raise GraphError(f"layer {n!r}: op {op!r} has no DORY form (lower() should have refused or rewritten it)")
  return info


def _requant(b: _Builder, n: str, acc: str, k, lam, d: int, out: TensorSpec, shape: list, ir_out: str) -> None:
  """acc -> Mul(k) -> Add(λ) -> Div(2^d) -> Floor -> Clip{min, max, out_bits} = IR tensor `ir_out`."""
  lo, hi = out.range
  t1, t2, t3, t4 = (b.new(shape) for _ in range(4))
  b.g.node("Mul", [acc, b.const(f"{n}.k", k)], [t1], f"{n}.mul")
  b.g.node("Add", [t1, b.const(f"{n}.lam", lam)], [t2], f"{n}.add")
  b.g.node("Div", [t2, b.const(f"{n}.shift", 2.0 ** d)], [t3], f"{n}.div")
  b.g.node("Floor", [t3], [t4], f"{n}.floor")
  y = b.name_of[ir_out] = b.new(shape)
  b.g.node("Clip", [t4], [y], f"{n}.clip", DOMAIN, min=float(lo), max=float(hi), out_bits=out.bits)


# ---------------------------------------------------------------------------------------------------
# Evaluation of the DORY ONNX.

_NOT_INTEGER = ("Div", "AveragePool", "GlobalAveragePool")


def evaluate(model: onnx.ModelProto, graph: Graph, inputs: np.ndarray | Mapping[str, np.ndarray]
             ) -> dict[str, np.ndarray]:
  """Runs a `to_dory_model` ONNX on IR-layout integer inputs (N, *shape); returns {graph output: int64 array}.

  Every op has its standard ONNX meaning (Clip's bounds from its min/max attributes) except the annotated Add,
  which is PULP-NN-mixed's add from its attributes; every output except Div's and the pools' must be
  integer-valued (checked to 1e-6, then rounded), which makes float64 exact here.
  """
  from jaxbp.integerize.interpreter import conv  # pylint: disable=import-outside-toplevel
  if not isinstance(inputs, Mapping):
    inputs = {graph.inputs[0]: inputs}
  env: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in model.graph.initializer}
  t = graph.inputs[0]
  x = to_onnx_layout(check_input(t, graph.tensors[t], inputs[t])).astype(np.float64)
  env[model.graph.input[0].name] = x.reshape(x.shape[:2] + (1, 1)) if x.ndim == 2 else x
  for nd in model.graph.node:
    a = {at.name: helper.get_attribute_value(at) for at in nd.attribute}
    v = [env[i] for i in nd.input]
    op = nd.op_type
    if op == "Conv":
      pads = a["pads"]
      r = conv(v[0].transpose(0, 2, 3, 1).astype(np.int64), v[1].transpose(0, 2, 3, 1).astype(np.int64),
               tuple(a["strides"]), ((pads[0], pads[2]), (pads[1], pads[3])), a.get("group", 1)).transpose(0, 3, 1, 2)
      r = r + (v[2].reshape(1, -1, 1, 1) if len(v) > 2 else 0)
    elif op == "Gemm":
      r = v[0] @ (v[1].T if a.get("transB", 0) else v[1]) + (v[2] if len(v) > 2 else 0)
    elif op == "Add" and "out_mul" in a:
      r = pulp_add(v[0], v[1], a, nd.name)
    elif op in ("Mul", "Add", "Div"):
      r = {"Mul": np.multiply, "Add": np.add, "Div": np.divide}[op](v[0], v[1])
    elif op == "Floor":
      r = np.floor(v[0])
    elif op == "Clip":
      r = np.clip(v[0], a["min"], a["max"])
    elif op in ("MaxPool", "AveragePool"):
      r = _pool(v[0], a, op)
    elif op == "GlobalAveragePool":
      r = v[0].mean(axis=(2, 3), keepdims=True)
    elif op == "Flatten":
      r = v[0].reshape(len(v[0]), -1)
    else:
      raise GraphError(f"evaluate: op {op!r} of node {nd.name!r} is not part of the DORY form")
    if op not in _NOT_INTEGER:
      rounded = np.rint(r)
      if np.abs(r - rounded).max(initial=0) > 1e-6:
        raise AssertionError(f"node {nd.name!r} ({op}): output should be integer-valued")
      r = rounded
    env[nd.output[0]] = r
  y = graph.outputs[0]
  return {y: from_onnx_layout(env[model.graph.output[0].name], graph.tensors[y]).astype(np.int64)}


def _pool(x: np.ndarray, a: dict, op: str) -> np.ndarray:
  from numpy.lib.stride_tricks import sliding_window_view  # pylint: disable=import-outside-toplevel
  kh, kw = a["kernel_shape"]
  sh, sw = a.get("strides", [1, 1])
  p = a.get("pads", [0, 0, 0, 0])
  fill = -np.inf if op == "MaxPool" else 0.0  # ONNX: max pool ignores pads; count_include_pad averages zeros
  xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[2]), (p[1], p[3])), constant_values=fill)
  win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
  return win.max(axis=(-2, -1)) if op == "MaxPool" else win.mean(axis=(-2, -1))
