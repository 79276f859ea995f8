"""Read-off of a quantized twin: everything an integerizer needs, as plain dicts of NumPy arrays.

`read_off(tw, variables, window)` returns one record per graph node, in network (execution) order:

  name      node name (as in the twin's params and `QGraph`).
  op        graph op ("input", "conv", "dense", "affine", "mean", "add", "mul", "sigmoid", "maxpool",
            "pad_channels", "dropout", "norm_prelu", "upsample2", "concat"); see `jaxbp.quant.graph`.
  inputs    names of the nodes feeding it.
  in        the grid of each input (a dict, below); [] for "input" (the float network input).
  out       the output grid; grid-preserving ops repeat their input grid; the last node (no output quantizer)
            gives its int32 accumulator: {"kind": "accumulator", "bits": 32, "signed": True, "scale": (Cout,)}.
  act       "relu" or "none": applied to the accumulator (or affine output) before requantization.
  conv/dense  w_bits, w_scale (Cout,) per-output-channel quantum, kernel_int (int32; conv (K, Cin/g, Cout),
            dense (Cin, Cout); codes in [-(2^(b-1)-1), 2^(b-1)-1]), bias_int (int32 (Cout,) on acc_scale, or
            None), acc_scale (Cout,) = ε_in·w_scale; conv also kernel, stride, groups, padding ("SAME" or int).
  affine    scale, shift (C,) float: y = x·scale + shift, then act, then requant to `out`.
  sigmoid   lut (int32, qmax_in - qmin_in + 1): output code for each input code X = qmin_in..qmax_in.
  maxpool   window (= stride; zero-padded (w-1)//2 left, rest right).   pad_channels  pad (front, back).
  dropout   rate (identity at eval).      norm_prelu  norm_scale, norm_bias, prelu (C,) float, eps 1e-5.

A grid is {"bits", "signed", "scale" (float quantum ε), "qmin", "qmax", "zero_point" (0), "rounding",
"method" ("pact" | "tqt" | "fixed")}: a value v is the integer code v/ε in [qmin, qmax]. Bits 0 means
pruned (the tensor is zero). Rounding is what every quantizer of the twin applies ("half_up":
floor(v + 1/2), i.e. a floor shift with the rounding offset folded into λ; or "floor").

`bit_config` reads off {layer: (b_in, b_w)}; `bit_shapes` / `bit_joints` feed `jaxbp.cost.bits`.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.cost.bits import BitLayer, BitShapes, joint, locked_joint
from jaxbp.models.params import example_shape
from jaxbp.quant import bayesian_bits as bb
from jaxbp.quant import quantizers as qz
from jaxbp.quant.graph import GRID_PRESERVING
from jaxbp.quant.qlayers import QNode
from jaxbp.quant.twin import QuantTwin, gate_layout


def _grid(tw: QuantTwin, name: str, rec: dict[str, Any]) -> dict[str, Any]:
  node = tw.graph[name]
  g, pol = node.out, tw.policy
  bits = int(rec["bits"])
  method = "fixed" if g.scale is not None else pol.act_method
  if bits == 0:
    qmin = qmax = 0
  elif method == "tqt":
    qmin, qmax = qz.tqt_range(bits, g.signed)
  else:
    qmin, qmax = qz.int_range(bits, g.signed)
  return {"bits": bits, "signed": g.signed, "scale": float(rec["scale"]), "qmin": qmin, "qmax": qmax,
          "zero_point": 0, "rounding": pol.rounding, "method": method}


def _codes(values: np.ndarray, scale: np.ndarray) -> np.ndarray:
  safe = np.where(scale > 0, scale, 1.0)
  return np.round(np.asarray(values, np.float64) / safe).astype(np.int64).astype(np.int32)


def read_off(tw: QuantTwin, variables: dict[str, Any], window: int) -> list[dict[str, Any]]:
  """Per-node integerization records in network order (module docstring); eval mode, deterministic."""
  x = jnp.zeros((1, *example_shape(window)), jnp.float32)  # window: int (1-D) or an image shape (H, W, C)
  variables = {k: v for k, v in variables.items() if k in ("params", "gates")}
  rec = jax.jit(lambda v: tw.apply(v, x, train=False, mutable=["readoff"])[1]["readoff"])(variables)
  rec = jax.device_get(rec)
  params = jax.device_get(variables["params"])
  grids: dict[str, dict[str, Any]] = {}
  out: list[dict[str, Any]] = []
  for n in tw.graph.nodes:
    r = rec.get(n.name, {})
    entry: dict[str, Any] = {"name": n.name, "op": n.op, "inputs": list(n.inputs), "act": n.act,
                             "in": [grids[i] for i in n.inputs]}
    if n.op in ("conv", "dense"):
      w_scale = np.asarray(r["w_scale"], np.float32)
      entry.update(w_bits=int(r["w_bits"]), w_scale=w_scale, kernel_int=_codes(r["w_q"], w_scale),
                   acc_scale=np.asarray(r["acc_scale"] if "acc_scale" in r else r["in_scale"] * w_scale,
                                        np.float32))
      entry["bias_int"] = _codes(r["b_q"], entry["acc_scale"]) if "b_q" in r else None
      if n.op == "conv":
        s = n.spec
        entry.update(kernel=s.kernel, stride=s.stride, groups=s.groups, padding=s.padding)
    elif n.op == "affine":
      entry.update(scale=np.asarray(params[n.name]["scale"]), shift=np.asarray(params[n.name]["shift"]))
    elif n.op == "norm_prelu":
      p = params[n.name]
      entry.update(norm_scale=np.asarray(p["norm_scale"]), norm_bias=np.asarray(p["norm_bias"]),
                   prelu=np.asarray(p["prelu"]), eps=1e-5)
    elif n.op == "maxpool":
      entry["window"] = n.window
    elif n.op == "pad_channels":
      entry["pad"] = tuple(n.pad)
    elif n.op == "dropout":
      entry["rate"] = n.rate
    if n.op in GRID_PRESERVING:
      grids[n.name] = grids[n.inputs[0]]
    elif n.out is not None:
      grids[n.name] = _grid(tw, n.name, r["q"])
    else:
      grids[n.name] = {"kind": "accumulator", "bits": 32, "signed": True, "scale": entry.get("acc_scale")}
    entry["out"] = grids[n.name]
    if n.op == "sigmoid":
      g_in, g_out = entry["in"][0], entry["out"]
      codes = np.arange(g_in["qmin"], g_in["qmax"] + 1)
      y = jax.nn.sigmoid(jnp.asarray(codes, jnp.float32) * jnp.float32(g_in["scale"]))
      q = qz.quantize_int(y, jnp.float32(g_out["scale"]), g_out["qmin"], g_out["qmax"], 0, tw.policy.rounding)
      entry["lut"] = np.asarray(q, np.int32)
    out.append(entry)
  return out


def bit_config(records: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
  """{weighted layer: (b_in, b_w)} from `read_off` records (JSON-ready)."""
  return {r["name"]: (int(r["in"][0]["bits"]), int(r["w_bits"])) for r in records if r["op"] in ("conv", "dense")}


def model_bytes(records: list[dict[str, Any]]) -> dict[str, int]:
  """Deployed parameter bytes: weights packed at their bit widths, int32 biases, float32 per-channel affines."""
  weights = sum(-(-r["kernel_int"].size * r["w_bits"] // 8) for r in records if r["op"] in ("conv", "dense"))
  biases = sum(4 * r["bias_int"].size for r in records if r.get("bias_int") is not None)
  affine = sum(4 * (r["scale"].size + r["shift"].size) for r in records if r["op"] == "affine")
  return {"weights": int(weights), "biases": int(biases), "affine": int(affine),
          "total": int(weights + biases + affine)}


def node_shapes(tw: QuantTwin, window: int) -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
  """{node: (first input shape, output shape)} for a (1, window, 1) input (traced, nothing computed)."""
  shapes: dict[str, Any] = {}

  def interceptor(next_fun, args, kwargs, context):
    y = next_fun(*args, **kwargs)
    if isinstance(context.module, QNode) and context.method_name == "__call__":
      x = args[0][0]
      x = getattr(x, "value", x)
      yv = getattr(y, "value", y)
      shapes[context.module.node.name] = (tuple(x.shape), tuple(yv.shape))
    return y

  def init():
    with nn.intercept_methods(interceptor):
      k = jax.random.key(0)
      return tw.init({"params": k, "dropout": k, "gates": k}, jnp.zeros((1, *example_shape(window))), train=False)

  jax.eval_shape(init)
  return shapes


def bit_shapes(tw: QuantTwin, window: int) -> BitShapes:
  """`jaxbp.cost.bits.BitShapes` of the twin's weighted layers: MACs, weight/bias counts, bit supports."""
  shapes = node_shapes(tw, window)
  layout = gate_layout(tw.graph, tw.policy)
  pol, cfg = tw.policy, tw.policy.bayesian_bits
  layers = []
  for n in tw.graph.weighted():
    (in_shape, out_shape) = shapes[n.name]
    if n.op == "conv":
      s = n.spec
      spatial = out_shape[1:-1]  # (L,) or (H, W)
      weights = s.kernel ** len(spatial) * (s.in_features // s.groups) * s.features
      macs = int(np.prod(spatial)) * weights
      has_bias = s.use_bias or bool(n.bn)
      cout = s.features
    else:
      weights = in_shape[-1] * n.features
      macs, has_bias, cout = weights, n.use_bias, n.features
    src = tw.graph[tw.graph.input_quantizer(n.name)].out
    fixed_in = (src.bits or pol.act_bits,)
    g = layout[n.name]
    layers.append(BitLayer(n.name, int(macs), int(weights), int(cout if has_bias else 0),
                           in_bits=cfg.support if g["act"] else fixed_in,
                           w_bits=cfg.support if g["weight"] else (pol.weight_bits,)))
  return BitShapes(tuple(layers))


def bit_joints(tw: QuantTwin, gates: dict[str, Any]) -> dict[str, jax.Array]:
  """{layer: P(b_in, b_w)} from the "gates" collection (differentiable in the gate logits)."""
  layout = gate_layout(tw.graph, tw.policy)
  cfg = tw.policy.bayesian_bits
  probs = lambda name: bb.bit_probabilities(gates[name]["log_alpha"], cfg) if name else jnp.ones((1,))
  out = {}
  for layer, g in layout.items():
    if cfg is not None and cfg.locked and g["act"]:
      out[layer] = locked_joint(probs(g["act"]))
    else:
      out[layer] = joint(probs(g["act"]), probs(g["weight"]))
  return out
