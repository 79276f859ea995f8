"""Deployment layer graph and model zoo: validation, bit assignment, MACs against known counts."""

import json

import pytest

from jaxbp import cost, models
from jaxbp.deploy import zoo
from jaxbp.deploy.layers import (Layer, Network, load_network, network_from_dict, tensor_bytes, with_layer_bits,
                                 with_uniform_bits)


def test_tensor_bytes_pads_pixels_to_whole_bytes():
  assert tensor_bytes((2, 3, 8), 8) == 48
  assert tensor_bytes((2, 3, 8), 4) == 24
  assert tensor_bytes((1, 5, 3), 4) == 5 * 2  # 3 nibbles -> 2 bytes per pixel.
  assert tensor_bytes((1, 5, 3), 2) == 5


def test_layer_validation_names_layer_and_field():
  with pytest.raises(ValueError, match=r"layer 'c'.*output H, W must be \(6, 6\)"):
    Layer("c", "conv", ("input",), (8, 8, 4), (8, 8, 4), kernel=(3, 3))
  with pytest.raises(ValueError, match="layer 'c'.*bits_w must be one of"):
    Layer("c", "conv", ("input",), (8, 8, 4), (8, 8, 4), bits_w=3)
  with pytest.raises(ValueError, match="depthwise needs groups == channels"):
    Layer("d", "depthwise", ("input",), (8, 8, 4), (8, 8, 4))
  with pytest.raises(ValueError, match="expects 2 inputs"):
    Layer("a", "add", ("input",), (8, 8, 4), (8, 8, 4))
  with pytest.raises(ValueError, match="unknown op"):
    Layer("x", "matmul", ("input",), (8, 8, 4), (8, 8, 4))


def test_network_checks_producers_shapes_and_bits():
  conv = Layer("c", "conv", ("input",), (8, 8, 4), (8, 8, 8), kernel=(3, 3), padding=(1, 1, 1, 1))
  with pytest.raises(ValueError, match="reads 'nope'"):
    Network("n", (8, 8, 4), (Layer("c", "conv", ("nope",), (8, 8, 4), (8, 8, 4)),))
  with pytest.raises(ValueError, match=r"expects 'c' as \(8, 8, 8\) at 4 bit"):
    Network("n", (8, 8, 4), (conv, Layer("p", "pointwise", ("c",), (8, 8, 8), (8, 8, 8), bits_in=4)))
  with pytest.raises(ValueError, match="duplicate layer name"):
    Network("n", (8, 8, 4), (conv, conv))


def test_uniform_bits_keeps_input_and_residual_adds_at_8():
  net = with_uniform_bits(zoo.mobilenet_v2(0.35, 96), 4)
  assert net.layers[0].bits_in == 8 and net.layers[0].bits_w == 4 and net.layers[0].bits_out == 4
  adds = [l for l in net.layers if l.op == "add"]
  assert adds and all(l.bits_out == 8 and l.bits_in == 4 for l in adds)
  after_add = [l for l in net.layers if l.inputs[0] in {a.name for a in adds}]
  assert after_add and all(l.bits_in == 8 for l in after_add)
  assert {l.bits_w for l in net.layers if l.weighted} == {4}


def test_layer_bits_config_sets_producer_outputs_and_rejects_conflicts():
  net = with_uniform_bits(zoo.mobilenet_v1(0.25, 64), 8)
  mixed = with_layer_bits(net, {"block1/pointwise": [4, 2], "conv0": {"bits_w": 2}})
  assert mixed.layer("block1/depthwise").bits_out == 4
  assert mixed.layer("block1/pointwise").bits_in == 4 and mixed.layer("block1/pointwise").bits_w == 2
  assert mixed.layer("conv0").bits_w == 2
  first = with_layer_bits(net, {"conv0": [4, 8]})
  assert first.input_bits == 4 and first.layers[0].bits_in == 4
  with pytest.raises(ValueError, match="unknown layers"):
    with_layer_bits(net, {"nope": [8, 8]})
  with pytest.raises(ValueError, match="bits_w must be one of"):
    with_layer_bits(net, {"conv0": [8, 3]})
  res = with_uniform_bits(zoo.bp_seed("resnet1d", "ppgbp"), 8)  # block1's input feeds bn1 and the identity pool.
  with pytest.raises(ValueError, match="ask for 4 and 8 input bits"):
    with_layer_bits(res, {"block1/bn1": [4, 8], "block1/skip_pool": [8, 8]})


