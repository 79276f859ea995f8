"""UNet1d's integer ops (upsample2, concat, norm_prelu: InstanceNorm + PReLU in int64) and the mixed-precision
UNet1d end to end: twin -> integer graph -> C / onnxruntime / DORY graph, bit-exact with the interpreter."""

import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxbp import models
from jaxbp.export.bundle import cross_check
from jaxbp.integerize import GraphBuilder, Quant, instnorm, run
from jaxbp.integerize import from_quant as F
from jaxbp.integerize.graph import GraphError, Node
from jaxbp.models.layers import center_crop, linear_upsample2
from jaxbp.quant import BBConfig, QuantConfig, calibrate, from_float, twin
from jaxbp.quant.bayesian_bits import mixed_bits, set_gate_bits

DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"


def _float_norm_prelu(x, gamma, beta, alpha, eps=1e-5):
  mu = x.mean(1, keepdims=True)
  var = ((x - mu) ** 2).mean(1, keepdims=True)
  h = (x - mu) / np.sqrt(var + eps) * gamma + beta
  return np.where(h >= 0, h, alpha * h)


def _quantize(v, q: Quant):
  lo, hi = q.spec((1,)).range
  return np.clip(np.floor(v / q.scale + 0.5), lo, hi)


def _ops_graph(rng, length=37, channels=8, bits=(8, 4, 8)):
  b = GraphBuilder()
  qx, qn, qc = Quant(bits[0], True, 0.05), Quant(bits[1], True, 0.3), Quant(bits[2], True, 0.05)
  x = b.input("x", (length, channels), qx)
  skip = b.input("skip", (2 * length + 3, 4), Quant(8, False, 0.02))
  params = {"gamma": rng.normal(size=channels), "beta": 0.3 * rng.normal(size=channels),
            "alpha": rng.uniform(0, 0.5, channels)}
  n = b.norm_prelu("norm", x, params["gamma"], params["beta"], params["alpha"], qn)
  u = b.upsample2("up", n, Quant(8, True, 0.17))
  c = b.concat("cat", u, skip, qc)
  return b.build([n, u, c]), params, (qx, qn, qc)


def test_ops_match_float_math_within_one_quantum():
  rng = np.random.default_rng(0)
  g, p, (qx, qn, qc) = _ops_graph(rng)
  x = rng.integers(-128, 128, (16, 37, 8))
  skip = rng.integers(0, 256, (16, 77, 4))
  env = run(g, {"x": x, "skip": skip}, keep_all=True)
  ref = _quantize(_float_norm_prelu(x * qx.scale, p["gamma"], p["beta"], p["alpha"]), qn)
  assert np.abs(ref - env["norm"]).max() <= 1 and (ref != env["norm"]).mean() < 0.01
  pos = np.arange(74) * (36 / 73)  # align_corners positions, float64
  up = _quantize(np.stack([[np.interp(pos, np.arange(37), v[:, c]) for c in range(8)] for v in env["norm"] * qn.scale]
                          ).transpose(0, 2, 1), Quant(8, True, 0.17))
  assert np.abs(up - env["up"]).max() <= 1 and (up != env["up"]).mean() < 0.01
  assert env["cat"].shape == (16, 74, 12)
  a, s = (np.asarray(center_crop(jnp.asarray(v), 74)) for v in (env["up"] * 0.17, skip * 0.02))
  cat = _quantize(np.concatenate([a, s], -1), qc)
  assert np.abs(cat - env["cat"]).max() <= 1 and (cat != env["cat"]).mean() < 0.01


def test_upsample2_taps_are_align_corners():
  for length in (1, 2, 5, 8):
    x = np.arange(length, dtype=np.float64)[None, :, None] * 10
    b = GraphBuilder()
    h = b.input("x", (length, 1), Quant(8, False, 1.0))
    b.upsample2("up", h, Quant(8, False, 1.0))
    g = b.build(["up"])
    got = run(g, x.astype(np.int64))["up"]
    want = np.floor(np.asarray(linear_upsample2(jnp.asarray(x, jnp.float32))) + 0.5)
    np.testing.assert_array_equal(got, want)


def test_norm_prelu_edge_cases():
  """A constant channel (variance 0: V = eps), one position, negative γ and the PReLU branch."""
  b = GraphBuilder()
  x = b.input("x", (1, 2), Quant(8, True, 0.1))
  b.norm_prelu("n1", x, [1.0, -2.0], [0.5, -0.5], [0.25, 0.1], Quant(8, True, 0.05))
  y = b.input("y", (16, 2), Quant(8, True, 0.1))
  b.norm_prelu("n16", y, [1.0, -2.0], [0.5, -0.5], [0.25, 0.1], Quant(8, True, 0.05))
  g = b.build(["n1", "n16"])
  xs = np.array([[[3, -7]], [[127, -128]]])
  ys = np.concatenate([np.full((1, 16, 1), 5), np.arange(16).reshape(1, 16, 1) * 16 - 128], -1)
  env = run(g, {"x": xs, "y": ys})
  np.testing.assert_array_equal(env["n1"], [[[10, -1]], [[10, -1]]])  # x̂ = 0: y = β (PReLU of -0.5 is -0.05)
  ref = _quantize(_float_norm_prelu(ys * 0.1, np.array([1.0, -2.0]), np.array([0.5, -0.5]), np.array([0.25, 0.1])),
                  Quant(8, True, 0.05))
  assert np.abs(ref - env["n16"]).max() <= 1
  assert (env["n16"][..., 1] < 0).any()  # the PReLU branch and floor shifts of negative values are exercised


