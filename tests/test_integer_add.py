"""The integer IR's PULP-NN semantics: the two-stage residual add, full-grid signed clipping, and the 32-bit bounds
of PULP-NN's average pooling checked when a graph is built."""

import numpy as np
import pytest

from jaxbp import integerize as I
from jaxbp.integerize.builder import GraphBuilder, Quant
from jaxbp.integerize.graph import Graph, GraphError, Node, TensorSpec
from jaxbp.integerize.ops import ADD_FIELDS
from jaxbp.integerize.ranges import Int32OverflowError, check_int32
from jaxbp.integerize.requant import solve_add


def _add_graph(qa: Quant, qb: Quant, qy: Quant, shape=(3, 4)) -> Graph:
  b = GraphBuilder()
  x, r = b.input("a", shape, qa), b.input("b", shape, qb)
  return b.build([b.add("y", x, r, qy)])


def _grid(q: Quant, n: int = 64) -> np.ndarray:
  lo, hi = q.spec((1,)).range
  return np.linspace(lo, hi, n).round().astype(np.int64)


def _pulp_add(a, b, f, sa, sb, lo, hi):
  """PULP-NN-mixed's pulp_nn_add_*, written out from the kernel source."""
  c8 = lambda v, s: np.clip(v, -128, 127) if s else np.clip(v, 0, 255)
  r1 = c8((a * f["in1_mul"] + f["in1_add"]) >> f["in1_shift"], sa)
  r2 = c8((b * f["in2_mul"] + f["in2_add"]) >> f["in2_shift"], sb)
  return np.clip(((r1 + r2) * f["out_mul"] + f["out_add"]) >> f["out_shift"], lo, hi)


def test_add_node_has_the_kernel_fields_and_arithmetic():
  qa, qb, qy = Quant(8, False, 0.02), Quant(4, True, 0.15), Quant(8, True, 0.05)
  g = _add_graph(qa, qb, qy, shape=(4,))
  node = g.node("y")
  assert set(node.attrs) == set(ADD_FIELDS) and not node.arrays
  a, b = (v.reshape(-1, 4) for v in np.meshgrid(_grid(qa), _grid(qb)))
  y = I.run(g, {"a": a, "b": b})["y"]
  ref = _pulp_add(a, b, node.attrs, False, True, -128, 127)
  np.testing.assert_array_equal(y, ref)


@pytest.mark.parametrize("qa,qb,qy,tol", [
    (Quant(8, False, 0.1), Quant(8, True, 0.1), Quant(8, True, 0.2), 1),   # equal scales: exact rounding
    (Quant(8, True, 0.011), Quant(8, False, 0.011), Quant(8, True, 0.033), 1),
    (Quant(4, False, 0.3), Quant(2, True, 0.7), Quant(8, True, 0.05), 1),
    # Output finer than an input: the 8-bit intermediate (quantum 0.03 here) limits the resolution.
    (Quant(8, True, 0.03), Quant(8, False, 0.011), Quant(8, True, 0.023), 2),
])
def test_add_is_the_float_add_within_its_intermediate_resolution(qa, qb, qy, tol):
  g = _add_graph(qa, qb, qy, shape=(4,))
  a, b = (v.reshape(-1, 4) for v in np.meshgrid(_grid(qa), _grid(qb)))
  y = I.run(g, {"a": a, "b": b})["y"]
  real = (a * qa.scale + b * qb.scale) / qy.scale
  ref = np.clip(np.floor(real + 0.5), -128, 127)
  assert np.abs(y - ref).max() <= tol
  if qa.scale == qb.scale and qy.scale == 2 * qa.scale:
    np.testing.assert_array_equal(y, np.clip((a + b + 1) >> 1, -128, 127))  # the float add's own rounding


def test_add_fields_for_equal_grids_are_identities():
  f = solve_add("a", [0.1, 0.1], [(0, 255), (-128, 127)], [False, True], 0.1).fields
  assert (f["in1_mul"], f["in1_add"], f["in1_shift"]) == (1, 0, 0) == (f["in2_mul"], f["in2_add"], f["in2_shift"])
  assert (f["out_mul"], f["out_add"], f["out_shift"]) == (1, 0, 0)


def test_add_overflow_and_bad_fields_are_named():
  g = _add_graph(Quant(8, False, 0.1), Quant(8, True, 0.1), Quant(8, True, 0.2))
  node = g.node("y")
  bad = Node("y", "add", node.inputs, "y", {**node.attrs, "in1_mul": 1 << 30}, {})
  big = Graph(g.tensors, (bad,), g.inputs, g.outputs)
  big.validate()
  with pytest.raises(Int32OverflowError, match=r"node 'y' \(add\): in1: X·mul"):
    check_int32(big)
  with pytest.raises(GraphError, match="in2_shift"):
    Graph(g.tensors, (Node("y", "add", node.inputs, "y", {**node.attrs, "in2_shift": 40}, {}),),
          g.inputs, g.outputs).validate()


def test_signed_outputs_clip_to_the_full_grid_and_narrow_outputs_are_refused():
  b = GraphBuilder()
  x = b.input("x", (4,), Quant(8, True, 1.0))
  y = b.affine("y", x, np.ones(4), np.zeros(4), Quant(4, True, 1.0))
  g = b.build([y])
  np.testing.assert_array_equal(I.run(g, np.array([[-128, -9, 7, 127]]))[y], [[-8, -8, 7, 7]])
  narrow = dict(g.tensors)
  narrow["y"] = TensorSpec((4,), 4, True, 1.0, narrow=True)
  with pytest.raises(GraphError, match="narrow"):
    Graph(narrow, g.nodes, g.inputs, g.outputs).validate()


def test_avgpool_requant_fits_pulpnn_and_overflow_is_refused_naming_the_layer():
  b = GraphBuilder()
  x = b.input("x", (7, 7, 8), Quant(8, False, 0.01))
  y = b.global_avgpool("gap", x, Quant(8, False, 0.004))
  g = b.build([y])
  node = g.node("gap")
  k = int(node.arrays["k"][0])
  assert np.all(node.arrays["k"] == k) and k * 49 * 49 * 255 <= 2 ** 31 - 1  # ACC·(k·K) fits int32
  over = Node("gap", "global_avgpool", node.inputs, "gap", dict(node.attrs),
              {"k": np.full(8, 1 << 16, np.int32), "lam": node.arrays["lam"]})
  with pytest.raises(Int32OverflowError, match=r"node 'gap' \(global_avgpool\): ACC·k·window"):
    check_int32(Graph(g.tensors, (over,), g.inputs, g.outputs))
  per_channel = Node("gap", "global_avgpool", node.inputs, "gap", dict(node.attrs),
                     {"k": np.arange(1, 9, dtype=np.int32), "lam": node.arrays["lam"]})
  with pytest.raises(GraphError, match="one value for all channels"):
    Graph(g.tensors, (per_channel,), g.inputs, g.outputs).validate()
