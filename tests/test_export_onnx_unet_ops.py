"""ONNX exports of the UNet1d ops (upsample2, concat, norm_prelu): onnxruntime and the DORY evaluator == interpreter.

Random single-op graphs (several independent layers per graph, each with its own input), random UNet-decoder
chains, and adversarial norm_prelu nodes with hand-drawn fields (d = 0, alpha_shift = 0, negative slopes and
scales, huge offsets), fed with constant channels (V = eps), L = 1, all-max/all-min, alternating extremes and
single spikes; an L = 2 sweep whose output resolves σ. The int64 pieces of the runtime graph (floor shift, clip,
isqrt) are also checked on their own, on values across the whole int64 range the op allows.
"""

import math

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from jaxbp import integerize as I
from jaxbp.export import onnx as oexp
from jaxbp.export.onnx import runtime as rt
from jaxbp.export.onnx.common import GraphAccumulator
from jaxbp.integerize.builder import GraphBuilder, Quant
from jaxbp.integerize.graph import Graph, GraphError, Node, TensorSpec

SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much]}
LENGTHS = st.one_of(st.sampled_from([1, 2, 3]), st.integers(1, 70))
CHANNELS = st.sampled_from([1, 2, 3, 4, 5, 8, 12])


def _bits_for(channels: int) -> list[int]:
  """Bit widths whose packing allows `channels` (a b-bit tensor needs a multiple of 8/b channels)."""
  return [b for b in (2, 4, 8) if channels % (8 // b) == 0]


def _quant(draw, channels: int, scale: float | None = None) -> Quant:
  bits, signed = draw(st.sampled_from(_bits_for(channels))), draw(st.booleans())
  if scale is None:
    scale = 2.0 ** draw(st.floats(-6, 0))
  return Quant(bits, signed, scale, signed and draw(st.booleans()))


def _magnitude(q: Quant) -> float:
  lo, hi = I.int_range(q.bits, q.signed)
  return max(abs(lo), hi) * q.scale


def _out_quant(draw, channels: int, magnitude: float) -> Quant:
  """An output grid covering `magnitude` up to a random factor (some clipping, some slack)."""
  q = _quant(draw, channels, 1.0)
  return Quant(q.bits, q.signed, magnitude * 2.0 ** draw(st.floats(-1.5, 1.5)) / 2 ** (q.bits - q.signed))


def _norm_params(draw, channels: int, rng: np.random.Generator):
  """(gamma, beta, alpha, eps, output magnitude): gammas of both signs (some zero), alpha in [0, 0.5]."""
  gamma = rng.normal(size=channels) * 2.0 ** draw(st.floats(-3, 3))
  gamma[rng.random(channels) < 0.1] = 0.0
  beta = rng.normal(size=channels) * 2.0 ** draw(st.floats(-3, 2))
  alpha = rng.uniform(0, 0.5, channels)
  eps = 10.0 ** draw(st.floats(-6, -1))
  return gamma, beta, alpha, eps, float(2 * np.abs(gamma).max() + np.abs(beta).max() + 1e-3)


def _layer(draw, b: GraphBuilder, i: int) -> tuple[str, str]:
  """Adds one random upsample2/concat/norm_prelu layer with its own input(s); returns (kind, output name)."""
  kind = draw(st.sampled_from(["upsample2", "concat", "norm_prelu"]))
  rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
  c, length = draw(CHANNELS), draw(LENGTHS)
  qx = _quant(draw, c)
  x = b.input(f"x{i}", (length, c), qx)
  name = f"l{i}_{kind}"
  if kind == "upsample2":
    return kind, b.upsample2(name, x, _out_quant(draw, c, _magnitude(qx)))
  if kind == "concat":
    cb = draw(CHANNELS)
    qy = _quant(draw, cb)
    y = b.input(f"y{i}", (draw(LENGTHS), cb), qy)
    return kind, b.concat(name, x, y, _out_quant(draw, c + cb, max(_magnitude(qx), _magnitude(qy))))
  gamma, beta, alpha, eps, mag = _norm_params(draw, c, rng)
  return kind, b.norm_prelu(name, x, gamma, beta, alpha, _out_quant(draw, c, mag), eps=eps)


def _inputs(graph: Graph, rng: np.random.Generator, n: int = 8) -> dict[str, np.ndarray]:
  """Random integers plus the adversarial rows: all max, all min, constant channels, alternating extremes
  along L, a single spike, the extremes per channel at random."""
  feeds = {}
  for t in graph.inputs:
    spec = graph.tensors[t]
    lo, hi = spec.range
    length, c = spec.shape
    x = rng.integers(lo, hi + 1, (n, length, c))
    x[0], x[1] = hi, lo
    x[2] = rng.integers(lo, hi + 1, (1, c))  # constant channels: V = eps
    x[3] = np.where(np.arange(length)[:, None] % 2 == 0, hi, lo)
    x[4] = lo
    x[4, rng.integers(length)] = hi
    x[5] = np.where(rng.random((length, c)) < 0.5, lo, hi)
    feeds[t] = x
  return feeds


def _assert_bit_exact(graph: Graph, feeds: dict[str, np.ndarray], what: str) -> dict[str, dict[str, np.ndarray]]:
  ref = I.run(graph, feeds)
  runtime_model = oexp.to_runtime_onnx(graph)
  dory_model, config = oexp.to_dory_onnx(graph)
  assert len(config["layers"]) == len(graph.nodes)
  results = {"onnxruntime": oexp.run_onnx(runtime_model, graph, feeds),
             "dory": oexp.evaluate(dory_model, graph, feeds)}
  for backend, got in results.items():
    for t in graph.outputs:
      node = graph.producer(t)
      np.testing.assert_array_equal(got[t], ref[t], err_msg=f"{backend}: {what}: {t}: {node and node.attrs}")
  return results


def _check_random_layers(data) -> None:
  b = GraphBuilder(rounding=data.draw(st.sampled_from(["half_up", "floor"])))
  layers = [_layer(data.draw, b, i) for i in range(3)]
  graph = b.build([out for _, out in layers])
  _assert_bit_exact(graph, _inputs(graph, np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))),
                    ", ".join(k for k, _ in layers))


