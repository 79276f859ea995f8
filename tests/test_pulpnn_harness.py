"""jaxbp's integer interpreter against the real PULP-NN / PULP-NN-mixed kernels (compiled on the host by
tools/pulpnn/harness.py): random layers bit for bit, and the kernel bugs the harness steers around.

Skips where ../shared/dory (the kernel sources) or gcc is absent."""

import pathlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxbp import integerize as I
from jaxbp.integerize.builder import GraphBuilder, Quant
from tools.pulpnn import harness as H

DORY = pathlib.Path(__file__).resolve().parents[2] / "shared" / "dory"
REASON = H.unavailable_reason(DORY)
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


@pytest.fixture(scope="module")
def kernels():
  return H.Kernels(DORY)


@pytest.fixture(scope="module")
def arena():
  return H.Arena()


# A fixed spread of kernels keeps the default run's compile time bounded (each kernel is compiled once, cached).
FAST = [("conv", "pulp-nn-mixed"), ("depthwise", "pulp-nn-mixed"), ("pointwise", "pulp-nn-mixed"),
        ("linear", "pulp-nn-mixed"), ("add", "pulp-nn-mixed"), ("avgpool", "pulp-nn-mixed"),
        ("maxpool", "pulp-nn-mixed"), ("conv", "pulp-nn"), ("avgpool", "pulp-nn"), ("linear_i32", "pulp-nn")]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(which=st.sampled_from(FAST), seed=st.integers(0, 2 ** 32 - 1))
def test_random_layers_bit_exact_with_the_kernels(kernels, arena, which, seed):
  kind, lib = which
  try:
    case = H.random_case(np.random.default_rng(seed), kind, lib)
    ok, got, ref = H.check_case(kernels, arena, case)
  except H.CaseRejected:  # a layer the kernel cannot take as is (e.g. PULP-NN's linear_out_32 and a bias)
    return
  assert ok, f"{lib}/{case.kernel}: {int((got != ref).sum())} of {got.size} values differ: {case.graph.nodes[0]}"


@pytest.mark.slow
def test_500_random_layers_bit_exact(kernels):
  res = H.run_random(kernels, 500, seed=0)
  assert res["checked"] == 500 and not res["failures"], res["failures"][:5]
  families = {k.split("_")[2] for _, k in res["kernels"]}
  assert {"conv", "pointwise", "depthwise", "linear", "add", "avgpool", "maxpool"} <= families


def _conv_case(kind, name, lib, shape, cout, kernel, in_bits=8, padding=0, stride=1):
  rng = np.random.default_rng(0)
  h, w, c = shape
  b = GraphBuilder()
  x = b.input("x", shape, Quant(in_bits, False, 0.1))
  groups = c if kind == "depthwise" else 1
  wt, sw = I.quantize_weight(rng.normal(size=(cout, *kernel, c // groups)), 8)
  b.conv("y", x, wt, sw, w_bits=8, groups=groups, padding=padding, stride=stride, out=Quant(8, False, 0.5))
  return H.Case(kind, lib, name, b.build(["y"]), {"x": rng.integers(0, 2 ** in_bits, (1, h, w, c))})


def _maxpool_case(name, lib, shape, kernel, stride, padding):
  rng = np.random.default_rng(1)
  b = GraphBuilder()
  x = b.input("x", shape, Quant(8, False, 0.1))
  b.maxpool("y", x, kernel, stride=stride, padding=padding)
  return H.Case("maxpool", lib, name, b.build(["y"]), {"x": rng.integers(0, 256, (1,) + shape)})


@pytest.mark.parametrize("bug,bad,good", [
    ("depthwise_lt4",  # a 1-D depthwise kernel of 3: PULP-NN-mixed reads past the channel's weights
     ("depthwise", "pulp_nn_depthwise_u8_u8_i8", "pulp-nn-mixed", (1, 6, 8), 8, (1, 3)),
     ("depthwise", "pulp_nn_depthwise_generic_less_4_weights", "pulp-nn", (1, 6, 8), 8, (1, 3))),
    ("pointwise_odd",  # 4-bit input, odd output width
     ("pointwise", "pulp_nn_pointwise_u4_u8_i8", "pulp-nn-mixed", (2, 3, 8), 8, (1, 1), 4),
     ("pointwise", "pulp_nn_pointwise_u4_u8_i8", "pulp-nn-mixed", (2, 4, 8), 8, (1, 1), 4)),
])
def test_known_kernel_bugs_show_and_the_workaround_is_exact(kernels, arena, bug, bad, good):
  assert bug in H.KNOWN_BUGS
  assert not H.check_case(kernels, arena, _conv_case(*bad))[0]
  assert H.check_case(kernels, arena, _conv_case(*good))[0]


def test_maxpool_left_padding_with_stride_one_is_a_kernel_bug(kernels, arena):
  assert "maxpool_pad_stride1" in H.KNOWN_BUGS
  bad = _maxpool_case("pulp_nn_maxpool", "pulp-nn", (2, 5, 8), (2, 3), 1, [(1, 1), (1, 1)])
  good = _maxpool_case("pulp_nn_maxpool", "pulp-nn", (2, 5, 8), (2, 3), (1, 2), [(1, 1), (1, 1)])
  assert not H.check_case(kernels, arena, bad)[0]
  assert H.check_case(kernels, arena, good)[0]


def test_pack_round_trip():
  for bits in (2, 4, 8):
    v = np.arange(-(1 << (bits - 1)), 1 << (bits - 1)).repeat(2)
    np.testing.assert_array_equal(H.unpack(H.pack(v, bits).tobytes(), v.size, bits, True), v)
  assert H.pack(np.array([1, 2, 3, 0]), 2).tolist() == [0b00111001]
