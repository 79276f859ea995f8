"""The latency table prices a layer exactly as the whole-network simulation charges it (same library, kernel,
tiling, unpacking, output width), so a configuration's table price is its simulated latency."""

import random

import pytest

from jaxbp.deploy import zoo
from jaxbp.deploy.latency_table import profile
from jaxbp.deploy.layers import BITS, with_layer_bits, with_uniform_bits
from jaxbp.deploy.platforms import get_platform
from jaxbp.deploy.simulator import dory_library, simulate
from jaxbp.freebits import free_bits
from jaxbp.freebits.study import configured, network_cost

PLATFORMS = ("gap8", "xpulpv2", "xpulpnn-v1", "xpulpnn-v2")
NETS = {"resnet1d_ppgbp": lambda: zoo.bp_seed("resnet1d", "ppgbp"),
        "mobilenet_v1": lambda: zoo.mobilenet_v1(0.25, 32, 10),
        "mobilenet_v2": lambda: zoo.mobilenet_v2(0.25, 32, 10)}


def _configs(net, seed: int = 0, n: int = 4):
  """8-bit, the paper's 4-bit baseline, and `n` random per-layer (b_in, b_w) assignments of the weighted layers."""
  net8 = with_uniform_bits(net, 8)
  weighted = [l.name for l in net8.layers if l.weighted]
  rng = random.Random(seed)
  out = [net8, with_uniform_bits(net, 4)]
  out += [with_layer_bits(net8, {w: [rng.choice(BITS), rng.choice(BITS)] for w in weighted}) for _ in range(n)]
  return out


@pytest.mark.parametrize("model", sorted(NETS))
@pytest.mark.parametrize("platform", PLATFORMS)
def test_table_price_equals_the_simulated_network_per_layer(model, platform):
  net, p = NETS[model](), get_platform(platform)
  ld = profile(net, p)
  for k, m in enumerate(_configs(net, seed=PLATFORMS.index(platform))):
    rep = simulate(m, p)
    assert not rep.uses_l3  # the exactness claim is for networks that stay in L2.
    entries = ld.layer_entries(m)
    got = {l.name: (entries[l.name].cycles, l.cycles) for l in rep.layers}
    bad = {n: v for n, v in got.items() if v[0] != pytest.approx(v[1], rel=1e-12, abs=1e-9)}
    assert not bad, f"{model} on {platform}, config {k}: table vs simulated cycles {bad}"
    assert ld.network_cycles(m) == pytest.approx(rep.total_cycles, rel=1e-12)  # no cost outside the layers.


def test_grouped_sub_byte_conv_switches_the_library_and_is_priced_as_simulated():
  """The regression: PPGBP block1/conv1 (grouped, no DORY node) at 8-bit input / 4-bit weights on XpulpNN v2. The
  grouped conv is split into DORY convs by the export, so its 4-bit weights make DORY link the hardware mixed
  kernels; before, the network simulated it with the software library (unpacking, 21,516 cycles) while the table
  used the hardware one (11,882)."""
  net, p = zoo.bp_seed("resnet1d", "ppgbp"), get_platform("xpulpnn-v2")
  weighted = [l.name for l in net.layers if l.weighted]
  config = {w: (8, 8) for w in weighted} | {"block1/conv1": (8, 4)}
  m = configured(net, config)
  assert dory_library(m, p.isa) == "mixed-hw" and dory_library(with_uniform_bits(net, 8), p.isa) == "mixed-sw"
  rep = {l.name: l for l in simulate(m, p).layers}
  ld = profile(net, p)
  assert rep["block1/conv1"].unpack_cycles == 0
  assert ld.layer_entries(m)["block1/conv1"].cycles == pytest.approx(rep["block1/conv1"].cycles)
  assert ld.cycles("block1/conv1", 8, 4) == pytest.approx(rep["block1/conv1"].cycles)  # output at 8 = b_in.


@pytest.mark.parametrize("platform", ["xpulpnn-v1", "xpulpnn-v2"])
def test_free_bits_by_network_price_is_never_slower_when_simulated(platform):
  net, p = zoo.bp_seed("resnet1d", "ppgbp"), get_platform(platform)
  ld = profile(net, p)
  rng = random.Random(3)
  weighted = [l.name for l in net.layers if l.weighted]
  for _ in range(3):
    config = {w: (rng.choice(BITS), rng.choice(BITS)) for w in weighted}
    res = free_bits(config, ld.per_layer("ms"), types=ld.layers, network_cost=network_cost(ld, net))
    before, after = simulate(configured(net, config), p), simulate(configured(net, res.config), p)
    assert after.total_cycles <= before.total_cycles
    assert res.latency_after == pytest.approx(after.latency_ms) and res.latency_before == pytest.approx(
        before.latency_ms)
    assert all(a >= b and w >= v for (a, w), (b, v) in ((res.config[k], config[k]) for k in config))


def test_configured_max_pool_keeps_its_input_grid():
  """As in the integer graphs: the stem's max pool does not requantize, so block0/conv1's 4-bit input makes the
  stem conv write 4 bits (the price then matches the simulation of the integer graph's network)."""
  net = zoo.bp_seed("resnet1d", "ppgbp")
  config = {l.name: (8 if l.name == "stem_conv" else 4, 4) for l in net.layers if l.weighted}
  m = configured(net, config)
  assert m.layer("stem_conv").bits_out == 4 and m.layer("stem_pool").bits_in == m.layer("stem_pool").bits_out == 4
  assert m.layer("block1/skip_pool").bits_out == 8  # reads the residual add's 8-bit output.
  p = get_platform("xpulpnn-v2")
  assert profile(net, p).network_cycles(m) == pytest.approx(simulate(m, p).total_cycles, rel=1e-12)
