"""Property test: random layers (conv/depthwise/pointwise/linear/add, plus pools, SE gate, BN affine) with random
shapes, strides, paddings and 2/4/8-bit inputs/weights/outputs: interpreter == C == onnxruntime == DORY graph.

Each example puts several independent layers (each with its own input) into one graph, so one gcc run
checks all of them. Inputs include the all-max and all-min corners (the worst cases for int32 overflow).
"""

import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxbp import integerize as I
from jaxbp.export import c as cexp
from jaxbp.export import onnx as oexp
from jaxbp.integerize.builder import GraphBuilder, Quant

BITS = st.sampled_from([2, 4, 8])
KINDS = ("conv", "depthwise", "pointwise", "linear", "add", "avgpool", "maxpool", "mul", "affine")
HAVE_GCC = shutil.which("gcc") is not None


def _typical(bits: int, signed: bool) -> float:
  """Typical |value| of a uniform integer on the grid."""
  lo, hi = I.int_range(bits, signed)
  return np.sqrt((lo * lo + lo * hi + hi * hi) / 3)


def _out_quant(draw, magnitude: float) -> Quant:
  """An output grid whose range covers `magnitude` up to a random factor (some clipping, some slack)."""
  bits, signed = draw(BITS), draw(st.booleans())
  factor = 2.0 ** draw(st.floats(-1.5, 2.0))
  return Quant(bits, signed, max(magnitude, 1e-12) * factor / 2 ** (bits - (1 if signed else 0)))  # full grid


def _window(draw, size: int, max_kernel: int = 5):
  lo, hi = draw(st.integers(0, 2)), draw(st.integers(0, 2))
  kernel = draw(st.integers(1, min(max_kernel, size + lo + hi)))
  return kernel, draw(st.integers(1, 3)), (lo, hi)


def _layer(draw, b: GraphBuilder, i: int) -> tuple[str, str]:
  """Adds one random layer with its own input(s); returns (kind, output name)."""
  kind = draw(st.sampled_from(KINDS))
  rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
  b_in, s_in, b_w = draw(BITS), draw(st.booleans()), draw(BITS)
  q_in = Quant(b_in, s_in, 2.0 ** draw(st.floats(-6, 0)), s_in and draw(st.booleans()))
  nd = draw(st.sampled_from([1, 2]))
  spatial = tuple(draw(st.integers(1, 7)) for _ in range(nd))
  name = f"l{i}_{kind}"
  if kind == "linear":
    cin, cout = draw(st.sampled_from([4, 8, 12, 16])), draw(st.sampled_from([4, 8, 12]))
    x = b.input(f"x{i}", (cin,), q_in)
    w, sw = I.quantize_weight(rng.normal(size=(cout, cin)), b_w)
    bias = rng.normal(size=cout) if draw(st.booleans()) else None
    mag = np.sqrt(cin) * _typical(b_in, s_in) * q_in.scale * sw.mean() * _typical(b_w, True)
    out = None if draw(st.integers(0, 5)) == 0 else _out_quant(draw, mag)
    return kind, b.linear(name, x, w, sw, w_bits=b_w, bias=bias, out=out)
  groups = 1
  if kind == "depthwise":
    c = cout = draw(st.sampled_from([4, 8, 12]))
    groups = c
  elif kind == "conv":
    groups = draw(st.sampled_from([1, 2]))
    c = draw(st.sampled_from([8, 16] if groups == 2 else [4, 8, 12]))
    cout = draw(st.sampled_from([8, 16] if groups == 2 else [4, 8, 12]))
  else:
    c = cout = draw(st.sampled_from([4, 8, 12]))
    if kind == "pointwise":
      cout = draw(st.sampled_from([4, 8, 16]))
  x = b.input(f"x{i}", spatial + (c,), q_in)
  x_mag = _typical(b_in, s_in) * q_in.scale
  if kind in ("conv", "depthwise", "pointwise"):
    kernels, strides, pads = [], [], []
    for s in spatial:
      k, st_, p = _window(draw, s) if kind != "pointwise" else (1, draw(st.integers(1, 2)), (0, 0))
      kernels.append(k), strides.append(st_), pads.append(p)
    w, sw = I.quantize_weight(rng.normal(size=(cout, *kernels, c // groups)), b_w)
    bias = rng.normal(size=cout) * x_mag if draw(st.booleans()) else None
    post = (rng.uniform(0.5, 1.5, cout), rng.normal(size=cout) * x_mag) if draw(st.booleans()) else (None, None)
    fan_in = np.prod(kernels) * c // groups
    mag = np.sqrt(fan_in) * x_mag * sw.mean() * _typical(b_w, True)
    out = None if draw(st.integers(0, 7)) == 0 else _out_quant(draw, mag)
    if out is None:
      post = (None, None)
    return kind, b.conv(name, x, w, sw, w_bits=b_w, bias=bias, stride=strides, padding=pads, groups=groups, out=out,
                        post_scale=post[0], post_shift=post[1])
  if kind == "add":
    q2 = Quant(draw(BITS), draw(st.booleans()), 2.0 ** draw(st.floats(-6, 0)))
    x2 = b.input(f"x{i}b", spatial + (c,), q2)
    return kind, b.add(name, x, x2, _out_quant(draw, x_mag + _typical(q2.bits, q2.signed) * q2.scale))
  if kind == "mul":
    q2 = Quant(draw(BITS), draw(st.booleans()), 2.0 ** draw(st.floats(-6, 0)))
    s = b.input(f"x{i}s", (c,), q2)
    return kind, b.mul(name, x, s, _out_quant(draw, x_mag * _typical(q2.bits, q2.signed) * q2.scale))
  if kind == "affine":
    return kind, b.affine(name, x, rng.normal(size=c), rng.normal(size=c) * x_mag, _out_quant(draw, x_mag))
  windows = [_window(draw, s) for s in spatial]
  kernel, stride, pad = [w[0] for w in windows], [w[1] for w in windows], [w[2] for w in windows]
  if kind == "maxpool":
    return kind, b.maxpool(name, x, kernel, stride=stride, padding=pad)
  return kind, b.avgpool(name, x, kernel, _out_quant(draw, x_mag), stride=stride, padding=pad)


def _inputs(graph, rng, n: int = 4) -> dict[str, np.ndarray]:
  feeds = {}
  for t in graph.inputs:
    spec = graph.tensors[t]
    lo, hi = spec.range
    x = rng.integers(lo, hi + 1, (n,) + spec.shape)
    x[0], x[1] = hi, lo  # worst-case corners
    feeds[t] = x
  return feeds


def _check(data, n_layers: int, tmp_path_factory) -> None:
  b = GraphBuilder()
  layers = [_layer(data.draw, b, i) for i in range(n_layers)]
  graph = b.build([out for _, out in layers])
  feeds = _inputs(graph, np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1))))
  ref = I.run(graph, feeds)
  results = {"onnxruntime": oexp.run_onnx(oexp.to_runtime_onnx(graph), graph, feeds),
             "dory": oexp.evaluate(oexp.to_dory_onnx(graph)[0], graph, feeds)}
  if HAVE_GCC:
    results["c"] = cexp.run_c(graph, feeds, tmp_path_factory.mktemp("c"))
  for backend, got in results.items():
    for kind, t in layers:
      np.testing.assert_array_equal(got[t], ref[t], err_msg=f"{backend}: {kind} layer {t}: {graph.node(t)}")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_layers_bit_exact_everywhere(data, tmp_path_factory):
  _check(data, 3, tmp_path_factory)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_layers_bit_exact_everywhere_many(data, tmp_path_factory):
  _check(data, 4, tmp_path_factory)
