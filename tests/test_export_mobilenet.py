"""Whole networks: mixed-precision MobileNetV1-0.25 and an 8-bit MobileNetV2 (residual adds) integer graphs (random
weights and images) export to C, both ONNX graphs and the DORY form and agree with the interpreter bit for bit;
all-8-bit integerization tracks float; the export tool writes MobileNets by version, width, resolution and bits."""

import json

import numpy as np
import pytest

from jaxbp import integerize as I
from jaxbp.export.bundle import cross_check, export_graph, random_inputs
from jaxbp.integerize import mobilenet as M
from tools import export as export_tool


@pytest.fixture(scope="module")
def small():
  cfg = M.MobileNetConfig(resolution=32, n_classes=10)
  return cfg, M.mobilenet_graph(cfg, M.calibration_images(cfg, 8, seed=0))


def test_mixed_precision_graph_structure(small):
  cfg, g = small
  assert len(g.nodes) == 29 and g.tensors["logits"].bits == 32
  assert [n.name for n in g.nodes] == cfg.layer_names()[:-1] + ["logits"]  # the model's layer names
  bits = {n.name: n.attrs.get("w_bits") for n in g.nodes}
  assert bits["conv0"] == 8 and bits["block7/pointwise"] == 2 and bits["block1/pointwise"] == 4
  assert g.tensors["block2/depthwise"].bits == 4 and g.node("block1/depthwise").attrs["groups"] == 8
  assert g.tensors["block13/pointwise"].shape == (1, 1, 256)


def test_mobilenet_bit_exact_in_c_and_onnx(small, tmp_path):
  _, g = small
  imgs = M.calibration_images(small[0], 3, seed=1)
  inputs = {"image": I.quantize(imgs, g.tensors["image"])}
  report = cross_check(g, inputs, c_dir=tmp_path)
  for backend in ("onnxruntime", "dory_onnx_eval", "dory_model_eval", "c"):
    if "skipped" not in report[backend]:
      assert report[backend]["bit_exact"], (backend, report)
  assert "skipped" not in report["dory_model_eval"]


def test_mobilenet_v2_has_residual_adds_and_is_bit_exact(tmp_path):
  cfg = M.MobileNetConfig(version="v2", width=0.35, resolution=32, n_classes=10, bits="8")
  g = M.mobilenet_graph(cfg, M.calibration_images(cfg, 4, seed=0))
  adds = [n for n in g.nodes if n.op == "add"]
  assert len(adds) == 10 and all(g.tensors[n.output].signed for n in adds)
  assert {n.inputs[1] for n in adds} <= {n.name for n in g.nodes}
  report = cross_check(g, {"image": I.quantize(M.calibration_images(cfg, 2, seed=1), g.tensors["image"])})
  for backend in ("onnxruntime", "dory_onnx_eval", "dory_model_eval"):
    assert report[backend]["bit_exact"], (backend, report)


def test_all_8bit_integer_model_tracks_float():
  cfg = M.MobileNetConfig(resolution=32, n_classes=10, bits="8")
  g = M.mobilenet_graph(cfg, M.calibration_images(cfg, 8, seed=0))
  test = M.calibration_images(cfg, 8, seed=1)
  logits = g.tensors["logits"].dequantize(I.run(g, I.quantize(test, g.tensors["image"]))["logits"])
  ref = M.float_logits(cfg, test)
  assert np.corrcoef(logits.ravel(), ref.ravel())[0, 1] > 0.99
  assert (logits.argmax(1) == ref.argmax(1)).mean() >= 0.75


def test_export_tool_round_trip(small, tmp_path):
  _, g = small
  I.save(g, tmp_path / "model")
  assert export_tool.main([str(tmp_path / "model"), "--format", "both", "--out", str(tmp_path / "out"),
                           "--check", "2"]) == 0
  summary = json.loads((tmp_path / "out" / "export.json").read_text())
  assert summary["check"]["onnxruntime"]["bit_exact"] and summary["check"]["examples"] == 2
  assert summary["check"]["dory_model_eval"]["bit_exact"] and summary["dory"]["layers"] == 29
  assert (tmp_path / "out" / "onnx" / "network_dory.onnx").is_file()
  assert (tmp_path / "out" / "c" / "network.c").is_file()
  assert (tmp_path / "out" / "dory" / "out_layer28.txt").is_file()
  with pytest.raises(SystemExit, match="neither graph.json"):
    export_tool.main([str(tmp_path / "out"), "--check", "0"])
  assert random_inputs(g, 3)["image"][0].min() == g.tensors["image"].range[1]
  assert export_graph(g, tmp_path / "conly", "c")["c"]["weight_bytes"] > 0


@pytest.mark.parametrize("argv,name,n_nodes", [
    (["--mobilenet", "v2", "--width-mult", "0.35", "--resolution", "32", "--bits", "8"], "mobilenet_v2", 64),
    (["--mobilenet", "32"], "mobilenet_v1", 29),  # the former usage: V1-0.25, mixed precision
])
def test_export_tool_writes_mobilenets(tmp_path, argv, name, n_nodes):
  assert export_tool.main([str(tmp_path / "m"), *argv, "--classes", "10"]) == 0
  g = I.load(tmp_path / "m")
  assert g.meta["model"] == name and len(g.nodes) == n_nodes and g.tensors["image"].shape == (32, 32, 3)
