"""The DORY-style annotated integer ONNX of an integer graph, its config JSON, and a reference evaluator.

This form describes every op of the IR (also those DORY has no layer for) with DORY's annotation names; the real
DORY compiler does not accept it as is (Clip bounds as inputs, the Mul(window) pool chain, Slice/Concat groups,
biases next to the requant). The graph DORY compiles is `jaxbp.export.dory` (`to_dory_model`, `tools/export.py
--format dory`), which rewrites or refuses what DORY cannot run.

Every tensor holds integer values as floats (float64, so that int32 requant constants, biases and
accumulators are exact; DORY's frontends read the values, not the dtype), tensor names are integers
("0" is the input), layouts are NCHW (a 1-D net is H = 1). Per layer:

  conv / linear    Conv | Gemm {weight_bits, bias_bits} -> Mul(k) {mult_bits} -> Add(λ) {add_bits}
                   -> Div(2^d) -> Floor -> Clip(lo, hi) {out_bits, out_signed}
  grouped conv     (1 < groups, not depthwise; PULP-NN has no kernel for it) per group i: Slice(input channels
                   of group i) -> the conv chain above, named "<layer>/g<i>"; then Concat (channel axis, plain
                   ONNX, no requant: the groups share one grid). `split_groups=False` keeps one grouped Conv.
  affine (BN+ReLU) Mul(k) -> Add(λ) -> Div -> Floor -> Clip
  add (residual)   Add(A, B) {in1_mul, in1_add, in1_shift, in2_..., out_mul, out_add, out_shift, in1_signed, in2_signed,
                   out_signed, *_n_levels, *_rq, add_bits}: PULP-NN-mixed's add (`jaxbp.integerize.ops`), no chain
  mul (SE gate)    Mul(x, s) {in1_bits, in2_bits} -> Mul(k) -> Add(λ) -> Div -> Floor -> Clip
  avgpool / global AveragePool | GlobalAveragePool -> Mul(window size): the integer window sum, then the chain
  maxpool          Pad(0) -> MaxPool;  pad_channels: Pad;  lut: Sub(lo) -> Cast -> Gather(table)
  upsample2        Resize(x2 along L, linear, align_corners) -> Mul(2L-1): the integer ACC, then the chain
  concat           [Slice (centre crop along L)] -> Concat {in1/in2_bits, _signed, _channels, _crop} -> the chain
                   (k, λ per output channel: the first C_A requantize input 1, the rest input 2)
  norm_prelu       InstanceNormPReLU {eps, s, a, alpha_shift, d, rnd, length, in_bits, in_signed, out_bits,
                   out_signed, out_lo, out_hi}(x, scale, offset, alpha): one custom node. DORY has no
                   InstanceNorm (its statistics depend on the example, so they cannot fold into a BN/requant);
                   the node stands for the int64 arithmetic of `jaxbp.integerize.instnorm` (its integer
                   parameters are int32/int64 initializers, its output the clipped integers).
Annotated nodes (those with the custom attributes) live in the `org.pulp.dory` domain: standard ONNX
schemas reject unknown attributes, a custom domain keeps `onnx.checker` (full check) passing; DORY's
parsers match op types and attribute names, not domains. The per-layer bit widths are also in the
model's `metadata_props` ("jaxbp.layers", JSON).

`evaluate` runs the annotated graph with the ops' standard meaning in float64 and checks that every
tensor that should hold integers does: it is the executable proof that the annotations describe the same
arithmetic as the integer interpreter (onnxruntime cannot run custom-domain nodes). InstanceNormPReLU, whose
intermediates exceed float64's exact integers, is evaluated from its attributes in exact integer arithmetic
(Python integers, int64 where the values are checked to fit), checking that every intermediate stays below
2^62 (the bound that makes int64 arithmetic exact).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from jaxbp.export.constraints import UnsupportedError, check_exportable
from jaxbp.export.onnx.common import (LENGTH_AXIS, GraphAccumulator, channel_shape, conv_geometry,
                                      from_onnx_layout, onnx_shape, pool_geometry, to_onnx_layout)
from jaxbp.integerize.graph import ACC_BITS, Graph, GraphError, Node, TensorSpec
from jaxbp.integerize.instnorm import LIMIT
from jaxbp.integerize.interpreter import check_input, crop_starts
from jaxbp.integerize.ops import INT32_MAX, add_fields, clip8_range, has_requant, requant_arrays

DOMAIN = "org.pulp.dory"
F64 = TensorProto.DOUBLE  # exact for int32 k, λ, biases and every intermediate
REQUANT_BITS = 32  # k and λ are int32, as the kernels' BN/requant parameters


class _Names:
  """Integer tensor names, in order of creation."""

  def __init__(self):
    self.count = 0
    self.of: dict[str, str] = {}

  def new(self) -> str:
    self.count += 1
    return str(self.count - 1)


def to_dory_onnx(graph: Graph, *, name: str = "jaxbp_dory", split_groups: bool = True
                 ) -> tuple[onnx.ModelProto, dict[str, Any]]:
  """(annotated model, DORY config dict) for `graph`; the model passes `onnx.checker` (full check).

  PULP-NN / DORY have conv kernels for groups = 1 and depthwise (groups = Cin = Cout) only. With `split_groups`
  (default) every other grouped conv "<layer>" becomes `groups` plain annotated convs "<layer>/g<i>" (each on a
  Slice of its input channels, with its own requant chain) and a plain Concat "<layer>" of their outputs on the
  channel axis; the config lists the group convs as separate layers ("split_from", "group"). With
  `split_groups=False` the grouped conv stays one Conv node with its `group` attribute.
  """
  check_exportable(graph)
  g, names = GraphAccumulator(), _Names()
  specs = graph.tensors
  inputs = []
  for t in graph.inputs:
    names.of[t] = names.new()
    inputs.append(helper.make_tensor_value_info(names.of[t], F64, onnx_shape(specs[t])))
  layers = []
  for node in graph.nodes:
    ins, out = [specs[t] for t in node.inputs], specs[node.output]
    if split_groups and _needs_split(node, ins[0]):
      layers.extend(_lower_split_conv(g, names, node, ins[0], out))
    else:
      layers.append(_lower(g, names, node, ins, out))
  outputs = [helper.make_tensor_value_info(names.of[t], F64, onnx_shape(specs[t])) for t in graph.outputs]
  meta = {"jaxbp.layers": json.dumps(layers), "jaxbp.inputs": json.dumps(
      {names.of[t]: {"name": t, "bits": specs[t].bits, "signed": specs[t].signed, "scale": specs[t].scale}
       for t in graph.inputs}),
          "jaxbp.outputs": json.dumps({names.of[t]: {"name": t, "bits": specs[t].bits, "scale": specs[t].scale}
                                       for t in graph.outputs})}
  model = g.model(name, inputs, outputs, domains={DOMAIN: 1}, metadata=meta,
                  doc="jaxbp integer graph, DORY-annotated (integer values as float64, NCHW)")
  onnx.checker.check_model(model, full_check=True)
  x0 = specs[graph.inputs[0]]
  config = {
      "onnx_file": "network_dory.onnx",
      "code reserved space": 132000,  # bytes of L2 for code and runtime (DORY's GAP8 configs: 120-132 kB)
      "BNRelu_bits": REQUANT_BITS,
      "n_inputs": len(graph.inputs),
      "input_bits": x0.bits,
      "input_signed": x0.signed,
      "input_scale": x0.scale,
      "input_shape": onnx_shape(x0, 1)[1:],
      "outputs": [{"tensor": names.of[t], "name": t, "bits": specs[t].bits, "signed": specs[t].signed,
                   "scale": specs[t].scale} for t in graph.outputs],
      "layers": layers,
  }
  return model, config


def _info(g: GraphAccumulator, name: str, spec: TensorSpec) -> None:
  g.info(name, F64, onnx_shape(spec))


def _f64(a) -> np.ndarray:
  return np.asarray(a, np.float64)


def _chain(g: GraphAccumulator, names: _Names, n: str, acc: str, out: TensorSpec, k, lam, d: int, y: str) -> None:
  """acc -> Mul(k) -> Add(λ) -> Div(2^d) -> Floor -> Clip -> y, annotated."""
  cs = channel_shape(out)
  lo, hi = out.range
  t1, t2, t3, t4 = names.new(), names.new(), names.new(), names.new()
  g.node("Mul", [acc, g.const(f"{n}.k", _f64(np.broadcast_to(k, (out.channels,))).reshape(cs))], [t1], f"{n}.mul",
         DOMAIN, mult_bits=REQUANT_BITS)
  g.node("Add", [t1, g.const(f"{n}.lam", _f64(np.broadcast_to(lam, (out.channels,))).reshape(cs))], [t2],
         f"{n}.add", DOMAIN, add_bits=REQUANT_BITS)
  g.node("Div", [t2, g.const(f"{n}.shift", _f64(2.0 ** d))], [t3], f"{n}.div")
  g.node("Floor", [t3], [t4], f"{n}.floor")
  g.node("Clip", [t4, g.const(f"{n}.lo", _f64(lo)), g.const(f"{n}.hi", _f64(hi))], [y], f"{n}.clip", DOMAIN,
         out_bits=out.bits, out_signed=int(out.signed))
  for t in (t1, t2, t3, t4):
    _info(g, t, out)


def _lower(g: GraphAccumulator, names: _Names, node: Node, ins: list[TensorSpec], out: TensorSpec) -> dict:
  n, op = node.name, node.op
  x = names.of[node.inputs[0]]
  y = names.of[node.output] = names.new()
  _info(g, y, out)
  layer = {"name": n, "op": op, "output": y, "inputs": [names.of[t] for t in node.inputs],
           "in_bits": [s.bits for s in ins], "out_bits": out.bits, "out_signed": out.signed, "out_scale": out.scale}
  rq = has_requant(node, out)
  if op in ("conv", "linear"):
    wb = node.attrs["w_bits"]
    layer["weight_bits"] = wb
    args = [x, g.const(f"{n}.weight", _f64(conv_geometry(node, ins[0])[0] if op == "conv" else node.arrays["weight"]))]
    if "bias" in node.arrays:
      args.append(g.const(f"{n}.bias", _f64(node.arrays["bias"])))
    acc = names.new() if rq else y
    common = {"weight_bits": wb, "bias_bits": 32}
    if op == "conv":
      w, strides, pads = conv_geometry(node, ins[0])
      g.node("Conv", args, [acc], f"{n}.conv", DOMAIN, group=node.attrs["groups"], strides=strides, pads=pads,
             kernel_shape=list(w.shape[2:]), dilations=[1, 1], **common)
      layer.update(groups=node.attrs["groups"], kernel=list(w.shape[2:]), strides=strides, pads=pads)
    else:
      g.node("Gemm", args, [acc], f"{n}.gemm", DOMAIN, transB=1, **common)
    if rq:
      _info(g, acc, TensorSpec(out.shape, ACC_BITS, True, 1.0))
      k, lam, d = requant_arrays(node, out.channels)
      _chain(g, names, n, acc, out, k, lam, d, y)
  elif op == "add":  # PULP-NN-mixed's add, one annotated node (the form DORY's Quantlab frontend reads)
    (m1, a1, s1), (m2, a2, s2), (mo, ao, so) = add_fields(node)
    attrs = {"in1_mul": m1, "in1_add": a1, "in1_shift": s1, "in2_mul": m2, "in2_add": a2, "in2_shift": s2,
             "out_mul": mo, "out_add": ao, "out_shift": so, "add_bits": REQUANT_BITS, "out_signed": int(out.signed),
             "in1_signed": int(ins[0].signed), "in2_signed": int(ins[1].signed), "out_n_levels": 2 ** out.bits,
             "in1_n_levels": 2 ** ins[0].bits, "in2_n_levels": 2 ** ins[1].bits, "in1_rq": 1, "in2_rq": 1,
             "out_rq": 1}
    g.node("Add", [names.of[t] for t in node.inputs], [y], f"{n}.residual", DOMAIN, **attrs)
    layer.update({k: attrs[k] for k in ("in1_mul", "in1_add", "in1_shift", "in2_mul", "in2_add", "in2_shift",
                                        "out_mul", "out_add", "out_shift")})
  elif op == "mul":
    s = names.of[node.inputs[1]]
    if len(ins[0].shape) > 1:
      s4 = names.new()
      g.node("Unsqueeze", [s, g.const(f"{n}.axes", np.array([2, 3], np.int64))], [s4], f"{n}.unsqueeze")
      g.info(s4, F64, ["N", ins[1].channels, 1, 1])
      s = s4
    acc = names.new()
    g.node("Mul", [x, s], [acc], f"{n}.gate", DOMAIN, in1_bits=ins[0].bits, in2_bits=ins[1].bits)
    _info(g, acc, out)
    k, lam, d = requant_arrays(node, out.channels)
    _chain(g, names, n, acc, out, k, lam, d, y)
  elif op in ("avgpool", "global_avgpool"):
    mean, acc = names.new(), names.new()
    if op == "avgpool":
      kernel, strides, pads = pool_geometry(node, ins[0])
      g.node("AveragePool", [x], [mean], f"{n}.avgpool", kernel_shape=kernel, strides=strides, pads=pads,
             count_include_pad=1)
      _info(g, mean, out)
      window = int(np.prod(kernel))
      g.node("Mul", [mean, g.const(f"{n}.window", _f64(window))], [acc], f"{n}.window")
      _info(g, acc, out)
    else:  # GlobalAveragePool -> Mul(window) -> Flatten: (N, C, H, W) -> (N, C)
      window = int(np.prod(ins[0].shape[:-1]))
      total = names.new()
      g.node("GlobalAveragePool", [x], [mean], f"{n}.gap")
      g.node("Mul", [mean, g.const(f"{n}.window", _f64(window))], [total], f"{n}.window")
      g.node("Flatten", [total], [acc], f"{n}.flatten", axis=1)
      for t in (mean, total):
        g.info(t, F64, ["N", out.channels, 1, 1])
      _info(g, acc, out)
    k, lam, d = requant_arrays(node, out.channels)
    _chain(g, names, n, acc, out, k, lam, d, y)
    layer["window"] = window
  elif op == "affine":
    k, lam, d = requant_arrays(node, out.channels)
    _chain(g, names, n, x, out, k, lam, d, y)
  elif op == "maxpool":
    kernel, strides, pads = pool_geometry(node, ins[0])
    padded = names.new()
    g.node("Pad", [x, g.const(f"{n}.pads", np.array([0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]], np.int64)),
                   g.const(f"{n}.zero", _f64(0))], [padded], f"{n}.pad")
    g.info(padded, F64, ["N", ins[0].channels, None, None])
    g.node("MaxPool", [padded], [y], f"{n}.maxpool", kernel_shape=kernel, strides=strides)
  elif op == "pad_channels":
    rank = 2 if len(ins[0].shape) == 1 else 4
    pads = np.zeros(2 * rank, np.int64)
    pads[1], pads[rank + 1] = node.attrs["front"], node.attrs["back"]
    g.node("Pad", [x, g.const(f"{n}.pads", pads), g.const(f"{n}.zero", _f64(0))], [y], f"{n}.pad")
  elif op == "lut":
    idx, idx64 = names.new(), names.new()
    g.node("Sub", [x, g.const(f"{n}.lo", _f64(ins[0].range[0]))], [idx], f"{n}.index")
    g.node("Cast", [idx], [idx64], f"{n}.cast", to=TensorProto.INT64)
    g.node("Gather", [g.const(f"{n}.table", _f64(node.arrays["table"])), idx64], [y], f"{n}.lut", axis=0)
    _info(g, idx, ins[0])
    g.info(idx64, TensorProto.INT64, onnx_shape(ins[0]))
  elif op == "upsample2":
    length = ins[0].shape[0]
    up, acc = names.new(), names.new()
    g.node("Resize", [x, "", g.const(f"{n}.scales", np.array([1, 1, 1, 2], np.float32))], [up], f"{n}.resize",
           mode="linear", coordinate_transformation_mode="align_corners")
    g.node("Mul", [up, g.const(f"{n}.taps_den", _f64(2 * length - 1))], [acc], f"{n}.taps_den")
    for t in (up, acc):
      _info(g, t, out)
    k, lam, d = requant_arrays(node, out.channels)
    _chain(g, names, n, acc, out, k, lam, d, y)
    layer.update(scale_factor=2, mode="linear", align_corners=True, taps_den=2 * length - 1)
  elif op == "concat":
    length, starts = crop_starts([s.shape[0] for s in ins])
    parts = []
    for i, (t, spec, start) in enumerate(zip(node.inputs, ins, starts)):
      part = names.of[t]
      if spec.shape[0] != length:
        part = names.new()
        g.node("Slice", [names.of[t], g.const(f"{n}.start{i}", np.array([start], np.int64)),
                         g.const(f"{n}.end{i}", np.array([start + length], np.int64)),
                         g.const(f"{n}.axes", np.array([LENGTH_AXIS], np.int64))], [part], f"{n}.crop{i}")
        _info(g, part, dataclasses.replace(spec, shape=(length, spec.channels)))
      parts.append(part)
    acc = names.new()
    annotations = {f"in{i + 1}_{f}": v for i, (spec, start) in enumerate(zip(ins, starts))
                   for f, v in (("bits", spec.bits), ("signed", int(spec.signed)), ("channels", spec.channels),
                                ("crop", start))}
    g.node("Concat", parts, [acc], f"{n}.concat", DOMAIN, axis=1, **annotations)
    _info(g, acc, out)
    k, lam, d = requant_arrays(node, out.channels)
    _chain(g, names, n, acc, out, k, lam, d, y)
    layer.update(crops=starts, channels=[s.channels for s in ins], length=length)
  elif op == "norm_prelu":
    fields = {f: int(node.attrs[f]) for f in ("eps", "s", "a", "alpha_shift", "d", "rnd")}
    lo, hi = out.range
    params = [g.const(f"{n}.{f}", node.arrays[f].astype(np.int64)) for f in ("scale", "offset", "alpha")]
    g.node("InstanceNormPReLU", [x] + params, [y], f"{n}.norm_prelu", DOMAIN, length=ins[0].shape[0],
           in_bits=ins[0].bits, in_signed=int(ins[0].signed), out_bits=out.bits, out_signed=int(out.signed),
           out_lo=lo, out_hi=hi, **fields)
    layer.update(fields, shift=fields["d"], length=ins[0].shape[0])
  else:
    raise GraphError(f"layer {n!r}: op {op!r} has no DORY lowering")
  if rq and op not in ("conv", "linear"):
    layer["shift"] = layer.get("shift", int(node.attrs["d"]))
  return layer


def _needs_split(node: Node, x: TensorSpec) -> bool:
  """Whether `node` is a grouped conv with no PULP-NN kernel: groups > 1 and not depthwise (groups = Cin = Cout)."""
  if node.op != "conv":
    return False
  groups, cout = node.attrs["groups"], node.arrays["weight"].shape[0]
  return groups > 1 and not groups == x.channels == cout


def _channels(spec: TensorSpec, lo: int, hi: int) -> TensorSpec:
  """`spec` restricted to channels [lo, hi) (a per-channel scale is sliced too)."""
  scale = spec.scale[lo:hi] if isinstance(spec.scale, tuple) else spec.scale
  return dataclasses.replace(spec, shape=spec.shape[:-1] + (hi - lo,), scale=scale)


def _lower_split_conv(g: GraphAccumulator, names: _Names, node: Node, x_spec: TensorSpec, out: TensorSpec
                      ) -> list[dict]:
  """A grouped conv as `groups` annotated plain convs on channel Slices of the input, then a plain Concat.

  Group i reads input channels [i·Cin/G, (i+1)·Cin/G), holds weights [Cout/G][Cin/G][K..] and the bias, k and λ
  of output channels [i·Cout/G, (i+1)·Cout/G), and shares d; the groups' outputs are on one grid, so the Concat
  needs no requant. Returns the layer entries: one per group, then the concat.
  """
  n, groups = node.name, node.attrs["groups"]
  w, strides, pads = conv_geometry(node, x_spec)
  cout, cin = w.shape[0], x_spec.channels
  co, ci = cout // groups, cin // groups
  rq = has_requant(node, out)
  where = f"layer {n!r} (conv, groups = {groups})"
  checks = [("input channels per group", ci, x_spec.bits), ("output channels per group", co,
                                                             out.bits if out.bits != ACC_BITS else 8)]
  if node.attrs["w_bits"] < 8:
    checks.append(("output channels per group (weights)", co, node.attrs["w_bits"]))
  for label, count, bits in checks:
    if bits < 8 and count % (8 // bits):
      raise UnsupportedError(f"{where}: split into plain convs, its {label} = {count} must be a multiple of "
                             f"{8 // bits} ({bits}-bit values packed {8 // bits} per byte); export it with "
                             "split_groups=False to keep the grouped conv")
  x = names.of[node.inputs[0]]
  k, lam, d = requant_arrays(node, out.channels) if rq else (None, None, None)
  layers, parts = [], []
  for i in range(groups):
    gn = f"{n}/g{i}"
    xs, ys = names.new(), names.new()
    in_spec, out_spec = _channels(x_spec, i * ci, (i + 1) * ci), _channels(out, i * co, (i + 1) * co)
    g.node("Slice", [x, g.const(f"{gn}.start", np.array([i * ci], np.int64)),
                     g.const(f"{gn}.end", np.array([(i + 1) * ci], np.int64)),
                     g.const(f"{gn}.axes", np.array([1], np.int64))], [xs], f"{gn}.slice")
    _info(g, xs, in_spec)
    args = [xs, g.const(f"{gn}.weight", _f64(w[i * co:(i + 1) * co]))]
    if "bias" in node.arrays:
      args.append(g.const(f"{gn}.bias", _f64(node.arrays["bias"][i * co:(i + 1) * co])))
    acc = names.new() if rq else ys
    g.node("Conv", args, [acc], f"{gn}.conv", DOMAIN, group=1, strides=strides, pads=pads,
           kernel_shape=list(w.shape[2:]), dilations=[1, 1], weight_bits=node.attrs["w_bits"], bias_bits=32)
    if rq:
      _info(g, acc, TensorSpec(out_spec.shape, ACC_BITS, True, 1.0))
      sl = slice(i * co, (i + 1) * co)
      _chain(g, names, gn, acc, out_spec, k[sl], lam[sl], d, ys)
    _info(g, ys, out_spec)
    parts.append(ys)
    layers.append({"name": gn, "op": "conv", "output": ys, "inputs": [xs], "in_bits": [x_spec.bits],
                   "out_bits": out.bits, "out_signed": out.signed, "out_scale": out_spec.scale,
                   "weight_bits": node.attrs["w_bits"], "groups": 1, "kernel": list(w.shape[2:]),
                   "strides": strides, "pads": pads, "split_from": n, "group": i,
                   "in_channels": [i * ci, (i + 1) * ci], "out_channels": [i * co, (i + 1) * co]})
  y = names.of[node.output] = names.new()
  _info(g, y, out)
  g.node("Concat", parts, [y], f"{n}.concat", axis=1)
  layers.append({"name": n, "op": "concat", "output": y, "inputs": parts, "in_bits": [out.bits] * groups,
                 "out_bits": out.bits, "out_signed": out.signed, "out_scale": out.scale, "split_from": n,
                 "channels": [co] * groups, "requant": False})
  return layers


# ---------------------------------------------------------------------------------------------------
# Reference evaluation of the annotated graph.

_INTEGER_OPS = {"Conv", "Gemm", "Mul", "Add", "Sub", "Floor", "Clip", "Pad", "MaxPool", "Gather", "Flatten",
                "Unsqueeze", "Cast", "ReduceSum", "Slice", "Concat", "InstanceNormPReLU"}


def evaluate(model: onnx.ModelProto, graph: Graph, inputs: np.ndarray | Mapping[str, np.ndarray]
             ) -> dict[str, np.ndarray]:
  """Runs the annotated model with each op's standard meaning (float64, NumPy) on IR-layout integer inputs.

  Every op output except those of Div, Resize and AveragePool/GlobalAveragePool must be integer-valued; it is
  checked (to 1e-6) and rounded, which makes the float64 evaluation exact. InstanceNormPReLU runs in exact
  integers (`_instance_norm_prelu`). Returns {output: (N, *shape)}.
  """
  from jaxbp.integerize.interpreter import conv  # pylint: disable=import-outside-toplevel
  if not isinstance(inputs, Mapping):
    inputs = {graph.inputs[0]: inputs}
  raw = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
  env: dict[str, np.ndarray] = {k: a.astype(np.float64) for k, a in raw.items()}
  for vi, t in zip(model.graph.input, graph.inputs):
    env[vi.name] = to_onnx_layout(check_input(t, graph.tensors[t], inputs[t])).astype(np.float64)
  for nd in model.graph.node:
    a = {at.name: helper.get_attribute_value(at) for at in nd.attribute}
    v = [env[i] if i else None for i in nd.input]  # "": an omitted optional input
    op = nd.op_type
    if op == "Conv":
      x = v[0].transpose(0, 2, 3, 1)  # NHWC
      pads = a["pads"]
      acc = conv(x.astype(np.int64), v[1].transpose(0, 2, 3, 1).astype(np.int64), tuple(a["strides"]),
                 ((pads[0], pads[2]), (pads[1], pads[3])), a.get("group", 1)).transpose(0, 3, 1, 2)
      r = acc + (v[2].reshape(1, -1, 1, 1) if len(v) > 2 else 0)
    elif op == "Gemm":
      r = v[0] @ v[1].T + (v[2] if len(v) > 2 else 0)
    elif op == "Add" and "out_mul" in a:
      r = pulp_add(v[0], v[1], a, nd.name)
    elif op in ("Mul", "Add", "Sub", "Div"):
      r = {"Mul": np.multiply, "Add": np.add, "Sub": np.subtract, "Div": np.divide}[op](v[0], v[1])
    elif op == "Floor":
      r = np.floor(v[0])
    elif op == "Clip":
      r = np.clip(v[0], v[1], v[2])
    elif op == "Pad":
      p = v[1].astype(int)
      r = np.pad(v[0], list(zip(p[:len(p) // 2], p[len(p) // 2:])), constant_values=v[2] if len(v) > 2 else 0)
    elif op in ("MaxPool", "AveragePool"):
      r = _pool(v[0], a, np.max if op == "MaxPool" else np.mean)
    elif op == "GlobalAveragePool":
      r = v[0].mean(axis=(2, 3), keepdims=True)
    elif op == "Flatten":
      r = v[0].reshape(len(v[0]), -1)
    elif op == "Unsqueeze":
      r = np.expand_dims(v[0], tuple(int(i) for i in v[1]))
    elif op == "Cast":
      r = v[0]
    elif op == "Gather":
      r = v[0][v[1].astype(np.int64)]
    elif op == "Slice":
      r = _slice(v[0], *(None if t is None else t.astype(np.int64) for t in v[1:]))
    elif op == "Concat":
      r = np.concatenate(v, axis=a["axis"])
    elif op == "Resize":
      r = _resize_linear_align_corners(v[0], v[2] if len(v) > 2 else None, v[3] if len(v) > 3 else None, a, nd.name)
    elif op == "InstanceNormPReLU":
      missing = [i for i in nd.input[1:] if i not in raw]
      if missing:
        raise GraphError(f"evaluate: node {nd.name!r}: parameters {missing} must be initializers")
      r = _instance_norm_prelu(v[0], *(raw[i] for i in nd.input[1:]), a, nd.name)
    else:
      raise GraphError(f"evaluate: op {op!r} of node {nd.name!r} is not supported")
    if op in _INTEGER_OPS:
      rounded = np.rint(r)
      if np.abs(r - rounded).max(initial=0) > 1e-6:
        raise AssertionError(f"node {nd.name!r} ({op}): output should be integer-valued")
      r = rounded
    env[nd.output[0]] = r
  return {t: from_onnx_layout(env[vo.name], graph.tensors[t]).astype(np.int64)
          for vo, t in zip(model.graph.output, graph.outputs)}


def pulp_add(x1: np.ndarray, x2: np.ndarray, a: dict, name: str) -> np.ndarray:
  """PULP-NN-mixed's add: clip8((x_i·m_i + a_i) >> s_i) per input, summed, ((·)·m + a) >> s, clipped."""
  rs = []
  for j, x in ((1, x1), (2, x2)):
    lo, hi = clip8_range(bool(a[f"in{j}_signed"]))
    v = x.astype(np.int64) * a[f"in{j}_mul"] + a[f"in{j}_add"]
    rs.append(np.clip(v >> a[f"in{j}_shift"], lo, hi))
  v = ((rs[0] + rs[1]) * a["out_mul"] + a["out_add"]) >> a["out_shift"]
  bits = int(np.log2(a["out_n_levels"]))
  lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if a["out_signed"] else (0, (1 << bits) - 1)
  if np.abs(v).max(initial=0) > INT32_MAX:
    raise AssertionError(f"node {name!r} (Add): the output requant leaves int32")
  return np.clip(v, lo, hi).astype(np.float64)