@settings(max_examples=60, **SETTINGS)
@given(data=st.data())
def test_random_unet_layers_bit_exact(data):
  """Three independent random upsample2/concat/norm_prelu layers per graph: onnxruntime == DORY == interpreter."""
  _check_random_layers(data)


@pytest.mark.slow
@settings(max_examples=600, **SETTINGS)
@given(data=st.data())
def test_random_unet_layers_bit_exact_many(data):
  _check_random_layers(data)


@settings(max_examples=30, **SETTINGS)
@given(data=st.data())
def test_random_decoder_chain_bit_exact(data):
  """A UNet1d decoder step: norm_prelu -> upsample2 -> concat(skip, longer or shorter) -> conv -> norm_prelu."""
  draw = data.draw
  rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
  b = GraphBuilder(rounding=draw(st.sampled_from(["half_up", "floor"])))
  c, cs, length = draw(st.sampled_from([4, 8])), draw(st.sampled_from([4, 8])), draw(st.integers(1, 35))
  qx = _quant(draw, c)
  x = b.input("x", (length, c), qx)
  skip = b.input("skip", (2 * length + draw(st.integers(-3, 5)) if length > 2 else 2 * length, cs), _quant(draw, cs))
  gamma, beta, alpha, eps, mag = _norm_params(draw, c, rng)
  h = b.norm_prelu("norm0", x, gamma, beta, alpha, _out_quant(draw, c, mag), eps=eps)
  h = b.upsample2("up", h, _out_quant(draw, c, mag))
  h = b.concat("cat", h, skip, _out_quant(draw, c + cs, mag))
  cout = draw(st.sampled_from([4, 8]))
  w, sw = I.quantize_weight(rng.normal(size=(cout, 3, c + cs)), 4)
  q_conv = _out_quant(draw, cout, mag * np.sqrt(3 * (c + cs)) * float(np.mean(sw)) * 4)
  h = b.conv("conv", h, w, sw, w_bits=4, padding="SAME", out=q_conv)
  gamma, beta, alpha, eps, mag = _norm_params(draw, cout, rng)
  y = b.norm_prelu("norm1", h, gamma, beta, alpha, _out_quant(draw, cout, mag), eps=eps)
  graph = b.build([y, "up"])
  _assert_bit_exact(graph, _inputs(graph, rng), "decoder chain")


