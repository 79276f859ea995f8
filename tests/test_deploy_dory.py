"""The `dory` tiler policy against DORY's own PULP tiler (run from ../shared/dory on the same layers), DORY's
buffering in the cycle model, and the report / --compare-dory plumbing."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from functools import partial
from pathlib import Path

import pytest

from jaxbp.deploy import dory_compare, zoo
from jaxbp.deploy.dory_tiler import DoryTilingError, dory_node, dory_tilings
from jaxbp.deploy.layers import Layer, Network, with_layer_bits, with_uniform_bits
from jaxbp.deploy.platforms import GAP8, XPULPV2
from jaxbp.deploy.simulator import simulate
from jaxbp.deploy.tiler import check_tiles, plan_network

DORY = Path(__file__).resolve().parents[2] / "shared" / "dory"
ROOT = Path(__file__).resolve().parents[1]


class _DoryExit(Exception):
  pass


def _exit(code=0):
  raise _DoryExit(code)


@pytest.fixture(scope="module")
def dory_tiler():
  """DORY's own tiler: runs DORY's Layer_node / HW_node / Tiler_PULP on a jaxbp layer list, returns
  {layer: tiling_dimensions} (DORY's os._exit on failure becomes an exception)."""
  if not (DORY / "dory" / "Hardware_targets" / "PULP" / "Common" / "Tiler" / "tiler.py").is_file():
    pytest.skip(f"DORY sources not found at {DORY}")
  pytest.importorskip("ortools")
  sys.path.insert(0, str(DORY))
  try:
    from dory.Hardware_targets.PULP.Common.Tiler import tiler_add, tiler_conv2d, tiler_pool2d
    from dory.Hardware_targets.PULP.Common.Tiler.tiler import Tiler_PULP
    from dory.Parsers.HW_node import HW_node
    from dory.Parsers.Layer_node import Layer_node
  finally:
    sys.path.remove(str(DORY))
  for mod in (tiler_conv2d, tiler_pool2d, tiler_add):
    mod.os = type("os", (), {"_exit": staticmethod(_exit), "path": os.path})

  def run(layers: list[Layer], target: str = "GAP8", code_reserved: int = 132_000) -> dict:
    hw = json.loads((DORY / "dory" / "Hardware_targets" / "PULP" / target / "HW_description.json").read_text())
    acc = (layers[-1].name,) if layers[-1].op == "linear" else ()
    res, prev = {}, None
    for layer in layers:
      n = dory_node(layer, layer.name in acc)
      if n is None:
        continue
      ln = Layer_node()
      ln.name = n.kind
      ln.kernel_shape, ln.strides, ln.pads, ln.group, ln.dilations = list(n.ks), list(n.strides), list(n.pads), n.group, [1, 1]
      ln.input_channels, ln.output_channels = n.in_ch, n.out_ch
      ln.input_dimensions, ln.output_dimensions = list(n.in_dims), list(n.out_dims)
      ln.input_activation_bits, ln.output_activation_bits, ln.weight_bits = n.in_bits, n.out_bits, n.w_bits
      ln.second_input_activation_bits = n.in2_bits
      ln.bias_bits = ln.constant_bits = 32
      ln.constant_names = (["weights"] if n.weighted else []) + (["k", "l"] if n.n_constants else []) + (
          ["bias"] if n.has_bias else [])
      ln.add_memory_and_MACs()
      node = HW_node(ln, hw)
      node.Tiler = partial(Tiler_PULP, double_buffering=hw.get("double_buffering", 2))
      with contextlib.redirect_stdout(io.StringIO()):
        node.create_tiling_dimensions(prev if prev else node, {"code reserved space": code_reserved})
      prev = node
      res[layer.name] = node.tiling_dimensions
    return res

  return run


def mixed_bits(i: int, kind: str) -> tuple[int, int]:
  """(weight bits, output bits) of block i's layer: the mixed MobileNetV1 DORY was run on (dory-interop.md):
  8-bit depthwise weights with 8/4-bit outputs, 1x1 weights 4-bit (2-bit in blocks 5..10), outputs 4/8 bits."""
  if kind == "depthwise":
    return 8, 8 if i % 2 == 0 else 4
  return 2 if 5 <= i <= 10 else 4, 4 if i % 2 == 0 else 8


def mixed_mobilenet(width: float = 0.25, resolution: int = 128) -> Network:
  net = with_uniform_bits(zoo.mobilenet_v1(width, resolution), 8)
  cfg, prev = {}, 8
  for layer in net.layers:
    bw, bo = (8, 8) if not layer.name.startswith("block") else mixed_bits(int(layer.name.split("/")[0][5:]) - 1,
                                                                           layer.op)
    if layer.op == "pool":
      bw, bo = 8, prev
    cfg[layer.name] = {"bits_in": prev, "bits_w": bw, "bits_out": bo}
    prev = bo
  return with_layer_bits(net, cfg)


def _agreement(net: Network, platform, target: str, oracle) -> tuple[int, int, list[str]]:
  ours = dory_tilings(net, platform.dory)
  ref = oracle(list(net.layers), target)
  differ = [k for k, r in ref.items() if tuple(r["L1"]["output_dimensions"]) != ours[k].l1.output
            or tuple(r["L2"]["output_dimensions"]) != ours[k].l2.output]
  return len(ref) - len(differ), len(ref), differ


@pytest.mark.parametrize("net", [with_uniform_bits(zoo.mobilenet_v1(0.25, 128), 8), mixed_mobilenet(),
                                 with_uniform_bits(zoo.mobilenet_v1(1.0, 128), 8)], ids=["0.25-int8", "0.25-mixed", "1.0-int8"])
def test_dory_policy_reproduces_dorys_tiles_on_gap8(net, dory_tiler):
  same, n, differ = _agreement(net, GAP8, "GAP8", dory_tiler)
  assert n == 29 and same == n, differ


def test_dory_policy_on_the_double_buffered_target_and_sub_byte(dory_tiler):
  net = with_uniform_bits(zoo.mobilenet_v2(0.35, 96), 4)  # residual adds, 4-bit, DORY's PULP_gvsoc target (db = 2).
  same, n, differ = _agreement(net, XPULPV2, "PULP_gvsoc", dory_tiler)
  assert n > 50 and same == n, differ


def test_dory_policy_on_1d_networks(dory_tiler):
  net = with_uniform_bits(zoo.bp_seed("resnet1d", "ppgbp"), 8)  # 1-D convs (H = 1); grouped convs have no kernel.
  same, n, differ = _agreement(net, GAP8, "GAP8", dory_tiler)
  assert n == 22 and same == n, differ


def test_layers_dory_cannot_tile_fail_as_dory_does(dory_tiler):
  net = with_uniform_bits(zoo.mobilenet_v2(1.0, 224), 8)
  stop = next(i for i, l in enumerate(net.layers) if l.name == "block2/depthwise")
  with pytest.raises(_DoryExit):
    dory_tiler(list(net.layers[:stop + 1]))
  with pytest.raises(DoryTilingError, match="block2/depthwise"):
    dory_tilings(net.layers[:stop + 1], GAP8.dory)
  plan = plan_network(net, GAP8, "dory")  # the simulator flags it and keeps jaxbp's tile for the cycles.
  assert not plan.fits and any("block2/depthwise" in r for r in plan.reasons)


def test_dory_rules_visible_in_the_tiles():
  net = with_uniform_bits(zoo.mobilenet_v1(0.25, 128), 8)
  t = dory_tilings(net, GAP8.dory)
  for l in net.layers:
    d = t[l.name]
    if l.op == "depthwise" and l.in_shape[0] <= 32:  # full spatial extent on small maps, channels split only.
      assert d.l1.output[1:] == (l.out_shape[0], l.out_shape[1])
    if l.op in ("conv", "pointwise"):  # every input channel in L1.
      assert d.l1.input[0] == l.in_shape[2]
  assert sum(d.whole for d in t.values()) >= 15  # DORY keeps most of this small network whole in L1.


def test_buffering_is_a_platform_fact_in_the_cycle_model():
  net = with_uniform_bits(zoo.mobilenet_v1(0.25, 128), 8)
  plan = plan_network(net, GAP8, "dory")
  assert not plan.platform.double_buffer and GAP8.dory.double_buffering == 1
  for lp in plan.layers:  # blocking DMA: tile loop = compute + DMA + kernel calls.
    t = lp.l1.timing
    assert t.total == pytest.approx(t.compute + t.dma + t.calls)
    check_tiles(lp.layer, lp.l1)  # DORY's tiles cover every output once.
    assert lp.l1.policy == "dory" and lp.l1.loop_order == "channels_outer" and lp.l1.fits
  assert XPULPV2.dory.double_buffering == 2 and plan_network(net, XPULPV2, "dory").platform.double_buffer
  jx = plan_network(net, GAP8)  # jaxbp's policy (the tiled C path) is unchanged: double-buffered.
  assert jx.platform.double_buffer and any(lp.l1.double_buffered for lp in jx.layers)


def test_report_names_kernels_and_compare_dory_reads_a_run(tmp_path):
  net = mixed_mobilenet()
  rep = simulate(net, GAP8)
  kernels = {l.name: l.kernel for l in rep.layers}
  assert kernels["block1/pointwise"].startswith("pulp_nn_conv_u") and kernels["fc"].startswith("pulp_nn_linear_")
  assert "kernel" in rep.table() and "single-buffered" in rep.table()
  t = dory_tilings(net, GAP8.dory)
  graph = {"graph": [{"name": "BNReluConvolution", "Tiling_parameters": {"L1": {"output_dimensions": list(d.l1.output)},
                                                                          "L2": {"output_dimensions": list(d.l2.output)}}}
                     for d in t.values() if d is not None]}
  graph["graph"][3]["Tiling_parameters"]["L1"]["output_dimensions"] = [1, 1, 1]
  f = tmp_path / "logs" / "HW_related" / "json_files" / "06_DORY_HW_tiled_graph.json"
  f.parent.mkdir(parents=True)
  f.write_text(json.dumps(graph))
  rows = dory_compare.compare(rep, dory_compare.read_dory_run(tmp_path), dory_compare.dory_layers(net))
  assert [r.same for r in rows].count(False) == 1 and not rows[3].same
  with pytest.raises(ValueError, match="no DORY run"):
    dory_compare.read_dory_run(tmp_path / "nothing")


def test_cli_tiler_and_compare_dory(tmp_path, capsys):
  import importlib.util
  spec = importlib.util.spec_from_file_location("deploy_cli_dory", ROOT / "tools" / "deploy.py")
  cli = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(cli)
  cmd = ["simulate", "--model", "mobilenet_v1", "--width-mult", "0.25", "--resolution", "128", "--platform", "gap8"]
  assert cli.main(cmd + ["--json", "--tiler", "jaxbp"]) == 0
  assert json.loads(capsys.readouterr().out)["tiler"] == "jaxbp"
  assert cli.main(cmd + ["--compare-dory", str(tmp_path)]) == 2
  assert "no DORY run" in capsys.readouterr().err


@pytest.mark.slow  # exports MobileNetV1-0.25-128 and runs the DORY compiler (about 2 minutes on 2 loaded cores)
def test_tiles_equal_dorys_generated_code(tmp_path, capsys):
  """End to end: jaxbp's DORY export through DORY's network_generate.py, then --compare-dory on its report."""
  import importlib.util
  import subprocess
  if not (DORY / "network_generate.py").is_file():
    pytest.skip(f"DORY not found at {DORY}")
  pytest.importorskip("onnx")
  out = tmp_path / "mb"
  export = [sys.executable, str(ROOT / "tools" / "export.py"), str(out)]
  subprocess.run(export + ["--mobilenet", "v1", "--width-mult", "0.25", "--resolution", "128", "--bits", "8"],
                 check=True, capture_output=True)
  done = subprocess.run(export + ["--format", "dory", "--out", str(out / "export"), "--check", "0", "--dory-app"],
                        capture_output=True, text=True, check=False)
  report = out / "export" / "dory" / "dory_report.json"
  assert report.is_file() and json.loads(report.read_text())["success"], done.stdout[-2000:] + done.stderr[-2000:]
  spec = importlib.util.spec_from_file_location("deploy_cli_dory_e2e", ROOT / "tools" / "deploy.py")
  cli = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(cli)
  assert cli.main(["simulate", "--model", "mobilenet_v1", "--width-mult", "0.25", "--resolution", "128", "--platform",
                   "gap8", "--json", "--compare-dory", str(report.parent)]) == 0
  cmp = json.loads(capsys.readouterr().out)["compare_dory"]
  assert cmp["layers"] == 29 and cmp["same"] == 29, [r for r in cmp["rows"] if not r["same"]]
  assert all(r["dory_kernel"] for r in cmp["rows"])


def _pool_net(mode: str, h: int, c: int, after_l3_conv: bool) -> list[Layer]:
  """A pool too large for L2 (DORY tiles its rows from L3), alone after a small conv or after an L3-tiled conv."""
  hc = h if after_l3_conv else 8
  conv = Layer("conv", "conv", ("input",), (hc, hc, 8), (hc, hc, c), kernel=(3, 3), padding=(1, 1, 1, 1))
  pin = (hc, hc, c) if after_l3_conv else (h, h, c)
  pool = Layer("pool", "pool", ("conv",) if after_l3_conv else ("input",), pin, (pin[0] // 2, pin[1] // 2, c),
               kernel=(2, 2), stride=(2, 2), mode=mode)
  return [conv, pool] if after_l3_conv else [pool]


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("after_l3_conv", [False, True])
def test_pool_l3_row_tiling_matches_dory(dory_tiler, mode, after_l3_conv):
  # 100x100x32 input in L2 (320 kB) + output > 380 kB: output rows tiled; after an L3-tiled conv: input rows too.
  layers = _pool_net(mode, 160 if after_l3_conv else 100, 32, after_l3_conv)
  if not after_l3_conv:  # DORY reads a first layer's "previous" tiling from itself: give it a small conv first.
    layers = [Layer("c0", "conv", ("input",), (4, 4, 8), (4, 4, 8), kernel=(1, 1))] + layers
  ref = dory_tiler(layers)
  ours = dory_tilings(layers, GAP8.dory)
  pool = ours["pool"]
  assert (pool.l2.output, pool.l2.input) != (pool.l3.output, pool.l3.input)  # row-tiled between L3 and L2.
  for name, r in ref.items():
    assert tuple(r["L2"]["output_dimensions"]) == ours[name].l2.output, name
    assert tuple(r["L2"]["input_dimensions"]) == ours[name].l2.input, name
    assert tuple(r["L1"]["output_dimensions"]) == ours[name].l1.output, name


def test_pool_whose_input_does_not_fit_l2_fails_as_dory_does(dory_tiler):
  layers = [Layer("c0", "conv", ("input",), (4, 4, 8), (4, 4, 8), kernel=(1, 1))] + _pool_net("max", 160, 32, False)
  with pytest.raises(_DoryExit):
    dory_tiler(layers)
  with pytest.raises(DoryTilingError, match="no L3->L2 pooling tile"):
    dory_tilings(layers, GAP8.dory)
