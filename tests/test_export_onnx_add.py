"""The onnxruntime form after a residual add: the add fills its unsigned 8-bit grid, and the int32 head linear
on it must match the interpreter (onnxruntime's uint8 x int8 MatMulInteger saturates int16 pair sums on AVX2)."""

import numpy as np
import pytest

from jaxbp import integerize as I
from jaxbp.export import onnx as oexp
from jaxbp.integerize.builder import GraphBuilder, Quant


def _residual_head_graph(rng: np.random.Generator):
  """(6, 8) x2 -> add (uint8) -> global_avgpool (uint8) -> linear 8 -> 12 with an int32 output, as a ResNet1d."""
  b = GraphBuilder()
  x = b.input("a", (6, 8), Quant(8, False, 0.05))
  r = b.input("b", (6, 8), Quant(8, True, 0.03))
  y = b.add("y", x, r, Quant(8, False, 0.06))
  p = b.global_avgpool("p", y, Quant(8, False, 0.06))
  w, sw = I.quantize_weight(rng.normal(size=(12, 8)), 8)
  h = b.linear("head", p, w, sw, w_bits=8, bias=rng.normal(size=12), out=None)
  return b.build([y, p, h])


@pytest.mark.parametrize("seed", [0, 1])
def test_add_then_int32_head_matches_interpreter_in_onnxruntime(seed):
  rng = np.random.default_rng(seed)
  g = _residual_head_graph(rng)
  feeds = {}
  for t in g.inputs:
    lo, hi = g.tensors[t].range
    feeds[t] = rng.integers(lo, hi + 1, (8,) + g.tensors[t].shape)
  feeds["a"][0], feeds["b"][0] = 255, 127  # saturates the add: p = 255 everywhere
  ref = I.run(g, feeds)
  assert ref["p"].max() == 255
  got = oexp.run_onnx(oexp.to_runtime_onnx(g), g, feeds)
  for t in ("y", "p", "head"):
    np.testing.assert_array_equal(got[t], ref[t], err_msg=t)


def test_linear_on_full_range_uint8_matches_interpreter_in_onnxruntime():
  rng = np.random.default_rng(2)
  b = GraphBuilder()
  x = b.input("x", (32,), Quant(8, False, 0.1))
  w = np.where(rng.random((12, 32)) < 0.5, 127.0, -128.0)  # 255·127 + 255·127 overflows int16
  wq, sw = I.quantize_weight(w, 8)
  g = b.build([b.linear("h", x, wq, sw, w_bits=8, out=None)])
  feeds = {"x": np.where(rng.random((4, 32)) < 0.9, 255, rng.integers(0, 256, (4, 32)))}
  np.testing.assert_array_equal(oexp.run_onnx(oexp.to_runtime_onnx(g), g, feeds)["h"], I.run(g, feeds)["h"])
