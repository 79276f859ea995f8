"""Whole network: a mixed-precision MobileNetV1-0.25 integer graph (random weights and images) exports to C
and both ONNX graphs and agrees with the interpreter bit for bit; all-8-bit integerization tracks float."""

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
  return cfg, M.mobilenet_v1_graph(cfg, M.calibration_images(cfg, 8, seed=0))


def test_mixed_precision_graph_structure(small):
  _, g = small
  assert len(g.nodes) == 29 and g.tensors["logits"].bits == 32
  bits = {n.name: n.attrs.get("w_bits") for n in g.nodes}
  assert bits["stem"] == 8 and bits["block6/pw"] == 2 and bits["block0/pw"] == 4
  assert g.tensors["block1/dw"].bits == 4 and g.node("block0/dw").attrs["groups"] == 8
  assert g.tensors["block12/pw"].shape == (1, 1, 256)


def test_mobilenet_bit_exact_in_c_and_onnx(small, tmp_path):
  _, g = small
  imgs = M.calibration_images(small[0], 3, seed=1)
  inputs = {"image": I.quantize(imgs, g.tensors["image"])}
  report = cross_check(g, inputs, c_dir=tmp_path)
  for backend in ("onnxruntime", "dory_onnx_eval", "c"):
    if "skipped" not in report[backend]:
      assert report[backend]["bit_exact"], (backend, report)


def test_all_8bit_integer_model_tracks_float():
  bits = {name: (8, 8) for name in M.MobileNetConfig().layer_names()}
  cfg = M.MobileNetConfig(resolution=32, n_classes=10, bits=bits)
  g = M.mobilenet_v1_graph(cfg, M.calibration_images(cfg, 8, seed=0))
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
  assert (tmp_path / "out" / "onnx" / "network_dory.onnx").is_file()
  assert (tmp_path / "out" / "c" / "network.c").is_file()
  with pytest.raises(SystemExit, match="neither graph.json"):
    export_tool.main([str(tmp_path / "out"), "--check", "0"])
  assert random_inputs(g, 3)["image"][0].min() == g.tensors["image"].range[1]
  assert export_graph(g, tmp_path / "conly", "c")["c"]["weight_bytes"] > 0
