"""The DORY export (`jaxbp.export.dory`): exact rewrites into DORY layers, refusals naming layer and op, the ONNX
DORY's Quantlab frontend reads (bit-exact under its evaluator), the checksum files, and the real DORY on a small
network (skipped where ../shared/dory or its Python needs are absent)."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from jaxbp import integerize as I
from jaxbp.export.bundle import export_graph
from jaxbp.export.dory import DoryUnsupportedError, evaluate, lower, problems, to_dory_model
from jaxbp.export.dory.app import choose_optional, run_dory, write_dory_dir
from jaxbp.integerize.builder import GraphBuilder, Quant

DORY = Path(__file__).resolve().parents[2] / "shared" / "dory"


def _w(rng, shape, bits=8):
  return I.quantize_weight(rng.normal(size=shape) * 0.3, bits)


def _resnet_like(rng, *, length=24, groups=2):
  """A 1-D residual net with every rewrite: grouped conv, BN+ReLU with no conv before (affine), zero-padded max
  pool on a signed tensor, channel zero-padding, residual adds, global pool, linear (int32 logits)."""
  b = GraphBuilder()
  x = b.input("x", (length, 1), Quant(8, True, 0.02))
  h = b.conv("stem", x, *_w(rng, (8, 5, 1)), w_bits=8, bias=rng.normal(size=8) * 0.1, padding="SAME",
             out=Quant(8, False, 0.05))
  c = b.conv("conv1", h, *_w(rng, (8, 3, 8 // groups)), w_bits=8, groups=groups, padding="SAME",
             bias=rng.normal(size=8) * 0.1, out=Quant(8, True, 0.08))
  s = b.add("add1", c, h, Quant(8, True, 0.1))
  a = b.affine("bn", s, rng.uniform(0.5, 1.5, 8), rng.normal(size=8) * 0.1, Quant(8, False, 0.06))
  c = b.conv("conv2", a, *_w(rng, (8, 3, 8), 4), w_bits=4, stride=2, padding="SAME", out=Quant(8, True, 0.1))
  p = b.maxpool("skip_pool", s, 2, padding=((0, 1),))
  s = b.add("add2", c, p, Quant(8, True, 0.12))
  q = b.pad_channels("skip_pad", s, 4, 4)
  c = b.conv("conv3", s, *_w(rng, (16, 1, 8)), w_bits=8, out=Quant(8, True, 0.1))
  s = b.add("add3", c, q, Quant(8, True, 0.12))
  g = b.global_avgpool("pool", s, Quant(8, True, 0.05))
  y = b.linear("head", g, *_w(rng, (2, 16)), w_bits=8, bias=rng.normal(size=2))
  return b.build([y])


def _inputs(rng, graph, n=8):
  lo, hi = graph.tensors[graph.inputs[0]].range
  x = rng.integers(lo, hi + 1, (n,) + graph.tensors[graph.inputs[0]].shape)
  x[:1], x[1:2] = lo, hi
  return x


@pytest.mark.parametrize("seed", range(3))
def test_rewrites_are_exact_and_the_model_is_what_dory_reads(seed):
  rng = np.random.default_rng(seed)
  graph = _resnet_like(rng)
  x = _inputs(rng, graph)
  lowered, notes = lower(graph)
  ref, got = I.run(graph, x, keep_all=True), I.run(lowered, x, keep_all=True)
  for t in ref:  # every tensor of the original graph keeps its integers
    np.testing.assert_array_equal(got[t], ref[t], err_msg=t)
  assert {n.op for n in lowered.nodes} <= {"conv", "linear", "add", "maxpool", "global_avgpool"}
  assert [(n["layer"], n["op"]) for n in notes] == [("conv1", "conv"), ("bn", "affine"), ("skip_pool", "maxpool"),
                                                    ("skip_pad", "pad_channels")]
  assert notes[0]["macs"] == 2 * notes[0]["macs_before"] == 24 * 8 * 3 * 8
  conv1 = lowered.node("conv1")
  assert conv1.attrs["groups"] == 1 and not conv1.arrays["weight"][:4, :, 4:].any()
  pool = lowered.node("skip_pool")
  assert pool.inputs == ("skip_pool/pad",) and pool.attrs["padding"] == ((0, 0),)

  model, config, low2 = to_dory_model(graph)
  onnx.checker.check_model(model, full_check=True)
  assert [n.name for n in low2.nodes] == [layer["name"] for layer in config["layers"]]
  np.testing.assert_array_equal(evaluate(model, graph, x)["head"], ref["head"])
  names = [model.graph.input[0].name] + [n.output[0] for n in model.graph.node]
  assert all(n.isdigit() for n in names) and [int(n) for n in names] == sorted(int(n) for n in names)
  ops = {n.op_type for n in model.graph.node}
  assert ops <= {"Conv", "Gemm", "Mul", "Add", "Div", "Floor", "Clip", "MaxPool", "GlobalAveragePool", "Flatten"}
  for nd in model.graph.node:
    attrs = {a.name for a in nd.attribute}
    if nd.op_type == "Clip":  # DORY reads the bounds from attributes, and signedness from min < 0
      assert {"min", "max", "out_bits"} <= attrs and len(nd.input) == 1
    if nd.op_type == "Add" and len(nd.input) == 2 and not any(i.endswith(".lam") for i in nd.input):
      assert {f"{p}_{f}" for p in ("in1", "in2", "out") for f in ("mul", "add", "shift")} <= attrs
      assert {"in1_n_levels", "in1_rq", "in2_n_levels", "in2_rq", "out_n_levels", "out_rq", "add_bits"} <= attrs
  inits = {i.name for i in model.graph.initializer}
  assert not any(name.endswith(".bias") for name in inits if name.split(".")[0] != "head"), "bias folds into λ"


def test_block_diagonal_and_pad_conv_with_sub_byte_weights():
  rng = np.random.default_rng(7)
  b = GraphBuilder()
  x = b.input("x", (6, 5, 8), Quant(4, False, 0.1))
  h = b.conv("g4", x, *_w(rng, (16, 3, 3, 2), 2), w_bits=2, groups=4, padding="SAME", out=Quant(4, True, 0.3))
  h = b.pad_channels("pad", h, 0, 8)
  graph = b.build([h])
  x = _inputs(rng, graph)
  model, config, lowered = to_dory_model(graph)
  np.testing.assert_array_equal(evaluate(model, graph, x)["pad"], I.run(graph, x)["pad"])
  assert [layer["op"] for layer in config["layers"]] == ["conv", "conv"]
  assert config["lowerings"][1]["macs"] == 6 * 5 * 16 * 24


def _se_graph(rng):
  b = GraphBuilder()
  x = b.input("x", (16, 8), Quant(8, False, 0.05))
  s = b.global_avgpool("se/pool", x, Quant(8, False, 0.05))
  s = b.linear("se/fc", s, *_w(rng, (8, 8)), w_bits=8, out=Quant(8, True, 0.1))
  s = b.lut("se/sigmoid", s, lambda v: 1 / (1 + np.exp(-v)), Quant(8, False, 1 / 255))
  h = b.mul("se/mul", x, s, Quant(8, False, 0.05))
  h = b.upsample2("up", h, Quant(8, False, 0.05))
  return b.build([h])


def test_what_dory_cannot_run_is_refused_before_writing(tmp_path):
  graph = _se_graph(np.random.default_rng(0))
  found = problems(graph)
  assert [(p["layer"], p["op"]) for p in found] == [("se/sigmoid", "lut"), ("se/mul", "mul"), ("up", "upsample2")]
  assert all(p["fix"] for p in found)
  with pytest.raises(DoryUnsupportedError, match=r"layer 'se/mul' \(mul\): .*squeeze-excitation.*se=False"):
    write_dory_dir(graph, tmp_path / "d")
  with pytest.raises(DoryUnsupportedError):
    export_graph(graph, tmp_path / "out", "dory")
  assert not (tmp_path / "d").exists() and not (tmp_path / "out").exists()
  summary = export_graph(graph, tmp_path / "both", "both")
  assert [p["op"] for p in summary["dory"]["refused"]] == ["lut", "mul", "upsample2"]
  assert not (tmp_path / "both" / "dory").exists()


def test_checksum_files_are_the_interpreters_layer_outputs(tmp_path):
  rng = np.random.default_rng(1)
  graph = _resnet_like(rng)
  example = _inputs(rng, graph, 3)[2]
  config = write_dory_dir(graph, tmp_path, example)
  _, _, lowered = to_dory_model(graph)
  env = I.run(lowered, example[None], keep_all=True)
  assert len(config["layers"]) == len(lowered.nodes) == len(list(tmp_path.glob("out_layer*.txt")))
  for i, node in enumerate(lowered.nodes):
    got = np.loadtxt(tmp_path / f"out_layer{i}.txt", dtype=np.int64)
    np.testing.assert_array_equal(got, env[node.output][0].reshape(-1))  # channels last
  np.testing.assert_array_equal(np.loadtxt(tmp_path / "input.txt", dtype=np.int64), example.reshape(-1) & 0xFF)
  assert json.loads((tmp_path / "dory_config.json").read_text())["onnx_file"] == "network.onnx"


def test_kernel_library_is_pulp_nn_only_for_unsigned_8_bit_networks(tmp_path):
  rng = np.random.default_rng(3)
  b = GraphBuilder()
  x = b.input("x", (8, 8, 8), Quant(8, False, 0.02))
  h = b.conv("c", x, *_w(rng, (16, 3, 3, 8)), w_bits=8, padding=1, out=Quant(8, False, 0.05))
  h = b.maxpool("mp", h, 2)
  h = b.global_avgpool("gap", h, Quant(8, False, 0.05))
  y = b.linear("fc", h, *_w(rng, (4, 16)), w_bits=8, bias=rng.normal(size=4))
  assert choose_optional(to_dory_model(b.build([y]))[1]) == "8bit"
  assert choose_optional(to_dory_model(_resnet_like(rng))[1]) == "mixed-sw"  # signed input, adds


def _dory_missing() -> str | None:
  if not (DORY / "network_generate.py").is_file():
    return f"DORY not found at {DORY}"
  missing = [m for m in ("onnx", "ortools", "mako", "pandas") if importlib.util.find_spec(m) is None]
  return f"DORY's Python needs missing: {missing}" if missing else None


@pytest.mark.skipif(_dory_missing() is not None, reason=str(_dory_missing()))
def test_real_dory_compiles_a_small_residual_network(tmp_path):
  graph = _resnet_like(np.random.default_rng(2), length=32)
  config = write_dory_dir(graph, tmp_path / "dory")
  report = run_dory(tmp_path / "dory", tmp_path / "app", dory_dir=DORY, timeout=120)
  assert report["success"], report.get("error")
  assert report["optional"] == "mixed-sw" and report["n_layers"] == len(config["layers"])
  kinds = [layer["kernel"] for layer in report["layers"]]
  assert all(kinds), kinds
  assert "pulp_nn_conv_i8_u8_i8" in kinds and any(k.startswith("pulp_nn_add_") for k in kinds)
  assert any(k.startswith("pulp_nn_depthwise_") for k in kinds) and any("maxpool" in k for k in kinds)
  for layer in report["layers"]:
    assert len(layer["l1_tile"]["output"]) == 3 and layer["jaxbp_node"] in {n["name"] for n in config["layers"]}
