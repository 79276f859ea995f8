"""ResNet1d through the DORY export: the seed (squeeze-excitation) is refused naming its gate layers; the deployable
variant (`ResNet1dConfig.deployable()`: no SE, grouped convs as block-diagonal convs) exports bit-exact; the
option leaves the seeds' parameter counts unchanged."""

import jax
import numpy as np
import pytest

from jaxbp import integerize as I
from jaxbp import models
from jaxbp.export.dory import DoryUnsupportedError, evaluate, problems, to_dory_model
from jaxbp.integerize import from_quant as F
from jaxbp.models import count_params
from jaxbp.quant import QuantConfig, calibrate, from_float, twin
from jaxbp.quant.graph_resnet1d import resnet1d_graph

SMALL = models.ResNet1dConfig(first_kernel=5, kernel=3, n_blocks=4, base_filters=8)
WINDOW = 64


def _integer(cfg):
  tw = twin(cfg, QuantConfig())
  variables = from_float(tw, models.init_variables(models.build(cfg), jax.random.key(0), WINDOW), WINDOW)
  x = np.random.default_rng(0).normal(size=(40, WINDOW, 1)).astype(np.float32)
  return F.integerize_twin(tw, calibrate(tw, variables, [x[:32]]), WINDOW)


def _params(cfg) -> int:
  shapes = jax.eval_shape(lambda: models.init_variables(models.build(cfg), jax.random.key(0), 262))  # no compile
  return count_params(shapes["params"])


def test_deployable_option_keeps_the_seed_and_drops_the_gate():
  seed = models.RESNET1D["ppgbp"]
  assert seed.se and seed.groups == 2 and _params(seed) == 49_346
  dep = seed.deployable()
  assert (dep.se, dep.groups, dep.kernel, dep.n_blocks) == (False, 2, seed.kernel, seed.n_blocks)
  assert _params(dep) == 47_810 and _params(seed.deployable(groups=1)) == 93_890
  assert not any("/se/" in n.name for n in resnet1d_graph(dep).nodes)
  assert sum("/se/" in n.name for n in resnet1d_graph(seed).nodes) == 5 * seed.n_blocks


@pytest.mark.slow  # builds and calibrates a QAT twin (minutes on 2 loaded cores)
def test_seed_is_refused_with_its_gate_layers_named():
  graph = _integer(SMALL)
  found = {(p["layer"], p["op"]) for p in problems(graph)}
  assert found == {(f"block{i}/se/{n}", op) for i in range(4) for n, op in (("sigmoid", "lut"), ("mul", "mul"))}
  with pytest.raises(DoryUnsupportedError, match=r"layer 'block0/se/mul' \(mul\)"):
    to_dory_model(graph)


@pytest.mark.slow
def test_deployable_variant_exports_bit_exact():
  graph = _integer(SMALL.deployable())
  model, config, lowered = to_dory_model(graph)
  x = np.random.default_rng(1).integers(*graph.tensors[graph.inputs[0]].range, (6, WINDOW, 1), endpoint=True)
  (y,) = graph.outputs
  np.testing.assert_array_equal(evaluate(model, graph, x)[y], I.run(graph, x)[y])
  kinds = {n["lowering"].split(" ->")[0] for n in config["lowerings"]}
  assert kinds == {"grouped conv", "BatchNorm+ReLU", "zero-padded max pool on a signed input",
                   "channel zero-padding"}
  assert {n.op for n in lowered.nodes} <= {"conv", "linear", "add", "maxpool", "global_avgpool"}
