"""Tiled C target path (host build): tile loops + memcpy DMA reproduce the integer interpreter bit-exactly.

Small L1 budgets force many tiles, channel tiling and single/double buffering; a small L2 forces weights to
stream from L3.
"""

import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxbp import integerize as I
from jaxbp.deploy import get_platform
from jaxbp.deploy.tiler import check_tiles, tiles
from jaxbp.export.c import tiled
from jaxbp.export.c.to_deploy import to_network
from jaxbp.integerize.builder import GraphBuilder, Quant

HAVE_GCC = shutil.which("gcc") is not None
needs_gcc = pytest.mark.skipif(not HAVE_GCC, reason="gcc not found on PATH: the tiled host build cannot be compiled")
BITS = st.sampled_from([2, 4, 8])
L1_RESERVED = 3_500 + 7 * 3_400 + 1_536  # gap8 stacks + runtime: l1_bytes beyond this is the tile area.


def _platform(tile_area: int, **kw):
  return get_platform("gap8", l1_bytes=L1_RESERVED + tile_area, **kw)


def _out(draw, mag: float) -> Quant:
  bits, signed = draw(BITS), draw(st.booleans())
  return Quant(bits, signed, max(mag, 1e-9) * 2.0 ** draw(st.floats(-1, 1.5)) / 2 ** (bits - signed))