def test_mobilenet_macs_match_published_counts():
  assert zoo.mobilenet_v1(1.0, 224).macs == 568_740_352  # ~569 M (MobileNetV1 paper).
  assert zoo.mobilenet_v1(1.0, 128).macs == 186_400_768
  assert zoo.mobilenet_v1(0.75, 224).macs == 325_400_448
  assert zoo.mobilenet_v2(1.0, 224).macs == 300_774_272  # ~300 M (MobileNetV2 paper).
  n = zoo.mobilenet_v1(1.0, 224)
  bn_channels = sum(l.out_shape[2] for l in n.layers if l.op in ("conv", "depthwise", "pointwise"))
  # Keras' 4,231,976 trainable parameters = conv/FC weights + FC bias + BN gamma/beta.
  assert sum(l.n_weights for l in n.layers) + 1000 + 2 * bn_channels == 4_231_976


@pytest.mark.parametrize("model,dataset", [("resnet1d", "ppgbp"), ("unet1d", "uci")])
def test_bp_seed_graph_macs_equal_the_traced_model(model, dataset):
  from jaxbp.data.specs import get_spec
  cfg = models.seed_config(model, dataset)
  exact = cost.exact_counts(cost.trace(models.build(cfg), get_spec(dataset).window))
  assert zoo.bp_seed(model, dataset).macs == exact["macs"]


def test_candidate_with_dw_and_id_ops():
  cfg = models.seed_config("resnet1d", "ppgbp")
  ops = ["dw", "id", "dw", "conv", "conv", "dw", "id", "conv", "dw"]
  cand = models.ResNet1dConfig(**{**cfg.__dict__, "ops": tuple(ops)})
  net = zoo.from_config(cand, 262)
  names = {l.name for l in net.layers}
  assert "stem_conv/depthwise" in names and "stem_conv/pointwise" in names
  assert "block0/conv1" not in names and "block0/conv1/depthwise" not in names
  assert "block0/bn2" in names and "block2/bn2" not in names  # bn2 + ReLU stand alone after an identity conv1.
  assert net.macs == cost.exact_counts(cost.trace(models.build(cand), 262))["macs"]


def test_load_candidate_from_config_json_and_sweep_folder(tmp_path):
  d = {**models.config_to_dict(models.seed_config("resnet1d", "ppgbp")), "dataset": "ppgbp"}
  (tmp_path / "c.json").write_text(json.dumps(d))
  assert zoo.load_candidate(tmp_path / "c.json").macs == zoo.bp_seed("resnet1d", "ppgbp").macs
  sweep = tmp_path / "sweep"
  (sweep / "candidates").mkdir(parents=True)
  (sweep / "results.json").write_text(json.dumps({"dataset": "ppgbp", "seed_model": models.config_to_dict(
      models.seed_config("resnet1d", "ppgbp"))}))
  names = list(models.seed_config("resnet1d", "ppgbp").slot_specs())
  (sweep / "candidates" / "candidate_00.json").write_text(json.dumps(
      {"per_rotation": [{"rotation": 0, "ops": {n: "conv" for n in names}}]}))
  net = zoo.load_candidate(sweep / "candidates" / "candidate_00.json")
  assert net.macs == zoo.bp_seed("resnet1d", "ppgbp").macs
  with pytest.raises(ValueError, match="no rotation 3"):
    zoo.load_candidate(sweep / "candidates" / "candidate_00.json", rotation=3)
  (tmp_path / "bad.json").write_text("{}")
  with pytest.raises(ValueError, match="neither a model config"):
    zoo.load_candidate(tmp_path / "bad.json")


def test_network_json_round_trip(tmp_path):
  net = with_uniform_bits(zoo.bp_seed("resnet1d", "ppgbp"), 4)
  net.save(tmp_path / "n.json")
  assert load_network(tmp_path / "n.json") == net
  bad = net.to_dict()
  bad["layers"][0]["colour"] = 1
  with pytest.raises(ValueError, match="unknown fields"):
    network_from_dict(bad)


def test_layer_names_are_those_of_the_quantized_graph():
  """Per-layer latency tables key `jaxbp.cost.bits` costs by the quantized graph's layer names."""
  graph_resnet1d = pytest.importorskip("jaxbp.quant.graph_resnet1d", reason="jaxbp.quant is not available")
  graph_unet1d = pytest.importorskip("jaxbp.quant.graph_unet1d", reason="jaxbp.quant is not available")
  cfg = models.seed_config("resnet1d", "ppgbp")
  cand = models.ResNet1dConfig(**{**cfg.__dict__, "ops": ("dw", "id", "dw", "conv", "conv", "dw", "id", "conv", "dw")})
  for c, window, build in ((cand, 262, graph_resnet1d.resnet1d_graph),
                           (models.seed_config("unet1d", "uci"), 625, graph_unet1d.unet1d_graph)):
    nodes = build(c).nodes
    net = zoo.from_config(c, window)
    assert {l.name for l in net.layers if l.weighted} == {n.name for n in nodes if n.op in ("conv", "dense")}
    assert {l.name for l in net.layers} <= {n.name for n in nodes}
