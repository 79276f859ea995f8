"""C and ONNX exports of an integer graph with every op: bit-exact against the interpreter; clear errors."""

import shutil

import numpy as np
import onnx
import pytest

from jaxbp import integerize as I
from jaxbp.export import UnsupportedError
from jaxbp.export import c as cexp
from jaxbp.export import onnx as oexp
from jaxbp.export.c.pack import pack, unpack
from jaxbp.integerize.builder import GraphBuilder, Quant
from tests.test_integerize import _all_ops_graph

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed: the C export cannot be "
                               "compiled and run on the host")


@pytest.fixture(scope="module")
def case():
  rng = np.random.default_rng(1)
  graph, _ = _all_ops_graph(rng)
  x = rng.integers(-128, 128, (32, 20, 4))
  return graph, x, I.run(graph, x)


@pytest.mark.parametrize("bits,signed", [(2, True), (2, False), (4, True), (4, False), (8, True)])
def test_pack_round_trip(bits, signed):
  lo, hi = I.int_range(bits, signed)
  v = np.random.default_rng(0).integers(lo, hi + 1, 37)
  packed = pack(v, bits)
  assert len(packed) == -(-37 * bits // 8)
  np.testing.assert_array_equal(unpack(packed, bits, 37, signed), v)
  if bits == 4:  # first element in the low nibble (PULP-NN order)
    assert pack(np.array([1, 2]), 4)[0] == 0x21


@needs_gcc
def test_c_export_is_bit_exact(case, tmp_path):
  graph, x, ref = case
  export = cexp.emit(graph, tmp_path)
  assert {"network.c", "network.h", "kernels.c", "kernels.h", "main.c", "Makefile"} <= set(export.files)
  src = (tmp_path / "network.c").read_text()
  assert "static const uint8_t n0_w[24]" in src  # [8][3][2] 4-bit weights, packed 2 per byte
  exe = cexp.build(tmp_path)
  got = cexp.split_outputs(export, cexp.run_exe(exe, cexp.flatten_inputs(graph, x), export.output_size))
  for t in graph.outputs:
    np.testing.assert_array_equal(got[t], ref[t], err_msg=t)


def test_onnx_runtime_graph_is_bit_exact(case):
  graph, x, ref = case
  model = oexp.to_runtime_onnx(graph)
  onnx.checker.check_model(model, full_check=True)
  assert {n.op_type for n in model.graph.node} >= {"ConvInteger", "MatMul", "Floor", "Clip", "Gather"}
  got = oexp.run_onnx(model, graph, x)
  for t in graph.outputs:
    np.testing.assert_array_equal(got[t], ref[t], err_msg=t)


def test_dory_graph_annotations_and_semantics(case):
  graph, x, ref = case
  model, config = oexp.to_dory_onnx(graph)
  onnx.checker.check_model(model, full_check=True)
  names = [v.name for v in model.graph.input] + [n.output[0] for n in model.graph.node]
  assert all(n.isdigit() for n in names), "DORY reads integer tensor names"
  attrs = lambda n: {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
  conv = next(n for n in model.graph.node if n.op_type == "Conv")
  assert conv.domain == oexp.DOMAIN and attrs(conv)["weight_bits"] == 4 and attrs(conv)["bias_bits"] == 32
  chain = [n.op_type for n in model.graph.node][:7]  # c1 (groups = 2) is split: group 0 first
  assert chain == ["Slice", "Conv", "Mul", "Add", "Div", "Floor", "Clip"]
  mul, add, clip = model.graph.node[2], model.graph.node[3], model.graph.node[6]
  assert attrs(mul)["mult_bits"] == 32 and attrs(add)["add_bits"] == 32 and attrs(clip)["out_bits"] == 8
  residual = next(n for n in model.graph.node if n.name == "a.residual")
  node_a = graph.node("a")
  assert attrs(residual)["in1_mul"] == node_a.attrs["in1_mul"]
  assert attrs(residual)["out_shift"] == node_a.attrs["out_shift"]
  assert config["input_bits"] == 8 and config["input_signed"] and len(config["layers"]) == len(graph.nodes) + 2
  assert {m.key for m in model.metadata_props} >= {"jaxbp.layers", "jaxbp.inputs"}
  got = oexp.evaluate(model, graph, x)  # the annotated graph computes exactly the integer model
  for t in graph.outputs:
    np.testing.assert_array_equal(got[t], ref[t], err_msg=t)


def test_unsupported_channel_counts_name_the_layer():
  b = GraphBuilder()
  x = b.input("x", (8, 6), Quant(4, False, 0.1))  # 6 channels at 4 bits: fine (multiple of 2)
  w, sw = I.quantize_weight(np.random.default_rng(0).normal(size=(6, 3, 6)), 2)
  y = b.conv("c", x, w, sw, w_bits=2, out=Quant(8, False, 0.1))
  g = b.build([y])
  with pytest.raises(UnsupportedError, match=r"layer 'c' \(conv\): 2-bit weights need output channels to be a "
                     "multiple of 4"):
    oexp.to_runtime_onnx(g)
  with pytest.raises(UnsupportedError, match="layer 'c'"):
    cexp.emit(g, "/nonexistent/never-written")
  b = GraphBuilder()
  x = b.input("x", (8, 3), Quant(2, False, 0.1))
  y = b.affine("bn", x, np.ones(3), np.zeros(3), Quant(8, False, 0.1))
  with pytest.raises(UnsupportedError, match="graph input 'x': a 2-bit tensor needs a channel count that is a "
                     "multiple of 4"):
    oexp.to_dory_onnx(b.build([y]))
