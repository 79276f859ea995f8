"""Free Bits latency studies on deployment graphs (no training): b-bit baseline vs b-bit + free bits, per platform.

The baselines are the paper's (methods.md section 8): a homogeneous b-bit network keeps the network input and
the outputs of residual adds at 8 bit (`jaxbp.deploy.layers.with_uniform_bits`), so the layers reading them
have 8-bit inputs and b-bit weights. Free Bits runs on the weighted layers against the platform's latency
dictionary (LD, `jaxbp.deploy.latency_table.profile`); weightless layers (pools, adds, element-wise ops) keep
their bits. Free Bits judges a raise by the whole network's LD price (`network_cost`: each layer at its own
b_in, b_w, b_out under the library DORY links for the configured network), so a raised input width's effect on
the producer's output and an all-8-bit result's other library are counted. Latencies are reported twice: the LD
price and end to end by the simulator (equal for networks that stay in L2; see `jaxbp.deploy.latency_table`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jaxbp.deploy.latency_table import ALL_PAIRS, LatencyDict, profile
from jaxbp.deploy.layers import NETWORK_INPUT, Network, with_layer_bits, with_uniform_bits
from jaxbp.deploy.platforms import Platform
from jaxbp.deploy.simulator import simulate
from jaxbp.freebits.heuristic import BitPair, free_bits

ISAS = ("xpulpv2", "xpulpnn-v1", "xpulpnn-v2")


def network_bits(net: Network) -> dict[str, BitPair]:
  """{layer: (b_in, b_w)} of every layer of a deployment graph (weightless layers: b_w as stored, 8)."""
  return {l.name: (l.bits_in, l.bits_w) for l in net.layers}


def weighted_bits(net: Network) -> dict[str, BitPair]:
  """{weighted layer: (b_in, b_w)}: what Bayesian Bits searches and Free Bits raises."""
  return {l.name: (l.bits_in, l.bits_w) for l in net.layers if l.weighted}


@dataclasses.dataclass(frozen=True)
class Raised:
  """A layer Free Bits raised, with its LD entries before/after (cycles) and why the new pair is no slower."""

  layer: str
  layer_type: str
  before: BitPair
  after: BitPair
  cycles_before: float
  cycles_after: float
  reason: str

  def to_json(self) -> dict[str, Any]:
    d = dataclasses.asdict(self)
    d["before"], d["after"] = list(self.before), list(self.after)
    return d


def configured(net: Network, config: Mapping[str, BitPair]) -> Network:
  """`net` at 8 bits with the weighted layers at `config` ({layer: (b_in, b_w)}; b_in sets the producer's output).
  A max pool keeps its input's grid (as the integer graphs do), so the width its reader asks for also sets the
  output of the layer before the pool."""
  m = with_layer_bits(with_uniform_bits(net, 8), {k: list(v) for k, v in config.items()})
  for _ in range(len(m.layers)):
    fix = {l.inputs[0]: {"bits_out": l.bits_out} for l in m.layers
           if l.op == "pool" and l.mode == "max" and l.bits_in != l.bits_out and l.inputs[0] != NETWORK_INPUT}
    if not fix:
      break
    m = with_layer_bits(m, fix)
  return m


def network_cost(ld: LatencyDict, net: Network, unit: str = "ms") -> Callable[[Mapping[str, BitPair]], float]:
  """{layer: (b_in, b_w)} -> the LD price of the configured network (`LatencyDict.network_cycles`), the cost
  Free Bits judges raises by (`free_bits(..., network_cost=...)`)."""
  return lambda config: ld.network_cycles(configured(net, config), unit)


def explain(ld: LatencyDict, layer: str, before: BitPair, after: BitPair, net: Network | None = None,
            config: Mapping[str, BitPair] | None = None) -> Raised:
  """The LD entries of `layer` at both pairs and a one-line reason (compute / DMA / tiles / L1 fit). With `net`
  and the final `config`, the entries are the layer's own in the configured network before / after the raise
  (its output width and library included) and the reason adds the whole network's price change."""
  key = ld.layers[layer]
  if net is not None and config is not None:
    cfg_before = {**config, layer: tuple(before)}
    e0 = ld.layer_entries(configured(net, cfg_before))[layer]
    e1 = ld.layer_entries(configured(net, config))[layer]
  else:
    e0, e1 = ld.entries[(key, *before)], ld.entries[(key, *after)]
  parts = []
  if abs(e1.compute_cycles - e0.compute_cycles) >= 1:
    parts.append(f"compute {e0.compute_cycles:.0f}->{e1.compute_cycles:.0f}")
  if abs(e1.dma_cycles - e0.dma_cycles) >= 1:
    parts.append(f"dma {e0.dma_cycles:.0f}->{e1.dma_cycles:.0f}")
  if e1.n_tiles != e0.n_tiles:
    parts.append(f"tiles {e0.n_tiles}->{e1.n_tiles}")
  if e1.fits_l1 != e0.fits_l1:
    parts.append(f"fits L1 {e0.fits_l1}->{e1.fits_l1}")
  if net is not None and config is not None:
    n0, n1 = ld.network_cycles(configured(net, cfg_before)), ld.network_cycles(configured(net, config))
    parts.append(f"network {n0:.0f}->{n1:.0f}")
  verdict = "faster than" if e1.cycles < e0.cycles else "as fast as" if e1.cycles == e0.cycles else "slower than"
  reason = f"{after[0]}/{after[1]} {verdict} {before[0]}/{before[1]}" + (f" ({', '.join(parts)})" if parts else "")
  return Raised(layer, key, tuple(before), tuple(after), e0.cycles, e1.cycles, reason)


@dataclasses.dataclass(frozen=True)
class ConfigLatency:
  """One configuration on one platform: LD-sum and simulated end-to-end latency (ms)."""

  ld_ms: float
  sim_ms: float
  fits: bool


def config_latency(net: Network, config: Mapping[str, BitPair], ld: LatencyDict, platform: Platform
                   ) -> ConfigLatency:
  """Latency of `net` with the weighted layers at `config` ({layer: (b_in, b_w)}; the rest at 8 bits)."""
  mixed = configured(net, config)
  ld_ms = ld.network_cycles(mixed, "ms")
  rep = simulate(mixed, platform)
  return ConfigLatency(ld_ms, rep.latency_ms, rep.fits)


@dataclasses.dataclass(frozen=True)
class PlatformStudy:
  """b-bit baseline and b-bit + Free Bits against the 8-bit network on one platform."""

  platform: str
  isa: str
  bits: int
  latency: dict[str, ConfigLatency]  # "8bit", "<b>bit", "<b>bit+fb"
  raised: tuple[Raised, ...]
  config: dict[str, BitPair]  # the b-bit + free bits configuration of the weighted layers

  def relative(self, name: str, kind: str = "sim") -> float:
    """Latency of configuration `name` in % of the 8-bit network (`kind` "sim" or "ld")."""
    attr = "sim_ms" if kind == "sim" else "ld_ms"
    return 100.0 * getattr(self.latency[name], attr) / getattr(self.latency["8bit"], attr)

  def to_json(self) -> dict[str, Any]:
    return {"platform": self.platform, "isa": self.isa, "bits": self.bits,
            "latency": {k: dataclasses.asdict(v) for k, v in self.latency.items()},
            "relative_pct": {k: {"sim": self.relative(k), "ld": self.relative(k, "ld")} for k in self.latency},
            "raised": [r.to_json() for r in self.raised], "config": {k: list(v) for k, v in self.config.items()}}


def latency_study(net: Network, platform: Platform, bits: int = 4, pairs: Iterable[BitPair] = ALL_PAIRS,
                  ld: LatencyDict | None = None) -> PlatformStudy:
  """The paper's homogeneous `bits` baseline, then Free Bits on its weighted layers, on `platform`."""
  pairs = tuple(tuple(p) for p in pairs)
  ld = ld if ld is not None else profile(net, platform, pairs)
  base = weighted_bits(with_uniform_bits(net, bits))
  res = free_bits(base, ld.per_layer("ms"), pairs, ld.layers, network_cost(ld, net))
  tag = f"{bits}bit"
  lat = {"8bit": config_latency(net, weighted_bits(with_uniform_bits(net, 8)), ld, platform),
         tag: config_latency(net, base, ld, platform), f"{tag}+fb": config_latency(net, res.config, ld, platform)}
  raised = tuple(explain(ld, name, old, new, net, res.config) for name, (old, new) in res.changes.items())
  return PlatformStudy(platform.name, platform.isa, bits, lat, raised, dict(res.config))


def markdown(model: str, studies: Iterable[PlatformStudy]) -> str:
  """The study as markdown: the relative-latency table, then the raised layers per platform."""
  studies = list(studies)
  if not studies:
    return ""
  b = studies[0].bits
  rows = [f"### {model}", "",
          f"| platform (ISA) | 8-bit ms | {b}-bit % of 8-bit | {b}-bit + FB % of 8-bit | raised layers | "
          f"LD-sum {b}-bit % | LD-sum {b}-bit + FB % |", "|---|---|---|---|---|---|---|"]
  for s in studies:
    rows.append(f"| {s.platform} ({s.isa}) | {s.latency['8bit'].sim_ms:.2f} | {s.relative(f'{b}bit'):.1f} | "
                f"{s.relative(f'{b}bit+fb'):.1f} | {len(s.raised)} | {s.relative(f'{b}bit', 'ld'):.1f} | "
                f"{s.relative(f'{b}bit+fb', 'ld'):.1f} |")
  for s in studies:
    rows += ["", f"Raised on {s.platform}:" if s.raised else f"Raised on {s.platform}: none", ""]
    if s.raised:
      rows += ["| layer | before | after | cycles before | cycles after | why |", "|---|---|---|---|---|---|"]
      rows += [f"| {r.layer} | {r.before[0]}/{r.before[1]} | {r.after[0]}/{r.after[1]} | {r.cycles_before:,.0f} | "
               f"{r.cycles_after:,.0f} | {r.reason} |" for r in s.raised]
  return "\n".join(rows)
