"""Bayesian Bits: hard-concrete gates, residual decomposition, deterministic read-off, locked variant, costs."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp import models
from jaxbp.cost import bits as cost_bits
from jaxbp.quant import (
  BBConfig,
  QuantConfig,
  bb_search,
  bit_config,
  bit_joints,
  bit_shapes,
  calibrate,
  from_float,
  read_off,
  twin,
)
from jaxbp.quant import bayesian_bits as bb
from jaxbp.quant import quantizers as qz
from jaxbp.train.engine import EngineConfig
from tests.conftest import TINY_RESNET

WINDOW = 64
TINY = TINY_RESNET
CFG = BBConfig()


def test_hard_concrete_probabilities_match_samples():
  log_alpha = jnp.asarray([-2.0, 0.0, 1.0, 3.0])
  keys = jax.random.split(jax.random.key(0), 20_000)
  z = jax.vmap(lambda k: bb.sample_gates(log_alpha, k, CFG))(keys)
  assert float(z.min()) == 0.0 and float(z.max()) == 1.0  # exact zeros and ones occur
  np.testing.assert_allclose(np.mean(np.asarray(z) > 0, axis=0), bb.prob_nonzero(log_alpha, CFG), atol=0.015)
  # Reparameterized: gradients reach the logits.
  g = jax.grad(lambda a: jnp.sum(bb.sample_gates(a, jax.random.key(1), CFG)))(jnp.zeros(3))
  assert np.all(np.isfinite(np.asarray(g)))


def test_eval_gates_threshold_and_determinism():
  p0 = lambda a: 1 - float(bb.prob_nonzero(jnp.float32(a), CFG))
  # Logit where P(z = 0) crosses 0.34: gates on above, off below.
  grid = np.linspace(-3, 3, 601)
  on = np.asarray(bb.eval_gates(jnp.asarray(grid, jnp.float32), CFG))
  assert np.all(on == np.array([p0(a) < 0.34 for a in grid], np.float32))
  assert on[0] == 0 and on[-1] == 1
  gates = bb.BBGates(CFG)
  v = gates.init({"gates": jax.random.key(0)}, False)
  outs = [gates.apply(v, False, rngs={"gates": jax.random.key(i)}) for i in range(3)]
  assert all(np.array_equal(outs[0], o) for o in outs)
  trains = [gates.apply(v, True, rngs={"gates": jax.random.key(i)}) for i in range(2)]
  assert trains[0].shape == (CFG.n_gates,)


@pytest.mark.parametrize("signed", [False, True])
def test_residual_decomposition_equals_plain_quantizers(signed):
  x = jnp.linspace(-2, 2, 401)
  alpha = jnp.float32(1.3)
  qs = [qz.pact(x, alpha, b, signed) for b in CFG.bits]
  for z, want in (([0, 0], 0), ([1, 0], 1), ([0, 1], 0), ([1, 1], 2)):
    np.testing.assert_allclose(bb.residual_quantize(qs, jnp.asarray(z, jnp.float32), CFG), qs[want], atol=1e-6)
    assert int(bb.bits_from_gates(jnp.asarray(z, jnp.float32), CFG)) == CFG.bits[want]
  pcfg = BBConfig(prune=True)
  np.testing.assert_array_equal(bb.residual_quantize(qs, jnp.asarray([0.0, 1, 1]), pcfg), 0.0)
  assert int(bb.bits_from_gates(jnp.asarray([0.0, 1, 1]), pcfg)) == 0
  if not signed:  # unsigned PACT grids nest: s_4 = s_2 / (2^2 + 1), s_8 = s_4 / (2^4 + 1)
    s = [float(qz.pact_scale(alpha, b)) for b in CFG.bits]
    assert s[1] == pytest.approx(s[0] / 5) and s[2] == pytest.approx(s[1] / 17)
    eps4 = np.asarray(qs[1] - qs[0]) / s[1]
    np.testing.assert_allclose(eps4, np.round(eps4), atol=1e-4)  # the residual is on the 4-bit grid


def test_bit_probabilities():
  la = jnp.asarray([0.5, -1.0])
  p = bb.bit_probabilities(la, CFG)
  q = np.asarray(bb.prob_nonzero(la, CFG))
  np.testing.assert_allclose(p, [1 - q[0], q[0] * (1 - q[1]), q[0] * q[1]], rtol=1e-6)
  pp = bb.bit_probabilities(jnp.asarray([0.0, 0.5, -1.0]), BBConfig(prune=True))
  assert pp.shape == (4,) and float(jnp.sum(pp)) == pytest.approx(1.0)


def _bb_twin(locked):
  model = models.build(TINY)
  shapes = jax.eval_shape(lambda: models.init_variables(model, jax.random.key(0), WINDOW))
  rng = np.random.default_rng(0)
  fv = jax.tree.map(lambda s: rng.uniform(0.5, 1.0, s.shape).astype(np.float32)
                    if s.ndim else np.float32(1), dict(shapes))
  fv = jax.tree_util.tree_map_with_path(
      lambda p, v: rng.normal(0, 0.3, v.shape).astype(np.float32) if p[-1].key in ("kernel", "bias") else v, fv)
  x = jax.random.normal(jax.random.key(1), (4, WINDOW, 1))
  tw = twin(TINY, QuantConfig(bayesian_bits=BBConfig(locked=locked)))
  return tw, calibrate(tw, from_float(tw, fv, WINDOW), [x]), x


def _with_logits(variables, fn):
  gates = {k: {"log_alpha": jnp.asarray(fn(k, v["log_alpha"].shape), jnp.float32)}
           for k, v in variables["gates"].items()}
  return {**variables, "gates": gates}


def test_locked_variant_shares_gates():
  tw, tv, _ = _bb_twin(locked=True)
  assert all(k.endswith("/gates") for k in tv["gates"])
  rng = np.random.default_rng(0)
  seen = set()
  for trial in range(3):
    v = _with_logits(tv, lambda k, s: rng.uniform(-4, 4, s))
    config = bit_config(read_off(tw, v, WINDOW))
    for layer, (b_in, b_w) in config.items():
      assert b_in == b_w, (layer, b_in, b_w)
      seen.add(b_w)
  assert seen - {8}  # random logits do move some layers off 8 bits
  # Joint probabilities are diagonal (b_in == b_w) for gated layers.
  joints = bit_joints(tw, tv["gates"])
  gated = [k.rsplit("/", 1)[0] for k in tv["gates"]]
  for layer in gated:
    p = np.asarray(joints[layer])
    assert p.shape == (3, 3) and np.allclose(p, np.diag(np.diag(p)))


def test_gate_readoff_and_expected_bops():
  tw, tv, x = _bb_twin(locked=False)
  tv = _with_logits(tv, lambda k, s: np.full(s, 10.0))
  shapes = bit_shapes(tw, WINDOW)
  # All gates on: the BB twin is the 8-bit twin and reads off 8/8 everywhere.
  recs = read_off(tw, tv, WINDOW)
  assert set(bit_config(recs).values()) == {(8, 8)}
  fixed = twin(TINY, QuantConfig())
  y8 = jax.jit(fixed.apply)({"params": tv["params"]}, x)
  np.testing.assert_allclose(jax.jit(tw.apply)(tv, x), y8, rtol=1e-5, atol=1e-6)
  macs = {layer.name: layer.macs for layer in shapes.layers}
  bops = cost_bits.bops()
  full = float(bops(bit_joints(tw, tv["gates"]), shapes))
  assert full == pytest.approx(sum(64 * m for m in macs.values()), rel=0.02)
  # Turning every 8-bit gate off: 4-bit searchable tensors, BOPs drop, read-off follows.
  v4 = _with_logits(tv, lambda k, s: np.array([10.0, -10.0]))
  config = bit_config(read_off(tw, v4, WINDOW))
  gated_in = {k.split("/gates")[0] for k in tv["gates"] if k.endswith("gates_act")}
  for layer, (b_in, b_w) in config.items():
    assert b_w == 4 and b_in == (4 if layer in gated_in else 8)
  exact = float(bops(cost_bits.one_hot_joints(shapes, config), shapes))
  assert float(bops(bit_joints(tw, v4["gates"]), shapes)) == pytest.approx(exact, rel=0.02)
  assert exact < full / 2
  # Differentiable in the logits: lowering a logit lowers the expected BOPs.
  g = jax.grad(lambda gates: bops(bit_joints(tw, gates), shapes))(tv["gates"])
  assert all(float(jnp.min(v["log_alpha"])) >= 0 for v in g.values())
  # Eval is deterministic whatever the gate rng; training samples.
  ev = jax.jit(lambda v, k: tw.apply(v, x, rngs={"gates": k}))
  np.testing.assert_array_equal(ev(tv, jax.random.key(0)), ev(tv, jax.random.key(1)))
  tr = jax.jit(lambda v, k: tw.apply(v, x, train=True, rngs={"gates": k, "dropout": k}))
  assert tr(tv, jax.random.key(0)).shape == y8.shape


@pytest.mark.slow
def test_search_lowers_bops_with_lambda():
  """The engine-run search: with a large λ the gates fall, the expected BOPs drop and fewer bits are read off."""
  tw, tv, _ = _bb_twin(locked=False)
  rng = np.random.default_rng(0)
  train = {"x": rng.normal(size=(16, WINDOW, 1)).astype(np.float32),
           "y": rng.uniform(size=(16, 2)).astype(np.float32)}
  shapes = bit_shapes(tw, WINDOW)
  cfg = bb_search.BBSearchConfig(gate_lr=1.0, epochs=3, batch_size=8)
  finals, history = bb_search.search(tw, tv, train, (0.0, 5.0), shapes, cfg, engine=EngineConfig(strategy="vmap"))
  assert len(history) == 3 and len(history[0]["mse"]) == 2
  e = [float(cost_bits.bops()(bit_joints(tw, v["gates"]), shapes)) for v in finals]
  assert e[1] < 0.8 * e[0]
  mean_bits = [np.mean([b for pair in bit_config(read_off(tw, v, WINDOW)).values() for b in pair]) for v in finals]
  assert mean_bits[1] < mean_bits[0]  # the read-off configuration follows the expected cost


def test_bbconfig_validation():
  with pytest.raises(ValueError, match="bits"):
    BBConfig(bits=(4, 2))
  with pytest.raises(ValueError, match="stretch"):
    dataclasses.replace(CFG, gamma=0.1)
