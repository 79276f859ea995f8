"""Simulator: cycle model properties (work, ISA, bit widths), energy, JSON schema, calibration."""

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxbp.deploy import calibration, zoo
from jaxbp.deploy.kernels import conv_loop, kernel_cycles
from jaxbp.deploy.latency_table import profile_layer
from jaxbp.deploy.layers import Layer, Network, conv_out, same_padding, with_uniform_bits
from jaxbp.deploy.platforms import GAP8, XPULPNN_V1, XPULPNN_V2, XPULPV2, get_platform
from jaxbp.deploy.schedule import l1_timing
from jaxbp.deploy.simulator import simulate

SUB = st.sampled_from((2, 4))


def make(op: str, h: int, w: int, cin: int, cout: int, k: int = 3, bits=(8, 8, 8), stride: int = 1) -> Layer:
  """A SAME-padded layer of kind `op` (conv, pointwise, depthwise, linear) on an (h, w, cin) input."""
  b_in, b_w, b_out = bits
  if op == "linear":
    return Layer("l", "linear", ("input",), (1, 1, cin), (1, 1, cout), bits_in=b_in, bits_w=b_w, bits_out=b_out)
  k = 1 if op == "pointwise" else k
  kh, sh = (1, 1) if h == 1 else (k, stride)
  pt, pb = same_padding(h, kh, sh)
  pl, pr = same_padding(w, k, stride)
  c = cin if op == "depthwise" else cout
  return Layer("l", op, ("input",), (h, w, cin), (conv_out(h, kh, sh, pt, pb), conv_out(w, k, stride, pl, pr), c),
               kernel=(kh, k), stride=(sh, stride), padding=(pt, pb, pl, pr), groups=cin if op == "depthwise" else 1,
               bits_in=b_in, bits_w=b_w, bits_out=b_out)


@st.composite
def shapes(draw, ops=("conv", "pointwise", "depthwise", "linear")):
  op = draw(st.sampled_from(ops))
  h = draw(st.sampled_from((1, 4, 8, 16)))
  w = draw(st.integers(2, 48))
  return op, h, w, 4 * draw(st.integers(1, 16)), 4 * draw(st.integers(1, 16)), draw(st.sampled_from((1, 3, 5)))


def isolated_cycles(layer: Layer, p=GAP8) -> float:
  return profile_layer(layer, p, layer.bits_in, layer.bits_w, layer.bits_out).cycles


@settings(max_examples=40, deadline=None)
@given(shapes(), st.sampled_from(("h", "w", "cin", "cout")))
def test_cycles_grow_with_work(shape, axis):
  op, h, w, cin, cout, k = shape
  if op == "linear" and axis in ("h", "w"):
    axis = "cin"
  if op == "depthwise" and axis == "cout":
    axis = "cin"
  big = {"h": h, "w": w, "cin": cin, "cout": cout}
  big[axis] *= 2
  small_l, big_l = make(op, h, w, cin, cout, k), make(op, big["h"], big["w"], big["cin"], big["cout"], k)
  assert big_l.macs == 2 * small_l.macs or (axis == "h" and h == 1)
  # The kernel on the whole layer (one tile) and the tiled, scheduled layer both grow with the work.
  small_k = kernel_cycles(GAP8, small_l, small_l.out_shape, small_l.in_shape).total
  big_k = kernel_cycles(GAP8, big_l, big_l.out_shape, big_l.in_shape).total
  assert big_k >= small_k
  assert isolated_cycles(big_l) >= isolated_cycles(small_l)
  if axis in ("cin", "cout"):  # more bytes to move: strictly slower (the kernel alone may just use more cores).
    assert isolated_cycles(big_l) > isolated_cycles(small_l)


