"""The conv inner loops the cycle model uses are those of the PULP-NN-mixed sources (re-derived when present)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jaxbp.deploy import kernel_code
from jaxbp.deploy.calibration import conv_cost_table
from jaxbp.deploy.kernels import conv_loop, iteration_cycles
from jaxbp.deploy.platforms import GAP8, XPULPNN_V1, XPULPNN_V2

ROOT = (Path(__file__).resolve().parents[2] / "shared" / "dory" / "dory" / "Hardware_targets" / "PULP"
        / "Backend_Kernels" / "pulp-nn-mixed")


def test_table_is_what_the_sources_say():
  if not ROOT.is_dir():
    pytest.skip(f"pulp-nn-mixed sources not found at {ROOT}")
  assert kernel_code.derive(ROOT) == kernel_code.CONV_INNER
  assert kernel_code.derive_linear(ROOT) == kernel_code.LINEAR_INNER


def test_known_loops():
  c = kernel_code.CONV_INNER
  assert (c[("xpulpv2", 8, 8)].instr, c[("xpulpv2", 8, 8)].macs) == (14, 32)  # 4 + 2 loads, 8 sdotp (doc).
  # XpulpV2 4-bit weights: per 8 elements 4 activation loads, 16 sdotp and 4 software unpacks of 17 instructions.
  assert (c[("xpulpv2", 8, 4)].instr, c[("xpulpv2", 8, 4)].unpack_instr) == (88, 68)
  assert c[("xpulpnn-v1", 4, 4)].instr == c[("xpulpnn-v1", 4, 4)].mac_load == 9  # 8 MAC&LOAD + 1 init, 64 MACs.
  assert c[("xpulpnn-v2", 8, 2)].unpack_instr == 0 < c[("xpulpnn-v1", 8, 2)].unpack_instr
  assert c[("xpulpnn-v2", 4, 8)].act_bits == 8  # narrower activations: unpacked in im2col even on v2.


def test_linear_loops():
  c = kernel_code.LINEAR_INNER
  assert (c[("xpulpv2", 8, 8)].instr, c[("xpulpv2", 8, 8)].macs) == (5, 8)  # 3 loads + 2 sdotp, 2 neurons per pass.
  assert (c[("xpulpnn-v1", 2, 2)].instr, c[("xpulpnn-v1", 2, 2)].macs) == (3, 16)  # MAC&LOAD + init + nop.


def test_model_uses_the_loops():
  assert conv_loop(GAP8, 4, 4) is kernel_code.CONV_INNER[("xpulpv2", 4, 4)]
  assert conv_loop(XPULPNN_V1, 8, 8) is kernel_code.CONV_INNER[("xpulpv2", 8, 8)]  # DORY's 8-bit PULP-NN library.
  l = conv_loop(XPULPNN_V2, 2, 2)
  assert iteration_cycles(XPULPNN_V2, l) == pytest.approx(9 * XPULPNN_V2.kernel.mac_load_cycles)
  assert "pulp_nn_conv_u4_u8_i4.c" in conv_cost_table()