@st.composite
def _raw_norm_prelu(draw) -> Graph:
  """A norm_prelu node with hand-drawn integer fields (not from `instnorm.solve`): any d, rnd, alpha_shift (0
  included), negative slopes and scales, large offsets; rejected unless it validates."""
  length, c = draw(st.one_of(st.just(1), st.integers(1, 70))), draw(st.sampled_from([1, 2, 4, 8]))
  x = TensorSpec((length, c), draw(st.sampled_from(_bits_for(c))), draw(st.booleans()), 1.0)
  y = TensorSpec((length, c), draw(st.sampled_from(_bits_for(c))), draw(st.booleans()), 1.0)
  lo, hi = x.range
  vmax = length * length * max(abs(lo), hi) ** 2
  eps = draw(st.one_of(st.just(1), st.integers(1, 2 ** draw(st.integers(1, 40)))))
  s_max = max(0, (60 - (vmax + eps).bit_length()) // 2)
  s = draw(st.one_of(st.integers(0, min(2, s_max)), st.integers(0, s_max)))  # small s: σ small, m sensitive to it
  log_g2a = draw(st.integers(0, 58))  # log2 of |g|·2^a
  a = draw(st.integers(max(0, log_g2a - 30), min(62, log_g2a)))
  g_mag = 1 << (log_g2a - a)
  scale = np.array([draw(st.integers(-g_mag, g_mag)) for _ in range(c)], np.int32)
  # U ≈ g·2^(a-s)·x̂ with |x̂| <~ √L: a "matched" d puts U >> d inside the output range (few clipped values).
  matched = min(40, max(0, log_g2a - s - (y.bits - 1) + draw(st.integers(-2, 3))))
  d = draw(st.one_of(st.just(matched), st.integers(0, 40)))
  off_mag = 2 ** draw(st.integers(0, min(61, d + 12)))
  offset = np.array([draw(st.integers(-off_mag, off_mag)) for _ in range(c)], np.int64)
  alpha_shift = draw(st.integers(0, 20))
  alpha = np.array([draw(st.integers(-(1 << (alpha_shift + 1)), 1 << (alpha_shift + 1))) for _ in range(c)], np.int32)
  rnd = draw(st.sampled_from([0, (1 << d) >> 1, draw(st.integers(0, (1 << d) - 1))]))
  node = Node("n", "norm_prelu", ("x",), "y", {"eps": eps, "s": s, "a": a, "alpha_shift": alpha_shift, "d": d,
                                             "rnd": rnd}, {"scale": scale, "offset": offset, "alpha": alpha})
  graph = Graph({"x": x, "y": y}, (node,), ("x",), ("y",))
  try:
    return graph.validate()
  except GraphError:
    assume(False)


@settings(max_examples=150, **SETTINGS)
@given(graph=_raw_norm_prelu(), seed=st.integers(0, 2 ** 32 - 1))
def test_adversarial_norm_prelu_fields_bit_exact(graph, seed):
  _assert_bit_exact(graph, _inputs(graph, np.random.default_rng(seed)), "raw norm_prelu")


@pytest.mark.slow
@settings(max_examples=1500, **SETTINGS)
@given(graph=_raw_norm_prelu(), seed=st.integers(0, 2 ** 32 - 1))
def test_adversarial_norm_prelu_fields_bit_exact_many(graph, seed):
  _assert_bit_exact(graph, _inputs(graph, np.random.default_rng(seed)), "raw norm_prelu")


def test_norm_prelu_corner_cases_exercise_every_branch():
  """Hand-made fields where the outcome is known: L = 1 and constant channels give U = offset (negative: the
  PReLU branch with a floor shift of a negative value, d = 0 and alpha_shift = 0 included)."""
  x, y = TensorSpec((1, 4), 8, True, 1.0), TensorSpec((1, 4), 8, True, 1.0)
  fields = {"eps": 1, "s": 0, "a": 0, "alpha_shift": 2, "d": 1, "rnd": 0}
  arrays = {"scale": np.array([5, -5, 0, 7], np.int32), "offset": np.array([-7, 9, -1, -40], np.int64),
            "alpha": np.array([1, 3, -2, 4], np.int32)}
  graph = Graph({"x": x, "y": y}, (Node("n", "norm_prelu", ("x",), "y", fields, arrays),), ("x",), ("y",)).validate()
  feeds = {"x": np.array([[[-128, 127, 0, 5]], [[3, -3, 100, -100]]])}
  # U = offset: P = [floor(-7/4), 9, floor(2/4), floor(-160/4)] = [-2, 9, 0, -40]; Y = floor(P/2), clipped.
  expect = np.array([[[-1, 4, 0, -20]]] * 2)
  np.testing.assert_array_equal(I.run(graph, feeds)["y"], expect)
  _assert_bit_exact(graph, feeds, "corner cases")
  graph0 = Graph({"x": x, "y": y}, (Node("n", "norm_prelu", ("x",), "y", dict(fields, d=0, alpha_shift=0),
                                         arrays),), ("x",), ("y",)).validate()
  np.testing.assert_array_equal(I.run(graph0, feeds)["y"], np.array([[[-7, 9, 2, -128]]] * 2))
  _assert_bit_exact(graph0, feeds, "corner cases, d = 0")


@pytest.mark.parametrize("eps,s", [(37, 0), (300, 0), (1000, 1), (20000, 2)])
def test_norm_prelu_output_follows_sigma(eps, s):
  """L = 2: V = D² + eps (D = X0 - X1), σ = isqrt(V·4^s) ≈ 2^s·√V and Y0 ≈ 100·D/√V - 20 unclipped: with small
  σ (small |D| and eps) an off-by-one σ or m changes Y."""
  x, y = TensorSpec((2, 1), 8, True, 1.0), TensorSpec((2, 1), 8, True, 1.0)
  d = 13 + s
  fields = {"eps": eps, "s": s, "a": 2 * s, "alpha_shift": 16, "d": d, "rnd": 1 << (d - 1)}
  arrays = {"scale": np.array([100 << 13], np.int32), "offset": np.array([-20 << d], np.int64),
            "alpha": np.array([1 << 14], np.int32)}
  graph = Graph({"x": x, "y": y}, (Node("n", "norm_prelu", ("x",), "y", fields, arrays),), ("x",), ("y",)).validate()
  k = np.arange(-128, 128)
  feeds = {"x": np.concatenate([np.stack([k, np.zeros_like(k)], 1), np.stack([np.full_like(k, 127), k], 1)])[..., None]}
  ref = I.run(graph, feeds)["y"]
  lo, hi = y.range
  assert lo < ref.min() and ref.max() < hi and len(np.unique(ref)) > 20, np.unique(ref)  # unclipped, many levels
  _assert_bit_exact(graph, feeds, f"σ sweep eps={eps} s={s}")


def test_norm_prelu_large_positive_u_clips_to_max():
  """Regression: U = 2401791450 (upper half 0, bit 31 set) must clip to 255 (onnxruntime's int64 Clip gives 0)."""
  x = TensorSpec((6, 1), 8, False, 1.0)
  node = Node("n", "norm_prelu", ("x",), "y", {"eps": 1, "s": 0, "a": 30, "alpha_shift": 0, "d": 0, "rnd": 0},
              {"scale": np.array([1], np.int32), "offset": np.array([0]), "alpha": np.array([0], np.int32)})
  graph = Graph({"x": x, "y": x}, (node,), ("x",), ("y",)).validate()
  feeds = {"x": np.zeros((1, 6, 1), np.int64)}
  feeds["x"][0, 3] = 255
  got = _assert_bit_exact(graph, feeds, "large U")
  np.testing.assert_array_equal(got["onnxruntime"]["y"][0, :, 0], [0, 0, 0, 255, 0, 0])


def _int64_model(build) -> onnx.ModelProto:
  g = GraphAccumulator()
  build(g)
  model = g.model("t", [helper.make_tensor_value_info("v", TensorProto.INT64, ["n"])],
                  [helper.make_tensor_value_info("y", TensorProto.INT64, ["n"])])
  onnx.checker.check_model(model, full_check=True)
  return model


def _run_int64(model: onnx.ModelProto, v: np.ndarray) -> np.ndarray:
  import onnxruntime as ort  # pylint: disable=import-outside-toplevel
  sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
  return sess.run(["y"], {"v": np.asarray(v, np.int64)})[0]


@pytest.mark.parametrize("c", [0, 1, 2, 5, 16, 40, 61, 62])
def test_onnx_floor_shift_of_signed_int64(c):
  rng = np.random.default_rng(c)
  v = np.concatenate([np.arange(-70, 70), rng.integers(-(1 << 62), 1 << 62, 500), [-(1 << 62), (1 << 62) - 1],
                      np.array([-3, -2, -1, 1, 2, 3]) * (1 << min(c, 60))]).astype(np.int64)
  got = _run_int64(_int64_model(lambda g: rt.floor_shift(g, "t", "v", c, "y")), v)
  np.testing.assert_array_equal(got, np.array([int(e) >> c for e in v]))


def test_onnx_clip_of_int64():
  """Includes values whose upper 32-bit halves equal the bounds' and whose lower halves have bit 31 set, where
  onnxruntime's own int64 Clip/Max/Min go wrong (Clip(2401791450, 0, 255) = 0 in onnxruntime 1.31)."""
  rng = np.random.default_rng(1)
  v = np.concatenate([np.arange(-300, 300), [2401791450, 1 << 31, (1 << 32) - 1, -(1 << 31) - 1, 1 << 62, -(1 << 62)],
                      rng.integers(-(1 << 62), 1 << 62, 300), rng.integers(-(1 << 33), 1 << 33, 300)]).astype(np.int64)
  for lo, hi in ((0, 255), (-128, 127), (-1, 1)):
    got = _run_int64(_int64_model(lambda g, lo=lo, hi=hi: rt.clip_int64(g, "t", "v", lo, hi, "y")), v)
    np.testing.assert_array_equal(got, np.clip(v, lo, hi), err_msg=f"clip to [{lo}, {hi}]")


def test_onnx_isqrt_of_int64():
  rng = np.random.default_rng(0)
  roots = np.concatenate([np.arange(0, 50), rng.integers(0, 1 << 31, 300), [(1 << 31) - 1, 1 << 31]]).astype(np.int64)
  v = np.concatenate([roots * roots + d for d in (-1, 0, 1)] + [rng.integers(0, 1 << 62, 500), [1 << 62]])
  v = np.clip(v, 0, 1 << 62)
  got = _run_int64(_int64_model(lambda g: rt.isqrt(g, "t", "v", "y")), v)
  np.testing.assert_array_equal(got, np.array([math.isqrt(int(e)) for e in v]))


def test_exported_forms():
  """The runtime graph is plain ONNX (norm_prelu in int64 with Mod/Where, no custom domain); the DORY graph has
  Resize for upsample2, an annotated Concat and one annotated InstanceNormPReLU carrying the integer fields."""
  b = GraphBuilder()
  x = b.input("x", (9, 4), Quant(8, True, 0.05))
  skip = b.input("skip", (21, 4), Quant(4, False, 0.1))
  n = b.norm_prelu("n", x, np.array([1.0, -0.5, 2.0, 0.0]), np.zeros(4), np.full(4, 0.25), Quant(8, True, 0.03))
  u = b.upsample2("u", n, Quant(8, True, 0.03))
  c = b.concat("c", u, skip, Quant(8, True, 0.05))
  graph = b.build([c])
  model = oexp.to_runtime_onnx(graph)
  ops = {nd.op_type for nd in model.graph.node}
  assert {"Mod", "Where", "Sqrt", "Slice", "Concat", "Gather"} <= ops
  assert all(not nd.domain for nd in model.graph.node)
  dory, config = oexp.to_dory_onnx(graph)
  def attrs(nd):
    return {a.name: helper.get_attribute_value(a) for a in nd.attribute}
  norm = next(nd for nd in dory.graph.node if nd.op_type == "InstanceNormPReLU")
  assert norm.domain == oexp.DOMAIN
  assert {k: attrs(norm)[k] for k in graph.node("n").attrs} == dict(graph.node("n").attrs)
  assert attrs(norm)["out_bits"] == 8 and attrs(norm)["length"] == 9
  cat = next(nd for nd in dory.graph.node if nd.op_type == "Concat")
  assert cat.domain == oexp.DOMAIN and attrs(cat)["in2_bits"] == 4 and attrs(cat)["in2_crop"] == (21 - 18) // 2
  resize = next(nd for nd in dory.graph.node if nd.op_type == "Resize")
  assert attrs(resize)["coordinate_transformation_mode"] == b"align_corners"
  layers = {layer["name"]: layer for layer in config["layers"]}
  assert layers["u"]["taps_den"] == 17 and layers["c"]["crops"] == [0, 1] and layers["n"]["eps"] == \
      graph.node("n").attrs["eps"]
  feeds = _inputs(graph, np.random.default_rng(3))
  _assert_bit_exact(graph, feeds, "exported forms")