@settings(max_examples=40, deadline=None)
@given(shapes(), SUB, st.sampled_from((2, 4, 8)), st.sampled_from(("gap8", "xpulpv2")))
def test_no_subbyte_simd_never_faster_through_compute(shape, b_sub, b_other, platform):
  op, h, w, cin, cout, k = shape
  # Same library for both (pulp-nn-mixed: a depthwise kernel on packed channels handles 8/b channels per loop
  # iteration, which can amortise per-output overheads, so only the weighted matmul kernels are compared).
  p = get_platform(platform).replace(**{"kernel.mixed_library_8bit": True})
  if op == "depthwise":
    return
  ref = make(op, h, w, cin, cout, k)
  for bits in ((b_sub, b_other, 8), (b_other, b_sub, 8), (b_sub, b_sub, b_sub)):
    low = make(op, h, w, cin, cout, k, bits)
    assert kernel_cycles(p, low, low.out_shape, low.in_shape).total >= kernel_cycles(
        p, ref, ref.out_shape, ref.in_shape).total
    tile = (max(1, ref.out_shape[0] // 2), ref.out_shape[1], ref.out_shape[2])
    assert l1_timing(low, tile, p).compute >= l1_timing(ref, tile, p).compute


def test_subbyte_can_win_through_memory_only_on_xpulpv2():
  # 1024 -> 1024 pointwise on 8x8: 1 MB of int8 weights do not fit L2 and stream from L3; at 2 bits they fit.
  l8 = make("pointwise", 8, 8, 1024, 1024)
  l2 = make("pointwise", 8, 8, 1024, 1024, bits=(2, 2, 2))
  net8, net2 = (Network("n", l.in_shape, (l,), input_bits=l.bits_in) for l in (l8, l2))
  r8, r2 = simulate(net8, GAP8, tiler="jaxbp"), simulate(net2, GAP8, tiler="jaxbp")  # same tiles: jaxbp's.
  assert r8.uses_l3 and not r2.uses_l3
  assert r2.layers[0].compute_cycles > r8.layers[0].compute_cycles  # compute is slower at 2 bits ...
  assert r8.layers[0].l3_exposed_cycles > 0 == r2.layers[0].l3_exposed_cycles  # ... its only gain: no L3 waits.


@settings(max_examples=40, deadline=None)
@given(shapes(("conv", "pointwise")), st.sampled_from([(8, 4), (8, 2), (4, 2), (4, 8), (2, 8), (2, 4)]))
def test_xpulpnn_mismatched_widths_follow_the_kernel_code(shape, pair):
  # pulp-nn-mixed: XpulpNN v1 unpacks narrower weights inside the inner loop, XpulpNN-mixed (v2) feeds them to its
  # mixed dot products; with narrower activations both unpack them while building im2col (same kernel cost).
  op, h, w, cin, cout, k = shape
  a, b = pair
  wide = max(a, b)
  mixed = make(op, h, w, cin, cout, k, (a, b, a))
  equal = make(op, h, w, cin, cout, k, (wide, wide, a))

  def kc(p, l):
    return kernel_cycles(p, l, l.out_shape, l.in_shape).total

  red = cin * (1 if op != "conv" else mixed.kernel[0] * mixed.kernel[1])
  if a > b:
    if red % 16 == 0:  # whole SIMD iterations (else the two kernels' scalar tails differ in length).
      assert kc(XPULPNN_V1, mixed) > kc(XPULPNN_V2, mixed)
      v2_mixed_lib = XPULPNN_V2.replace(**{"kernel.mixed_library_8bit": True})  # equal widths, same library.
      assert kc(XPULPNN_V2, mixed) <= kc(v2_mixed_lib, equal)  # v2: narrower weights cost nothing extra.
  else:  # narrower activations: the same inner loop (the requantization code around it differs a little).
    l1, l2 = conv_loop(XPULPNN_V1, a, b), conv_loop(XPULPNN_V2, a, b)
    assert (l1.instr, l1.macs, l1.act_bits) == (l2.instr, l2.macs, l2.act_bits)
    assert kc(XPULPNN_V1, mixed) == pytest.approx(kc(XPULPNN_V2, mixed), rel=0.1)
  same = make(op, h, w, cin, cout, k, (wide, wide, wide))
  assert kc(XPULPNN_V1, same) == pytest.approx(kc(XPULPNN_V2, same), rel=0.1)  # equal widths: same inner loop.


def test_subbyte_simd_speeds_up_compute_on_xpulpnn():
  l8, l4, l2 = (make("conv", 16, 16, 64, 64, 3, (b, b, b)) for b in (8, 4, 2))
  c = [kernel_cycles(XPULPNN_V1, l, l.out_shape, l.in_shape).total for l in (l8, l4, l2)]
  assert c[0] > c[1] > c[2]
  assert kernel_cycles(XPULPV2, l4, l4.out_shape, l4.in_shape).total > c[0]


def test_breakdown_adds_up_and_energy_is_power_times_time():
  net = with_uniform_bits(zoo.mobilenet_v1(0.25, 96, classes=10), 8)  # small enough to stay in L2.
  r = simulate(net, GAP8)
  for l in r.layers:
    assert l.cycles == pytest.approx(l.compute_cycles + l.dma_exposed_cycles + l.l3_exposed_cycles + l.overhead_cycles)
    assert 0 <= l.im2col_cycles <= l.compute_cycles and l.dma_exposed_cycles >= -1e-6
    assert l.latency_ms == pytest.approx(l.cycles / (r.freq_mhz * 1e3))
  assert r.total_cycles == pytest.approx(sum(l.cycles for l in r.layers))
  pw = GAP8.power
  lo = (pw.l3_mw + pw.io_mw) * r.latency_ms * 1e-3  # every phase draws at least the L3-bound power ...
  hi = (pw.compute_mw + pw.io_mw) * r.latency_ms * 1e-3  # ... and at most the compute-bound power.
  assert lo < r.energy_mj < hi
  fast = simulate(net, GAP8, freq_mhz=200)
  assert not r.uses_l3 and fast.latency_ms == pytest.approx(r.latency_ms / 2)
  assert fast.energy_mj == pytest.approx(r.energy_mj)  # power scales with f: energy per cycle is constant.


def test_l3_bandwidth_does_not_scale_with_the_clock():
  net = with_uniform_bits(zoo.mobilenet_v1(1.0, 128), 8)
  r100, r200 = simulate(net, GAP8, freq_mhz=100), simulate(net, GAP8, freq_mhz=200)
  assert r100.uses_l3 and r200.latency_ms > r100.latency_ms / 2
  assert r200.total_cycles > r100.total_cycles  # L3 waits cost more cycles at a faster clock.


def test_json_schema_exact():
  # The documented keys stay (backward compatible); later additions are listed exactly too.
  r = simulate(with_uniform_bits(zoo.bp_seed("resnet1d", "ppgbp"), 8), GAP8)
  d = json.loads(json.dumps(r.to_json()))
  assert set(d) == {"model", "platform", "freq_mhz", "fits", "uses_l3", "total_cycles", "latency_ms", "energy_mj",
                    "macs", "weight_bytes", "peak_l2_bytes", "layers", "tiler", "double_buffered"}
  assert all(set(l) == {"name", "op", "macs", "bits_in", "bits_w", "bits_out", "n_tiles", "cycles", "compute_cycles",
                        "dma_cycles", "latency_ms", "kernel", "tile", "dma_exposed_cycles", "l3_exposed_cycles",
                        "overhead_cycles", "l1_bytes"} for l in d["layers"])
  assert d["fits"] is True and d["uses_l3"] is False and d["macs"] == 865_600
  assert d["tiler"] == "dory" and d["double_buffered"] is False  # DORY's GAP8 target: one buffer.
  assert d["layers"][0]["kernel"].startswith("pulp_nn_") and len(d["layers"][0]["tile"]) == 3


def test_platform_overrides_and_errors(tmp_path):
  p = get_platform("gap8", **{"l2_reserved_bytes": "122880", "kernel.kernel_call_cycles": 50, "power.io_mw": 7})
  assert p.l2_budget_bytes == 524_288 - 122_880 and p.kernel.kernel_call_cycles == 50 and p.power.io_mw == 7
  assert dataclasses.replace(GAP8, freq_mhz=175).l3_bytes_per_cycle == pytest.approx(40 / 175)
  with pytest.raises(ValueError, match="unknown field 'l4_bytes'"):
    get_platform("gap8", l4_bytes=1)
  with pytest.raises(ValueError, match="unknown platform"):
    get_platform("gap9")
  with pytest.raises(ValueError, match="expected a number"):
    get_platform("gap8", **{"kernel.sdotp_cycles": "fast"})
  assert GAP8.l1_usable_bytes == 36_700


def test_calibration_errors_are_bounded():
  figs = {f.name + f.note: f for f in calibration.figures()}
  for f in figs.values():
    if f.name.startswith("1-core mixed") and f.fitted:  # mac_load_cycles, calibrated on a8/w8.
      assert abs(f.error) < 0.01, f
    elif f.name.startswith("1-core mixed"):  # validation of the code-derived loops (worst: a4/w4, +13.9 %).
      assert abs(f.error) < 0.16, f
    elif f.name.startswith("SDK") and "no SIMD" in f.name:
      assert abs(f.error) < 0.10, f
    elif f.name.startswith("SDK"):  # PULP-NN's code on the SDK's 1-input-channel 5x5 layer: slower than the SDK's
      assert 0.3 < f.error < 0.7, f  # own kernel (83 cycles of requantization per 4x2 block of 25-element sums).
    elif "peak" in f.name or "incl. DMA" in f.name:
      assert abs(f.error) < 0.10, f
