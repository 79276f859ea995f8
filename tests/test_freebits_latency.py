"""Latency-aware costs from the simulator's tables, and the no-training Free Bits latency study."""

import json

import jax
import numpy as np
import pytest

from jaxbp.cost import bits as cost_bits
from jaxbp.cost.expected import one_hot_arch
from jaxbp.deploy.latency_table import slot_table
from jaxbp.deploy.platforms import get_platform
from jaxbp.deploy.zoo import from_config
from jaxbp.freebits import latency_cost, study
from jaxbp.nas.supernet import supernet_shapes
from jaxbp.quant import BBConfig, QuantConfig, bit_joints, bit_shapes, gate_layout, twin
from jaxbp.quant.bayesian_bits import log_alpha_for_bits
from tests.conftest import TINY_RESNET

WINDOW = 64


@pytest.fixture(scope="module")
def ld():
  return latency_cost.model_latency_dict(TINY_RESNET, WINDOW, "gap8")


@pytest.mark.parametrize("locked", [False, True])
def test_expected_latency_equals_table_latency_at_one_hot_gates(ld, locked):
  tw = twin(TINY_RESNET, QuantConfig(act_method="tqt", bayesian_bits=BBConfig(locked=locked)))
  shapes = bit_shapes(tw, WINDOW)
  cost = latency_cost.bb_latency_cost(TINY_RESNET, WINDOW, "gap8", unit="cycles", ld=ld)
  net = from_config(TINY_RESNET, WINDOW)
  weighted = {l.name for l in net.layers if l.weighted}
  assert weighted == {l.name for l in shapes.layers}
  fixed = sum(ld.cycles(l.name, 8, 8) for l in net.layers if not l.weighted)
  rng = np.random.default_rng(0)
  layout = gate_layout(tw.graph, tw.policy)
  for _ in range(3):
    config, gates = {}, {}
    for layer, g in layout.items():
      b_in = int(rng.choice([2, 4, 8]))
      b_w = b_in if locked else int(rng.choice([2, 4, 8]))
      config[layer] = (b_in, b_w)
      gates[g["act"]] = {"log_alpha": log_alpha_for_bits(b_in, tw.policy.bayesian_bits, 40.0)}
      gates[g["weight"]] = {"log_alpha": log_alpha_for_bits(b_w, tw.policy.bayesian_bits, 40.0)}
    table = fixed + sum(ld.cycles(k, a, w) for k, (a, w) in config.items())
    assert float(cost(bit_joints(tw, gates), shapes)) == pytest.approx(table, rel=1e-5)
    assert float(cost(cost_bits.one_hot_joints(shapes, config), shapes)) == pytest.approx(table, rel=1e-5)
  # Differentiable in the gate logits (what the search trains).
  g = jax.grad(lambda gs: cost(bit_joints(tw, gs), shapes))(gates)
  assert all(np.all(np.isfinite(np.asarray(v["log_alpha"]))) for v in g.values())


def test_supernet_latency_at_one_hot_theta_is_the_slot_table_sum():
  ops = ("conv", "dw")
  cost = latency_cost.supernet_latency_cost(TINY_RESNET, WINDOW, "xpulpnn-v2", unit="cycles", ops=ops)
  shapes = supernet_shapes(TINY_RESNET, WINDOW, ops=ops)
  table = slot_table(shapes, get_platform("xpulpnn-v2"))
  rng = np.random.default_rng(1)
  choice = {l.name: str(rng.choice(l.ops)) for l in shapes.layers if l.searchable}
  want = sum(table[(k, op)] for k, op in choice.items())
  assert float(cost(one_hot_arch(shapes, choice), shapes)) == pytest.approx(want, rel=1e-4)


@pytest.mark.parametrize("platform", ["xpulpv2", "xpulpnn-v1"])
def test_latency_study_is_never_slower_and_never_drops_bits(ld, platform):
  net = from_config(TINY_RESNET, WINDOW)
  s = study.latency_study(net, get_platform(platform), 4)
  assert s.latency["4bit+fb"].ld_ms <= s.latency["4bit"].ld_ms + 1e-12
  base = study.weighted_bits(study.with_uniform_bits(net, 4))
  assert set(s.config) == set(base)
  for r in s.raised:
    assert r.after[0] >= r.before[0] and r.after[1] >= r.before[1] and r.after != r.before
    assert r.cycles_after <= r.cycles_before
  # The paper's baseline: the first layer reads the 8-bit network input; 4-bit weights everywhere.
  assert base["stem_conv"] == (8, 4) and all(w == 4 for _, w in base.values())
  assert "relative_pct" in s.to_json()


def test_free_bits_cli_study_all_isas(capsys):
  import importlib.util  # pylint: disable=import-outside-toplevel
  from pathlib import Path  # pylint: disable=import-outside-toplevel
  spec = importlib.util.spec_from_file_location("deploy_cli_fb", Path(__file__).resolve().parents[1] / "tools" / "deploy.py")
  cli = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(cli)
  assert cli.main(["free-bits", "--model", "mobilenet_v2", "--width-mult", "0.35", "--resolution", "32",
                   "--platform", "all", "--json"]) == 0
  d = json.loads(capsys.readouterr().out)
  assert [s["platform"] for s in d["studies"]] == list(study.ISAS)
  for s in d["studies"]:
    assert s["relative_pct"]["8bit"]["sim"] == 100.0
    assert s["latency"]["4bit+fb"]["ld_ms"] <= s["latency"]["4bit"]["ld_ms"] + 1e-12
    assert all(a >= 4 and w >= 4 for a, w in s["config"].values())
  # The paper's baseline: the expand convs reading a residual add's (8-bit) output have 8-bit inputs, 4-bit weights.
  from jaxbp.deploy.zoo import mobilenet_v2  # pylint: disable=import-outside-toplevel
  net = mobilenet_v2(0.35, 32)
  base = study.weighted_bits(study.with_uniform_bits(net, 4))
  after_add = {l.name for l in net.layers if l.inputs[0].endswith("/add")}
  assert after_add and all(base[n] == (8, 4) for n in after_add)
  assert all(base[n] == (4, 4) for n in base if n not in after_add and n != "conv0")
