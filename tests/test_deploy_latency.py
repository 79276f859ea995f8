"""Latency dictionaries (Free Bits profiling, NAS cost tables) and the tools/deploy.py CLI."""

import csv
import importlib.util
import json
from pathlib import Path

import jax.numpy as jnp
import pytest

from jaxbp import cost
from jaxbp.deploy import zoo
from jaxbp.deploy.latency_table import ALL_PAIRS, layer_type, load_latency_dict, profile, slot_latency_cost, slot_table
from jaxbp.deploy.layers import with_uniform_bits
from jaxbp.deploy.platforms import GAP8, XPULPNN_V1
from jaxbp.deploy.simulator import simulate
from jaxbp.freebits import free_bits
from tests.conftest import TINY_RESNET

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_net():
  return zoo.from_config(TINY_RESNET, 64, "tiny")


def test_profile_covers_every_layer_and_pair_and_round_trips(tiny_net, tmp_path):
  ld = profile(tiny_net, XPULPNN_V1)
  per = ld.per_layer()
  assert set(per) == {(l.name, a, w) for l in tiny_net.layers for a, w in ALL_PAIRS}
  assert len(ld.types) < len(tiny_net.layers)  # equal layer types are profiled once (e.g. SE fc layers).
  conv = "block0/conv1"
  assert ld.per_layer("ms")[(conv, 8, 8)] == pytest.approx(per[(conv, 8, 8)] / (XPULPNN_V1.freq_mhz * 1e3))
  ld.save_json(tmp_path / "ld.json")
  ld.save_csv(tmp_path / "ld.csv")
  assert load_latency_dict(tmp_path / "ld.json").per_layer() == per
  with open(tmp_path / "ld.csv") as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == len(per) and {r["layer"] for r in rows} == {l.name for l in tiny_net.layers}
  with pytest.raises(KeyError, match="no entry for layer 'nope'"):
    ld.cycles("nope", 8, 8)


def test_latency_is_not_monotone_in_bits_on_xpulpnn_v1():
  net = zoo.bp_seed("resnet1d", "ppgbp")
  per = profile(net, XPULPNN_V1, pairs=[(8, 8), (4, 4), (8, 4)]).per_layer()
  conv = "block2/conv2"  # 64 channels, kernel 5: compute matters.
  assert per[(conv, 4, 4)] < per[(conv, 8, 8)]  # sub-byte SIMD.
  assert per[(conv, 8, 4)] > per[(conv, 8, 8)]  # mismatched widths: software unpack -- more bits are faster.
  assert free_bits({conv: (8, 4)}, per).config[conv] == (8, 8)


def test_profile_matches_the_simulated_layer_in_isolation(tiny_net):
  ld = profile(tiny_net, GAP8, pairs=[(8, 8)], bits_out=8)
  net8 = with_uniform_bits(tiny_net, 8)
  r = simulate(net8, GAP8)  # L2-only network: each layer costs what it costs alone.
  assert not r.uses_l3
  for l in r.layers:
    assert ld.cycles(l.name, 8, 8) == pytest.approx(l.cycles)


def test_layer_type_key_ignores_names_and_bits():
  net = with_uniform_bits(zoo.mobilenet_v1(0.25, 128), 8)
  keys = [layer_type(l).key for l in net.layers]
  assert keys.count(layer_type(net.layer("block7/pointwise")).key) == 5  # blocks 7..11 are identical.
  assert layer_type(with_uniform_bits(net, 4).layer("conv0")).key == keys[0]


