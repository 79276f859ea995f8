"""Bridge from the fake-quantized twin (jaxbp.quant) to the integer graph: per-layer fidelity, bit-exact
exports, the quantized-model directory, and clear errors for what has no integer form."""

import jax
import numpy as np
import pytest

from jaxbp import models
from jaxbp.export import UnsupportedError
from jaxbp.export.bundle import cross_check
from jaxbp.integerize import from_quant as F
from jaxbp.integerize.graph import GraphError
from jaxbp.quant import BBConfig, QuantConfig, calibrate, from_float, read_off, twin
from jaxbp.quant.bayesian_bits import mixed_bits, set_gate_bits
from tools import export as export_tool

CFG = models.ResNet1dConfig(first_kernel=5, kernel=3, n_blocks=2, base_filters=8)
WINDOW = 64


def _twin(policy: QuantConfig, gates=None):
  tw = twin(CFG, policy)
  float_vars = models.init_variables(models.build(CFG), jax.random.key(0), WINDOW)
  variables = from_float(tw, float_vars, WINDOW)
  if gates:
    variables = {**variables, "gates": gates(variables["gates"])}
  x = np.random.default_rng(0).normal(size=(48, WINDOW, 1)).astype(np.float32)
  return tw, calibrate(tw, variables, [x[:32]]), x[32:]


@pytest.fixture(scope="module")
def int8():
  tw, variables, x = _twin(QuantConfig())
  return tw, variables, x, F.integerize_twin(tw, variables, WINDOW)


def _mixed_gates(gates):
  """First and last layer at 8 bits (the kernels need whole-byte channel counts: Cin = 1 and Cout = 2 are not),
  4-bit activations and 2/4-bit weights elsewhere."""
  return set_gate_bits(gates, BBConfig(), mixed_bits(gates, ("stem_conv", "head")))


@pytest.fixture(scope="module")
def mixed():
  tw, variables, x = _twin(QuantConfig(bayesian_bits=BBConfig()), _mixed_gates)
  return tw, variables, x, F.integerize_twin(tw, variables, WINDOW)


def test_graph_mirrors_the_twin(int8):
  _, _, _, g = int8
  ops = [n.op for n in g.nodes]
  assert ops[:2] == ["conv", "maxpool"] and ops[-3:] == ["affine", "global_avgpool", "linear"]
  assert ops.count("lut") == 2 and ops.count("add") == 2 and ops.count("mul") == 2
  assert g.tensors["head"].bits == 32 and len(g.tensors["head"].scale) == 2  # per-channel accumulator quantum
  # PACT's narrow signed grid becomes the kernels' full grid (clips to [-2^(b-1), 2^(b-1)-1]); ReLU folded
  assert g.tensors["block0/conv2"].signed and not g.tensors["block0/conv2"].narrow
  assert not g.tensors["stem_conv"].signed
  assert "block0/drop2" not in g.tensors  # dropout is the identity


@pytest.mark.parametrize("case", ["int8", "mixed"])
def test_every_layer_within_one_quantum_of_the_twin(case, request):
  tw, variables, x, g = request.getfixturevalue(case)
  report, outs = F.twin_fidelity(g, tw, variables, x)
  assert len(report.layers) == len(g.nodes)
  for r in report.layers:
    if r.bits != 32:  # fed the twin's own inputs, each layer is within one quantum (exact almost always)
      assert r.local_max_err <= 1.0 + 1e-6 and r.local_mismatch < 0.02, r
  # End to end, one-quantum differences propagate but stay small relative to the output.
  span = np.ptp(outs["twin"])
  assert np.abs(outs["twin"] - outs["integer"]).max() < 0.1 * span
  assert report.worst.name in {n.name for n in g.nodes}
  assert "worst layer" in report.table()


def test_mixed_precision_bits_are_read_off(mixed):
  _, _, _, g = mixed
  assert g.node("stem_conv").attrs["w_bits"] == 8 and g.tensors["input"].bits == 8
  assert {g.node(n).attrs["w_bits"] for n in ("block0/conv1", "block0/conv2", "block1/conv1")} <= {2, 4}
  assert g.tensors["stem_conv"].bits == 4  # block0/conv1's input quantizer (gated)


def test_mixed_precision_exports_bit_exact_on_twin_input_codes(mixed, tmp_path):
  tw, variables, x, g = mixed
  _, outs = F.twin_fidelity(g, tw, variables, x[:4])
  report = cross_check(g, {"input": outs["input_codes"]}, c_dir=tmp_path)
  for backend in ("onnxruntime", "dory_onnx_eval", "c"):
    assert report[backend].get("bit_exact", True), report


def test_quant_model_dir_round_trip_and_export_tool(int8, tmp_path):
  tw, variables, _, g = int8
  F.save_quant_model(tmp_path / "qm", CFG, tw.policy, variables, WINDOW, meta={"note": "test"})
  tw2, v2, window, meta = F.load_quant_model(tmp_path / "qm")
  assert window == WINDOW and meta == {"note": "test"} and tw2.policy == tw.policy
  g2 = F.integerize_twin(tw2, v2, window)
  for a, b in zip(g.nodes, g2.nodes):
    assert a.name == b.name and all(np.array_equal(a.arrays[k], b.arrays[k]) for k in a.arrays)
  assert export_tool.main([str(tmp_path / "qm"), "--format", "onnx", "--out", str(tmp_path / "out"),
                           "--check", "2"]) == 0
  assert (tmp_path / "out" / "graph" / "graph.json").is_file()


def test_sub_byte_first_layer_is_reported_as_unsupported(int8):
  tw, variables, _, _ = int8
  records = read_off(tw, variables, WINDOW)
  records[0]["out"] = {**records[0]["out"], "bits": 4, "qmin": -7, "qmax": 7}  # a 4-bit network input
  g = F.graph_from_readoff(records, WINDOW)  # the integer graph itself is fine ...
  with pytest.raises(UnsupportedError, match="graph input 'input': a 4-bit tensor needs a channel count"):
    cross_check(g, {"input": np.zeros((1, WINDOW, 1), np.int64)})  # ... the kernels cannot take Cin = 1 at 4 bits


def test_unknown_readoff_op_is_named(int8):
  tw, variables, _, _ = int8
  records = read_off(tw, variables, WINDOW)
  records.insert(1, {**records[1], "name": "odd", "op": "softplus", "inputs": ["input"]})
  with pytest.raises(GraphError, match=r"layer 'odd' \(softplus\): unknown read-off op"):
    F.graph_from_readoff(records, WINDOW)


def test_grid_errors():
  grid = {"bits": 8, "signed": True, "scale": 0.1, "qmin": -127, "qmax": 127, "zero_point": 0}
  assert not F.grid_quant(grid, "l").narrow  # the twin's narrow grid -> the kernels' full signed grid
  with pytest.raises(GraphError, match="pruned"):
    F.grid_quant({**grid, "bits": 0}, "l")
  with pytest.raises(GraphError, match="ReLU onto a signed grid"):
    F.grid_quant(grid, "l", act="relu")
  with pytest.raises(GraphError, match="not a 8-bit signed grid"):
    F.grid_quant({**grid, "qmax": 100}, "l")