@settings(max_examples=200, deadline=None)
@given(st.integers(0, (1 << 62) - 1))
def test_isqrt_is_exact(v):
  for w in (v, max(v - 1, 0), math.isqrt(v) ** 2, max(math.isqrt(v) ** 2 - 1, 0)):
    assert int(instnorm.isqrt(np.array([w]))[0]) == math.isqrt(w)


def test_norm_prelu_validation_names_node_and_field():
  g, _, _ = _ops_graph(np.random.default_rng(1))
  node = g.node("norm")

  def with_node(**changes):
    bad = Node(node.name, node.op, node.inputs, node.output, {**node.attrs, **changes.get("attrs", {})},
               {**node.arrays, **changes.get("arrays", {})})
    return type(g)(g.tensors, tuple(bad if n is node else n for n in g.nodes), g.inputs, g.outputs).validate()

  with pytest.raises(GraphError, match=r"node 'norm' \(norm_prelu\): field 'eps' must be an int"):
    with_node(attrs={"eps": 0})
  with pytest.raises(GraphError, match=r"node 'norm' \(norm_prelu\): array 'alpha' must have shape \(8,\)"):
    with_node(arrays={"alpha": np.zeros(3, np.int32)})
  with pytest.raises(GraphError, match=r"node 'norm' \(norm_prelu\): .* safe range 2\^62"):
    with_node(attrs={"a": 62})
  b = GraphBuilder()
  h = b.input("x", (4, 4, 2), Quant(8, True, 0.1))
  with pytest.raises(GraphError, match=r"node 'up' \(upsample2\): input 0 must be \(L, C\)"):
    b.upsample2("up", h, Quant(8, True, 0.1))


# ---------------------------------------------------------------------------------------------------
# Whole mixed-precision UNet1d.

def _mixed_unet(cfg, window, x_cal, seed=0):
  policy = QuantConfig(bayesian_bits=BBConfig())
  tw = twin(cfg, policy)
  variables = from_float(tw, models.init_variables(models.build(cfg), jax.random.key(seed), window), window)
  bits = mixed_bits(variables["gates"], ("conv_first", "conv_final"))
  variables = {**variables, "gates": set_gate_bits(variables["gates"], policy.bayesian_bits, bits)}
  variables = calibrate(tw, variables, [x_cal])
  return tw, variables, F.integerize_twin(tw, variables, window)


def _check_unet(tw, variables, g, x, tmp_path):
  ops = {n.op for n in g.nodes}
  assert {"norm_prelu", "upsample2", "concat"} <= ops
  w_bits = {n.attrs["w_bits"] for n in g.nodes if n.op == "conv"}
  act_bits = {g.tensors[n.output].bits for n in g.nodes if n.op == "norm_prelu"}
  assert w_bits == {2, 4, 8} and act_bits == {4} and g.tensors["input"].bits == 8, (w_bits, act_bits)
  report, outs = F.twin_fidelity(g, tw, variables, x)
  for r in report.layers:
    if r.bits != 32:  # fed the twin's own inputs, each layer is within one quantum
      assert r.local_max_err <= 1.0 + 1e-6 and r.local_mismatch < 0.02, r
  check = cross_check(g, {"input": outs["input_codes"]}, c_dir=tmp_path)
  for backend in ("onnxruntime", "dory_onnx_eval", "c"):
    assert check[backend].get("bit_exact", True), check
  return report, check


def test_mixed_precision_unet_is_bit_exact_across_backends(tmp_path):
  cfg = models.UNet1dConfig(base_filters=8, layers=(2, 2))
  x = np.random.default_rng(0).normal(size=(24, 48, 1)).astype(np.float32)
  tw, variables, g = _mixed_unet(cfg, 48, x[:16])
  _check_unet(tw, variables, g, x[16:], tmp_path)
  eps = g.tensors["input"].scale
  assert F.twin_sensitivity(tw, variables, x[16:], eps, 0.0).max() == 0
  moved = F.twin_sensitivity(tw, variables, x[16:], eps, 0.05)
  assert moved.shape == (8, 48, 1) and moved.max() > 0


def test_mixed_precision_unet_on_real_mimic_windows(tmp_path):
  if not (DATA / "mimic_sample_dataset").is_dir():
    pytest.skip(f"real data not found at {DATA}/mimic_sample_dataset (the shared benchmark data is not next to "
                f"this checkout)")
  from jaxbp.data import source  # pylint: disable=import-outside-toplevel
  from jaxbp.data.protocol import Scalers, make_rotation  # pylint: disable=import-outside-toplevel
  spec, folds = source.load_folds("mimic_sample", DATA)
  x = make_rotation(folds, spec, 0, Scalers.fit(folds))["test"]["x"]
  tw, variables, g = _mixed_unet(models.UNET1D["mimic_sample"], spec.window, x)
  _, check = _check_unet(tw, variables, g, x, tmp_path)
  assert check["examples"] == len(x) == 42
