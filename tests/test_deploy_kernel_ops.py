"""Depthwise, add and pool costs are what the PULP-NN(-mixed) sources say (re-derived when ../shared/dory exists)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jaxbp.deploy import kernel_ops
from jaxbp.deploy.kernels import depthwise_loop, kernel_cycles
from jaxbp.deploy.layers import Layer
from jaxbp.deploy.platforms import GAP8, XPULPNN_V1

ROOT = Path(__file__).resolve().parents[2] / "shared" / "dory" / "dory" / "Hardware_targets" / "PULP" / "Backend_Kernels"


def _need_sources():
  if not (ROOT / "pulp-nn").is_dir() or not (ROOT / "pulp-nn-mixed").is_dir():
    pytest.skip(f"PULP-NN sources not found under {ROOT}")


def test_tables_are_what_the_sources_say():
  _need_sources()
  assert kernel_ops.derive_depthwise(ROOT) == kernel_ops.DEPTHWISE
  assert kernel_ops.derive_add(ROOT) == kernel_ops.ADD
  assert kernel_ops.derive_pool(ROOT) == kernel_ops.POOL
  assert kernel_ops.derive_matmul_tails(ROOT) == kernel_ops.MATMUL_TAIL
  assert kernel_ops.derive_linear_tails(ROOT) == kernel_ops.LINEAR_TAIL


def test_counter_on_known_statements():
  # load, load, one SIMD dot product; pointer post-increments and the hardware-loop counter are free.
  assert kernel_ops.count("v4s w = *(v4s *) pW; v4u x = *(v4u *) pB; sum = SumDotp(x, w, sum); pB += 4; pW += 4;"
                          " j++;") == 3
  assert kernel_ops.count("sum += x * w;") == 1  # a MAC.
  assert kernel_ops.count("y = (a * m + b) >> s;") == 3
  assert kernel_ops.count("*p = clip8(x);") == 2  # clip + store.
  assert kernel_ops.count("x = a / b;") == kernel_ops.DIV_CYCLES


def test_known_depthwise_loops():
  d = kernel_ops.DEPTHWISE
  nn = d[("pulp-nn", 8, 8, 8)]  # pulp_nn_depthwise_generic: lw, lw, sdotp per 4 taps; lb, lb, mac per leftover.
  assert (nn.group, nn.dot, nn.left, nn.word, nn.weights) == (1, 3, 3, 4, 0)
  x = d[("xpulpnn", 8, 8, 8)]  # MacLoad4 + MacLoadInit per 4 taps.
  assert (x.dot, x.dot_mac_load) == (2, 2)
  four = d[("xpulpv2", 4, 4, 4)]  # 2 channels per byte: 2 dot products per step, weights unpacked per channel pair.
  assert four.group == 2 and four.dot == 2 * nn.dot and four.weights > 0 and four.word > 2 * nn.word
  assert d[("xpulpnn", 2, 2, 2)].group == 4


def test_depthwise_rate_on_gap8():
  # 3x3, 64 channels, 32x32 output: ~2 MAC/cycle on 8 cores from the code (the doc's analytic model says ~1).
  dw = Layer("dw", "depthwise", ("input",), (34, 34, 64), (32, 32, 64), kernel=(3, 3), groups=64)
  rate = dw.macs / kernel_cycles(GAP8, dw, dw.out_shape, dw.in_shape).total
  assert 1.8 < rate < 2.4
  assert depthwise_loop(GAP8, dw) is kernel_ops.DEPTHWISE[("pulp-nn", 8, 8, 8)]
  mixed = GAP8.replace(**{"kernel.mixed_library_8bit": True})
  assert depthwise_loop(mixed, dw) is kernel_ops.DEPTHWISE[("xpulpv2", 8, 8, 8)]
  assert depthwise_loop(XPULPNN_V1.replace(**{"kernel.mixed_library_8bit": True}), dw) is kernel_ops.DEPTHWISE[
      ("xpulpnn", 8, 8, 8)]


def test_add_and_pool_from_code():
  a = kernel_ops.ADD
  assert a[("pulp-nn", 8)].elems == 1 and a[("xpulpv2", 8)].elems == a[("xpulpv2", 4)].elems == 4
  assert a[("xpulpv2", 4)].instr > a[("xpulpv2", 8)].instr  # 4-bit inputs unpacked, outputs packed.
  add = Layer("add", "add", ("a", "b"), (8, 8, 64), (8, 8, 64), in2_shape=(8, 8, 64), bits_in2=8)
  assert kernel_cycles(GAP8, add, add.out_shape, add.in_shape).total == 8 * 64 * a[("pulp-nn", 8)].instr
  gap = Layer("gap", "pool", ("x",), (4, 4, 256), (1, 1, 256), kernel=(4, 4), mode="avg")
  p = kernel_ops.POOL[("pulp-nn", "avg", 8)]  # one output row: one core works.
  assert kernel_cycles(GAP8, gap, gap.out_shape, gap.in_shape).total == p.pixel + 256 * (p.channel + 16 * p.window)


def test_matmul_tails():
  t = kernel_ops.MATMUL_TAIL
  # pulp-nn's 8-bit matmul: 8 inlined BN requantizations (mul, add, shift, clip) with their k/lambda loads and a
  # store each = 56, + 16 accumulator/bias initialisations, pointers, loop set-ups.
  assert t[("pulp-nn", 8, 8, 8)].block == 83 and t[("pulp-nn", 8, 8, 8)].tail == 14  # 6 byte loads + 8 MACs.
  # pulp-nn-mixed calls its requantization helper (noinline): CALL_CYCLES more per output.
  assert t[("xpulpv2", 8, 8, 8)].block == t[("pulp-nn", 8, 8, 8)].block + 8 * kernel_ops.CALL_CYCLES - 8
  assert t[("xpulpv2", 2, 2, 2)].row == 0  # 2-bit outputs: no 1x2 leftover-channel path in the code.
  lt = kernel_ops.LINEAR_TAIL  # XpulpV2 linear kernels: 2 neurons per pass; the int32-output ones skip requant.
  assert lt[("xpulpv2", 8, 8, 8)].neurons == 2 and lt[("xpulpnn-v1", 8, 8, 8)].neurons == 1
  assert lt[("xpulpv2", 8, 8, 32)].block < lt[("xpulpv2", 8, 8, 8)].block


def test_mixed_network_runs_8bit_layers_with_the_mixed_library():
  from jaxbp.deploy.layers import Network
  from jaxbp.deploy.simulator import simulate, uses_mixed_library

  conv8 = Layer("c8", "conv", ("input",), (10, 10, 16), (8, 8, 32), kernel=(3, 3))
  conv4 = Layer("c4", "conv", ("c8",), (8, 8, 32), (6, 6, 32), kernel=(3, 3), bits_in=8, bits_w=4, bits_out=8)
  net = Network("n", conv8.in_shape, (conv8, conv4))
  assert uses_mixed_library(net) and uses_mixed_library(net, signed_input=False)
  assert not uses_mixed_library(Network("n8", conv8.in_shape, (conv8,)), signed_input=False)
  r = simulate(net, XPULPNN_V1)
  p = XPULPNN_V1.replace(**{"kernel.mixed_library_8bit": True})
  # the 8-bit layer runs xpulp_nn_conv_u8_u8_i8 (MAC&LOAD loop), not pulp-nn's 8-bit kernel.
  assert "xpulp_nn_conv" in r.layers[0].kernel
  mixed8 = kernel_cycles(p, conv8, conv8.out_shape, conv8.in_shape).total
  plain8 = kernel_cycles(XPULPNN_V1, conv8, conv8.out_shape, conv8.in_shape).total
  assert mixed8 != plain8 and r.layers[0].compute_cycles == pytest.approx(mixed8)


def test_xpulpnn_mixed_add_and_avgpool_are_xpulpnn_s():
  # The simulator costs xpulpnn-v2's adds and average pools with XpulpNN's tables: the sources are the same files.
  _need_sources()
  mixed, nn = ROOT / "pulp-nn-mixed" / "XpulpNN-mixed" / "32bit" / "src", ROOT / "pulp-nn-mixed" / "XpulpNN" / "32bit" / "src"
  for b in (8, 4, 2):
    for rel in (f"Add/xpulp_nn_add_u{b}_u{b}_u{b}.c", f"Pooling/AvgPool/xpulp_nn_avgpool_u{b}_u{b}.c"):
      assert (mixed / rel).read_text() == (nn / rel).read_text(), rel
  assert not (mixed / "Depthwise").exists()  # no depthwise kernels: XpulpNN's are used.