@st.composite
def layer_graph(draw):
  """A one-input graph with one random conv/depthwise/pointwise/linear/add layer (add: x + pointwise(x))."""
  kind = draw(st.sampled_from(["conv", "depthwise", "pointwise", "linear", "add"]))
  rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
  b = GraphBuilder()
  b_in, s_in, b_w = draw(BITS), draw(st.booleans()), draw(BITS)
  q = Quant(b_in, s_in, 2.0 ** draw(st.floats(-5, 0)))
  mag = q.scale * 2 ** (b_in - 1)
  if kind == "linear":
    cin, cout = draw(st.sampled_from([8, 16, 24])), draw(st.sampled_from([4, 8, 12, 16]))
    x = b.input("x", (cin,), q)
    w, sw = I.quantize_weight(rng.normal(size=(cout, cin)), b_w)
    y = b.linear(kind, x, w, sw, w_bits=b_w, bias=rng.normal(size=cout) * mag, out=_out(draw, mag * sw.mean() * 8))
    return b.build([y])
  nd = draw(st.sampled_from([1, 2]))
  groups = draw(st.sampled_from([1, 2])) if kind == "conv" else 1
  c = draw(st.sampled_from([8, 16] if groups == 2 else [4, 8, 12, 16]))  # packed weights: Cin/g * bits % 8 == 0
  cout, k = draw(st.sampled_from([4, 8, 16])), (1,) * nd
  if kind == "conv":
    k = tuple(draw(st.integers(1, 3)) for _ in range(nd))
  elif kind == "depthwise":
    groups = cout = c
    k = tuple(draw(st.integers(2, 3)) for _ in range(nd))
  elif kind == "add":
    cout = c
  stride = tuple(draw(st.integers(1, 2)) for _ in range(nd))
  pads = [(draw(st.integers(0, 1)), draw(st.integers(0, 1))) for _ in range(nd)]
  if kind in ("pointwise", "add"):
    stride, pads = (1,) * nd, [(0, 0)] * nd
  # Every window needs at least one output: extent + padding >= kernel.
  spatial = tuple(draw(st.integers(max(2, ki - lo - hi), 12)) for ki, (lo, hi) in zip(k, pads))
  x = b.input("x", spatial + (c,), q)
  w, sw = I.quantize_weight(rng.normal(size=(cout, *k, c // groups)), b_w)
  out = _out(draw, mag * sw.mean() * 4) if kind != "add" else Quant(q.bits, q.signed, q.scale * 2)
  y = b.conv(kind, x, w, sw, w_bits=b_w, bias=rng.normal(size=cout) * mag if draw(st.booleans()) else None,
             stride=stride, padding=pads, groups=groups, out=out)
  if kind == "add":
    y = b.add("residual", x, y, _out(draw, 2 * mag))
  return b.build([y])


def _feeds(graph, seed: int, n: int = 3) -> np.ndarray:
  spec = graph.tensors[graph.inputs[0]]
  lo, hi = spec.range
  x = np.random.default_rng(seed).integers(lo, hi + 1, (n,) + spec.shape)
  x[0], x[1] = hi, lo
  return x


def _check(graph, platform, tmp_path, seed=0):
  x = _feeds(graph, seed)
  ref = I.run(graph, x)
  got = tiled.run_tiled(graph, platform, x, tmp_path)
  for name, r in ref.items():
    np.testing.assert_array_equal(got[name], r, err_msg=f"output {name!r}")


@needs_gcc
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(graph=layer_graph(), tile_area=st.sampled_from([256, 600, 2_000, 36_700]), seed=st.integers(0, 99))
def test_random_layer_bit_exact(graph, tile_area, seed, tmp_path_factory):
  p = _platform(tile_area)
  plan = tiled.plan_for(graph, p)
  if not plan.fits:  # the smallest tile of this layer needs more L1 than drawn: say so, do not export.
    with pytest.raises(ValueError, match="does not fit"):
      tiled.emit_tiled(graph, p, tmp_path_factory.mktemp("nofit"))
    return
  for lp in plan.layers:
    check_tiles(lp.layer, lp.l1)
  _check(graph, p, tmp_path_factory.mktemp("tiled"), seed)


def test_slice_geometry_cuts_hwc_tiles_in_whole_bytes():
  full = (4, 6, 16)  # 2-bit: 4 B per pixel, 24 B per row.
  assert tiled.slice_geometry(full, (1, 0, 0), (2, 6, 16), 2) == (1, 1, 48, 48, 48)
  assert tiled.slice_geometry(full, (1, 2, 0), (2, 3, 16), 2) == (1, 2, 12, 24, 48)
  assert tiled.slice_geometry(full, (1, 0, 4), (2, 6, 8), 2) == (1, 12, 2, 4, 48)
  assert tiled.slice_geometry(full, (1, 2, 4), (1, 3, 8), 2) == (1, 3, 2, 4, 24)
  # Part of the channels of part of several rows: one plane per row (a single pixel-strided 2-D transfer
  # would run into the next pixels of the first row).
  assert tiled.slice_geometry(full, (1, 2, 4), (3, 3, 8), 2) == (3, 3, 2, 4, 24)
  with pytest.raises(ValueError, match="byte boundaries"):
    tiled.slice_geometry(full, (0, 0, 2), (1, 6, 4), 2)


def _depthwise_2bit():
  """Regression (2-bit depthwise mismatch): shrunk from the property test. On a 256 B tile area the input
  tiles (3, 3, 4) of the (3, 4, 12) input cut channels, columns and rows at once -- a 3-D slice."""
  rng = np.random.default_rng(0)
  b = GraphBuilder()
  x = b.input("x", (3, 4, 12), Quant(2, False, 1.0))
  w, sw = I.quantize_weight(rng.normal(size=(12, 2, 3, 1)), 2)
  y = b.conv("dw", x, w, sw, w_bits=2, stride=(1, 2), padding="VALID", groups=12, out=Quant(2, False, 3.0))
  return b.build([y])


@needs_gcc
def test_2bit_depthwise_3d_input_tiles(tmp_path):
  graph, p = _depthwise_2bit(), _platform(256)
  lp = tiled.plan_for(graph, p).layers[0]
  _, w, c = lp.layer.in_shape
  assert any(1 < t.in_size[0] and t.in_size[1] < w and t.in_size[2] < c for t in tiles(lp.layer, lp.l1))
  _check(graph, p, tmp_path)


@needs_gcc
def test_add_with_2bit_residual_tiles_channels_in_whole_bytes(tmp_path):
  """Regression: the channel granule of an add ignored its second input (8-bit x + 2-bit residual -> tiles
  of 3 or 6 channels, part of a byte into the packed residual pixels)."""
  rng = np.random.default_rng(0)
  b = GraphBuilder()
  x = b.input("x", (3, 5, 12), Quant(8, False, 0.1))
  w, sw = I.quantize_weight(rng.normal(size=(12, 1, 1, 12)), 8)
  r = b.conv("pw", x, w, sw, w_bits=8, out=Quant(2, False, 0.2))
  graph = b.build([b.add("add", x, r, Quant(8, False, 0.3))])
  p = _platform(240)  # the old granule gave tiles of 3 channels here.
  assert tiled.plan_for(graph, p).layers[1].l1.tile[2] % 4 == 0
  _check(graph, p, tmp_path)


def _chain(rng, b_w=8):
  """A 1-D conv -> depthwise -> pointwise + residual add -> pool -> linear chain (one input)."""
  b = GraphBuilder()
  x = b.input("x", (40, 8), Quant(8, True, 0.05))
  w, sw = I.quantize_weight(rng.normal(size=(16, 5, 8)), b_w)
  y = b.conv("c1", x, w, sw, w_bits=b_w, padding=2, out=Quant(8, False, 0.05), bias=rng.normal(size=16))
  w, sw = I.quantize_weight(rng.normal(size=(16, 3, 1)), 8)
  y = b.conv("dw", y, w, sw, w_bits=8, stride=2, padding=1, groups=16, out=Quant(4, False, 0.1))
  w, sw = I.quantize_weight(rng.normal(size=(16, 1, 16)), b_w)
  z = b.conv("pw", y, w, sw, w_bits=b_w, out=Quant(8, True, 0.1))
  w, sw = I.quantize_weight(rng.normal(size=(16, 1, 16)), 4)
  r = b.conv("skip", y, w, sw, w_bits=4, out=Quant(8, True, 0.1))
  s = b.add("add", z, r, Quant(8, True, 0.2))
  g = b.global_avgpool("gap", s, Quant(8, True, 0.1))
  w, sw = I.quantize_weight(rng.normal(size=(3, 16)), 8)
  return b.build([b.linear("fc", g, w, sw, w_bits=8), s])


@needs_gcc
def test_chain_tiles_and_falls_back(tmp_path):
  graph = _chain(np.random.default_rng(1))
  p = _platform(1500)
  res = tiled.emit_tiled(graph, p, tmp_path / "emit")
  assert res.tiled == ("c1", "dw", "pw", "skip", "add")
  assert res.fallback == ("gap", "fc")  # global pool, int32-output linear: untiled reference kernels.
  assert res.n_tiles > len(res.tiled)
  assert any(lp.l1.double_buffered for lp in res.plan.layers)
  _check(graph, p, tmp_path / "run")


@needs_gcc
def test_weights_streamed_from_l3(tmp_path):
  graph = _chain(np.random.default_rng(2))
  # L2 data area of 2.7 kB: activations fit, the conv weights do not -> they stream L3 -> L2 -> L1.
  p = _platform(1500, l2_bytes=131_072 + 2_700)
  plan = tiled.plan_for(graph, p)
  assert plan.fits and plan.memory.weights_l3 and not plan.memory.tensors_l3
  _check(graph, p, tmp_path)


def test_to_network_names_and_kinds():
  net = to_network(_chain(np.random.default_rng(0)))
  assert [l.name for l in net.layers] == ["c1", "dw", "pw", "skip", "add", "gap", "fc"]
  assert [l.op for l in net.layers] == ["conv", "depthwise", "pointwise", "pointwise", "add", "pool", "linear"]
  assert net.layer("dw").in_shape == (1, 40, 16) and net.layer("dw").bits_out == 4


def test_plan_that_does_not_fit_is_an_error(tmp_path):
  with pytest.raises(ValueError, match="does not fit"):
    tiled.emit_tiled(_chain(np.random.default_rng(0)), _platform(64), tmp_path)


def test_target_backend_uses_pmsis_dma(tmp_path):
  tiled.emit_tiled(_chain(np.random.default_rng(0)), _platform(1500), tmp_path)
  dma = (tmp_path / "dma.h").read_text()
  for call in ("pi_cl_dma_cmd_2d", "pi_cl_dma_cmd(", "pi_cl_dma_wait", "pi_ram_read", "JAXBP_TARGET_PULP"):
    assert call in dma


@needs_gcc
def test_mobilenet_v1_whole_network(tmp_path):
  cfg = I.MobileNetConfig(width=0.25, resolution=64, n_classes=10)
  from jaxbp.integerize.mobilenet import calibration_images
  graph = I.mobilenet_v1_graph(cfg, calibration_images(cfg, 4, seed=0))
  p = get_platform("gap8")
  res = tiled.emit_tiled(graph, p, tmp_path / "emit")
  assert len(res.tiled) == 27 and res.fallback == ("pool", "logits")
  x = I.quantize(calibration_images(cfg, 2, seed=1), graph.tensors[graph.inputs[0]])
  ref = I.run(graph, x)
  got = tiled.run_tiled(graph, p, x, tmp_path / "run")
  for name, r in ref.items():
    np.testing.assert_array_equal(got[name], r)
