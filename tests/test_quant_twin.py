"""Quantized twin: BN folding, float equivalence of the graph, int8 closeness, read-off integerizability."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp import models
from jaxbp.models.layers import im2col_conv
from jaxbp.quant import (
  QNode,
  QuantConfig,
  calibrate,
  from_float,
  pipeline,
  read_off,
  twin,
)
from jaxbp.quant import readoff as ro  # the module (`read_off` is its main function)
from jaxbp.quant.bn_fold import bn_affine, fold_bn
from jaxbp.quant.graph import GRID_PRESERVING, SIGNED, Node, QGraph

WINDOW = 64
TINY = models.ResNet1dConfig(first_kernel=5, kernel=3, n_blocks=3, base_filters=8)
# conv1 of block0 "id" (bn2 becomes an affine), "dw" slots, an "id" conv2, a channel-padding block.
EXPORTED = dataclasses.replace(TINY, ops=("conv", "id", "dw", "dw", "id", "conv", "conv"))
TINY_UNET = models.UNet1dConfig(base_filters=4, layers=(2, 2))


def _float_variables(config, seed=0):
  """Random float variables (NumPy, no compile) with non-trivial BatchNorm statistics and affines."""
  model = models.build(config)
  shapes = jax.eval_shape(lambda: models.init_variables(model, jax.random.key(0), WINDOW))
  rng = np.random.default_rng(seed)

  def leaf(path, s):
    name = path[-1].key
    if name == "kernel":
      return rng.normal(0, 1 / np.sqrt(np.prod(s.shape[:-1])), s.shape).astype(np.float32)
    if name in ("scale", "var"):
      return rng.uniform(0.5, 1.5, s.shape).astype(np.float32)
    return rng.uniform(-0.2, 0.2, s.shape).astype(np.float32)  # bias, mean, prelu alpha

  return model, jax.tree_util.tree_map_with_path(leaf, dict(shapes))


def _x(n=6, seed=3):
  return jax.random.normal(jax.random.key(seed), (n, WINDOW, 1))


def test_fold_bn_equals_conv_then_bn():
  k = jax.random.split(jax.random.key(0), 6)
  x = jax.random.normal(k[0], (2, 20, 4))
  w = jax.random.normal(k[1], (3, 2, 6))  # groups 2
  b = jax.random.normal(k[2], (6,))
  gamma, beta = jax.random.normal(k[3], (6,)), jax.random.normal(k[4], (6,))
  mean, var = jax.random.normal(k[5], (6,)), jnp.linspace(0.1, 2.0, 6)
  conv = lambda w, b: im2col_conv(x, w, (2,), "SAME", feature_group_count=2) + b
  scale, shift = bn_affine(gamma, beta, mean, var)
  np.testing.assert_allclose(scale, gamma / np.sqrt(var + 1e-5), rtol=1e-6)
  np.testing.assert_allclose(shift, beta - mean * scale, rtol=1e-5, atol=1e-6)
  ref = (conv(w, b) - mean) / jnp.sqrt(var + 1e-5) * gamma + beta
  wf, bf = fold_bn(w, b, gamma, beta, mean, var)
  np.testing.assert_allclose(conv(wf, bf), ref, rtol=1e-5, atol=1e-5)
  wf0, bf0 = fold_bn(w, None, gamma, beta, mean, var)
  np.testing.assert_allclose(conv(wf0, bf0), ref - b / jnp.sqrt(var + 1e-5) * gamma, rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match="output channels"):
    fold_bn(w, b, gamma[:3], beta[:3], mean[:3], var[:3])


@pytest.mark.parametrize("config", [EXPORTED, TINY_UNET], ids=["resnet_exported", "unet"])
def test_twin_graph_equals_float_network(config):
  """With quantizers bypassed (calibration pass), the twin computes exactly the float network's eval function."""
  model, fv = _float_variables(config)
  tw = twin(config)
  tv = from_float(tw, fv, WINDOW)
  x = _x()
  y_float = jax.jit(lambda v, x: model.apply(v, x, train=False))(fv, x)
  y_twin = jax.jit(lambda v, x: tw.apply(v, x, train=False, mutable=["calibration"])[0])(tv, x)
  np.testing.assert_allclose(y_twin, y_float, rtol=1e-4, atol=1e-4)
  # No BatchNorm survives next to a conv: folded ones are gone, standalone ones became affines.
  ops = {n.name: n.op for n in tw.graph.nodes}
  if config is EXPORTED:
    assert ops["block0/bn2"] == "affine" and "block0/conv1" not in ops and "block0/conv2/depthwise" in ops
    assert "block1/conv2" not in ops and ops["block2/skip_pad"] == "pad_channels"
    assert tw.graph["block2/conv1"].bn == ("block2", "bn2") and tw.graph["stem_conv"].bn == ("stem_bn",)
  # int8: close to the float network after calibration.
  tv = calibrate(tw, tv, [x])
  y_q = jax.jit(tw.apply)(tv, x)
  err = float(jnp.mean(jnp.abs(y_q - y_float)) / jnp.mean(jnp.abs(y_float)))
  # Random weights; InstanceNorm amplifies quantization noise of low-variance channels in the UNet.
  assert err < (0.05 if config is EXPORTED else 0.15), err


