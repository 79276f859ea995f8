"""Integer graph IR: requant, interpreter semantics, validation errors, serialization, overflow checks."""

import json

import numpy as np
import pytest

from jaxbp import integerize as I
from jaxbp.integerize import ops
from jaxbp.integerize.builder import GraphBuilder, Quant
from jaxbp.integerize.graph import Graph, GraphError, Node, TensorSpec
from jaxbp.integerize.ranges import Int32OverflowError, acc_terms
from jaxbp.integerize.requant import RequantError, solve


def _naive_conv(x, w, stride, padding, groups):
  """Loop reference: x (N, *S, C), w (Cout, *K, C/g); 1-D or 2-D."""
  if x.ndim == 3:
    return _naive_conv(x[:, None], w[:, None], (1,) + stride, ((0, 0),) + padding, groups)[:, 0]
  n, h, wd, _ = x.shape
  cout, kh, kw, cg = w.shape
  xp = np.pad(x, ((0, 0), padding[0], padding[1], (0, 0)))
  ho = (h + sum(padding[0]) - kh) // stride[0] + 1
  wo = (wd + sum(padding[1]) - kw) // stride[1] + 1
  y = np.zeros((n, ho, wo, cout), np.int64)
  co_g = cout // groups
  for o in range(cout):
    g = o // co_g
    for i in range(ho):
      for j in range(wo):
        patch = xp[:, i * stride[0]:i * stride[0] + kh, j * stride[1]:j * stride[1] + kw, g * cg:(g + 1) * cg]
        y[:, i, j, o] = (patch * w[o]).sum(axis=(1, 2, 3))
  return y


