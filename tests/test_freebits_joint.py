"""The joint search (SuperNet ops × Bayesian-Bits precisions): graph, expected latency, read-off."""

import jax
import numpy as np
import pytest

from jaxbp.deploy.zoo import from_config
from jaxbp.freebits import joint as J
from jaxbp.freebits.flow import fixed_gates
from jaxbp.freebits.latency_cost import model_latency_dict
from jaxbp.quant import bit_config, read_off, twin
from jaxbp.quant.bayesian_bits import BBConfig, log_alpha_for_bits
from tests.conftest import TINY_RESNET

WINDOW = 64
PLATFORM = "xpulpnn-v2"


@pytest.fixture(scope="module")
def setup():
  jg = J.joint_graph(TINY_RESNET)
  jt = J.JointTwin(jg, J.policy())
  table = J.joint_table(TINY_RESNET, WINDOW, PLATFORM, jg)
  x = np.random.default_rng(0).standard_normal((4, WINDOW, 1)).astype(np.float32)
  return jg, jt, table, J.start_variables(jt, WINDOW, None, [x]), x


def _at(jg, variables, choice, bits):
  """Variables whose argmax α is `choice` and whose deterministic gates select `bits`."""
  v = dict(variables)
  v["arch"] = {s: np.asarray([5.0 if o == choice[s] else 0.0 for o in ops], np.float32) for s, ops in jg.slots}
  v["gates"] = {k: {"log_alpha": log_alpha_for_bits(bits[k], BBConfig(), 20.0)} for k in variables["gates"]}
  return v


def _random(jg, rng, skip_id_conv2=False):
  drop = lambda s, ops: tuple(o for o in ops if not (skip_id_conv2 and s.endswith("conv2") and o == "id"))
  choice = {s: str(rng.choice(drop(s, ops))) for s, ops in jg.slots}
  return choice, {k: int(rng.choice([2, 4, 8])) for k in J.gate_names(jg)}


def test_joint_graph_has_every_allowed_op_per_slot(setup):
  jg = setup[0]
  assert [s for s, _ in jg.slots] == list(TINY_RESNET.slot_specs())
  for (slot, ops), spec in zip(jg.slots, TINY_RESNET.slot_specs().values()):
    assert ops == tuple(o for o in J.OPS if o in spec.allowed_ops())
  assert "block0/conv1/dw/pointwise" in {n.name for n in jg.weighted()}
  assert jg.plain_name("block0/conv1/dw/pointwise") == "block0/conv1/pointwise"
  assert jg.plain_name("block0/conv1/bn2") == "block0/bn2"
  assert jg.plain_name("block0/conv1/conv") == "block0/conv1"
  with pytest.raises(TypeError, match="ResNet1d"):
    J.joint_graph(object())


def test_expected_latency_equals_table_latency_at_one_hot(setup):
  jg, _, table, variables, _ = setup
  rng = np.random.default_rng(1)
  for _ in range(4):
    choice, bits = _random(jg, rng)
    e = float(J.expected_latency(*J.one_hot_inputs(jg, choice, bits), jg, table))
    plain, _, config, got = J.exported(TINY_RESNET, jg, _at(jg, variables, choice, bits), WINDOW)
    assert got == choice
    ld = model_latency_dict(plain, WINDOW, PLATFORM).per_layer("ms")
    net = from_config(plain, WINDOW)
    want = sum(ld[(l.name, *config[l.name])] if l.weighted else ld[(l.name, 8, 8)] for l in net.layers)
    assert e == pytest.approx(want, rel=1e-5)


def test_expected_latency_is_differentiable(setup):
  jg, _, table, variables, _ = setup
  cfg = BBConfig()
  f = lambda arch, gates: J.expected_latency(J.thetas(arch), J.gate_probs(gates, cfg), jg, table, cfg)
  ga, gg = jax.grad(f, argnums=(0, 1))(variables["arch"], variables["gates"])
  assert any(np.abs(np.asarray(g)).sum() > 0 for g in jax.tree.leaves(ga))
  assert sum(np.abs(np.asarray(g)).sum() > 0 for g in jax.tree.leaves(gg)) > len(jax.tree.leaves(gg)) // 2


@pytest.mark.slow  # ~80 s on 2 loaded cores: the supernet runs op by op.
def test_exported_network_computes_what_the_supernet_computes(setup):
  jg, jt, _, variables, x = setup
  # An identity conv2 makes the supernet differ from its export: its SE pool quantizes a signed mix (the plain
  # network's is unsigned) and conv1's output keeps its gate (the plain network has no reader for it: 8 bit).
  rng = np.random.default_rng(2)
  for _ in range(2):
    choice, bits = _random(jg, rng, skip_id_conv2=True)
    v = _at(jg, variables, choice, bits)
    plain, params, config, _ = J.exported(TINY_RESNET, jg, v, WINDOW)
    tw = twin(plain, J.policy())
    pv = {"params": params, "gates": fixed_gates(tw, config)}
    assert bit_config(read_off(tw, pv, WINDOW)) == config
    y_joint = jt.apply(v, x, train=False)
    y_plain = tw.apply(pv, x, train=False)
    np.testing.assert_allclose(np.asarray(y_joint), np.asarray(y_plain), rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # ~4.5 min on 2 loaded cores: compiling the supernet's bilevel step.
def test_bilevel_step_trains_weights_on_train_and_alpha_on_val_batches(setup):
  """Bilevel (as jaxbp.nas): the weights' step sees only the training batch, α's step the validation batch."""
  jg, jt, table, variables, x = setup
  cfg = J.JointSearchConfig(bilevel=True)
  step = jax.jit(J.make_step(jt, table, cfg, warmup_steps=0))
  tx_w, tx_g, tx_a = J._txs(cfg)  # pylint: disable=protected-access
  p, g, a = variables["params"], variables["gates"], variables["arch"]
  state = J.JointState(np.zeros((), np.int32), p, g, a, tx_w.init(p), tx_g.init(g), tx_a.init(a))
  rng = np.random.default_rng(1)
  train = {"x": x, "y": rng.standard_normal((4, 2)).astype(np.float32)}
  vals = [{"x": rng.standard_normal(x.shape).astype(np.float32), "y": rng.standard_normal((4, 2)).astype(np.float32)}
          for _ in range(2)]
  key, lam = jax.random.key(0), np.float32(1.0)
  s1, m1 = step(state, train, vals[0], lam, key)
  s2, _ = step(state, train, vals[1], lam, key)
  same = lambda u, v: all(np.array_equal(np.asarray(a_), np.asarray(b_))
                          for a_, b_ in zip(jax.tree.leaves(u), jax.tree.leaves(v)))
  assert same(s1.params, s2.params) and same(s1.gates, s2.gates)
  assert not same(s1.arch, s2.arch) and not same(s1.arch, state.arch)
  assert {"mse", "val_mse", "rel_latency"} <= set(m1)


def test_bilevel_search_needs_the_validation_split(setup):
  _, jt, table, variables, x = setup
  with pytest.raises(ValueError, match="validation split"):
    J.search(jt, variables, {"x": x, "y": np.zeros((4, 2), np.float32)}, (1.0,), table,
             J.JointSearchConfig(bilevel=True))
