"""DORY ONNX of grouped convs: split into plain annotated convs (PULP-NN has no grouped kernel), bit-exact."""

import json

import jax
import numpy as np
import onnx
import pytest

from jaxbp import integerize as I
from jaxbp import models
from jaxbp.export import UnsupportedError
from jaxbp.export import onnx as oexp
from jaxbp.integerize import from_quant as F
from jaxbp.integerize.builder import GraphBuilder, Quant
from jaxbp.quant import QuantConfig, calibrate, from_float, twin


def _attrs(node) -> dict:
  return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _convs(model) -> list:
  return [n for n in model.graph.node if n.op_type == "Conv"]


def _assert_only_kernel_groups(model) -> None:
  """Every Conv is plain (group 1) or depthwise (group = its channel count = weights' output channels)."""
  inits = {i.name: i for i in model.graph.initializer}
  for n in _convs(model):
    group, cout = _attrs(n).get("group", 1), inits[n.input[1]].dims[0]
    assert group == 1 or (group == cout and inits[n.input[1]].dims[1] == 1), (n.name, group)


def _out_scale(x_span: float, fan_in: int, bits: int) -> float:
  """An output quantum: a grid spanning a few standard deviations of a conv output (inputs spanning `x_span`,
  ~N(0, 0.3) weights)."""
  return 4 * 0.3 * x_span * np.sqrt(fan_in) / 2 ** bits


def _grouped_graph(rng, *, spatial, groups, per_group, in_q, w_bits, out_bits, out_signed, bias):
  """input (spatial.., C) -> grouped conv "c" (C -> C, `groups` groups of `per_group` channels)."""
  b = GraphBuilder()
  c = groups * per_group
  x = b.input("x", spatial + (c,), Quant(*in_q))
  kernel = (3,) * len(spatial)
  w, sw = I.quantize_weight(rng.normal(size=(c,) + kernel + (per_group,)) * 0.3, w_bits)
  out = None if out_bits is None else Quant(out_bits, out_signed,
                                            _out_scale(in_q[2] * 2 ** in_q[0], per_group * 3 ** len(spatial), out_bits))
  y = b.conv("c", x, w, sw, w_bits=w_bits, bias=rng.normal(size=c) * 0.1 if bias else None, stride=2,
             padding="SAME", groups=groups, out=out)
  return b.build([y])


def _input(rng, graph, n=6):
  spec = graph.tensors[graph.inputs[0]]
  lo, hi = spec.range
  return rng.integers(lo, hi + 1, (n,) + spec.shape)


CASES = [  # spatial, groups, per_group, (in bits, signed, scale), w_bits, out_bits, out_signed, bias
    ((16,), 2, 4, (8, True, 0.05), 8, 8, False, True),
    ((16,), 4, 4, (4, False, 0.1), 4, 4, True, False),
    ((16,), 2, 8, (2, False, 0.2), 2, 2, False, True),
    ((12,), 4, 8, (8, False, 0.02), 2, 8, True, True),
    ((6, 5), 2, 4, (4, True, 0.1), 8, 4, False, True),
    ((6, 5), 4, 4, (2, False, 0.3), 4, 2, True, False),
    ((7, 4), 2, 8, (8, True, 0.05), 2, 8, False, False),
    ((16,), 2, 4, (8, True, 0.05), 4, None, True, True),  # int32 accumulator output: no requant chain
]


@pytest.mark.parametrize("seed,case", list(enumerate(CASES)), ids=lambda c: "-".join(
    map(str, (len(c[0]), c[1], c[2], c[3][0], c[4], c[5], c[6], c[7]))) if isinstance(c, tuple) else str(c))
def test_split_grouped_conv_is_bit_exact(seed, case):
  spatial, groups, per_group, in_q, w_bits, out_bits, out_signed, bias = case
  rng = np.random.default_rng(seed)
  graph = _grouped_graph(rng, spatial=spatial, groups=groups, per_group=per_group, in_q=in_q, w_bits=w_bits,
                         out_bits=out_bits, out_signed=out_signed, bias=bias)
  x = _input(rng, graph)
  ref = I.run(graph, x)
  model, config = oexp.to_dory_onnx(graph)
  onnx.checker.check_model(model, full_check=True)
  _assert_only_kernel_groups(model)
  convs = _convs(model)
  assert [n.name for n in convs] == [f"c/g{i}.conv" for i in range(groups)]
  assert all(n.domain == oexp.DOMAIN and _attrs(n)["weight_bits"] == w_bits and _attrs(n)["bias_bits"] == 32
             and (len(n.input) == 3) == bias for n in convs)
  ops = [n.op_type for n in model.graph.node]
  assert ops.count("Slice") == groups and ops[-1] == "Concat" and ops.count("Clip") == (groups if out_bits else 0)
  names = [v.name for v in model.graph.input] + [n.output[0] for n in model.graph.node]
  assert all(n.isdigit() for n in names)
  got = oexp.evaluate(model, graph, x)
  np.testing.assert_array_equal(got["c"], ref["c"])
  if out_bits is not None:
    assert len(np.unique(ref["c"])) > 2, "the output grid should not collapse (a weak test otherwise)"
  # The config lists one plain conv per group, then the concat of their outputs.
  layers = json.loads(json.dumps(config))["layers"]
  assert layers == json.loads(next(m.value for m in model.metadata_props if m.key == "jaxbp.layers"))
  assert [(e["name"], e["op"], e.get("group")) for e in layers] == (
      [(f"c/g{i}", "conv", i) for i in range(groups)] + [("c", "concat", None)])
  assert all(e["split_from"] == "c" for e in layers)
  assert all(e["groups"] == 1 and e["in_channels"] == [i * per_group, (i + 1) * per_group]
             for i, e in enumerate(layers[:-1]))
  assert layers[-1]["inputs"] == [e["output"] for e in layers[:-1]]