def test_slot_table_feeds_the_expected_latency_cost():
  from jaxbp.nas.supernet import supernet
  shapes = cost.trace(supernet(TINY_RESNET), 64)
  table = slot_table(shapes, GAP8)
  assert set(table) == {(l.name, op) for l in shapes.layers for op in l.ops}
  assert all(v == 0 for (n, op), v in table.items() if op == "id") and all(
      v > 0 for (n, op), v in table.items() if op != "id")
  choice = {l.name: "conv" for l in shapes.layers}
  arch = cost.one_hot_arch(shapes, choice)
  c = slot_latency_cost(shapes, GAP8, unit="cycles")
  assert float(c(arch, shapes)) == pytest.approx(sum(table[(n, "conv")] for n in choice), rel=1e-5)
  # The conv slots of the plain network cost what the simulator says for its conv layers.
  plain = simulate(with_uniform_bits(zoo.from_config(TINY_RESNET, 64), 8), GAP8)
  by_name = {l.name: l.cycles for l in plain.layers}
  assert table[("block0/conv1", "conv")] == pytest.approx(by_name["block0/conv1"])
  assert jnp.isfinite(c(arch, shapes))


def test_free_bits_on_a_profiled_dictionary(tiny_net):
  per = profile(tiny_net, XPULPNN_V1).per_layer()
  config = {l.name: (8, 4) for l in tiny_net.layers}
  res = free_bits(config, per)
  assert res.latency_after <= res.latency_before
  assert res.config["block0/conv1"][1] >= 4
  assert all(res.config[n][0] >= 8 and res.config[n][1] >= 4 for n in config)


def _cli():
  spec = importlib.util.spec_from_file_location("deploy_cli", ROOT / "tools" / "deploy.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def test_cli_simulate_json_and_latency_table(tmp_path, capsys):
  cli = _cli()
  assert cli.main(["simulate", "--model", "resnet1d", "--dataset", "ppgbp", "--platform", "gap8", "--json"]) == 0
  d = json.loads(capsys.readouterr().out)
  assert d["model"] == "resnet1d_ppgbp" and d["fits"] and d["freq_mhz"] == 100.0
  assert cli.main(["simulate", "--model", "resnet1d", "--dataset", "bcg", "--platform", "gap8", "--no-l3",
                   "--json"]) == 0
  out = capsys.readouterr()
  assert json.loads(out.out)["fits"] is False and "does not fit" in out.err
  cfg = tmp_path / "bits.json"
  cfg.write_text(json.dumps({"stem_conv": [8, 4], "block0/conv1": [4, 2]}))
  assert cli.main(["simulate", "--model", "resnet1d", "--platform", "xpulpnn-v2", "--config", str(cfg), "--json",
                   "--freq-mhz", "50", "--set", "kernel.kernel_call_cycles=100"]) == 0
  d = json.loads(capsys.readouterr().out)
  layers = {l["name"]: l for l in d["layers"]}
  assert d["freq_mhz"] == 50 and layers["block0/conv1"]["bits_in"] == 4 and layers["block0/conv1"]["bits_w"] == 2
  assert cli.main(["simulate", "--model", "nope", "--platform", "gap8"]) == 2
  out_dir = tmp_path / "ld"
  assert cli.main(["latency-table", "--model", "mobilenet_v1", "--width-mult", "0.25", "--resolution", "64",
                   "--platform", "xpulpnn-v2", "--pairs", "8,8", "4,4", "--out", str(out_dir)]) == 0
  assert json.loads(capsys.readouterr().out)["files"] == ["latency.json", "latency.csv", "per_layer.json"]
  assert {p.name for p in out_dir.iterdir()} == {"latency.json", "latency.csv", "per_layer.json"}
  rows = json.loads((out_dir / "per_layer.json").read_text())
  assert {(r["b_in"], r["b_w"]) for r in rows} == {(8, 8), (4, 4)}
  assert cli.main(["free-bits", "--model", "mobilenet_v1", "--width-mult", "0.25", "--resolution", "64",
                   "--platform", "xpulpnn-v2", "--latency", str(out_dir / "latency.json"), "--start", "4,4"]) == 0
  d = json.loads(capsys.readouterr().out)
  assert d["latency_after_ms"] <= d["latency_before_ms"]
  assert all(tuple(v) in ((4, 4), (8, 8)) for v in d["config"].values())