def _pool(x: np.ndarray, a: dict, reduce) -> np.ndarray:
  from numpy.lib.stride_tricks import sliding_window_view  # pylint: disable=import-outside-toplevel
  kh, kw = a["kernel_shape"]
  sh, sw = a.get("strides", [1, 1])
  p = a.get("pads", [0, 0, 0, 0])
  xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[2]), (p[1], p[3])))
  win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
  return reduce(win, axis=(-2, -1))


def _slice(x: np.ndarray, starts, ends, axes=None, steps=None) -> np.ndarray:
  """ONNX Slice (non-negative starts/ends, as the exporter writes them)."""
  axes = range(len(starts)) if axes is None else axes
  steps = [1] * len(starts) if steps is None else steps
  index = [slice(None)] * x.ndim
  for s, e, ax, st in zip(starts, ends, axes, steps):
    index[int(ax)] = slice(int(s), int(e), int(st))
  return x[tuple(index)]


def _resize_linear_align_corners(x: np.ndarray, scales, sizes, a: dict, name: str) -> np.ndarray:
  """ONNX Resize, mode "linear", coordinate_transformation_mode "align_corners", along every resized axis:
  output j sits at input coordinate j·(L_in - 1)/(L_out - 1) (0 when L_out = 1), interpolated between its two
  neighbours (the upper one clamped to the last position)."""
  mode, ctm = a.get("mode", b"nearest"), a.get("coordinate_transformation_mode", b"half_pixel")
  if (mode, ctm) != (b"linear", b"align_corners"):
    raise GraphError(f"evaluate: node {name!r} (Resize): only mode 'linear' with 'align_corners' is supported, got "
                     f"{mode!r}/{ctm!r}")
  out_shape = ([int(s) for s in sizes] if sizes is not None and len(sizes) else
               [math.floor(d * float(s)) for d, s in zip(x.shape, scales)])
  for axis, (n_in, n_out) in enumerate(zip(x.shape, out_shape)):
    if n_in == n_out:
      continue
    coord = np.arange(n_out) * (n_in - 1) / (n_out - 1) if n_out > 1 else np.zeros(1)
    lo = np.floor(coord).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = (coord - lo).reshape((-1,) + (1,) * (x.ndim - axis - 1))
    x = np.take(x, lo, axis=axis) * (1 - frac) + np.take(x, hi, axis=axis) * frac
  return x


