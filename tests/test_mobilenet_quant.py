"""MobileNet quantized twins: graph from the description, BOPs shapes, and a tiny MobileNetV2 twin -> integer graph."""

import jax
import numpy as np
import pytest

from jaxbp import models
from jaxbp.integerize import from_quant as F
from jaxbp.models.mobilenet import MobileNetConfig, init_mobilenet
from jaxbp.quant import BBConfig, QuantConfig, bit_shapes, calibrate, from_float, graph_of, twin
from jaxbp.train.recalibrate import recalibrate_batch_stats

TINY = MobileNetConfig("v2", width_mult=0.25, resolution=8, n_classes=4)
SHAPE = (8, 8, 3)


def test_graph_is_the_description_and_adds_stay_8_bit():
  cfg = MobileNetConfig("v2", 0.35, 32, 10)
  g = graph_of(cfg)
  assert [n.name for n in g.nodes] == ["input"] + [l.name for l in cfg.layers()]
  adds = [n for n in g.nodes if n.op == "add"]
  assert adds and all(n.out.bits == 8 and not n.out.searchable for n in adds)
  assert g["block3/add"].inputs == ("block3/project", "block2/project")
  gated = g.gated_inputs()
  assert "block4/expand" not in gated and "block2/expand" in gated  # block4 reads block3's 8-bit add output
  assert g["block3/project"].act == "none" and g["block3/depthwise"].spec.groups == cfg.layer("block3/depthwise").cin
  assert g.output.name == "fc" and g.output.out is None


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_bit_shapes_macs_are_the_description_macs(version):
  cfg = MobileNetConfig(version, 0.25, 32, 10)
  shapes = bit_shapes(twin(cfg, QuantConfig(bayesian_bits=BBConfig())), (32, 32, 3))
  want = {l.name: l.macs for l in cfg.layers() if l.weighted}
  assert {l.name: l.macs for l in shapes.layers} == want


@pytest.fixture(scope="module")
def tiny():
  x = np.random.default_rng(0).uniform(-1, 1, (40,) + SHAPE).astype(np.float32)
  model = models.build(TINY)
  float_vars = recalibrate_batch_stats(model, init_mobilenet(model, jax.random.key(0)), {"x": x[:32]}, batch_size=32)
  tw = twin(TINY, QuantConfig())
  variables = calibrate(tw, from_float(tw, float_vars, SHAPE), [x[:32]])
  return tw, variables, x[32:], F.integerize_twin(tw, variables, SHAPE)


@pytest.mark.slow  # the tiny V2 twin compiles several programs (minutes on 2 cores)
def test_tiny_v2_integer_graph_reproduces_the_twin_codes(tiny):
  tw, variables, x, g = tiny
  ops = [n.op for n in g.nodes]
  assert ops.count("add") == sum(l.kind == "add" for l in TINY.layers()) and ops[-2:] == ["global_avgpool", "linear"]
  assert g.tensors["input"].shape == SHAPE and g.node("block2/depthwise").attrs["groups"] == 48
  report, _ = F.twin_fidelity(g, tw, variables, x)
  assert len(report.layers) == len(g.nodes)
  for r in report.layers:
    if r.bits != 32:  # fed the twin's own inputs, every layer's codes are the twin's (within one quantum, rarely off)
      assert r.local_max_err <= 1.0 + 1e-6 and r.local_mismatch < 0.05, r