def _setup(config=TINY, policy=None):
  policy = policy or QuantConfig()
  _, fv = _float_variables(config)
  tw = twin(config, policy)
  tv = calibrate(tw, from_float(tw, fv, WINDOW), [_x()])
  return tw, tv


def _node_outputs(tw, tv, x):
  capture = lambda m, _: isinstance(m, QNode)
  state = jax.jit(lambda v, x: tw.apply(v, x, mutable=["intermediates"], capture_intermediates=capture)[1])(tv, x)
  return {k: v["__call__"][0] for k, v in state["intermediates"].items()}


def test_readoff_is_complete_and_integer():
  tw, tv = _setup(EXPORTED)
  recs = read_off(tw, tv, WINDOW)
  assert [r["name"] for r in recs] == [n.name for n in tw.graph.nodes]
  for r in recs:
    assert len(r["in"]) == len(r["inputs"])
    if r["op"] in ("conv", "dense"):
      qmax = 2 ** (r["w_bits"] - 1) - 1
      assert r["kernel_int"].dtype == np.int32 and np.abs(r["kernel_int"]).max() == qmax  # min-max: ±qmax used
      assert r["w_scale"].shape == (r["kernel_int"].shape[-1],)
      np.testing.assert_allclose(r["acc_scale"], r["in"][0]["scale"] * r["w_scale"], rtol=1e-6)
    if r["op"] not in GRID_PRESERVING and r["name"] != "head":
      assert r["out"]["qmin"] == (-r["out"]["qmax"] if r["out"]["signed"] else 0)
    if r["op"] in ("maxpool", "pad_channels", "dropout"):
      assert r["out"] == r["in"][0]
  by = {r["name"]: r for r in recs}
  assert by["head"]["out"]["kind"] == "accumulator"
  assert by["block0/se/sigmoid"]["out"]["scale"] == pytest.approx(1 / 255)
  assert by["block0/se/fc2"]["out"]["bits"] == 8 and by["block0/se/fc2"]["out"]["signed"]
  assert by["stem_conv"]["in"][0]["signed"] and not by["stem_conv"]["out"]["signed"]
  # Plain-NumPy convertible.
  json.dumps(recs, default=lambda a: np.asarray(a).tolist())
  assert ro.bit_config(recs)["stem_conv"] == (8, 8)
  size = ro.model_bytes(recs)
  n_weights = sum(r["kernel_int"].size for r in recs if r["op"] in ("conv", "dense"))
  assert size["weights"] == n_weights