def _instance_norm_prelu(x: np.ndarray, scale: np.ndarray, offset: np.ndarray, alpha: np.ndarray, a: dict,
                         name: str) -> np.ndarray:
  """The InstanceNormPReLU node on x [N, C, 1, L] (integer-valued), exactly, from its attributes:
  S1, S2 over L; V = L·S2 − S1² + eps; σ = isqrt(V·4^s); m = sgn(g)·⌊(|g|·2^a + ⌊σ/2⌋)/σ⌋;
  U = m·(L·X − S1) + b; P = U if U ≥ 0 else ⌊α·U / 2^alpha_shift⌋; Y = clip(⌊(P + rnd)/2^d⌋, out_lo, out_hi).

  The per-(example, channel) statistics, σ and m run in Python integers (no overflow; `>>` and `//` floor);
  the per-position products run in int64 only after their exact maxima (|m|·max_t|Z_t| + |b|, |α|·max_t|U_t|,
  computed in Python integers) are checked to be below 2^62. Raises AssertionError if an intermediate reaches
  2^62 (the contract that keeps every int64 backend exact)."""
  def big(arr: np.ndarray) -> np.ndarray:
    return np.asarray(arr, np.int64).astype(object)

  def bounded(what: str, v: np.ndarray) -> np.ndarray:
    if v.size and int(np.abs(v).max()) >= LIMIT:
      raise AssertionError(f"node {name!r} (InstanceNormPReLU): {what} reaches 2^62, outside exact int64")
    return v

  length = x.shape[-1]
  if a["length"] != length:
    raise GraphError(f"evaluate: node {name!r}: attribute length = {a['length']}, input has {length} positions")
  cs = (1, -1, 1, 1)
  xi = np.rint(x).astype(np.int64)  # 2-8-bit values: the sums below are far inside int64
  s1 = xi.sum(axis=-1, keepdims=True)
  s2 = (xi * xi).sum(axis=-1, keepdims=True)
  v = bounded("V·4^s", (bounded("L·S2", length * big(s2)) - big(s1) ** 2 + a["eps"]) << (2 * a["s"]))
  sigma = np.vectorize(math.isqrt, otypes=[object])(v)
  g = big(scale).reshape(cs)
  sign = (g > 0).astype(np.int64) - (g < 0).astype(np.int64)
  m = sign * (bounded("|g|·2^a + σ/2", (np.abs(g) << a["a"]) + (sigma >> 1)) // sigma)  # (N, C, 1, 1)
  z = length * xi - s1
  b = np.asarray(offset, np.int64).reshape(cs)
  bounded("U", np.abs(m) * big(np.abs(z).max(axis=-1, keepdims=True)) + np.abs(big(b)))
  u = m.astype(np.int64) * z + b
  al = np.asarray(alpha, np.int64).reshape(cs)
  bounded("α·U", np.abs(big(al)) * big(np.abs(u).max(axis=-1, keepdims=True)))
  p = np.where(u >= 0, u, (al * u) >> a["alpha_shift"])
  y = bounded("P + rnd", p + a["rnd"]) >> a["d"]  # |P|, rnd < 2^62: the sum fits int64
  return np.clip(y, a["out_lo"], a["out_hi"]).astype(np.float64)