@pytest.mark.parametrize("shape,kernel,stride,padding,groups", [
    ((11, 4), (3,), (2,), ((1, 2),), 1),
    ((11, 4), (1,), (1,), ((0, 0),), 1),       # pointwise
    ((9, 8), (5,), (3,), ((2, 2),), 8),        # depthwise, strided
    ((10, 8), (3,), (1,), ((1, 1),), 2),       # grouped (ResNet1d)
    ((7, 6, 4), (3, 2), (2, 1), ((1, 1), (0, 1)), 1),
    ((7, 6, 4), (3, 3), (1, 2), ((1, 1), (1, 1)), 4),
])
def test_conv_matches_loop_reference(shape, kernel, stride, padding, groups):
  rng = np.random.default_rng(0)
  c = shape[-1]
  x = rng.integers(-128, 128, (2,) + shape)
  w = rng.integers(-8, 8, (8,) + kernel + (c // groups,))
  got = I.interpreter.conv(x, w, stride, padding, groups)
  np.testing.assert_array_equal(got, _naive_conv(x, w, stride, padding, groups))


def test_solve_exact_multiplier_is_bit_exact_round_half_up():
  # M = 3/8 is exactly representable: the integer requant equals floor(M·ACC + β + 1/2) for every ACC.
  acc = np.arange(-1000, 1001)
  rng_ = (np.array([-1000]), np.array([1000]))
  rq = solve("l", [np.array([0.375])], [rng_], np.array([-2.25]))
  y = (rq.k[0] * acc + rq.lam[0]) >> rq.d
  np.testing.assert_array_equal(y, np.floor(0.375 * acc - 2.25 + 0.5))
  assert rq.rel_error == 0.0


def test_solve_picks_the_largest_safe_shift():
  m, bound = 0.01, 1 << 20
  rq = solve("l", [m], [(np.array([-bound]), np.array([bound]))])
  top = lambda d: round(m * 2 ** d) * bound + 2 ** (d - 1)
  assert top(rq.d) <= 2 ** 31 - 1 < top(rq.d + 1)
  assert rq.rel_error < 2 ** -8


def test_solve_floor_mode_and_negative_values():
  acc = np.arange(-50, 51)
  rq = solve("l", [0.5], [(np.array([-50]), np.array([50]))], rounding=False)
  np.testing.assert_array_equal((rq.k[0] * acc + rq.lam[0]) >> rq.d, np.floor(acc / 2))


def test_solve_overflow_raises_naming_layer():
  with pytest.raises(RequantError, match="layer 'big'.*overflows int32"):
    solve("big", [1e4], [(np.array([-(1 << 20)]), np.array([1 << 20]))])


def _all_ops_graph(rng):
  b = GraphBuilder({"note": "test"})
  x = b.input("x", (20, 4), Quant(8, True, 0.05))
  w, sw = I.quantize_weight(rng.normal(size=(8, 3, 2)) * 0.3, 4)
  bn_scale, bn_shift = rng.uniform(0.5, 1.5, 8), rng.normal(size=8) * 0.1
  h = b.conv("c1", x, w, sw, w_bits=4, bias=rng.normal(size=8) * 0.1, stride=2, padding="SAME", groups=2,
             out=Quant(8, False, 0.04))
  h2 = b.maxpool("mp", h, 2, padding=[(0, 1)])
  g = b.global_avgpool("gp", h2, Quant(8, False, 0.02))
  s = b.lut("sig", g, lambda v: 1 / (1 + np.exp(-v)), Quant(8, False, 1 / 256))
  m = b.mul("m", h, s, Quant(4, True, 0.1))
  a = b.add("a", m, h, Quant(8, True, 0.05))
  aff = b.affine("bn", a, bn_scale, bn_shift, Quant(2, False, 0.3))
  p = b.pad_channels("pc", aff, 2, 2)
  ap = b.avgpool("ap", p, 3, Quant(4, False, 0.2), stride=2, padding=1)
  gg = b.global_avgpool("gp2", ap, Quant(8, False, 0.01))
  y = b.linear("head", gg, *I.quantize_weight(rng.normal(size=(2, 12)), 8), w_bits=8, bias=np.ones(2))
  return b.build([y, a, ap]), {"c1_scale": sw, "bn": (bn_scale, bn_shift)}


@pytest.fixture(scope="module")
def all_ops():
  rng = np.random.default_rng(0)
  graph, extras = _all_ops_graph(rng)
  x = rng.integers(-128, 128, (16, 20, 4))
  return graph, extras, x


def test_builder_layers_match_float_math_within_one_quantum(all_ops):
  """Each requantized layer, fed the integer model's own inputs, is within 1 output quantum of float math."""
  graph, extras, x = all_ops
  env = I.run(graph, x, keep_all=True)
  deq = {t: graph.tensors[t].dequantize(v) for t, v in env.items()}
  c1 = graph.node("c1")
  pads = tuple(tuple(p) for p in c1.attrs["padding"])
  acc = I.interpreter.conv(x, c1.arrays["weight"].astype(np.int64), (2,), pads, 2) + c1.arrays["bias"]
  bn_scale, bn_shift = extras["bn"]
  checks = {
      "c1": np.maximum(acc * 0.05 * extras["c1_scale"], 0),  # conv + int32 bias, ReLU as the unsigned clip
      "bn": np.maximum(deq["a"] * bn_scale + bn_shift, 0),
      "gp": deq["mp"].mean(axis=1),
      "sig": 1 / (1 + np.exp(-deq["gp"])),
      "m": deq["c1"] * deq["sig"][:, None, :],
      "a": deq["m"] + deq["c1"],
      "gp2": deq["ap"].mean(axis=(1,)),
  }
  for t, ref in checks.items():
    spec = graph.tensors[t]
    ref = np.clip(ref / spec.scale, *spec.range)
    assert np.abs(env[t] - ref).max() <= 1.0 + 1e-9, t
  # maxpool and pad_channels keep values exactly
  assert env["mp"].max() == env["c1"].max()
  np.testing.assert_array_equal(env["pc"][..., 2:-2], env["bn"])
  assert not env["pc"][..., :2].any() and not env["pc"][..., -2:].any()


def test_affine_uses_floor_shift_on_negative_values():
  b = GraphBuilder()
  x = b.input("x", (5, 4), Quant(8, True, 1.0))
  y = b.affine("bn", x, np.full(4, 0.5), np.zeros(4), Quant(8, True, 1.0))
  g = b.build([y])
  xs = np.arange(-10, 10).reshape(1, 5, 4)
  out = I.run(g, xs)[y]
  np.testing.assert_array_equal(out, np.floor(xs * 0.5 + 0.5))  # round half up, floor for negatives


def test_maxpool_pads_with_zero_like_the_seeds():
  b = GraphBuilder()
  x = b.input("x", (4, 4), Quant(8, True, 1.0))
  y = b.maxpool("mp", x, 4, padding=[(1, 2)])
  g = b.build([y])
  xs = -np.ones((1, 4, 4), np.int64)
  np.testing.assert_array_equal(I.run(g, xs)[y], np.zeros((1, 1, 4)))  # window holds padding zeros


def test_save_load_round_trip(tmp_path, all_ops):
  graph, _, x = all_ops
  I.save(graph, tmp_path / "g")
  g2 = I.load(tmp_path / "g")
  assert g2.tensors == graph.tensors
  assert [n.attrs for n in g2.nodes] == [dict(n.attrs) for n in graph.nodes]
  for a, b in zip(graph.outputs, g2.outputs):
    np.testing.assert_array_equal(I.run(graph, x)[a], I.run(g2, x)[b])


def test_load_errors_name_file_and_field(tmp_path, all_ops):
  graph, _, _ = all_ops
  d = I.save(graph, tmp_path / "g")
  doc = json.loads((d / "graph.json").read_text())
  del doc["nodes"][0]["op"]
  (d / "graph.json").write_text(json.dumps(doc))
  with pytest.raises(GraphError, match="graph.json: node 'c1': missing field 'op'"):
    I.load(d)
  doc["nodes"][0]["op"] = "conv"
  doc["nodes"][0]["arrays"]["weight"] = "nope"
  (d / "graph.json").write_text(json.dumps(doc))
  with pytest.raises(GraphError, match="node 'c1': array 'weight' .*missing from graph.npz"):
    I.load(d)
  (d / "graph.npz").unlink()
  with pytest.raises(GraphError, match="graph.npz: missing"):
    I.load(d)


def _replace_node(graph: Graph, name: str, **changes) -> Graph:
  nodes = tuple(Node(**{**n.__dict__, **changes}) if n.name == name else n for n in graph.nodes)
  return Graph(graph.tensors, nodes, graph.inputs, graph.outputs)


def test_validation_errors_name_node_and_field(all_ops):
  graph, _, _ = all_ops
  c1 = graph.node("c1")
  bad_w = dict(c1.arrays, weight=np.full_like(c1.arrays["weight"], 9))
  with pytest.raises(GraphError, match=r"node 'c1' \(conv\): array 'weight' has values in \[9, 9\], outside \[-8, 7\]"):
    _replace_node(graph, "c1", arrays=bad_w).validate()
  with pytest.raises(GraphError, match="node 'c1'.*unknown op"):
    _replace_node(graph, "c1", op="conv3d").validate()
  with pytest.raises(GraphError, match=r"node 'c1' \(conv\): field 'groups' = 3"):
    _replace_node(graph, "c1", attrs=dict(c1.attrs, groups=3)).validate()
  with pytest.raises(GraphError, match=r"node 'c1' \(conv\): field 'd' \(shift\)"):
    _replace_node(graph, "c1", attrs=dict(c1.attrs, d=40)).validate()
  with pytest.raises(GraphError, match=r"node 'c1' \(conv\): missing attrs \['stride'\]"):
    _replace_node(graph, "c1", attrs={k: v for k, v in c1.attrs.items() if k != "stride"}).validate()
  with pytest.raises(GraphError, match="node 'mp'.*input 'a' is used before it is produced"):
    _replace_node(graph, "mp", inputs=("a",)).validate()
  with pytest.raises(GraphError, match="node 'gp'.*declared with shape"):
    _replace_node(graph, "gp", inputs=("x",)).validate()


def test_accumulator_tensors_only_as_graph_outputs():
  b = GraphBuilder()
  x = b.input("x", (4,), Quant(8, True, 0.1))
  h = b.linear("fc", x, np.ones((4, 4), np.int8), 0.1, w_bits=8)
  assert b.spec(h).bits == 32
  b.affine("bn", h, np.ones(4), np.zeros(4), Quant(8, True, 0.1))
  with pytest.raises(GraphError, match=r"node 'bn' \(affine\): input 'fc' is a 32-bit accumulator"):
    b.build(["bn"])


def test_interpreter_input_errors(all_ops):
  graph, _, x = all_ops
  with pytest.raises(GraphError, match="input 'x': expected an integer array"):
    I.run(graph, x.astype(np.float32))
  with pytest.raises(GraphError, match=r"input 'x': expected shape \(N, 20, 4\)"):
    I.run(graph, x[:, :10])
  with pytest.raises(GraphError, match=r"input 'x': values in \[-128, 300\]"):
    I.run(graph, np.where(x == x.max(), 300, x))


def test_int32_overflow_is_caught_statically_and_at_run_time(all_ops):
  graph, _, x = all_ops
  c1 = graph.node("c1")
  big = dict(c1.arrays, k=np.full_like(c1.arrays["k"], 2 ** 30))
  bad = _replace_node(graph, "c1", arrays=big)
  bad.validate()  # structurally fine ...
  with pytest.raises(Int32OverflowError, match=r"node 'c1' \(conv\): k·ACC.*outside int32"):
    I.check_int32(bad)  # ... but can overflow
  with pytest.raises(Int32OverflowError, match="node 'c1'.*at run time"):
    I.run(bad, x)


def test_acc_terms_are_tight_for_conv(all_ops):
  """The static accumulator bound is reached by the worst-case input (so it is not loose)."""
  graph, _, _ = all_ops
  node = graph.node("head")
  spec = graph.tensors["gp2"]
  _, hi = acc_terms(node, [spec], 2)[0]
  w = node.arrays["weight"].astype(np.int64)
  x_hi = np.where(w > 0, spec.range[1], spec.range[0])  # per output channel
  np.testing.assert_array_equal((w * x_hi).sum(1) + node.arrays["bias"], hi)


def test_builder_rejects_bad_inputs():
  b = GraphBuilder()
  x = b.input("x", (8, 4), Quant(8, True, 0.1))
  with pytest.raises(GraphError, match="output bits must be 2, 4 or 8"):
    b.affine("bn", x, np.ones(4), np.zeros(4), Quant(3, False, 0.1))
  with pytest.raises(GraphError, match="layer 'c': weight must hold integers"):
    b.conv("c", x, np.full((4, 3, 4), 0.5), 0.1, w_bits=8, out=Quant(8, False, 0.1))
  with pytest.raises(RequantError, match="layer 'c2'"):
    b.conv("c2", x, np.full((4, 3, 4), 100, np.int8), 1.0, w_bits=8, out=Quant(8, False, 1e-12))


def test_tensor_spec_rules():
  with pytest.raises(GraphError, match="tensor 't': bits"):
    ops._check_tensor("t", TensorSpec((4,), 3, True, 1.0))
  with pytest.raises(GraphError, match="per-channel scale is only allowed on a 32-bit"):
    ops._check_tensor("t", TensorSpec((4,), 8, True, (1.0, 1.0, 1.0, 1.0)))
  assert TensorSpec((4,), 8, False, 1).range == (0, 255)
  assert TensorSpec((4,), 2, True, 1).range == (-2, 1)


def test_fidelity_report_counts_code_differences(all_ops):
  from jaxbp.integerize.fidelity import compare  # pylint: disable=import-outside-toplevel
  graph, _, x = all_ops
  env = I.run(graph, x, keep_all=True)
  ref = {t: graph.tensors[t].dequantize(v) for t, v in env.items()}
  exact = compare(graph, env, ref)
  assert exact.within(0.0) and exact.within(0.0, local=True) and exact.n_examples == len(x)
  shifted = dict(ref)
  shifted["gp"] = ref["gp"] + graph.tensors["gp"].scale * (np.arange(ref["gp"].size).reshape(ref["gp"].shape) % 2)
  rep = compare(graph, env, shifted)
  row = {r.name: r for r in rep.layers}["gp"]
  assert row.max_err == 1.0 and row.mismatch == pytest.approx(0.5, abs=0.01)
  assert row.local_max_err == 1.0  # gp's own inputs are unchanged: the layer itself disagrees with the reference
  assert rep.worst.name in ("gp", "sig") and "worst layer (local)" in rep.table()