def test_integer_arithmetic_reproduces_the_twin():
  """Integer conv + int32 bias + requant (from the read-off alone) gives the twin's codes; so does the sigmoid LUT."""
  tw, tv = _setup()
  recs = {r["name"]: r for r in read_off(tw, tv, WINDOW)}
  x = _x(4, seed=9)
  outs = _node_outputs(tw, tv, x)
  r = recs["stem_conv"]
  g_in, g_out = r["in"][0], r["out"]
  X = np.asarray(jnp.round(outs["input"].value / g_in["scale"]), np.int64)
  assert np.abs(X).max() <= g_in["qmax"]
  # |X|, |W| <= 127 and K·Cin = 5 terms: the float32 sums are exact integers.
  acc = np.asarray(im2col_conv(jnp.asarray(X, jnp.float32), jnp.asarray(r["kernel_int"], jnp.float32), (1,), "SAME"),
                   np.int64)
  acc = acc + r["bias_int"].astype(np.int64)
  y = np.maximum(acc * r["acc_scale"].astype(np.float64), 0)
  Y = np.clip(np.floor(y / g_out["scale"] + 0.5), g_out["qmin"], g_out["qmax"])
  Y_twin = np.round(np.asarray(outs["stem_conv"].value) / g_out["scale"])
  assert np.mean(Y == Y_twin) > 0.999 and np.abs(Y - Y_twin).max() <= 1
  s = recs["block0/se/sigmoid"]
  Xs = np.round(np.asarray(outs["block0/se/fc2"].value) / s["in"][0]["scale"]).astype(np.int64)
  Ys = np.round(np.asarray(outs["block0/se/sigmoid"].value) / s["out"]["scale"]).astype(np.int64)
  np.testing.assert_array_equal(s["lut"][Xs - s["in"][0]["qmin"]], Ys)


def test_tqt_policy_and_low_bits():
  tw, tv = _setup(policy=QuantConfig(act_method="tqt", act_bits=4, weight_bits=4))
  recs = read_off(tw, tv, WINDOW)
  conv = next(r for r in recs if r["name"] == "block0/conv1")
  assert conv["w_bits"] == 4 and np.abs(conv["kernel_int"]).max() == 7
  assert conv["in"][0]["method"] == "tqt" and conv["in"][0]["qmax"] == 15
  assert "log2_t" in tv["params"]["stem_conv"]["q"]
  g = jax.jit(jax.grad(lambda p: jnp.sum(tw.apply({"params": p}, _x(2)) ** 2)))(tv["params"])
  assert float(jnp.abs(g["stem_conv"]["q"]["log2_t"])) > 0


def test_graph_validation_errors():
  with pytest.raises(ValueError, match="input 'nope' is not an earlier node"):
    QGraph((Node("input", "input", (), SIGNED), Node("a", "add", ("input", "nope"), SIGNED)))
  with pytest.raises(ValueError, match="only the last node"):
    QGraph((Node("input", "input", (), SIGNED), Node("m", "mean", ("input",)), Node("n", "mean", ("m",), SIGNED)))
  with pytest.raises(ValueError, match="unknown op"):
    QGraph((Node("input", "softmax"),))
  with pytest.raises(ValueError, match="act_method"):
    QuantConfig(act_method="lsq")
  _, fv = _float_variables(TINY)
  del fv["params"]["block0"]["conv1"]
  with pytest.raises(KeyError, match="node 'block0/conv1'.*block0/conv1/conv"):
    from_float(twin(TINY), fv, WINDOW)


def test_qat_optimizer_routes_tqt_thresholds():
  params = {"a": {"kernel": jnp.ones(3), "q": {"log2_t": jnp.float32(0.0)}}}
  grads = {"a": {"kernel": jnp.full(3, 5.0), "q": {"log2_t": jnp.float32(1e4)}}}
  tx = pipeline.qat_optimizer(params, 1e-3, threshold_lr=0.01)
  upd, _ = tx.update(grads, tx.init(params), params)
  assert float(upd["a"]["q"]["log2_t"]) == pytest.approx(-0.01 * np.tanh(1.0), rel=1e-4)  # TQT normed, bounded
  np.testing.assert_allclose(upd["a"]["kernel"], -1e-3, rtol=1e-4)  # Adam
  plain = pipeline.qat_optimizer(params, 1e-3)
  upd, _ = plain.update(grads, plain.init(params), params)
  assert float(upd["a"]["q"]["log2_t"]) == pytest.approx(-1e-3, rel=1e-4)