@pytest.mark.parametrize("spatial", [(16,), (6, 5)])
def test_unsplit_form_keeps_one_grouped_conv(spatial):
  rng = np.random.default_rng(3)
  graph = _grouped_graph(rng, spatial=spatial, groups=4, per_group=4, in_q=(4, False, 0.1), w_bits=4, out_bits=8,
                         out_signed=False, bias=True)
  x = _input(rng, graph)
  model, config = oexp.to_dory_onnx(graph, split_groups=False)
  onnx.checker.check_model(model, full_check=True)
  (conv,) = _convs(model)
  assert _attrs(conv)["group"] == 4 and "Slice" not in {n.op_type for n in model.graph.node}
  assert [(e["name"], e["groups"]) for e in config["layers"]] == [("c", 4)]
  np.testing.assert_array_equal(oexp.evaluate(model, graph, x)["c"], I.run(graph, x)["c"])


def test_depthwise_and_plain_convs_are_not_split():
  """grouped (G = 2) -> depthwise (G = C) -> channel multiplier (G = Cin, Cout = 2 Cin: no depthwise kernel)."""
  rng = np.random.default_rng(4)
  b = GraphBuilder()
  x = b.input("x", (20, 8), Quant(8, True, 0.05))
  h = b.conv("g2", x, *I.quantize_weight(rng.normal(size=(8, 3, 4)) * 0.3, 8), w_bits=8, groups=2, padding="SAME",
             out=Quant(8, False, 0.05))
  h = b.conv("dw", h, *I.quantize_weight(rng.normal(size=(8, 3, 1)) * 0.3, 4), w_bits=4, groups=8, padding="SAME",
             bias=rng.normal(size=8) * 0.1, out=Quant(8, True, 0.02))
  h = b.conv("mult", h, *I.quantize_weight(rng.normal(size=(16, 1, 1)) * 0.3, 8), w_bits=8, groups=8,
             out=Quant(8, True, 0.01))
  y = b.conv("pw", h, *I.quantize_weight(rng.normal(size=(8, 1, 16)) * 0.3, 8), w_bits=8, out=Quant(8, True, 0.05))
  graph = b.build([y])
  x = rng.integers(-128, 128, (5, 20, 8))
  model, config = oexp.to_dory_onnx(graph)
  onnx.checker.check_model(model, full_check=True)
  _assert_only_kernel_groups(model)
  groups = {n.name: _attrs(n)["group"] for n in _convs(model)}
  assert groups == {"g2/g0.conv": 1, "g2/g1.conv": 1, "dw.conv": 8, **{f"mult/g{i}.conv": 1 for i in range(8)},
                    "pw.conv": 1}
  assert [e["name"] for e in config["layers"] if "split_from" not in e] == ["dw", "pw"]
  np.testing.assert_array_equal(oexp.evaluate(model, graph, x)["pw"], I.run(graph, x)["pw"])


def test_split_that_breaks_packing_names_the_layer():
  rng = np.random.default_rng(5)
  graph = _grouped_graph(rng, spatial=(16,), groups=4, per_group=2, in_q=(2, False, 0.2), w_bits=8, out_bits=8,
                         out_signed=False, bias=False)
  with pytest.raises(UnsupportedError, match=r"layer 'c' \(conv, groups = 4\): .*input channels per group = 2 "
                     r"must be a multiple of 4.*split_groups=False"):
    oexp.to_dory_onnx(graph)
  model, _ = oexp.to_dory_onnx(graph, split_groups=False)  # the grouped form still exports
  x = _input(rng, graph)
  np.testing.assert_array_equal(oexp.evaluate(model, graph, x)["c"], I.run(graph, x)["c"])


def test_resnet1d_with_grouped_blocks_exports_bit_exactly():
  cfg = models.ResNet1dConfig(first_kernel=5, kernel=3, n_blocks=2, base_filters=8, groups=2)
  window = 32
  tw = twin(cfg, QuantConfig())
  variables = from_float(tw, models.init_variables(models.build(cfg), jax.random.key(0), window), window)
  x = np.random.default_rng(0).normal(size=(24, window, 1)).astype(np.float32)
  variables = calibrate(tw, variables, [x[:16]])
  graph = F.integerize_twin(tw, variables, window)
  grouped = [n.name for n in graph.nodes if n.op == "conv" and n.attrs["groups"] == 2]
  assert len(grouped) == 4, "every block conv of the ResNet1d is grouped (groups = 2)"
  model, config = oexp.to_dory_onnx(graph)
  onnx.checker.check_model(model, full_check=True)
  _assert_only_kernel_groups(model)
  assert {e["split_from"] for e in config["layers"] if "split_from" in e} == set(grouped)
  xi = I.quantize(x[16:], graph.tensors[graph.inputs[0]])
  ref = I.run(graph, xi)
  got = oexp.evaluate(model, graph, xi)
  for t in graph.outputs:
    np.testing.assert_array_equal(got[t], ref[t], err_msg=t)
